"""Clip media for review: each pushed clip's span cut from its source into the run directory, in
formats every browser plays, and the local-files URL Label Studio serves it under.

Every clip becomes an H.264 + AAC MP4. A silent track is added when the source has no audio, so the
synced <Audio> always has something to decode; an audio-only clip gets its waveform drawn as the
picture, so the <Video> area shows the sound moving in sync instead of an empty frame; a photo becomes a
short still video of itself. Label Studio serves
files only beneath its LOCAL_FILES_DOCUMENT_ROOT, so a run directory outside it is refused up front.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import quote

from schemas import Clip
from storage import RunDir


class MediaError(RuntimeError):
    pass


def document_root(configured: str | None = None) -> Path:
    """The server's document root: the configured one, else the env the server script reads, else the
    current directory (scripts/label-studio's default too: the folder the runs and their media live in)."""
    root = configured or os.environ.get("EMOFORGE_LS_DOCUMENT_ROOT") or os.environ.get("LOCAL_FILES_DOCUMENT_ROOT") or str(Path.cwd())
    return Path(root).resolve()


def check_under_root(run_dir: RunDir, root: Path) -> None:
    if not run_dir.root.resolve().is_relative_to(root):
        raise MediaError(
            f"run directory {run_dir.root} is outside Label Studio's document root {root}: the server can only "
            f"serve media beneath it. Put the run under {root}, or start the server with "
            f"EMOFORGE_LS_DOCUMENT_ROOT (and set review.label_studio.document_root) to a parent of the run."
        )


WAVEFORM_SIZE = "640x200"  # the picture of an audio-only clip: wide and low, like a waveform view
WAVEFORM_FPS = 25
STILL_SHOWN_S = 2.0  # how long a photo's still video lasts in review


def clip_media_path(run_dir: RunDir, clip: Clip) -> Path:
    return run_dir.media_dir / clip.source_id / clip.clip_id / "clip.mp4"


# tags a cut gets from the muxer and encoder themselves; any other tag came from the source
_MUXER_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "handler_name", "vendor_id", "language"}


def carries_source_metadata(path: Path) -> bool:
    """Whether a media file holds tags beyond what ffmpeg writes itself (a title, comment, GPS position)."""
    import av

    try:
        with av.open(str(path)) as media:
            tags = [media.metadata, *(s.metadata for s in media.streams)]
    except av.FFmpegError:
        return True  # unreadable: cut it again
    return any(k.lower() not in _MUXER_TAGS for t in tags for k in t)


def cut_clip(run_dir: RunDir, clip: Clip, *, force: bool = False) -> Path:
    """Write the clip's span of its source (once; an existing non-empty file without source metadata
    is reused: a cut made before cuts dropped it is made again)."""
    out = clip_media_path(run_dir, clip)
    if out.exists() and out.stat().st_size > 0 and not force and not carries_source_metadata(out):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".part" + out.suffix)
    span = ["-ss", f"{clip.start:.3f}", "-t", f"{max(clip.duration, 0.05):.3f}"]
    if clip.kind == "still":  # a photo is shown as a short still video: the player needs something to play
        span = ["-loop", "1", "-framerate", str(WAVEFORM_FPS), "-t", f"{STILL_SHOWN_S:.1f}"]
    cmd = ["ffmpeg", "-y", "-loglevel", "error", *span, "-i", clip.source_path]
    if clip.has_video:
        # re-encode (not stream copy): a copy starts at the previous key frame and browsers need
        # H.264/AAC; faststart puts the index first so playback starts before the download ends
        if clip.has_audio:
            cmd += ["-map", "0:v:0", "-map", "0:a:0"]
        else:
            cmd += ["-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono", "-map", "0:v:0", "-map", "1:a:0", "-shortest"]
        # even dimensions: yuv420p H.264 refuses odd ones
        scale = "scale=trunc(iw/2)*2:trunc(ih/2)*2"
        if clip.kind == "still":  # a small photo (a 48 px face) is shown at 256 px or more
            grow = r"max(1\,256/min(iw\,ih))"
            scale = f"scale=trunc(iw*{grow}/2)*2:trunc(ih*{grow}/2)*2:flags=lanczos"
        cmd += ["-vf", scale]
    else:
        cmd += ["-filter_complex", f"[0:a:0]showwaves=s={WAVEFORM_SIZE}:mode=cline:scale=sqrt:rate={WAVEFORM_FPS}:"
                "colors=0x4f8fd6,"
                "format=yuv420p[v]", "-map", "[v]", "-map", "0:a:0"]
    # no metadata of the source (titles, comments, a phone's GPS position): exported datasets ship these files
    cmd += ["-map_metadata", "-1", "-map_chapters", "-1",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
            "-movflags", "+faststart", str(tmp)]
    return _run_cut(cmd, tmp, out, clip)


def audio_clip_path(run_dir: RunDir, clip: Clip) -> Path:
    return run_dir.media_dir / clip.source_id / clip.clip_id / "clip.flac"


def cut_audio(run_dir: RunDir, clip: Clip, *, force: bool = False) -> Path:
    """The clip's span of its source's sound as lossless FLAC (for datasets of audio-only clips,
    where a drawn waveform picture would be made-up video); reused like `cut_clip`."""
    out = audio_clip_path(run_dir, clip)
    if out.exists() and out.stat().st_size > 0 and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".part" + out.suffix)
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-ss", f"{clip.start:.3f}", "-t", f"{max(clip.duration, 0.05):.3f}",
           "-i", clip.source_path, "-map", "0:a:0", "-vn", "-map_metadata", "-1", "-map_chapters", "-1", "-c:a", "flac", str(tmp)]
    return _run_cut(cmd, tmp, out, clip)


def _run_cut(cmd: list[str], tmp: Path, out: Path, clip: Clip) -> Path:
    if not Path(clip.source_path).is_file():
        raise MediaError(f"{clip.source_path}: source of clip {clip.clip_id} not found (moved or deleted since the run)")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        raise MediaError(f"ffmpeg could not cut clip {clip.clip_id} ({clip.start:.2f}-{clip.end:.2f} s) from "
                         f"{clip.source_path}: {proc.stderr.strip()[-400:]}")
    tmp.replace(out)
    return out


def local_files_url(path: Path, root: Path) -> str:
    """The URL Label Studio serves a file beneath its document root under."""
    rel = Path(path).resolve().relative_to(root)
    return "/data/local-files/?d=" + quote(rel.as_posix(), safe="/")


def probe_fps(path: Path) -> float | None:
    """The clip's frame rate (the <Video> needs it to step frames and stay in sync)."""
    proc = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=avg_frame_rate",
                           "-of", "csv=p=0", str(path)], capture_output=True, text=True)
    txt = proc.stdout.strip().split("\n")[0] if proc.returncode == 0 else ""
    try:
        num, _, den = txt.partition("/")
        fps = float(num) / float(den or 1)
        return round(fps, 3) if fps > 0 else None
    except (ValueError, ZeroDivisionError):
        return None
