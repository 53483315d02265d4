"""Test session: a real Prefect API server started by the project's own script (the temporary
server Prefect would otherwise start costs ~15 s per process), media from installed packages."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_server_port: int | None = None
_server_home: Path | None = None
# a migrated, empty server database: a fresh one takes ~25 s of migrations to start
PREFECT_TEMPLATE_DB = Path.home() / ".cache" / "emoforge" / "prefect-test-template.db"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fresh_server_home() -> Path:
    """Each session's server gets its own database. One shared across sessions grew with every run
    (400 MB here, after which the SQLite server answered 503 "database is locked" mid-test), and two
    sessions at once would write to the same file."""
    home = Path(tempfile.mkdtemp(prefix="emoforge-prefect-test-"))
    if PREFECT_TEMPLATE_DB.exists():
        shutil.copyfile(PREFECT_TEMPLATE_DB, home / "prefect.db")
    return home


def _keep_template(home: Path) -> None:
    if PREFECT_TEMPLATE_DB.exists() or not (home / "prefect.db").exists():
        return
    PREFECT_TEMPLATE_DB.parent.mkdir(parents=True, exist_ok=True)
    part = PREFECT_TEMPLATE_DB.with_suffix(".part")
    # SQLite's backup API: a consistent copy of a database the running server has open (WAL included)
    with sqlite3.connect(home / "prefect.db") as src, sqlite3.connect(part) as dst:
        src.backup(dst)
    part.replace(PREFECT_TEMPLATE_DB)


def pytest_configure(config):
    global _server_port, _server_home
    # settings first: prefect reads them when it is imported
    if not os.environ.get("PREFECT_API_URL"):
        if not os.environ.get("EMOFORGE_PREFECT_HOME"):
            _server_home = _fresh_server_home()
            os.environ["EMOFORGE_PREFECT_HOME"] = str(_server_home)
        _server_port = _free_port()
        proc = subprocess.run(
            [str(ROOT / "scripts" / "prefect-server"), "start", str(_server_port)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise pytest.UsageError(f"could not start the Prefect server for tests: {proc.stderr.strip()}")
        os.environ["PREFECT_API_URL"] = proc.stdout.strip().splitlines()[-1]
        if _server_home is not None:
            _keep_template(_server_home)  # right after startup: migrated, nothing of the tests in it yet
    from flows.prefect_env import configure_prefect

    configure_prefect()


_exit_status = 0


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


def pytest_unconfigure(config):
    if _server_port is not None:
        subprocess.run([str(ROOT / "scripts" / "prefect-server"), "stop", str(_server_port)], capture_output=True)
    if _server_home is not None:
        shutil.rmtree(_server_home, ignore_errors=True)
    # ctranslate2 (faster-whisper) can crash in interpreter teardown after every test has passed
    # (free(): invalid pointer, exit 134/139); leave with pytest's own status instead
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)


@pytest.fixture(scope="session")
def feat_data() -> Path:
    from flows.demo import package_dir

    return package_dir("feat") / "tests" / "data"


@pytest.fixture(scope="session")
def speech_dir() -> Path:
    from flows.demo import package_dir

    return package_dir("moonshine_voice") / "assets"


@pytest.fixture()
def config():
    from schemas import load_config

    return load_config()


@pytest.fixture()
def run_dir(tmp_path):
    from storage import RunDir

    return RunDir.create(tmp_path / "run")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *args], check=True)


@pytest.fixture(scope="session")
def bad_media(tmp_path_factory, feat_data, speech_dir) -> dict[str, Path]:
    """One file per kind of awkward input, built from real media."""
    d = tmp_path_factory.mktemp("bad_media")
    video = feat_data / "WolfgangLanger_Pexels.mp4"
    out = {
        "zero_bytes": d / "zero_bytes.mp4",
        "not_media": d / "not_media.mp4",
        "truncated_header_first": d / "truncated_header_first.mp4",
        "truncated_header_last": d / "truncated_header_last.mp4",
        "no_audio_track": d / "no_audio_track.mp4",
        "audio_only": d / "audio_only.wav",
        "silent_video": d / "silent_video.mp4",
        "silent_audio_only": d / "silent_audio_only.wav",
    }
    out["zero_bytes"].write_bytes(b"")
    out["not_media"].write_text("this is a shopping list, not a video\n" * 50)
    # moov atom at the front: the cut file still decodes, up to where it stops
    ffmpeg("-i", str(video), "-c", "copy", "-movflags", "+faststart", str(d / "faststart.mp4"))
    data = (d / "faststart.mp4").read_bytes()
    out["truncated_header_first"].write_bytes(data[: len(data) // 2])
    # moov atom at the end (ffmpeg's default): the cut file has no index at all
    ffmpeg("-i", str(video), "-c", "copy", str(d / "moov_last.mp4"))
    data = (d / "moov_last.mp4").read_bytes()
    out["truncated_header_last"].write_bytes(data[: len(data) // 2])
    ffmpeg("-i", str(feat_data / "single_face.mp4"), "-an", "-c:v", "copy", str(out["no_audio_track"]))
    shutil.copyfile(speech_dir / "beckett.wav", out["audio_only"])
    ffmpeg("-i", str(feat_data / "single_face.mp4"), "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-map", "0:v",
           "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(out["silent_video"]))
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "3", str(out["silent_audio_only"]))
    return out


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    """A real Label Studio server, started by the project's own script on a free port. Its document
    root is a directory of this session's tmp dirs, so run directories made beneath it can be served.
    The data dir is reused between sessions (a restart takes seconds, a first start ~1.5 min)."""
    from types import SimpleNamespace

    docroot = tmp_path_factory.mktemp("ls_docroot")
    port = _free_port()
    # fixed test credentials for a throwaway server (the script makes random ones when none are given)
    token, password = "emoforge-test-token-0123456789abcdef", "emoforge-admin"
    env = dict(os.environ, EMOFORGE_LS_DOCUMENT_ROOT=str(docroot), EMOFORGE_LS_TOKEN=token, EMOFORGE_LS_PASSWORD=password,
               EMOFORGE_LS_HOME=os.environ.get("EMOFORGE_LS_TEST_HOME", str(Path.home() / ".cache" / "emoforge" / "label-studio-test")))
    script = str(ROOT / "scripts" / "label-studio")
    proc = subprocess.run([script, "start", str(port)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        pytest.fail(f"could not start Label Studio for tests: {proc.stderr.strip()[-2000:]}")
    try:
        yield SimpleNamespace(url=proc.stdout.strip().splitlines()[-1], token=token, password=password, docroot=docroot, port=port, env=env)
    finally:
        subprocess.run([script, "stop", str(port)], capture_output=True, env=env)
