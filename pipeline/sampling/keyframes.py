"""Key frames: candidates chosen while decoding (frame difference, optical flow or ORB similarity),
then per clip the most distinct ones, deduplicated, written as images."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.sampling.decode import DecodedFrame
from schemas import KeyFrame
from schemas.config import KeyframeConfig
from storage import link_or_copy

# change a frame must show against the last candidate before it becomes one; per method, because
# the units differ (mean grey difference, accumulated flow per frame width, share of unmatched ORB features)
DEFAULT_THRESHOLDS = {"frame_diff": 0.06, "optical_flow": 0.05, "orb": 0.55}


@dataclass
class Candidate:
    time: float
    frame_index: int
    score: float
    image_path: Path
    thumb: np.ndarray  # small grey frame, 0..1 floats, for deduplication


def frame_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute grey-level difference in 0..1 between two thumbnails."""
    return float(np.mean(np.abs(a - b)))


class _FrameDiff:
    def change(self, gray: np.ndarray, ref: np.ndarray | None) -> float:
        return 1.0 if ref is None else float(cv2.absdiff(gray, ref).mean()) / 255.0

    def reset(self, gray: np.ndarray) -> None:
        pass


class _OpticalFlow:
    """Motion accumulated since the last candidate (Farneback, mean magnitude / frame width)."""

    def __init__(self) -> None:
        self.prev: np.ndarray | None = None
        self.acc = 0.0

    def change(self, gray: np.ndarray, ref: np.ndarray | None) -> float:
        if self.prev is None:
            self.prev = gray
            return 1.0
        flow = cv2.calcOpticalFlowFarneback(self.prev, gray, None, 0.5, 2, 9, 2, 5, 1.1, 0)
        self.acc += float(np.linalg.norm(flow, axis=2).mean()) / gray.shape[1]
        self.prev = gray
        # a cut is not motion: a large grey-level jump counts as full change
        if ref is not None and cv2.absdiff(gray, ref).mean() / 255.0 > 0.25:
            return 1.0
        return self.acc

    def reset(self, gray: np.ndarray) -> None:
        self.acc = 0.0


class _ORB:
    """1 - share of the reference frame's ORB features that still match."""

    def __init__(self) -> None:
        self.orb = cv2.ORB_create(nfeatures=300, edgeThreshold=8, patchSize=15, fastThreshold=10)
        self.matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
        self.ref_desc: np.ndarray | None = None

    def _desc(self, gray: np.ndarray) -> np.ndarray | None:
        return self.orb.detectAndCompute(gray, None)[1]

    def change(self, gray: np.ndarray, ref: np.ndarray | None) -> float:
        if ref is None:
            return 1.0
        desc = self._desc(gray)
        if self.ref_desc is None or desc is None or len(self.ref_desc) < 8:
            return _FrameDiff().change(gray, ref) / DEFAULT_THRESHOLDS["frame_diff"] * DEFAULT_THRESHOLDS["orb"]
        good = [m for m in self.matcher.match(self.ref_desc, desc) if m.distance < 40]
        return 1.0 - len(good) / len(self.ref_desc)

    def reset(self, gray: np.ndarray) -> None:
        self.ref_desc = self._desc(gray)


METHODS = {"frame_diff": _FrameDiff, "optical_flow": _OpticalFlow, "orb": _ORB}


class KeyframeCandidates:
    """Frame consumer: keeps a frame (JPEG on disk) when it changed enough since the last kept one,
    and at least every `max_interval_s`, so any clip longer than that interval has frames."""

    def __init__(self, config: KeyframeConfig, work_dir: Path, max_interval_s: float):
        self.config = config
        self.method = METHODS[config.method]()
        self.threshold = config.change_threshold or DEFAULT_THRESHOLDS[config.method]
        self.max_interval_s = max_interval_s
        self.work_dir = work_dir
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.candidates: list[Candidate] = []
        self._ref: np.ndarray | None = None

    def on_frame(self, frame: DecodedFrame) -> None:
        score = self.method.change(frame.small_gray, self._ref)
        last_t = self.candidates[-1].time if self.candidates else None
        if self._ref is not None and score < self.threshold and frame.time - last_t < self.max_interval_s:
            return
        path = self.work_dir / f"cand_{frame.index:08d}.jpg"
        ok, buf = cv2.imencode(
            ".jpg", frame.full_bgr(self.config.max_width), [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality]
        )
        if not ok:  # pragma: no cover - OpenCV failing to encode a decoded frame
            return
        path.write_bytes(buf.tobytes())
        self.candidates.append(
            Candidate(frame.time, frame.index, round(min(score, 1.0), 4), path, frame.small_gray.astype(np.float32) / 255.0)
        )
        self._ref = frame.small_gray
        self.method.reset(frame.small_gray)

    def finish(self, end_time: float) -> None:
        pass

    def select(self, start: float, end: float) -> list[Candidate]:
        """The clip's key frames: its first frame, then the most changed candidates that differ from
        every frame already picked, at most `max_per_clip`, in time order."""
        inside = [c for c in self.candidates if start <= c.time < end]
        if not inside:
            before = [c for c in self.candidates if c.time < start]
            inside = before[-1:]  # nothing changed since then: the last kept frame still shows the clip
        if not inside:
            return []
        picked = [inside[0]]
        for cand in sorted(inside[1:], key=lambda c: -c.score):
            if len(picked) >= self.config.max_per_clip:
                break
            if all(frame_distance(cand.thumb, p.thumb) >= self.config.dedup_threshold for p in picked):
                picked.append(cand)
        return sorted(picked, key=lambda c: c.time)

    def write(self, picked: list[Candidate], dest_dir: Path, run_root: Path) -> list[KeyFrame]:
        dest_dir.mkdir(parents=True, exist_ok=True)
        out = []
        for c in picked:
            target = dest_dir / f"kf_{int(round(c.time * 1000)):08d}.jpg"
            if not target.exists():
                link_or_copy(Path(c.image_path), target)
            out.append(
                KeyFrame(
                    time=round(c.time, 4),
                    frame_index=c.frame_index,
                    path=str(target.relative_to(run_root)),
                    score=c.score,
                    method=self.config.method,
                )
            )
        return out

    def cleanup(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)
