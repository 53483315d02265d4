"""Stage-1 input: one source media file as probed."""

from __future__ import annotations

from pydantic import BaseModel

from schemas.provenance import Provenance


class SourceMedia(BaseModel):
    source_id: str  # content hash prefix: the same bytes are the same source wherever they live
    path: str
    sha256: str
    size_bytes: int
    container: str
    duration_s: float  # a photo: one frame's worth (media.STILL_FRAME_S)
    has_video: bool
    has_audio: bool
    still: bool = False  # a photo: one frame, one clip, no audio
    # as the pixels are stored: a phone's portrait photo or video is shown turned, and every frame
    # the pipeline analyses is turned that way first (pipeline/sampling/orientation.py)
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    audio_channels: int | None = None
    licence: str | None = None
    provenance: Provenance
