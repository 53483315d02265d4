"""Does a cited fact point to the stated emotion? The fact check (grounding.py) asks whether a claim
is true; this asks whether what was *measured* for the cited cue favours the answer's label over its
strongest rival, using published cue–emotion knowledge:

- facial action units: the EMFACS prototypes (Friesen & Ekman 1983; Ekman, Friesen & Hager 2002), as
  reduced to the units we measure in agents/feature_agents.PROTOTYPES. A unit shared by several
  prototypes (AU04: anger, sadness, fear) supports each of them only weakly.
- the expression model's probabilities on the cited frames: the label's margin over the runner-up.
- voice: the vocal-affect profiles summarised by Juslin & Laukka (2003, Psychological Bulletin 129(5),
  table 7) and Scherer (2003, Speech Communication 40): direction of pitch level, pitch variability,
  loudness, speech rate and pausing per emotion, compared with the run's own typical values (robust
  z-scores), so a raised voice reads against this corpus, not a population norm.
- words: VADER valence (Hutto & Gilbert 2014) separates positive from negative from flat, never one
  negative emotion from another.

Every cue becomes a distribution D over the taxonomy; the support for label ℓ is
0.5 + (D(ℓ) − max_{k≠ℓ} D(k)) / (2·SCALE), clipped to [0, 1]: 1 when the cue clearly favours ℓ,
0.5 when it cannot tell ℓ from its rival, 0 when it clearly favours another emotion."""

from __future__ import annotations

import math
from functools import lru_cache

from agents.feature_agents import PROTOTYPES

# margin (in probability) at which a cue counts as fully for or against a label
SCALE = 0.3

# (pitch level, pitch variability, loudness, speech rate, pausing): +1 higher, -1 lower than the
# speaker's typical, 0 no consistent direction. Juslin & Laukka 2003 (anger, fear, happiness,
# sadness); Scherer 2003 and Banse & Scherer 1996 (boredom, disgust, surprise, weaker evidence,
# hence halved).
VOCAL_PROFILES: dict[str, tuple[float, float, float, float, float]] = {
    "anger": (1.0, 1.0, 1.0, 1.0, -1.0),
    "fear": (1.0, -0.5, 0.0, 1.0, 0.0),
    "happiness": (1.0, 1.0, 0.5, 0.5, -0.5),
    "sadness": (-1.0, -1.0, -1.0, -1.0, 1.0),
    "boredom": (-0.5, -1.0, -0.5, -0.5, 0.5),
    "disgust": (-0.5, 0.0, 0.0, -0.5, 0.5),
    "surprise": (0.5, 0.5, 0.5, 0.0, 0.0),
    "neutral": (0.0, 0.0, 0.0, 0.0, 0.0),
}
VOCAL_DIMS = ("pitch", "pitch_var", "loudness", "rate", "pauses")
NEGATIVE = ("anger", "sadness", "fear", "disgust", "boredom")


class Leaning:
    """A cue's distribution over emotions, normalised, with its top two kept so that the support for
    any label is a constant-time look-up (the judge asks it for every answer citing the cue)."""

    __slots__ = ("probs", "top", "first", "second")

    def __init__(self, dist: dict[str, float]) -> None:
        total = sum(dist.values())
        self.probs = {k: v / total for k, v in dist.items()}
        ranked = sorted(self.probs.items(), key=lambda kv: -kv[1])
        self.top, self.first = ranked[0]
        self.second = ranked[1][1] if len(ranked) > 1 else 0.0

    def margin(self, label: str) -> float:
        """The label's probability minus its strongest rival's."""
        mine = self.probs.get(label, 0.0)
        return mine - (self.second if label == self.top else self.first)


def leaning(dist: dict[str, float] | None) -> Leaning | None:
    return Leaning(dist) if dist and sum(dist.values()) > 0 else None


def support(cue: Leaning | dict[str, float] | None, label: str) -> float | None:
    """How strongly a cue's distribution favours `label` over its strongest rival, in [0, 1]."""
    if cue is not None and not isinstance(cue, Leaning):
        cue = leaning(cue)
    if cue is None:
        return None
    return min(1.0, max(0.0, 0.5 + cue.margin(label) / (2 * SCALE)))


def au_distribution(intensities: dict[str, float], taxonomy) -> dict[str, float] | None:
    """Named, active action units → emotions whose prototype they belong to, each unit counting for
    the share of the prototype it makes up."""
    out: dict[str, float] = {}
    for emotion, units in PROTOTYPES.items():
        if emotion not in taxonomy:
            continue
        share = sum(intensities.get(u, 0.0) for u in units) / len(units)
        if share > 0:
            out[emotion] = share
    return out or None


def vocal_distribution(z: dict[str, float], taxonomy, temperature: float = 1.0) -> dict[str, float] | None:
    """Robust z-scores of the named voice quantities → a softmax over each emotion's closeness to its
    profile (one standard deviation in the profile's direction is a perfect match)."""
    key = tuple(sorted((d, round(max(-3.0, min(3.0, v)), 2)) for d, v in z.items() if d in VOCAL_DIMS))
    return dict(_vocal(key, frozenset(taxonomy), temperature)) if key else None


@lru_cache(maxsize=65536)  # z-scores rounded to 0.01 repeat across clips: each profile match is computed once
def _vocal(z: tuple[tuple[str, float], ...], taxonomy: frozenset[str], temperature: float) -> tuple[tuple[str, float], ...]:
    dims = [(VOCAL_DIMS.index(d), v) for d, v in z]
    scores = {emotion: -sum((v - profile[i]) ** 2 for i, v in dims) / temperature
              for emotion, profile in VOCAL_PROFILES.items() if emotion in taxonomy}
    if not scores:
        return ()
    top = max(scores.values())
    exp = {k: math.exp(v - top) for k, v in scores.items()}
    total = sum(exp.values())
    return tuple((k, v / total) for k, v in exp.items())


def valence_distribution(compound: float, taxonomy) -> dict[str, float] | None:
    """VADER compound valence → happiness (positive) or the negative emotions alike (negative). Flat
    valence says the *words* carry no emotion, not that the speaker has none (an angry "stop!" is
    flat), so it spreads evenly and supports nothing."""
    pos, neg = max(0.0, compound), max(0.0, -compound)
    flat = 1.0 - abs(compound)
    out = {e: flat for e in taxonomy}
    out["happiness"] = out.get("happiness", 0.0) + pos
    for e in NEGATIVE:
        if e in out:
            out[e] += neg  # negative valence says "some negative emotion", every one of them alike
    return {k: v for k, v in out.items() if k in taxonomy and v > 0} or None


_VARIABILITY_WORDS = ("variab", "variation", "range", "monoton", "flat", " sd ", "sd ", "std", "expressive")


def claim_distribution(ev, cue, ix) -> dict[str, float] | None:
    """What the measurement behind one cited claim says about the emotion, or None when the claim
    names nothing that bears on emotion (a time, a speaker, a count). `cue` is grounding.parse_cue's
    parse of the claim's text, `ix` the clip's ClipIndex."""
    kind, sel, fld, key = cue.ref or (None, None, None, None)
    modality = ev.modality
    if kind == "faces" or (kind is None and modality in ("face", "visual")):
        frames = _cited_frames(ev, ix, sel)
        if not frames:
            return None
        if fld == "action_units" or (fld is None and cue.aus and not cue.labels):
            units = [key] if key else list(cue.aus)
            want = [u if u.upper().startswith("AU") else f"AU{u}" for u in units]
            return au_distribution(_au_means(frames, want), ix.taxonomy)
        if fld == "expression" or cue.labels:
            return ix.expression_mean(frames) or None
        return None
    if kind == "prosody" and fld == "functionals":
        return _functional_distribution(key, ix)
    if kind == "prosody" or (kind is None and modality in ("audio", "prosody")) or (kind is None and cue.prosody):
        named = {q for q, *_ in cue.prosody}
        lower = f" {ev.cue.lower()} "
        dims = set()
        if "pitch" in named:
            dims.add("pitch")
            if any(w in lower for w in _VARIABILITY_WORDS):
                dims.add("pitch_var")
        dims |= named & {"loudness", "rate", "pauses"}
        z = {q: v for q, v in ix.vocal_z(ev.start, ev.end).items() if q in dims}
        return vocal_distribution(z, ix.taxonomy) if z else None
    if kind == "words" or modality == "text":
        if cue.vader is not None and ix.vader is not None:
            return valence_distribution(ix.vader, ix.taxonomy)
        if cue.quotes:
            from agents.feature_agents import vader_compound

            return valence_distribution(vader_compound(" ".join(cue.quotes)), ix.taxonomy)
    return None


def _functional_distribution(name: str | None, ix) -> dict[str, float] | None:
    """An eGeMAPS functional the vocal agents cite: its z-score against the run, matched to the vocal
    profiles that name that quantity (agents/vocal_profiles.py, same sources as above)."""
    from agents.vocal_profiles import PROSODY_PROFILES, VOICE_QUALITY_PROFILES, match
    from agents.voice_baseline import EGEMAPS

    quantity = next((q for q, f in EGEMAPS.items() if f == name), None)
    if quantity is None:
        return None
    z = ix.baseline.voice_z(quantity, ix.voice_measures.get(quantity))
    if z is None:
        return None
    profiles = next((p for p in (PROSODY_PROFILES, VOICE_QUALITY_PROFILES) if any(quantity in v for v in p.values())), None)
    found = match({quantity: max(-3.0, min(3.0, z))}, profiles, ix.taxonomy, 1.0, 1.0) if profiles else None
    return found.distribution if found else None


def _cited_frames(ev, ix, sel):
    try:
        if sel and sel.startswith("track="):
            return ix.frames(track=int(sel.split("=", 1)[1]), start=ev.start, end=ev.end)
        if sel:
            i = int(sel)
            return ix.frames(index=i) if 0 <= i < len(ix.faces) else []
    except ValueError:
        return []
    return ix.frames(start=ev.start, end=ev.end)


def _au_means(frames, units: list[str]) -> dict[str, float]:
    """Mean intensity of each named unit over the frames, counting a frame where it is absent as 0."""
    from agents.judge.clip_index import au_numbers

    out = {}
    for unit in units:
        want = au_numbers(unit)
        vals = [a.intensity if a.present else 0.0 for o in frames for a in o.action_units if want and want <= au_numbers(a.au)]
        if vals:
            # the prototype tables name units as the proxies do (AU01+02, AU12)
            match = next((p for units_ in PROTOTYPES.values() for p in units_ if au_numbers(p) == want), unit)
            out[match] = sum(vals) / len(vals)
    return out
