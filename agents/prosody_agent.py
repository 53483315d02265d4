"""Two vocal annotators that judge a clip against the speaker's own normal voice (the clip's
`VoiceBaseline`, agents/voice_baseline.py), matching the departures to the literature's vocal-affect
profiles (agents/vocal_profiles.py):
- prosody: pitch level and range, loudness and its variability, rate and pauses;
- voice-quality: jitter, shimmer, harmonics-to-noise ratio, spectral balance and H1-H2.
They read disjoint cues, so on audio-only clips they are two separate views besides the words.
Neither reads the transcript. Each abstains, saying why, when there is no voiced speech, no
baseline to compare with, too few cues, or when the cues do not single out one emotion."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from agents.base import PerClipAnnotator, register
from agents.vocal_profiles import PROSODY_PROFILES, VOICE_QUALITY_PROFILES, match
from agents.voice_baseline import EGEMAPS, measures, zscores
from schemas import Annotation, AnnotatorInput, Evidence
from schemas.feature_ref import FeatureRef
from schemas.features import LabelProb, VoiceBaseline
from schemas.rationale import normalise


AROUSED_PAIRS = [{"anger", "happiness"}, {"fear", "happiness"}]


class VocalProfileAgent(PerClipAnnotator):
    reads_baseline = True
    profiles: ClassVar[dict[str, dict[str, float]]]
    effect = 1.0  # spreads a profiled emotion shifts a cue by
    sharpness = 1.0
    min_margin = 0.1  # top minus runner-up probability below this: the cues do not discriminate
    min_cues = 3
    # aroused emotions of opposite valence share their vocal profile up to degree (Banse & Scherer
    # 1996; Juslin & Laukka 2003): between them, the voice must decide by a wider margin
    min_valence_margin = 0.3

    def describe(self, name: str, m: dict[str, float], item: AnnotatorInput) -> tuple[str, str]:
        """(cue text stating the measured value, feature_ref the judge resolves it with)."""
        raise NotImplementedError

    def annotate_one(self, item: AnnotatorInput, run_id: str) -> Annotation:
        if not item.clip.speech:
            # pitch is found in music and noise too: a clip cut around no detected speech has no voice to read
            return self.abstain(item, run_id, "no speech detected in the clip: its sound is not a voice to read")
        m = measures(item.features.prosody if item.features else None)
        if not m:
            return self.abstain(item, run_id, "no voiced speech")
        b = item.baseline
        if b is None:
            return self.abstain(item, run_id, "no voice baseline: too few clips with voiced speech in the run to know this "
                                              "speaker's normal voice")
        own = {k for p in self.profiles.values() for k in p}
        z = {k: v for k, v in zscores(m, b).items() if k in own}
        if len(z) < self.min_cues:  # unmeasured, or constant over the baseline's clips
            return self.abstain(item, run_id, f"only {len(z)} of the {self.backend} cues could be measured against the baseline")
        r = match(z, self.profiles, self.context.taxonomy, self.effect, self.sharpness)
        if r is None:
            return self.abstain(item, run_id, "the taxonomy has none of the emotions with a vocal profile")
        ranked = list(r.distribution.items())
        valence_split = {ranked[0][0], ranked[1][0]} in AROUSED_PAIRS if len(ranked) > 1 else False
        if valence_split:
            # the voice tells these two apart only by a wide margin, but it may tell them from the rest:
            # then what it measured is arousal, and the answer spreads its probability over both
            # instead of abstaining; the margin that counts is then the pair's over the next emotion
            third = ranked[2][1] if len(ranked) > 2 else 0.0
            discriminative = r.margin >= self.min_valence_margin or ranked[1][1] - third >= self.min_margin
        else:
            discriminative = r.margin >= self.min_margin
        if not discriminative:
            (a, pa), (c, pc) = ranked[0], ranked[1]
            how = "an aroused voice no clearer than the next emotion" if valence_split else "about equally"
            return self.abstain(item, run_id, f"not discriminative: the {self.backend} cues fit {a} ({pa:.2f}) and {c} ({pc:.2f}), "
                                              f"{how} ({_listing(r.cues)} {_against(b)})")
        label = ranked[0][0]
        dist = [LabelProb(label=k, prob=round(p, 4)) for k, p in ranked]
        # cite the cues that moved furthest from the baseline, as measured values the judge can check
        cited = sorted(r.cues, key=lambda k: -abs(r.cues[k]))[:4]
        evidence = []
        for k, name in enumerate(cited):
            text, ref = self.describe(name, m, item)
            evidence.append(Evidence(evidence_id=f"e{k + 1}", modality="prosody", cue=f"{text}, z {r.cues[name]:+.1f} {_against(b)}",
                                     start=item.clip.start, end=item.clip.end, feature_ref=ref))
        ids = [e.evidence_id for e in evidence]
        profile = self.profiles[label]
        fit = [n for n in cited if profile.get(n, 0) * r.cues[n] > 0 or (label == "neutral" and abs(r.cues[n]) < 1)]
        steps = normalise([
            f"Against {_baseline_words(b)}: {_listing(r.cues)}.",
            f"The voice departs {r.deviation:.1f} SD (root mean square) from that baseline; "
            + (f"{', '.join(_WORDS[n] for n in fit)} move as the literature's {label} profile predicts"
               if fit and label != "neutral" else "the cues stay nearest the speaker's baseline, the neutral profile")
            + f" (next: {', '.join(f'{k} {p:.2f}' for k, p in ranked[1:3])})."
            + (f" The voice does not tell {label} from {ranked[1][0]} (aroused voices of opposite valence), so both keep their share."
               if valence_split else ""),
            f"Therefore, with probability {ranked[0][1]:.2f}, the most prominent emotion is {label}.",
        ], label, [ids, ids, ids])
        intensity = 0.0 if label == "neutral" else round(float(np.clip(r.deviation / 2, 0, 1)), 3)
        return Annotation(**self.base(item, run_id), label=label, labels=[label], label_distribution=dist, intensity=intensity,
                          steps=steps, evidence=evidence)


_WORDS = {"pitch_st": "pitch level", "pitch_range_st": "pitch range", "loudness": "loudness", "loudness_var": "loudness variation",
          "syllable_rate": "syllable rate", "pause_ratio": "pauses", "intensity_db": "intensity", "rate_wps": "speech rate",
          "jitter": "jitter", "shimmer_db": "shimmer", "hnr_db": "HNR", "alpha_ratio_db": "alpha ratio",
          "hammarberg_db": "Hammarberg index", "h1h2_db": "H1-H2", "slope_db": "spectral slope"}


def _listing(z: dict[str, float]) -> str:
    return ", ".join(f"{_WORDS.get(k, k)} {v:+.1f}" for k, v in sorted(z.items(), key=lambda kv: -abs(kv[1])))


def _against(b: VoiceBaseline) -> str:
    if b.words is not None:
        return "vs this speaker saying the same words"
    return "vs this speaker" if b.scope == "speaker" else "vs the run"


def _baseline_words(b: VoiceBaseline) -> str:
    if b.words is not None:
        return f"this speaker's {b.clips} clips that say the same words, '{b.words}' ({b.speech_s:.0f} s), z-scores"
    if b.scope == "speaker" and b.key.startswith("declared:"):
        return f"this speaker's {b.clips} clips in the files the speakers file gives them ({b.speech_s:.0f} s), z-scores"
    if b.scope == "speaker":
        return f"this speaker's own {b.clips} clips in the source ({b.speech_s:.0f} s), z-scores"
    return f"the run's {b.clips} clips ({b.speech_s:.0f} s; the source alone is too short to know the speaker), z-scores"


def _func(name: str) -> str:
    return str(FeatureRef.prosody(EGEMAPS[name]))


@register
class ProsodyAgent(VocalProfileAgent):
    backend = "prosody"
    model_id = "vocal-profiles(pitch,loudness,rate,pauses)"
    model_version = "2"
    profiles = PROSODY_PROFILES

    def describe(self, name: str, m: dict[str, float], item: AnnotatorInput) -> tuple[str, str]:
        v = m[name]
        if name == "pitch_st":
            return f"mean pitch {m['pitch_hz']:.0f} Hz", str(FeatureRef.prosody())
        if name == "pause_ratio":
            return f"pauses {100 * v:.0f}% of the time", str(FeatureRef.prosody())
        return {
            "pitch_range_st": f"pitch range {v:.1f} semitones (20th-80th percentile)",
            "loudness": f"mean loudness {v:.2f} sone",
            "loudness_var": f"loudness variation {v:.2f} (coefficient of variation)",
            "syllable_rate": f"{v:.1f} loudness peaks per second (syllable rate)",
        }[name], _func(name)


@register
class VoiceQualityAgent(VocalProfileAgent):
    backend = "voice-quality"
    model_id = "vocal-profiles(jitter,shimmer,hnr,spectral-balance)"
    model_version = "1"
    profiles = VOICE_QUALITY_PROFILES

    def describe(self, name: str, m: dict[str, float], item: AnnotatorInput) -> tuple[str, str]:
        v = m[name]
        # no words for loudness, pitch or rate here: the judge would read them as prosody claims
        return {
            "jitter": f"jitter {100 * v:.2f}% (cycle-to-cycle period perturbation)",
            "shimmer_db": f"shimmer {v:.2f} dB (cycle-to-cycle amplitude perturbation)",
            "hnr_db": f"harmonics-to-noise ratio {v:.1f} dB",
            "alpha_ratio_db": f"alpha ratio {v:.1f} dB (spectral balance above vs below 1 kHz)",
            "hammarberg_db": f"Hammarberg index {v:.1f} dB (spectral peak 0-2 kHz vs 2-5 kHz)",
            "h1h2_db": f"H1-H2 {v:.1f} dB (breathy when high, pressed when low)",
            "slope_db": f"spectral slope 500-1500 Hz {v:.4f}",
        }[name], _func(name)
