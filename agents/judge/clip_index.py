"""What the judge knows about one clip: its measured features, arranged for quick look-ups by time,
face track, action unit, word and speaker. Built once per clip and shared by every answer on it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from agents.feature_agents import vader_compound  # at import: no imports inside forked judge workers
from agents.verbalizer import SYNONYMS
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


@dataclass
class Baseline:
    """Run-wide typical values (medians) that "raised", "loud" or "fast" are judged against, and their
    robust spreads (scaled MAD), so a voice can be read as z-scores against this corpus."""

    pitch_hz: float | None = None
    intensity_db: float | None = None
    rate_wps: float | None = None
    pause_ratio: float | None = None
    pitch_cv: float | None = None
    spread: dict[str, float] = field(default_factory=dict)  # quantity -> scaled MAD (or a floor)
    # the vocal agents' named quantities (agents/voice_baseline.measures): quantity -> (median, scaled MAD)
    voice: dict[str, tuple[float, float]] = field(default_factory=dict)

    # below these spreads a corpus is too uniform to say what "raised" means: floors in each unit
    SPREAD_FLOOR = {"pitch": 0.05, "pitch_var": 0.02, "loudness": 1.5, "rate": 0.3, "pauses": 0.05}

    @classmethod
    def from_features(cls, features: list[ClipFeatures]) -> "Baseline":
        import numpy as np

        pros = [f.prosody for f in features if f.prosody is not None]
        columns = {
            "pitch": [p.pitch_mean_hz for p in pros],
            "loudness": [p.intensity_mean_db for p in pros],
            "rate": [p.speech_rate_wps for p in pros],
            "pauses": [p.pause_ratio for p in pros],
            "pitch_var": [p.pitch_std_hz / p.pitch_mean_hz if p.pitch_std_hz is not None and p.pitch_mean_hz else None
                          for p in pros],
        }
        med, spread = {}, {}
        for q, values in columns.items():
            vals = np.array([v for v in values if v is not None], dtype=float)
            if len(vals) == 0:
                med[q] = None
                continue
            med[q] = float(np.median(vals))
            mad = 1.4826 * float(np.median(np.abs(vals - med[q])))
            # pitch is compared in relative terms (a man's and a woman's voice differ by an octave)
            floor = cls.SPREAD_FLOOR[q] * (med[q] if q == "pitch" else 1.0)
            spread[q] = max(mad, floor)
        return cls(med["pitch"], med["loudness"], med["rate"], med["pauses"], med["pitch_var"], spread, cls._voice(pros))

    @staticmethod
    def _voice(pros) -> dict[str, tuple[float, float]]:
        """Run-wide medians and spreads of the eGeMAPS-based quantities, when any clip has functionals."""
        import numpy as np

        if not any(p.functionals for p in pros):
            return {}
        from agents.voice_baseline import measures

        columns: dict[str, list[float]] = {}
        for p in pros:
            for q, v in measures(p).items():
                columns.setdefault(q, []).append(v)
        out = {}
        for q, values in columns.items():
            vals = np.array(values, dtype=float)
            med = float(np.median(vals))
            mad = 1.4826 * float(np.median(np.abs(vals - med)))
            if len(vals) >= 3 and mad > 0:
                out[q] = (med, mad)
        return out

    def voice_z(self, quantity: str, value: float | None) -> float | None:
        stat = self.voice.get(quantity)
        return None if stat is None or value is None else (value - stat[0]) / stat[1]

    def z(self, quantity: str, value: float | None) -> float | None:
        ref = {"pitch": self.pitch_hz, "loudness": self.intensity_db, "rate": self.rate_wps, "pauses": self.pause_ratio,
               "pitch_var": self.pitch_cv}[quantity]
        if value is None or ref is None or quantity not in self.spread:
            return None
        return (value - ref) / self.spread[quantity]


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
    taxonomy: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.start = self.clip.start  # plain attributes: the time check reads them for every claim
        self.end = self.clip.end

    @lazy
    def words(self) -> list[tuple[str, float | None, float | None, str | None]]:
        f = self.features
        return [(norm_text(w.text), w.start, w.end, w.speaker) for w in (f.words if f else [])]

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
        return [w for w in self.words if w[1] is None or (w[2] is not None and w[2] >= lo and w[1] <= hi)]

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

    def vocal_z(self, start: float | None = None, end: float | None = None) -> dict[str, float]:
        """Robust z-scores of the clip's voice against the run's typical values (pitch and loudness
        on the cited span when it is part of the clip)."""
        p = self.features.prosody if self.features else None
        if p is None or p.pitch_mean_hz is None:
            return {}
        values = {"pitch": p.pitch_mean_hz, "loudness": p.intensity_mean_db, "rate": p.speech_rate_wps,
                  "pauses": p.pause_ratio,
                  "pitch_var": p.pitch_std_hz / p.pitch_mean_hz if p.pitch_std_hz is not None else None}
        if start is not None and end is not None and abs(end - start) < 0.9 * (self.end - self.start) and p.windows:
            lo, hi = min(start, end) - 0.25, max(start, end) + 0.25
            inside = [w for w in p.windows if w.end >= lo and w.start <= hi]
            pitch = [w.pitch_hz for w in inside if w.pitch_hz is not None]
            loud = [w.intensity_db for w in inside if w.intensity_db is not None]
            if pitch:
                values["pitch"] = sum(pitch) / len(pitch)
            if loud:
                values["loudness"] = sum(loud) / len(loud)
        out = {}
        for q, v in values.items():
            z = self.baseline.z(q, v)
            if z is not None:
                out[q] = z
        return out

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
        z = self.vocal_z()
        if z:
            d = inference.vocal_distribution(z, self.taxonomy)
            if d:
                out["audio"] = d
        if self.vader is not None:
            d = inference.valence_distribution(self.vader, self.taxonomy)
            if d:
                out["text"] = d
        return out

    def functional(self, name: str) -> float | None:
        p = self.features.prosody if self.features else None
        return next((f.value for f in p.functionals if f.name == name), None) if p else None

    @lazy
    def voice_measures(self) -> dict[str, float]:
        """The clip's named voice quantities as the vocal agents read them (agents/voice_baseline.py)."""
        from agents.voice_baseline import measures

        return measures(self.features.prosody if self.features else None)

    @lazy
    def modality_leanings(self) -> dict:
        from agents.judge.inference import Leaning

        return {g: Leaning(d) for g, d in self.modality_distributions.items() if sum(d.values()) > 0}

    @lazy
    def transcript(self) -> str:
        return " ".join(w[0] for w in self.words)
