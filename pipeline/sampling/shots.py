"""Shot boundaries from PySceneDetect's detectors, fed frames from our own single decode pass."""

from __future__ import annotations

from fractions import Fraction

from scenedetect.common import FrameTimecode, Timecode
from scenedetect.detectors import (
    AdaptiveDetector,
    ContentDetector,
    HashDetector,
    HistogramDetector,
    ThresholdDetector,
)

from pipeline.sampling.decode import DecodedFrame
from schemas import Shot
from schemas.config import ShotConfig

DETECTORS = {
    "content": ContentDetector,
    "adaptive": AdaptiveDetector,
    "hash": HashDetector,
    "histogram": HistogramDetector,
    "threshold": ThresholdDetector,
}


class ShotDetector:
    """Frame consumer collecting cut times (seconds from source start)."""

    def __init__(self, config: ShotConfig, fps: float | None):
        self.fps = Fraction(fps).limit_denominator(100000) if fps else Fraction(25)
        self.time_base: Fraction | None = None  # taken from the first decoded frame
        kwargs: dict = {"min_scene_len": max(1, round(config.min_shot_s * float(self.fps)))}
        if config.threshold is not None:
            kwargs["threshold"] = config.threshold
        self.detector = DETECTORS[config.detector](**kwargs)
        self.cuts: list[float] = []
        self._offset: float | None = None  # stream time minus source time
        self._last: FrameTimecode | None = None

    def _timecode(self, pts: int) -> FrameTimecode:
        return FrameTimecode(Timecode(pts=pts, time_base=self.time_base), fps=self.fps)

    def _add(self, cuts: list[FrameTimecode]) -> None:
        for cut in cuts:
            self.cuts.append(round(max(0.0, cut.seconds - (self._offset or 0.0)), 4))

    def on_frame(self, frame: DecodedFrame) -> None:
        if self.time_base is None:
            self.time_base = Fraction(frame.time_base) if frame.time_base else 1 / self.fps
        tc = self._timecode(frame.pts)
        if self._offset is None:
            self._offset = tc.seconds - frame.time
        self._last = tc
        self._add(self.detector.process_frame(tc, frame.small_bgr))

    def finish(self, end_time: float) -> None:
        if self._last is not None:
            self._add(self.detector.post_process(self._last))

    def shots(self, duration: float) -> list[Shot]:
        bounds = [0.0] + sorted(c for c in set(self.cuts) if 0.0 < c < duration) + [duration]
        return [Shot(index=i, start=a, end=b) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]
