"""The command line: user mistakes are one clear line and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the emoforge command

EMOFORGE = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "emoforge")


def emoforge(*args, cwd=None):
    return subprocess.run([EMOFORGE, *args], capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "missing.mp4", "--out", "o"], "missing.mp4: no such file or directory"),
        (["run", ".", "--out", "o", "--config", "nope.yaml"], None),
        (["run", "{media}", "--out", "o", "--set", "sampling.clips.max_clip_s=-1"], "sampling.clips.max_clip_s"),
        (["run", "{media}", "--out", "o", "--config", "nope.yaml"], "nope.yaml: config file not found"),
    ],
)
def test_user_mistakes_are_reported_without_traceback(tmp_path, feat_data, args, message):
    args = [a.replace("{media}", str(feat_data / "single_face.mp4")) for a in args]
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = emoforge(*args, cwd=empty)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "emoforge: error:" in proc.stderr
    if message:
        assert message in proc.stderr.replace("\n", "")
    else:
        assert "holds no media files" in proc.stderr


def test_run_prints_a_summary_and_writes_tables(tmp_path, feat_data):
    proc = emoforge("run", str(feat_data / "single_face.mp4"), str(feat_data / "no_face.mp4"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    assert "sampling" in proc.stdout and "computed" in proc.stdout
    assert "Traceback" not in proc.stderr
    for table in ("clips", "sources", "rejects"):
        assert (tmp_path / "o" / "tables" / f"{table}.parquet").exists()
