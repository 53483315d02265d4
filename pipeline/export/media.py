"""The clips' media shipped inside an exported dataset (export.media), so a released dataset does not
point into a run directory nobody else has:

    media/clips/CLIP_ID.mp4             the clip's span, H.264 + AAC (clips with a picture)
    media/clips/CLIP_ID.flac            the clip's span, lossless (audio-only clips)
    media/clips/CLIP_ID.jpg|png|webp    the photo itself (photo sources: one still clip each)
    media/keyframes/CLIP_ID/kf_*.jpg    the clip's key frames

Clips are cut by the same code that cuts them for review (pipeline/review/media.py), into the run's
media cache, then linked (or copied, across file systems) into the dataset folder."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipeline.export.dataset import ExportError
from pipeline.review.media import MediaError, cut_audio, cut_clip
from schemas import Clip
from storage import RunDir, link_or_copy

MEDIA_DIR = "media"
MediaMode = Literal["clips", "keyframes", "none"]
MIME = {".mp4": "video/mp4", ".flac": "audio/flac", ".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
PHOTO_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}  # shipped as they are; other formats become PNG


@dataclass(frozen=True)
class ShippedMedia:
    """What the dataset folder holds of one clip, as paths relative to the folder."""

    path: str | None = None  # the clip itself (clips: video, sound or photo), else its first key frame (keyframes)
    kind: Literal["video", "audio", "image"] | None = None
    keyframes: list[str] = field(default_factory=list)


def ship_media(run: RunDir, clips: list[Clip], root: Path, mode: MediaMode, workers: int = 1) -> dict[str, ShippedMedia]:
    """Put each clip's media under ROOT/media/; returns what was shipped per clip id."""
    if mode == "none":
        return {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # each cut is its own ffmpeg process
        shipped = list(pool.map(lambda c: _ship_one(run, c, root, mode), clips))
    return {c.clip_id: s for c, s in zip(clips, shipped)}


def _ship_one(run: RunDir, clip: Clip, root: Path, mode: MediaMode) -> ShippedMedia:
    keyframes = []
    for kf in clip.keyframes:
        src = run.root / kf.path
        if not src.is_file():
            raise ExportError(f"{src}: key frame of clip {clip.clip_id} is missing from the run directory; "
                              "run stage 1 again or export with --media none")
        rel = f"{MEDIA_DIR}/keyframes/{clip.clip_id}/{src.name}"
        _place(src, root / rel)
        keyframes.append(rel)
    if mode == "keyframes":
        return ShippedMedia(path=keyframes[0] if keyframes else None, kind="image" if keyframes else None, keyframes=keyframes)
    if clip.kind == "still":
        return ShippedMedia(path=_ship_photo(clip, root), kind="image", keyframes=keyframes)
    try:
        src = cut_clip(run, clip) if clip.has_video else cut_audio(run, clip)
    except MediaError as exc:
        raise ExportError(f"{exc}; export with --media keyframes or none to ship no clips") from None
    rel = f"{MEDIA_DIR}/clips/{clip.clip_id}{src.suffix}"
    _place(src, root / rel)
    return ShippedMedia(path=rel, kind="video" if clip.has_video else "audio", keyframes=keyframes)


def _ship_photo(clip: Clip, root: Path) -> str:
    """The photo as it came when it carries no metadata; else re-saved without it (EXIF and XMP can
    hold the place it was taken and the camera's owner), turned upright as its orientation tag said."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    src = Path(clip.source_path)
    try:
        with Image.open(src) as img:
            ext = PHOTO_EXT.get(img.format or "")
            rel = f"{MEDIA_DIR}/clips/{clip.clip_id}{ext or '.png'}"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            if ext and not _has_metadata(img):  # a copy, never a link: the dataset's permissions must not change the user's file
                shutil.copyfile(src, root / rel)
            else:
                fmt = img.format if ext else "PNG"
                ImageOps.exif_transpose(img).save(root / rel, fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    except (OSError, UnidentifiedImageError) as exc:
        raise ExportError(f"{src}: photo of clip {clip.clip_id} cannot be read ({exc}); export with --media keyframes or none") from None
    return rel


# what a picture's info may hold that says nothing about who, where or when (format and colour)
_HARMLESS_INFO = {"dpi", "icc_profile", "gamma", "jfif", "jfif_version", "jfif_unit", "jfif_density", "progressive",
                  "progression", "adobe", "adobe_transform", "transparency", "srgb", "chromaticity", "aspect", "interlace",
                  "loop", "duration", "background", "lossless", "mode"}


def _has_metadata(img) -> bool:
    """EXIF, XMP, IPTC, comments, PNG text chunks: anything beyond format and colour."""
    return bool(img.getexif()) or any(k not in _HARMLESS_INFO for k in img.info)


def _place(src: Path, dest: Path) -> None:
    link_or_copy(src, dest)  # no second copy of the bytes when the dataset sits beside the run


def media_files(root: Path) -> list[Path]:
    """Every shipped media file, in a stable order."""
    base = root / MEDIA_DIR
    return sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
