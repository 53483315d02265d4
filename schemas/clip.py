"""Stage-1 output: a clip of a source, with the shots, speech and key frames inside it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, model_validator

from schemas.provenance import Provenance


class Span(BaseModel):
    start: float  # seconds from the start of the source
    end: float

    @model_validator(mode="after")
    def _ordered(self) -> "Span":
        if self.end < self.start:
            raise ValueError(f"span ends before it starts: {self.start} > {self.end}")
        return self

    @property
    def duration(self) -> float:
        return self.end - self.start


class Shot(BaseModel):
    index: int  # shot number within the source
    start: float
    end: float


class KeyFrame(BaseModel):
    time: float  # seconds from the start of the source
    frame_index: int
    path: str  # relative to the run directory
    score: float  # how much this frame differs from the frame before it was picked (method-specific)
    method: Literal["frame_diff", "optical_flow", "orb"]


class Instruction(BaseModel):
    template_id: str
    template_version: str
    template_hash: str
    text: str


ClipKind = Literal["speech", "shot", "audio", "still"]


class Clip(BaseModel):
    clip_id: str
    source_id: str
    source_path: str  # absolute in a run; in a released dataset only the file name (with source_id)
    start: float
    end: float
    kind: ClipKind  # what the clip was cut around: speech regions, a shot (no speech), speech in audio-only media, or a photo ("still")
    has_video: bool
    has_audio: bool
    shots: list[Shot]
    speech: list[Span]
    keyframes: list[KeyFrame]
    instruction: Instruction
    provenance: Provenance

    @property
    def duration(self) -> float:
        return self.end - self.start


class SourceSampling(BaseModel):
    """Everything stage 1 produced for one source (the unit that is cached and resumed)."""

    source: "SourceMedia | None"
    clips: list[Clip] = []
    rejects: list["Reject"] = []
    decode_seconds: float = 0.0
    frames_decoded: int = 0

    def producer_run_id(self) -> str | None:
        """The run that computed this result (a different run means it came from the cache)."""
        if self.source is not None:
            return self.source.provenance.run_id
        return self.rejects[0].run_id if self.rejects else None


from schemas.media import SourceMedia  # noqa: E402  (after Clip to keep the import graph one-way)
from schemas.reject import Reject  # noqa: E402

SourceSampling.model_rebuild()
