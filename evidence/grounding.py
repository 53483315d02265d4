"""The hallucination check: each cited piece of evidence is held against the clip's measured
features. A claim is *contradicted* when the features say otherwise (a word never said, an action
unit never active, a pitch that was not raised, a time outside the clip, a feature that does not
exist), *supported* when at least one checkable part agrees and none disagrees, and *unverifiable*
when nothing in it can be checked. Each checker below looks at one kind of claim."""

from __future__ import annotations

import re
from functools import lru_cache

from evidence.clip_index import WORD_LABEL, ClipIndex, au_numbers, norm_text
from evidence.punctuation import MARK_NAMES
from schemas import Evidence
from schemas.feature_ref import FeatureRef
from schemas.judgement import ClaimCheck
from schemas.trusted import trusted

TIME_TOLERANCE_S = 0.25
_QUOTE = re.compile(r"(?:^|(?<=[\s(:]))[\"“‘'](.+?)[\"”’'](?=$|[\s,.;:)!?])")
_QUOTE_MARKS = "\"“‘'"
_SPEAKER = re.compile(r"\b(SPEAKER_\d+)\b")
_AU = re.compile(r"\bAU\s?(\d{1,2}(?:\s?\+\s?\d{1,2})*)\b", re.IGNORECASE)
_NUM_AFTER = r"[^\d\n]{0,14}?(\d*\.\d+|\d+)"
_AU_MEAN = re.compile(r"mean intensity\s+(\d*\.\d+|\d+)", re.IGNORECASE)
_AU_COUNT = re.compile(r"present in\s+(\d+)\s*/\s*(\d+)\s+frames", re.IGNORECASE)
_VADER = re.compile(r"VADER compound valence\s+([+-]?\d*\.\d+)", re.IGNORECASE)

# a prosodic quantity, the words that name it, and the words for "more" / "less" of it
_PROSODY = {q: tuple(re.compile(x) for x in pats) for q, pats in {
    "pitch": (r"pitch|f0|intonation", r"high|rais|ris|elevat|up", r"low|lower|fall|flat|monoton|deep|drop"),
    "loudness": (r"loud|quiet|whisper|soft voice|intensity|volume|shout|energy", r"loud|high|rais|shout|strong|increas", r"quiet|soft|low|whisper|weak|decreas"),
    "rate": (r"speech rate|speaking rate|fast|slow|rapid|pace|tempo|words per second|words/s", r"fast|rapid|quick|high", r"slow|low"),
    "pauses": (r"pause|hesitat|silen", r"many|long|frequent|hesitat|lots", r"few|no pause|fluent|short|little"),
}.items()}
_STATED = {q: re.compile(rf"(\d+(?:\.\d+)?)\s*{u}") for q, u in
           {"pitch": r"hz", "loudness": r"db", "rate": r"words?\s*(?:/|per)\s*s", "pauses": "%"}.items()}
# below these relative (pitch, rate) or absolute (loudness dB, pause share) differences from the
# run's median a "raised"/"lowered" claim is neither confirmed nor refuted
_BAND = {"pitch": 0.05, "loudness": 1.5, "rate": 0.10, "pauses": 0.05}


# the synonym phrases first (longest first), then any word: one left-to-right scan that takes a
# phrase where one starts and a single word elsewhere; the words are then looked up in a dict
_PHRASE_OR_WORD = re.compile(
    r"\b(?:" + "|".join(sorted((re.escape(w) for w in WORD_LABEL if " " in w), key=len, reverse=True)) + r")\b|\w+")


@lru_cache(maxsize=65536)  # cues repeat (templated agents): parse each once
def labels_named(text: str) -> tuple[str, ...]:
    """Taxonomy labels the text names, in order: whole words or phrases, any case. (One regex
    alternating over every synonym took ~50 µs per cue; this ~10 µs.)"""
    return tuple(dict.fromkeys(WORD_LABEL[t] for t in _PHRASE_OR_WORD.findall(text.lower()) if t in WORD_LABEL))


class Cue:
    """What a claim's text says, parsed once per distinct (cue, feature_ref): the clip-independent
    half of every check below, so repeated cues (templated agents, re-judged runs) skip the regexes."""

    __slots__ = ("text", "ref", "aus", "au_mean", "au_count", "labels", "label_values", "quotes", "has_quote", "speaker", "vader", "prosody")

    def __init__(self, cue: str, feature_ref: str | None) -> None:
        # substring tests first: most cues mention few kinds of thing, and each regex scan costs µs
        self.text = cue
        lower = cue.lower()
        self.ref = FeatureRef.parse(feature_ref)
        self.aus = tuple(m.group(1).replace(" ", "") for m in _AU.finditer(cue)) if "au" in lower else ()
        mean = _AU_MEAN.search(cue) if "mean intensity" in lower else None
        self.au_mean = mean.group(1) if mean else None
        count = _AU_COUNT.search(cue) if "present in" in lower else None
        self.au_count = (int(count.group(1)), int(count.group(2))) if count else None
        self.labels = labels_named(cue)
        self.label_values = {}
        for label in self.labels:
            v = re.search(rf"\b{label}\b{_NUM_AFTER}", cue, re.IGNORECASE)
            self.label_values[label] = v.group(1) if v else None
        raw = _QUOTE.findall(cue) if any(q in cue for q in _QUOTE_MARKS) else []
        self.quotes = tuple(q for q in (norm_text(q) for q in raw) if q)
        self.has_quote = bool(raw)
        speaker = _SPEAKER.search(cue) if "SPEAKER_" in cue else None
        self.speaker = speaker.group(1) if speaker else None
        vader = _VADER.search(cue) if "vader" in lower else None
        self.vader = vader.group(1) if vader else None
        self.prosody = _prosody_mentions(lower)


def _prosody_mentions(cue: str) -> tuple[tuple[str, float | None, bool, bool], ...]:
    """(quantity, stated value or None, says more, says less) for each prosodic quantity the cue names."""
    out = []
    for quantity, (names, up, down) in _PROSODY.items():
        m = names.search(cue)
        if not m:
            continue
        stated = _STATED[quantity].search(cue)
        if stated:
            out.append((quantity, float(stated.group(1)) / (100.0 if quantity == "pauses" else 1.0), False, False))
            continue
        near = cue[max(0, m.start() - 30): m.end() + 30]
        out.append((quantity, None, up.search(near) is not None, down.search(near) is not None))
    return tuple(out)


@lru_cache(maxsize=65536)
def parse_cue(cue: str, feature_ref: str | None) -> Cue:
    return Cue(cue, feature_ref)


class Finding:
    """What the checkers found about one claim; contradiction wins over support."""

    __slots__ = ("supported", "contradicted")

    def __init__(self) -> None:
        self.supported: list[str] = []
        self.contradicted: list[str] = []

    def ok(self, why: str) -> None:
        self.supported.append(why)

    def bad(self, why: str) -> None:
        self.contradicted.append(why)

    def verdict(self, evidence_id: str) -> tuple[str, str, str]:
        """(evidence_id, verdict, reason): a plain tuple, cheap to send back from a worker process."""
        if self.contradicted:
            return evidence_id, "contradicted", "; ".join(self.contradicted)
        if self.supported:
            return evidence_id, "supported", "; ".join(self.supported)
        return evidence_id, "unverifiable", "nothing in the claim can be checked against the features"


def check_time(ev: Evidence, ix: ClipIndex, out: Finding) -> None:
    lo, hi = ix.start - TIME_TOLERANCE_S, ix.end + TIME_TOLERANCE_S
    for name, t in (("start", ev.start), ("end", ev.end)):
        if t is not None and not lo <= t <= hi:
            out.bad(f"{name} {t:.2f} s lies outside the clip ({ix.start:.2f}-{ix.end:.2f} s)")
            return


def _face_frames(ev: Evidence, ix: ClipIndex, sel: str | None, out: Finding):
    """Frames a face claim is about: one frame (faces[i]), one track (faces[track=N]) or the main face."""
    if not ix.faces:
        out.bad("cites a face but no face was found in the clip")
        return None
    track = index = None
    if sel:
        if sel.startswith("track="):
            track = int(sel.split("=", 1)[1])
            if track not in ix.tracks:
                out.bad(f"face track {track} does not exist (tracks: {sorted(ix.tracks)})")
                return None
        else:
            index = int(sel)
            if not 0 <= index < len(ix.faces):
                out.bad(f"faces[{index}] does not exist (the clip has {len(ix.faces)} face frames)")
                return None
    frames = ix.frames(track=track, index=index, start=ev.start, end=ev.end)
    if not frames:
        out.bad("no frame of that face lies in the cited time span")
        return None
    return frames


def check_action_units(ev: Evidence, cue: Cue, ix: ClipIndex, out: Finding, frames=None, only: str | None = None) -> None:
    """Every action unit the claim names (AU12, AU1+2) must be present in some cited frame, unless the
    claim states in how many it was ("present in 0/4 frames"): then that count must be the measured
    one. A stated mean intensity must match the measured one."""
    named = (only,) if only else cue.aus
    frames = frames if frames is not None or not named else _face_frames(ev, ix, None, out)
    if not named or frames is None:
        return
    for code in named:
        want = au_numbers(code)
        matches = [a for o in frames for a in o.action_units if want and want <= au_numbers(a.au)]
        if not matches:
            if not any(want <= au_numbers(m) for m in ix.measured_aus):
                continue  # the extractor does not measure this unit: neither support nor contradiction
            out.bad(f"AU{code.removeprefix('AU').removeprefix('au')} is measured but absent in the cited frames")
            continue
        present = sum(a.present for a in matches)
        if cue.au_count is not None and len(named) == 1:
            # a claim that states how often the unit was present ("present in 0/4 frames") is true when
            # the count is; it may state an absence (an agent citing a prototype's missing unit), which
            # says nothing false, and what an absent unit means for the label is S_reason's question
            if cue.au_count != (present, len(matches)):
                out.bad(f"states {matches[0].au} present in {cue.au_count[0]}/{cue.au_count[1]} frames, measured {present}/{len(matches)}")
                continue
        elif present == 0:
            out.bad(f"{matches[0].au} is never active in the {len(frames)} cited frames")
            continue
        mean = sum(a.intensity for a in matches) / len(matches)
        if cue.au_mean is not None and abs(float(cue.au_mean) - mean) > max(0.05, 0.1 * mean):
            out.bad(f"states {matches[0].au} mean intensity {cue.au_mean}, measured {mean:.2f}")
        elif present == 0:
            out.ok(f"{matches[0].au} absent in the {len(matches)} cited frames, as stated")
        else:
            out.ok(f"{matches[0].au} active in {present}/{len(matches)} cited frames")


def check_expression(ev: Evidence, cue: Cue, ix: ClipIndex, out: Finding, frames=None) -> None:
    """A facial expression the claim names must be among the expression model's top two on the cited
    frames; a stated probability must match the measured mean."""
    named = cue.labels
    frames = frames if frames is not None or not named else _face_frames(ev, ix, None, out)
    if not named or frames is None:
        return
    sums: dict[str, list[float]] = {}
    expressions = ix.expressions
    for o in frames:
        for label, prob in expressions[id(o)]:
            sums.setdefault(label, []).append(prob)
    if not sums:
        return  # no expression model output: nothing to check
    mean = {k: sum(v) / len(v) for k, v in sums.items()}
    ranked = sorted(mean, key=lambda k: -mean[k])
    for label in named:
        if label not in ranked[:2]:
            out.bad(f"{label} is not among the top expressions on the cited frames ({ranked[0]} {mean[ranked[0]]:.2f}, "
                    f"{label} {mean.get(label, 0.0):.2f})")
            continue
        stated = cue.label_values[label]
        if stated is not None and float(stated) <= 1 and abs(float(stated) - mean[label]) > 0.05:
            # a peak claim ("strongest ... frame") is about one frame; compare with the best frame
            best = max(v for v in sums[label])
            if abs(float(stated) - best) > 0.05:
                out.bad(f"states {label} {stated}, measured mean {mean[label]:.2f} (peak {best:.2f})")
                continue
        out.ok(f"{label} ranks {ranked.index(label) + 1} on {len(frames)} cited frames ({mean[label]:.2f})")


def check_quotes(ev: Evidence, cue: Cue, ix: ClipIndex, out: Finding, word_index: int | None = None) -> None:
    """Quoted words must have been said (in the cited span; by the named speaker)."""
    if not cue.quotes:
        return
    if not ix.words:
        out.bad("quotes speech but the clip has no transcript")
        return
    if word_index is not None:
        pool = [ix.words[word_index]]
    else:
        pool = ix.words_in(ev.start, ev.end)
    said = " " + " ".join(w[0] for w in pool) + " "
    for q in cue.quotes:
        if f" {q} " not in said:
            where = f" at words[{word_index}]" if word_index is not None else (" in the cited span" if ev.start is not None else "")
            out.bad(f"'{q}' was not said{where}")
            continue
        if cue.speaker:
            first = q.split()[0]
            who = {w[3] for w in pool if w[0] == first}
            if cue.speaker not in who:
                out.bad(f"'{q}' was said by {', '.join(sorted(filter(None, who))) or 'an unknown speaker'}, not {cue.speaker}")
                continue
        out.ok(f"'{q}' was said")


def check_mark(cue: Cue, ix: ClipIndex, word_index: int, out: Finding) -> None:
    """A claim about the mark the recogniser wrote after a word: the mark it names must be the one there."""
    there = ix.mark(word_index)
    lower = cue.text.lower()
    stated = next((m for m, name in MARK_NAMES.items() if name.split(" ", 1)[1] in lower), None)
    if there is None:
        out.bad(f"words[{word_index}] ('{ix.words[word_index].text}') ends no sentence")
    elif stated is not None and stated != there:
        out.bad(f"words[{word_index}] ('{ix.words[word_index].text}') ends with {MARK_NAMES[there]}, not {MARK_NAMES[stated]}")
    else:
        out.ok(f"words[{word_index}] ends with {MARK_NAMES[there]}")


def check_vader(cue: Cue, ix: ClipIndex, out: Finding) -> None:
    if cue.vader is None or ix.vader is None:
        return
    if abs(ix.vader - float(cue.vader)) > 0.02:
        out.bad(f"states VADER valence {cue.vader}, the transcript gives {ix.vader:+.2f}")
    else:
        out.ok(f"VADER valence of the transcript is {ix.vader:+.2f}")


def _prosody_value(quantity: str, ev: Evidence, ix: ClipIndex) -> float | None:
    p = ix.features.prosody if ix.features else None
    if p is None:
        return None
    whole = ev.start is None or ev.end is None or abs(ev.end - ev.start) >= 0.9 * (ix.end - ix.start)
    # a claim about part of the clip is checked on the windows it covers; about the clip, on its statistics
    if quantity in ("pitch", "loudness") and not whole and p.windows:
        lo, hi = min(ev.start, ev.end) - TIME_TOLERANCE_S, max(ev.start, ev.end) + TIME_TOLERANCE_S
        attr = "pitch_hz" if quantity == "pitch" else "intensity_db"
        vals = [getattr(w, attr) for w in p.windows if w.end >= lo and w.start <= hi and getattr(w, attr) is not None]
        if vals:
            return sum(vals) / len(vals)
    return {"pitch": p.pitch_mean_hz, "loudness": p.intensity_mean_db, "rate": p.speech_rate_wps, "pauses": p.pause_ratio}[quantity]


def check_prosody(ev: Evidence, cue: Cue, ix: ClipIndex, out: Finding) -> None:
    """"Raised pitch", "loud", "fast", "long pauses": compared with the run's median clip; stated
    values (Hz, dB, words/s) compared with the measurement."""
    for quantity, stated, says_up, says_down in cue.prosody:
        value = _prosody_value(quantity, ev, ix)
        if value is None:
            out.bad(f"claims {quantity} but no voiced speech was measured in the clip")
            continue
        if stated is not None:
            tol = {"pitch": 0.1 * value, "loudness": 3.0, "rate": 0.15 * value, "pauses": 0.05}[quantity]
            if abs(stated - value) > tol:
                out.bad(f"states {quantity} {stated:g}, measured {value:.1f}")
            else:
                out.ok(f"{quantity} {value:.1f} as stated")
            continue
        ref = ix.baseline_of(quantity)
        if ref is None or says_up == says_down:
            continue
        diff = (value - ref) / ref if quantity in ("pitch", "rate") else value - ref
        if abs(diff) < _BAND[quantity]:
            continue  # about typical: neither confirms nor refutes
        if (diff > 0) == says_up:
            out.ok(f"{quantity} {value:.1f} vs run median {ref:.1f}")
        else:
            out.bad(f"claims {'more' if says_up else 'less'} {quantity} but measured {value:.1f} vs run median {ref:.1f}")


_NUMBER = re.compile(r"[-+]?\d*\.\d+|[-+]?\d+")


def check_functional(cue: Cue, name: str | None, ix: ClipIndex, out: Finding) -> None:
    """A stated acoustic functional (prosody.functionals[NAME]) must exist and match one of the numbers
    the claim states (a percentage as its fraction too)."""
    value = ix.functional(name) if name else None
    if value is None:
        out.bad(f"functional {name!r} was not measured in the clip")
        return
    numbers = _NUMBER.findall(cue.text)
    if not numbers:
        return
    stated = [float(x) for x in numbers]
    tol = max(0.05 * abs(value), 0.01)
    # a number written to d decimals states the value to half a unit in its last place ("H1-H2 0.4 dB"
    # for 0.4417): a close value rounded honestly is not a contradiction; whole numbers keep the
    # relative tolerance, since a name's digits ("H1-H2", "500-1500 Hz") must not match by accident
    tols = [max(tol, 0.5 * 10.0 ** -len(x.split(".")[1]) + 1e-9) if "." in x else tol for x in numbers]
    if any(abs(x - value) <= t or abs(x / 100 - value) <= t / 100 for x, t in zip(stated, tols)):
        out.ok(f"{name} {value:.4g} as stated")
    else:
        out.bad(f"states {name} as one of {', '.join(f'{x:g}' for x in stated[:3])}; measured {value:.4g}")


def check_ref(ev: Evidence, cue: Cue, ix: ClipIndex, out: Finding) -> bool:
    """Resolve feature_ref; a reference to a feature that does not exist is a contradiction. Returns
    True when the reference directed the checks (so the free-text checkers need not run again)."""
    if cue.ref is None:
        return False
    kind, sel, fld, key = cue.ref.kind, cue.ref.selector, cue.ref.field, cue.ref.key
    try:
        if kind == "words":
            if sel is None:
                if not ix.words:
                    out.bad("cites the transcript but the clip has none")
                check_quotes(ev, cue, ix, out)
                check_vader(cue, ix, out)
                return True
            i = int(sel)
            if not 0 <= i < len(ix.words):
                out.bad(f"words[{i}] does not exist (the clip has {len(ix.words)} words)")
                return True
            w = ix.words[i]
            if ev.start is not None and w[1] is not None and abs(w[1] - ev.start) > TIME_TOLERANCE_S + 0.25:
                out.bad(f"words[{i}] starts at {w[1]:.2f} s, not {ev.start:.2f} s")
            check_quotes(ev, cue, ix, out, word_index=i)
            if fld == "punctuation":
                check_mark(cue, ix, i, out)
            return True
        if kind == "faces":
            frames = _face_frames(ev, ix, sel, out)
            if frames is None:
                return True
            if fld == "action_units":
                check_action_units(ev, cue, ix, out, frames, only=key)
            elif fld == "expression":
                check_expression(ev, cue, ix, out, frames)
            else:
                check_action_units(ev, cue, ix, out, frames)
                check_expression(ev, cue, ix, out, frames)
            return True
        if kind == "prosody":
            if fld == "functionals":
                check_functional(cue, key, ix, out)
            else:
                check_prosody(ev, cue, ix, out)
            return True
    except ValueError:
        out.bad(f"feature_ref {ev.feature_ref!r} has a malformed index")
        return True
    return False


def check_claim(ev: Evidence, ix: ClipIndex) -> tuple[str, str, str]:
    """(evidence_id, verdict, reason) for one cited piece of evidence."""
    out = Finding()
    cue = parse_cue(ev.cue, ev.feature_ref)
    check_time(ev, ix, out)
    if not check_ref(ev, cue, ix, out):
        if ev.modality in ("face", "visual"):
            check_action_units(ev, cue, ix, out)
            check_expression(ev, cue, ix, out)
        elif ev.modality in ("audio", "prosody"):
            check_prosody(ev, cue, ix, out)
        else:
            check_quotes(ev, cue, ix, out)
            check_vader(cue, ix, out)
            if ev.modality == "context" or not cue.has_quote:
                check_prosody(ev, cue, ix, out)
                if cue.aus:
                    check_action_units(ev, cue, ix, out)
    return out.verdict(ev.evidence_id)


def verify(ev: Evidence, ix: ClipIndex) -> ClaimCheck:
    evidence_id, verdict, reason = check_claim(ev, ix)
    return claim_record(evidence_id, verdict, reason)


def claim_record(evidence_id: str, verdict: str, reason: str, support: float | None = None) -> ClaimCheck:
    return trusted(ClaimCheck, evidence_id=evidence_id, verdict=verdict, reason=reason, support=support)
