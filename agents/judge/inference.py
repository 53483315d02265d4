"""Does a cited fact point to the stated emotion? The fact check (evidence/grounding.py) asks whether a claim
is true; this asks whether what was *measured* for the cited cue favours the answer's label over its
strongest rival, using published cue–emotion knowledge:

- facial action units: the EMFACS prototypes (Friesen & Ekman 1983; Ekman, Friesen & Hager 2002), as
  reduced to the units we measure in agents/feature_agents.PROTOTYPES. A unit shared by several
  prototypes (AU04: anger, sadness, fear) supports each of them only weakly.
- the expression model's probabilities on the cited frames: the label's margin over the runner-up.
- voice: the vocal-affect profiles of Juslin & Laukka (2003) and Scherer (1986, 2003), the same table
  the vocal agents use (agents/vocal_profiles.py, sources cited there), on robust z-scores against
  the same voice baseline they get (the speaker's, or the run's: agents/voice_baseline.py), so a
  raised voice reads against this speaker or corpus, not a population norm. Where the run has
  fitted a voice model on its own labelled clips and it answers (agents/learned_voice.py: checked
  out of fold, better than the commonest label), a voice claim is read through that model instead:
  what the corpus's own labels say this voice means, which on acted speech the literature's
  coarse profiles do not (they are near chance on single words). The model reads the clip's whole
  voice, so every voice claim on a clip gets its reading, and a labelled clip's reading is the one
  from the fold that left it out, so the calibration of this kind on known clips is honest. Of a
  label it was never shown it says nothing (`claim_support`).
- words: VADER valence (Hutto & Gilbert 2014) separates positive from negative from flat, never one
  negative emotion from another.
- the sentence-final marks the recogniser wrote: an exclamation points to the aroused emotions alike,
  a full stop weakly to the calm ones (evidence/punctuation.py, sources cited there).

Every cue becomes a distribution D over the taxonomy; the support for label ℓ is
0.5 + (D(ℓ) − max_{k≠ℓ} D(k)) / (2·SCALE), clipped to [0, 1]: 1 when the cue clearly favours ℓ,
0.5 when it cannot tell ℓ from its rival, 0 when it clearly favours another emotion. A model's
reading (the expression model's probabilities, the prototype units' shares, the run's own voice
model) is graded over its whole range, so its support stays linear in the margin (GRADED_SCALE):
saturated at SCALE, a face read as fear 0.64 over anger 0.20 got the full support of one read as
surprise 0.97, and the expression model's wrong answers could not rank below its right ones. The
literature's voice profiles, words and marks keep SCALE: read linearly, speech answers ranked no
better (label-quality bench, docs/label-quality.md)."""

from __future__ import annotations

from functools import lru_cache

from agents.feature_agents import PROTOTYPES
from evidence.punctuation import mark_distribution

# margin (in probability) at which a cue counts as fully for or against a label
SCALE = 0.3
GRADED_SCALE = 1.0  # a model's graded reading: linear in the margin (see above)
GRADED_KINDS = ("expression", "action_units", "learned_voice")

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


def support(cue: Leaning | dict[str, float] | None, label: str, scale: float = SCALE) -> float | None:
    """How strongly a cue's distribution favours `label` over its strongest rival, in [0, 1]."""
    if cue is not None and not isinstance(cue, Leaning):
        cue = leaning(cue)
    if cue is None:
        return None
    return min(1.0, max(0.0, 0.5 + cue.margin(label) / (2 * scale)))


def claim_support(measured: Leaning | None, kind: str | None, ix, label: str) -> float | None:
    """`support` for one claim, given its kind (`claim_kind`) and the clip's JudgeIndex `ix`: None
    where nothing can say, as where the run's voice model is asked about a label it was never shown."""
    if measured is None or (kind == "learned_voice" and label not in ix.learned_distribution):
        return None
    return support(measured, label, GRADED_SCALE if kind in GRADED_KINDS else SCALE)


def au_distribution(intensities: dict[str, float], taxonomy) -> dict[str, float] | None:
    """Named, active action units → emotions whose prototype they belong to, each unit counting for
    the share of the prototype it makes up. Named units that are all absent (a claim citing a
    prototype's missing unit, "AU15 present in 0/4 frames") speak against every prototype holding
    one of them, and for the other prototyped emotions alike."""
    out: dict[str, float] = {}
    for emotion, units in PROTOTYPES.items():
        if emotion not in taxonomy:
            continue
        share = sum(intensities.get(u, 0.0) for u in units) / len(units)
        if share > 0:
            out[emotion] = share
    if out:
        return out
    absent = {u for u, v in intensities.items() if v <= 0}
    prototyped = [e for e in PROTOTYPES if e in taxonomy]
    rest = {e: 1.0 for e in prototyped if not absent & set(PROTOTYPES[e])}
    return rest if absent and rest and len(rest) < len(prototyped) else None


# a claim's words for a voice quantity -> the vocal profiles' cue names
VOICE_CUES = {"pitch": ("pitch_st",), "pitch_var": ("pitch_range_st",), "loudness": ("loudness", "loudness_var"),
              "rate": ("syllable_rate",), "pauses": ("pause_ratio",)}


def vocal_distribution(z: dict[str, float], taxonomy) -> dict[str, float] | None:
    """Robust z-scores of voice quantities (the vocal profiles' cue names) → the profiles' distribution."""
    key = tuple(sorted((k, round(max(-3.0, min(3.0, v)), 2)) for k, v in z.items()))
    return dict(_vocal(key, frozenset(taxonomy))) or None if key else None


@lru_cache(maxsize=65536)  # z-scores rounded to 0.01 repeat across clips: each profile match is computed once
def _vocal(z: tuple[tuple[str, float], ...], taxonomy: frozenset[str]) -> tuple[tuple[str, float], ...]:
    from agents.vocal_profiles import PROSODY_PROFILES, VOICE_QUALITY_PROFILES, match

    cues = dict(z)
    profiles = {e: {**PROSODY_PROFILES.get(e, {}), **VOICE_QUALITY_PROFILES.get(e, {})}
                for e in sorted(set(PROSODY_PROFILES) | set(VOICE_QUALITY_PROFILES))}  # sorted: sums must not follow the hash seed
    found = match(cues, profiles, sorted(taxonomy), 1.0, 1.0)
    return tuple(found.distribution.items()) if found else ()


def valence_distribution(compound: float, taxonomy) -> dict[str, float] | None:
    """VADER compound valence → happiness (positive) or the negative emotions alike (negative). Flat
    valence says the *words* carry no emotion, not that the speaker has none (an angry "stop!" is
    flat), so it spreads evenly and supports nothing."""
    pos, neg = max(0.0, compound), max(0.0, -compound)
    flat = 1.0 - abs(compound)
    out = {e: flat for e in sorted(taxonomy)}  # sorted: a set's order follows the hash seed, and sums over it
    out["happiness"] = out.get("happiness", 0.0) + pos
    for e in NEGATIVE:
        if e in out:
            out[e] += neg  # negative valence says "some negative emotion", every one of them alike
    return {k: v for k, v in out.items() if k in taxonomy and v > 0} or None


_VARIABILITY_WORDS = ("variab", "variation", "range", "monoton", "flat", " sd ", "sd ", "std", "expressive")


def claim_distribution(ev, cue, ix) -> dict[str, float] | None:
    """What the measurement behind one cited claim says about the emotion, or None when the claim
    names nothing that bears on emotion (a time, a speaker, a count). `cue` is grounding.parse_cue's
    parse of the claim's text, `ix` the clip's JudgeIndex."""
    ref = cue.ref
    kind, sel, fld, key = (ref.kind, ref.selector, ref.field, ref.key) if ref else (None, None, None, None)
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
    if ix.learned_distribution and _is_voice(ev, cue):
        return dict(ix.learned_distribution)
    if kind == "prosody" and fld == "functionals":
        from agents.voice_baseline import EGEMAPS

        quantity = next((q for q, f in EGEMAPS.items() if f == key), None)
        z = ix.voice_z.get(quantity) if quantity else None
        return None if z is None else vocal_distribution({quantity: z}, ix.taxonomy)
    if kind == "prosody" or (kind is None and modality in ("audio", "prosody")) or (kind is None and cue.prosody):
        named = {q for q, *_ in cue.prosody}
        lower = f" {ev.cue.lower()} "
        dims = set(named & {"pitch", "loudness", "rate", "pauses"})
        if "pitch" in named and any(w in lower for w in _VARIABILITY_WORDS):
            dims.add("pitch_var")
        voice = ix.voice_z
        z = {c: voice[c] for d in dims for c in VOICE_CUES[d] if c in voice}
        return vocal_distribution(z, ix.taxonomy) if z else None
    if kind == "words" and fld == "punctuation":
        mark = ix.mark(int(sel)) if sel and sel.isdigit() else None
        return mark_distribution({mark: 1}, ix.taxonomy) if mark else None
    if kind == "words" or modality == "text":
        if cue.vader is not None and ix.vader is not None:
            return valence_distribution(ix.vader, ix.taxonomy)
        if cue.quotes:
            from evidence.lexicon import vader_compound

            return valence_distribution(vader_compound(" ".join(cue.quotes)), ix.taxonomy)
    return None


def _is_voice(ev, cue) -> bool:
    """A claim about the voice (claim_distribution's two prosody branches; face claims are sorted out first)."""
    kind = cue.ref.kind if cue.ref else None
    return kind == "prosody" or (kind is None and (ev.modality in ("audio", "prosody") or bool(cue.prosody)))


def claim_kind(ev, cue, ix=None) -> str | None:
    """Which body of knowledge claim_distribution reads a claim with (the same branches): its measured
    reliability is learned per kind where known labels exist. `ix`: the clip's JudgeIndex, which says
    whether the run's voice model reads this clip's voice."""
    kind, fld = (cue.ref.kind, cue.ref.field) if cue.ref else (None, None)
    if kind == "faces" or (kind is None and ev.modality in ("face", "visual")):
        return "action_units" if fld == "action_units" or (fld is None and cue.aus and not cue.labels) else "expression"
    if _is_voice(ev, cue):
        return "learned_voice" if ix is not None and ix.learned_distribution else "voice"
    if kind == "words" and fld == "punctuation":
        return "punctuation"
    if kind == "words" or ev.modality == "text":
        return "words"
    return None


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
    from evidence.clip_index import au_numbers

    out = {}
    for unit in units:
        want = au_numbers(unit)
        vals = [a.intensity if a.present else 0.0 for o in frames for a in o.action_units if want and want <= au_numbers(a.au)]
        if vals:
            # the prototype tables name units as the proxies do (AU01+02, AU12)
            match = next((p for units_ in PROTOTYPES.values() for p in units_ if au_numbers(p) == want), unit)
            out[match] = sum(vals) / len(vals)
    return out
