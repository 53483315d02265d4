"""One clip timeline: words, speakers, prosody windows and face frames share source-time seconds,
so any consumer can ask what the face or the voice was doing while a word was said."""

from __future__ import annotations

from dataclasses import dataclass

from schemas import ClipFeatures
from schemas.features import FaceObservation, ProsodyWindow, SpeakerTurn, Word


def speaker_at(turns: list[SpeakerTurn], start: float, end: float) -> str | None:
    """The speaker whose turns overlap [start, end] most."""
    best, best_overlap = None, 0.0
    for t in turns:
        overlap = min(end, t.end) - max(start, t.start)
        if overlap > best_overlap:
            best, best_overlap = t.speaker, overlap
    return best


@dataclass
class ClipTimeline:
    features: ClipFeatures

    def words_between(self, start: float, end: float) -> list[Word]:
        return [w for w in self.features.words if w.start is not None and w.end is not None and w.end > start and w.start < end]

    def faces_during(self, start: float, end: float, main_only: bool = True, slack: float = 0.25) -> list[FaceObservation]:
        """Face frames inside [start, end]; if none fall inside, the nearest within `slack` seconds."""
        faces = [f for f in self.features.faces if not main_only or f.track_id == self.features.main_track_id]
        inside = [f for f in faces if start <= f.time <= end]
        if inside or not faces:
            return inside
        nearest = min(faces, key=lambda f: min(abs(f.time - start), abs(f.time - end)))
        return [nearest] if min(abs(nearest.time - start), abs(nearest.time - end)) <= slack else []

    def face_during_word(self, index: int) -> list[FaceObservation]:
        w = self.features.words[index]
        if w.start is None or w.end is None:
            return []
        return self.faces_during(w.start, w.end)

    def prosody_of_word(self, index: int) -> ProsodyWindow | None:
        if self.features.prosody is None:
            return None
        return next((p for p in self.features.prosody.windows if p.word_index == index), None)

    def prosody_between(self, start: float, end: float) -> list[ProsodyWindow]:
        if self.features.prosody is None:
            return []
        return [p for p in self.features.prosody.windows if p.end > start and p.start < end]
