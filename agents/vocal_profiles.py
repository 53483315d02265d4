"""Vocal-affect profiles from the literature, and how a clip's z-scored cues are matched to them.

Each profile gives, per cue, the direction the emotion moves it relative to the speaker's normal
voice (+1 raised, -1 lowered, 0.5 a weaker or less consistent shift, 0 no consistent shift). The
directions summarise:
- Juslin & Laukka (2003), "Communication of emotions in vocal expression and music performance:
  different channels, same code?", Psychological Bulletin 129(5), Table 11 (vocal expression):
  anger: fast rate, high intensity and intensity variability, much high-frequency energy, high F0
  level and variability; fear: fast rate, high F0 level but little F0 variability, irregular
  microstructure (jitter); happiness: fast-to-medium rate, medium-high intensity, high F0 level
  and variability, regular microstructure; sadness: slow rate, low intensity and intensity
  variability, little high-frequency energy, low F0 level and variability, irregular microstructure.
- Scherer (1986), "Vocal affect expression: a review and a model for future research",
  Psychological Bulletin 99(2), and Scherer (2003), "Vocal communication of emotion: a review of
  research paradigms", Speech Communication 40, Table 4: the same directions for F0, intensity,
  rate and high-frequency energy (spectral balance), and, for voice quality, tense/pressed voice
  (flatter spectrum, low H1-H2) in anger and lax/breathy voice (steep spectrum, high H1-H2, more
  noise) in sadness; Gobl & Ní Chasaide (2003), Speech Communication 40, for the voice-quality
  measures (breathy/lax voice with sadness, tense voice with anger).
Neutral is the speaker's baseline itself (every cue near 0). Disgust, surprise and contempt have no
consistent vocal profile in these reviews, so the vocal agents give them no probability rather than
a guessed one. Nor does voice quality give happiness any: the reviews' only voice-quality cue for it
is a regular microstructure, and on the labelled corpora the voice-quality agent's "happiness" was
right no more often than the class's share while drawing raised voices away from anger (README,
stage 3: "Voice quality says nothing of happiness")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# the prosody agent's cues: pitch level and range, loudness and its variability, rate, pauses
PROSODY_PROFILES: dict[str, dict[str, float]] = {
    "anger": {"pitch_st": 1, "pitch_range_st": 1, "loudness": 1, "loudness_var": 1, "syllable_rate": 1, "pause_ratio": -1},
    "fear": {"pitch_st": 1, "pitch_range_st": -0.5, "loudness": 0, "loudness_var": 0, "syllable_rate": 1, "pause_ratio": 0},
    "happiness": {"pitch_st": 1, "pitch_range_st": 1, "loudness": 0.5, "loudness_var": 0.5, "syllable_rate": 1, "pause_ratio": 0},
    "sadness": {"pitch_st": -1, "pitch_range_st": -1, "loudness": -1, "loudness_var": -1, "syllable_rate": -1, "pause_ratio": 1},
    "neutral": {},
}
# the voice-quality agent's cues: perturbation (jitter, shimmer), noise (HNR), spectral balance
# (alpha ratio, Hammarberg index, slope) and phonation type (H1-H2)
VOICE_QUALITY_PROFILES: dict[str, dict[str, float]] = {
    "anger": {"alpha_ratio_db": 1, "hammarberg_db": -1, "slope_db": 1, "h1h2_db": -1, "jitter": 0.5, "shimmer_db": 0, "hnr_db": 0.5},
    "fear": {"alpha_ratio_db": 0, "hammarberg_db": 0, "slope_db": 0, "h1h2_db": 0.5, "jitter": 1, "shimmer_db": 0.5, "hnr_db": -0.5},
    "sadness": {"alpha_ratio_db": -1, "hammarberg_db": 1, "slope_db": -1, "h1h2_db": 1, "jitter": 0.5, "shimmer_db": 0.5, "hnr_db": -0.5},
    "neutral": {},
}


@dataclass(frozen=True)
class ProfileMatch:
    distribution: dict[str, float]  # over the profiled emotions the taxonomy has, sums to 1
    cues: dict[str, float]  # the z-scores used
    margin: float  # top probability minus the runner-up's
    deviation: float  # root mean square of the cues' z-scores: how far from the speaker's normal voice


def match(z: dict[str, float], profiles: dict[str, dict[str, float]], taxonomy: list[str], effect: float, sharpness: float) -> ProfileMatch | None:
    """Gaussian likelihood of the cues under each profile (each emotion shifts a cue by `effect`
    spreads in its direction, unit variance), turned into a distribution. `sharpness` < 1 tempers it:
    the profiles are coarse, and a confident wrong answer costs the judge more than a spread one."""
    emotions = [e for e in profiles if e in taxonomy]
    cues = {k: v for k, v in z.items() if any(k in profiles[e] for e in profiles)}
    if not emotions or not cues:
        return None
    ll = np.array([-0.5 * sum((v - effect * profiles[e].get(k, 0.0)) ** 2 for k, v in cues.items()) for e in emotions])
    p = np.exp(sharpness * (ll - ll.max()))
    p /= p.sum()
    order = np.argsort(-p)
    margin = float(p[order[0]] - (p[order[1]] if len(order) > 1 else 0.0))
    return ProfileMatch(distribution={emotions[i]: float(p[i]) for i in order}, cues=cues, margin=margin,
                        deviation=float(np.sqrt(np.mean(np.square(list(cues.values()))))))
