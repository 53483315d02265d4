"""One clip's measured features, arranged for quick look-ups by time, face track, action unit, word
and speaker: what the evidence check (evidence/grounding.py) holds each claim against. Built once per
clip and shared by every answer on it; the judge extends it (agents/judge/judge_index.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from evidence.lexicon import SYNONYMS, vader_compound  # at import: no imports inside forked judge workers
from evidence.punctuation import word_mark
from schemas import Clip, ClipFeatures, FaceObservation

# any word for an emotion (the taxonomy's labels and their synonyms) -> its taxonomy label
WORD_LABEL = {w: label for label, words in SYNONYMS.items() for w in [label, *words]}
_PUNCT = re.compile(r"[^\w' ]+")
_AU_NUM = re.compile(r"\d+")


def norm_text(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.lower().replace("’", "'")).split())


@lru_cache(maxsize=4096)  # a handful of distinct codes, looked up for every frame of every AU claim
def au_numbers(code: str) -> frozenset[int]:
    """'AU01+02' -> {1, 2}; 'AU12' -> {12}."""
    return frozenset(int(n) for n in _AU_NUM.findall(code))


class IndexedWord(NamedTuple):
    """A transcript word as the checks compare it: normalised text, times, speaker."""

    text: str
    start: float | None
    end: float | None
    speaker: str | None


@dataclass
class Baseline:
    """Run-wide medians that "raised", "loud" or "fast" are judged against."""

    pitch_hz: float | None = None
    intensity_db: float | None = None
    rate_wps: float | None = None
    pause_ratio: float | None = None

    @classmethod
    def from_features(cls, features: list[ClipFeatures]) -> "Baseline":
        import statistics

        def med(values):
            vals = [v for v in values if v is not None]
            return statistics.median(vals) if vals else None

        pros = [f.prosody for f in features if f.prosody is not None]
        return cls(med(p.pitch_mean_hz for p in pros), med(p.intensity_mean_db for p in pros),
                   med(p.speech_rate_wps for p in pros), med(p.pause_ratio for p in pros))


class lazy:
    """functools.cached_property without the lock and double check Python 3.11 runs on every first
    access, which is most accesses when the judge builds one index per clip of a million-answer run."""

    def __init__(self, fn):
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


@dataclass
class ClipIndex:
    clip: Clip
    features: ClipFeatures | None
    baseline: Baseline = field(default_factory=Baseline)

    def __post_init__(self) -> None:
        self.start = self.clip.start  # plain attributes: the time check reads them for every claim
        self.end = self.clip.end

    @lazy
    def words(self) -> list[IndexedWord]:
        f = self.features
        return [IndexedWord(norm_text(w.text), w.start, w.end, w.speaker) for w in (f.words if f else [])]

    @lazy
    def marks(self) -> list[str | None]:
        """The sentence-final mark the recogniser wrote after each word ('!', '.', '?'), aligned with
        `words` (which drop punctuation), or None."""
        f = self.features
        return [word_mark(w.text) for w in (f.words if f else [])]

    def mark(self, index: int) -> str | None:
        """`marks[index]`, or None for an index outside the transcript."""
        return self.marks[index] if 0 <= index < len(self.marks) else None

    @lazy
    def faces(self) -> list[FaceObservation]:
        return list(self.features.faces) if self.features else []

    @lazy
    def expressions(self) -> dict[int, list[tuple[str, float]]]:
        """Each face frame's expression probabilities under taxonomy labels, keyed by id(frame)."""
        out = {}
        for o in self.faces:
            out[id(o)] = [(label, p.prob) for p in o.expression if (label := WORD_LABEL.get(p.label.lower()))]
        return out

    @lazy
    def tracks(self) -> set[int]:
        return {o.track_id for o in self.faces}

    @lazy
    def measured_aus(self) -> set[str]:
        return {a.au for o in self.faces for a in o.action_units}

    @lazy
    def modalities(self) -> frozenset[str]:
        """Modality groups the features actually carry: text (words), audio (prosody), visual (faces)."""
        f = self.features
        out = set()
        if f and f.words:
            out.add("text")
        if f and f.prosody and f.prosody.pitch_mean_hz is not None:
            out.add("audio")
        if self.faces:
            out.add("visual")
        return frozenset(out)

    @lazy
    def track_frames(self) -> dict[int, list[FaceObservation]]:
        out: dict[int, list[FaceObservation]] = {}
        for o in self.faces:
            out.setdefault(o.track_id, []).append(o)
        return out

    def frames(self, track: int | None = None, index: int | None = None, start: float | None = None,
               end: float | None = None) -> list[FaceObservation]:
        """Face frames of one track (default: the main face) or one frame, within [start, end] when given."""
        if index is not None:
            chosen = [self.faces[index]]
        else:
            t = track if track is not None else (self.features.main_track_id if self.features else None)
            chosen = self.faces if t is None else self.track_frames.get(t, [])
        if start is not None and end is not None:
            lo, hi = min(start, end) - 0.25, max(start, end) + 0.25  # a sampled frame may sit just outside
            inside = [o for o in chosen if lo <= o.time <= hi]
            return inside
        return chosen

    def words_in(self, start: float | None, end: float | None) -> list[tuple[str, float | None, float | None, str | None]]:
        if start is None or end is None:
            return self.words
        lo, hi = min(start, end) - 0.25, max(start, end) + 0.25
        return [w for w in self.words if w.start is None or (w.end is not None and w.end >= lo and w.start <= hi)]

    def baseline_of(self, quantity: str) -> float | None:
        b = self.baseline
        return {"pitch": b.pitch_hz, "loudness": b.intensity_db, "rate": b.rate_wps, "pauses": b.pause_ratio}[quantity]

    @lazy
    def vader(self) -> float | None:
        """VADER compound valence of the clip's transcript (None without one)."""
        f = self.features
        return vader_compound(" ".join(w.text for w in f.words)) if f and f.words else None

    def expression_mean(self, frames: list[FaceObservation]) -> dict[str, float]:
        """The expression model's mean probability per taxonomy label over the given frames."""
        sums: dict[str, float] = {}
        expressions = self.expressions
        for o in frames:
            for label, prob in expressions[id(o)]:
                sums[label] = sums.get(label, 0.0) + prob
        return {k: v / len(frames) for k, v in sums.items()} if frames else {}

    def functional(self, name: str) -> float | None:
        p = self.features.prosody if self.features else None
        return next((f.value for f in p.functionals if f.name == name), None) if p else None

    @lazy
    def transcript(self) -> str:
        return " ".join(w.text for w in self.words)
