"""The clip index as the judge reads it: the measured features (evidence.clip_index.ClipIndex) plus
the taxonomy and the clip's voice baseline, from which it infers what each modality says about the
emotion on its own. Built once per clip and shared by every answer on it."""

from __future__ import annotations

from dataclasses import dataclass

from evidence.clip_index import ClipIndex, lazy
from schemas.features import LearnedVoice, VoiceBaseline


@dataclass
class JudgeIndex(ClipIndex):
    taxonomy: frozenset[str] = frozenset()
    voice_baseline: VoiceBaseline | None = None
    learned_voice: LearnedVoice | None = None  # the voice model the run fitted on its labelled clips

    @lazy
    def learned_distribution(self) -> dict[str, float]:
        """The run's voice model's reading of this clip (out of fold on a labelled clip), or {} where
        it has none (no labelled clips, or a model no better than the commonest label)."""
        lv = self.learned_voice
        return {p.label: p.prob for p in lv.distribution if p.label in self.taxonomy} if lv is not None else {}

    @lazy
    def voice_z(self) -> dict[str, float]:
        """The clip's voice against its voice baseline (the speaker's or the run's, as the vocal agents
        see it: agents/voice_baseline.py), as robust z-scores keyed by the vocal profiles' cue names."""
        from agents.voice_baseline import zscores

        if self.voice_baseline is None or not self.voice_measures:
            return {}
        return zscores(self.voice_measures, self.voice_baseline)

    @lazy
    def modality_distributions(self) -> dict[str, dict[str, float]]:
        """What each measured modality says about the emotion on its own (agents/judge/inference.py):
        visual from the expression model on the main face (action-unit prototypes without one),
        audio from the vocal profiles, text from the transcript's valence."""
        from agents.judge import inference

        out = {}
        frames = self.frames()
        if frames:
            d = self.expression_mean(frames)
            if not d:
                units: dict[str, list[float]] = {}
                for o in frames:
                    for a in o.action_units:
                        units.setdefault(a.au, []).append(a.intensity if a.present else 0.0)
                d = inference.au_distribution({u: sum(v) / len(v) for u, v in units.items()}, self.taxonomy) or {}
            if d:
                out["visual"] = d
        if self.voice_z:
            d = inference.vocal_distribution(self.voice_z, self.taxonomy)
            if d:
                out["audio"] = d
        if self.vader is not None:
            d = inference.valence_distribution(self.vader, self.taxonomy)
            if d:
                out["text"] = d
        return out

    @lazy
    def voice_measures(self) -> dict[str, float]:
        """The clip's named voice quantities as the vocal agents read them (agents/voice_baseline.py)."""
        from agents.voice_baseline import measures

        return measures(self.features.prosody if self.features else None)

    @lazy
    def modality_leanings(self) -> dict:
        from agents.judge.inference import Leaning

        return {g: Leaning(d) for g, d in self.modality_distributions.items() if sum(d.values()) > 0}

