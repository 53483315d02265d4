"""Probe a media file: what streams it has, how long it is, and its content hash. A photo (any
picture FFmpeg reads with an image demuxer) is a source too: one still frame, no audio."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import av
from PIL import Image, UnidentifiedImageError

from schemas import Provenance, SourceMedia


class MediaError(ValueError):
    """A file that cannot be used as media; the message names the file and the problem."""


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _is_cover_art(stream: av.stream.Stream) -> bool:
    # an mp3/m4a with album art has a one-frame "video" stream that is not video
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


STILL_FRAME_S = 0.04  # a photo's clip spans one frame at 25 fps: it has no duration of its own


def is_still_image(container: av.container.InputContainer) -> bool:
    # FFmpeg reads a lone picture with its image demuxers: "image2" (chosen by file name) or
    # "<codec>_pipe" (chosen by content: png_pipe, jpeg_pipe, webp_pipe...). Every GIF has its own
    # demuxer ("gif"): an animated one is a video, a one-frame one is a photo with no duration.
    name = container.format.name
    if name == "gif":
        return not container.duration and all(s.frames <= 1 for s in container.streams.video)
    return name == "image2" or name.endswith("_pipe")


def is_animated_webp(path: Path) -> bool:
    # Pillow reads the WebP container's animation flag; FFmpeg has no decoder for such files
    try:
        with Image.open(path) as img:
            return img.format == "WEBP" and bool(getattr(img, "is_animated", False))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return False


@contextlib.contextmanager
def open_media(path: Path) -> Iterator[tuple[av.container.InputContainer, av.stream.Stream | None, av.stream.Stream | None, float]]:
    """The one decision whether a file is a source, by content (PyAV reads only its headers): any
    container FFmpeg opens with an audio or video stream it can decode, or a photo. Yields the
    container, its video and audio streams and its duration (a photo: one frame's worth); anything
    else raises MediaError saying why."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: file not found")
    if not path.is_file():
        raise MediaError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise MediaError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: not a media file that can be decoded ({exc.strerror or exc})") from None
    with container:
        if is_still_image(container):
            picture = next((s for s in container.streams.video if s.codec_context is not None), None)
            if picture is None or not picture.codec_context.width:
                if is_animated_webp(path):
                    raise MediaError(f"{path}: an animated WebP, which FFmpeg cannot decode: save it as a GIF or a video")
                raise MediaError(f"{path}: an image FFmpeg cannot decode ({container.format.name})")
            yield container, picture, None, STILL_FRAME_S
            return
        decodable = [s for s in container.streams if s.codec_context is not None]  # FFmpeg has a decoder for it
        video = next((s for s in decodable if s.type == "video" and not _is_cover_art(s)), None)
        audio = next((s for s in decodable if s.type == "audio"), None)
        if video is None and audio is None:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
            raise MediaError(f"{path}: contains no audio or video stream that can be decoded ({container.format.name}: {kinds})")
        durations = []
        if container.duration:
            durations.append(container.duration / av.time_base)
        for s in (video, audio):
            if s is not None and s.duration and s.time_base:
                durations.append(float(s.duration * s.time_base))
        duration = max(durations) if durations else 0.0
        if duration <= 0:
            raise MediaError(f"{path}: media has no duration (no decodable frames or samples)")
        yield container, video, audio, duration


def check_media(path: Path) -> None:
    """Raise MediaError unless `path` is a usable source (cheap: headers only)."""
    with open_media(path):
        pass


def probe(path: Path, sha256: str, provenance: Provenance) -> SourceMedia:
    path = Path(path)
    with open_media(path) as (container, video, audio, duration):
        size = path.stat().st_size
        vctx = video.codec_context if video is not None else None
        actx = audio.codec_context if audio is not None else None
        fps = float(video.average_rate) if video is not None and video.average_rate and not is_still_image(container) else None
        return SourceMedia(
            source_id=sha256[:16],
            path=str(path.resolve()),
            sha256=sha256,
            size_bytes=size,
            container=container.format.name,
            still=is_still_image(container),
            duration_s=round(duration, 6),
            has_video=video is not None,
            has_audio=audio is not None,
            width=vctx.width if vctx else None,
            height=vctx.height if vctx else None,
            fps=fps,
            video_codec=vctx.name if vctx else None,
            audio_codec=actx.name if actx else None,
            audio_sample_rate=actx.sample_rate if actx else None,
            audio_channels=actx.channels if actx else None,
            provenance=provenance,
        )
