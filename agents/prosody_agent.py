"""Prosody annotator: arousal from how something was said (pitch variation, speech rate, pauses),
valence from what was said (VADER), placed on Russell's circumplex (1980): aroused and positive reads
as happiness, aroused and negative as anger, calm and negative as sadness, calm and flat as neutral.
Prosody alone cannot tell anger from fear; the distribution keeps that ambiguity visible."""

from __future__ import annotations

from importlib import metadata

import numpy as np

from agents.base import PerClipAnnotator, register
from agents.feature_agents import _normalised, vader_compound
from agents.rationale import normalise
from schemas import Annotation, AnnotatorInput, Evidence

# typical conversational read speech: F0 coefficient of variation ~0.15, ~2.7 words/s, ~25% pauses
NORM_PITCH_CV, NORM_RATE_WPS, NORM_PAUSE = 0.15, 2.7, 0.25


def arousal(pitch_cv: float | None, rate: float | None, pause: float | None) -> tuple[float, list[str]]:
    parts, said = [], []
    if pitch_cv is not None:
        parts.append(np.clip((pitch_cv - NORM_PITCH_CV) / 0.1, -1, 1))
        said.append(f"pitch variation {pitch_cv:.2f} (typical {NORM_PITCH_CV})")
    if rate:
        parts.append(np.clip((rate - NORM_RATE_WPS) / 1.0, -1, 1))
        said.append(f"rate {rate:.1f} words/s (typical {NORM_RATE_WPS})")
    if pause is not None:
        parts.append(np.clip((NORM_PAUSE - pause) / 0.2, -1, 1))
        said.append(f"pauses {100 * pause:.0f}% (typical {100 * NORM_PAUSE:.0f}%)")
    return float(np.mean(parts)) if parts else 0.0, said


def circumplex(a: float, v: float) -> dict[str, float]:
    hi, lo = (1 + a) / 2, (1 - a) / 2
    pos, neg, flat = max(0.0, v), max(0.0, -v), 1 - abs(v)
    return {"happiness": hi * pos + 0.5 * lo * pos, "anger": hi * neg * 0.6, "fear": hi * neg * 0.4,
            "surprise": hi * flat * 0.5, "sadness": lo * neg + 0.2 * lo * flat, "neutral": lo * flat + 0.1}


@register
class ProsodyAgent(PerClipAnnotator):
    backend = "prosody"

    def __init__(self, spec, config):
        super().__init__(spec, config)
        self.model_id = "prosody-circumplex+vader"
        self.model_version = f"1+vader-{metadata.version('vadersentiment')}"

    def annotate_one(self, item: AnnotatorInput, run_id: str) -> Annotation:
        f = item.features
        p = f.prosody if f else None
        if p is None or p.pitch_mean_hz is None:
            return self.abstain(item, run_id, "no voiced speech")
        cv = p.pitch_std_hz / p.pitch_mean_hz if p.pitch_std_hz is not None else None
        a, said = arousal(cv, p.speech_rate_wps, p.pause_ratio)
        words = f.words
        v = vader_compound(" ".join(w.text for w in words)) if words else 0.0
        scores = {k: s for k, s in circumplex(a, v).items() if k in self.config.taxonomy}
        if not scores:
            return self.abstain(item, run_id, "taxonomy has none of the circumplex emotions")
        dist = _normalised(scores)
        label = dist[0].label
        evidence = [Evidence(evidence_id="e1", modality="prosody", cue=f"mean pitch {p.pitch_mean_hz:.0f} Hz, sd {p.pitch_std_hz or 0:.0f} Hz",
                             start=item.clip.start, end=item.clip.end, feature_ref="prosody")]
        if p.speech_rate_wps:
            evidence.append(Evidence(evidence_id="e2", modality="prosody", cue=f"speech rate {p.speech_rate_wps:.1f} words/s",
                                     feature_ref="prosody"))
        if p.pause_ratio is not None:
            evidence.append(Evidence(evidence_id="e3", modality="prosody", cue=f"pauses {100 * p.pause_ratio:.0f}% of the time",
                                     feature_ref="prosody"))
        prosodic = [e.evidence_id for e in evidence]
        if words:
            evidence.append(Evidence(evidence_id="e4", modality="text", cue=f"VADER compound valence {v:+.2f} for the transcript",
                                     start=words[0].start, end=words[-1].end, feature_ref="words"))
        level = "raised" if a > 0.2 else "low" if a < -0.2 else "moderate"
        tone = "positive" if v > 0.05 else "negative" if v < -0.05 else "flat"
        steps = normalise([
            f"Prosody: {', '.join(said)}; arousal {a:+.2f} ({level}).",
            f"The words' valence is {v:+.2f} ({tone})." if words else "No transcript: valence taken as flat.",
            f"{level.capitalize()} arousal with {tone} valence lies nearest {label} on the circumplex "
            f"(next: {', '.join(f'{d.label} {d.prob:.2f}' for d in dist[1:3])}).",
        ], label, [prosodic, ["e4"] if words else [], prosodic + (["e4"] if words else [])])
        return Annotation(**self.base(item, run_id), label=label, labels=[label], label_distribution=dist,
                          intensity=round(float(np.clip(abs(a) * 0.5 + abs(v) * 0.5, 0, 1)), 3), steps=steps, evidence=evidence)
