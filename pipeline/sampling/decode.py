"""One pass over a media file: audio resampled for VAD, and every video frame handed to the
frame consumers (shot detector, key-frame selector) at analysis size. Nothing decodes twice."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import av
import cv2
import numpy as np

from pipeline.sampling.media import is_still_image
from pipeline.sampling.orientation import AS_STORED, rotation_orientation, shown_size, still_orientation, upright


class FrameConsumer(Protocol):
    def on_frame(self, frame: "DecodedFrame") -> None: ...

    def finish(self, end_time: float) -> None: ...


@dataclass
class DecodedFrame:
    index: int
    time: float  # seconds from the start of the source
    pts: int
    time_base: object  # Fraction of the stream's clock
    small_bgr: np.ndarray  # analysis size, upright
    small_gray: np.ndarray
    av_frame: av.VideoFrame  # full size as stored, converted only by consumers that keep this frame
    orientation: int = AS_STORED  # how the stored picture turns to be seen (pipeline/sampling/orientation.py)

    def full_bgr(self, max_width: int | None = None) -> np.ndarray:
        """The frame upright, at most `max_width` wide as seen."""
        width, height = shown_size(self.av_frame.width, self.av_frame.height, self.orientation)
        if max_width and width > max_width:
            h = int(round(height * max_width / width / 2)) * 2
            w, h = shown_size(max_width, h, self.orientation)  # the stored picture's axes
            return upright(self.av_frame.to_ndarray(format="bgr24", width=w, height=h), self.orientation)
        return upright(self.av_frame.to_ndarray(format="bgr24"), self.orientation)


@dataclass
class DecodeResult:
    audio: np.ndarray | None  # float32 mono at the requested rate
    sample_rate: int
    frames: int = 0
    last_frame_time: float = 0.0
    seconds: float = 0.0
    time_base: object = None
    fps: float | None = None
    error: str | None = None  # decoding stopped early (truncated or damaged file)
    audio_error: str | None = None
    video_stream: bool = False
    notes: list[str] = field(default_factory=list)


def analysis_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    w = min(target_width, width)
    h = max(2, int(round(height * w / width / 2)) * 2)
    return w, h


_PLANAR_420 = {"yuv420p", "yuvj420p"}


def _plane(frame: av.VideoFrame, i: int, width: int, height: int) -> np.ndarray:
    plane = frame.planes[i]
    return np.frombuffer(plane, np.uint8).reshape(height, plane.line_size)[:, :width]


def small_frames(frame: av.VideoFrame, size: tuple[int, int], orientation: int = AS_STORED) -> tuple[np.ndarray, np.ndarray]:
    """Analysis-size (`size` as seen) BGR and grey images, upright."""
    bgr, gray = _small_stored(frame, shown_size(*size, orientation))
    return upright(bgr, orientation), upright(gray, orientation)


def _small_stored(frame: av.VideoFrame, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Analysis-size BGR and grey images as stored. For 8-bit 4:2:0 video (nearly all of it) they are
    built from the Y, U and V planes directly: swscale's scale+convert costs more than decoding the frame."""
    w, h = size
    if frame.format.name in _PLANAR_420:
        fw, fh = frame.width, frame.height
        y = cv2.resize(_plane(frame, 0, fw, fh), (w, h), interpolation=cv2.INTER_LINEAR)
        u = cv2.resize(_plane(frame, 1, (fw + 1) // 2, (fh + 1) // 2), (w, h), interpolation=cv2.INTER_LINEAR)
        v = cv2.resize(_plane(frame, 2, (fw + 1) // 2, (fh + 1) // 2), (w, h), interpolation=cv2.INTER_LINEAR)
        conv = cv2.COLOR_YCrCb2BGR if frame.format.name == "yuvj420p" else cv2.COLOR_YUV2BGR
        bgr = cv2.cvtColor(cv2.merge((y, u, v)), conv) if conv == cv2.COLOR_YUV2BGR else cv2.cvtColor(cv2.merge((y, v, u)), conv)
        return bgr, y
    bgr = frame.to_ndarray(format="bgr24", width=w, height=h)
    return bgr, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def decode_once(
    path: Path,
    consumers: list[FrameConsumer],
    sample_rate: int = 16000,
    analysis_width: int = 160,
    want_audio: bool = True,
    want_video: bool = True,
) -> DecodeResult:
    t0 = time.perf_counter()
    result = DecodeResult(audio=None, sample_rate=sample_rate)
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        video = next(
            (s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)), None
        ) if want_video else None
        audio = next(iter(container.streams.audio), None) if want_audio else None
        streams = [s for s in (video, audio) if s is not None]
        origin = (container.start_time or 0) / av.time_base
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate) if audio is not None else None
        size = orientation = None
        if video is not None:
            video.thread_type = "AUTO"  # frame threads: decoding is the floor of this stage
            result.video_stream = True
            result.time_base = video.time_base
            result.fps = float(video.average_rate) if video.average_rate else None
            # a photo's turn is in its EXIF tag; a video's in its display matrix, read off the first frame
            orientation = still_orientation(path) if is_still_image(container) else None
        index = 0
        # consumers run on their own thread: decoding keeps ~1.5 of 2 cores busy, analysis fills the rest
        frames: queue.Queue = queue.Queue(maxsize=32)
        failure: list[BaseException] = []

        def consume() -> None:
            while (item := frames.get()) is not None:
                if failure:
                    continue
                try:
                    for c in consumers:
                        c.on_frame(item)
                except BaseException as exc:  # re-raised on the decoding thread
                    failure.append(exc)

        worker = threading.Thread(target=consume, name="frame-consumers", daemon=True)
        worker.start()
        try:
            for packet in container.demux(streams):
                if packet.stream is audio:
                    try:
                        for frame in packet.decode():
                            for rf in resampler.resample(frame):
                                chunks.append(rf.to_ndarray().reshape(-1))
                    except av.FFmpegError as exc:  # a damaged audio packet must not lose the video
                        result.audio_error = f"audio decoding failed at packet {packet.pts}: {exc}"
                    continue
                for frame in packet.decode():
                    t = frame.time if frame.time is not None else index / (result.fps or 25.0)
                    if size is None:
                        if orientation is None:
                            orientation = rotation_orientation(frame.rotation)
                        size = analysis_size(*shown_size(frame.width, frame.height, orientation), analysis_width)
                    small, gray = small_frames(frame, size, orientation)
                    decoded = DecodedFrame(
                        index=index,
                        time=max(0.0, t - origin),
                        pts=frame.pts if frame.pts is not None else index,
                        time_base=frame.time_base or video.time_base,
                        small_bgr=small,
                        small_gray=gray,
                        av_frame=frame,
                        orientation=orientation,
                    )
                    frames.put(decoded)
                    if failure:
                        break
                    result.last_frame_time = decoded.time
                    index += 1
        except av.FFmpegError as exc:
            result.error = f"decoding stopped at {result.last_frame_time:.2f} s: {exc.strerror or exc}"
        finally:
            frames.put(None)
            worker.join()
        if failure:
            raise failure[0]
        if resampler is not None:
            try:
                for rf in resampler.resample(None):
                    chunks.append(rf.to_ndarray().reshape(-1))
            except av.FFmpegError:
                pass
        result.frames = index
    if audio is not None:
        result.audio = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    frame_step = 1.0 / result.fps if result.fps else 0.0
    for c in consumers:
        c.finish(result.last_frame_time + frame_step)
    result.seconds = time.perf_counter() - t0
    return result
