"""An export never destroys a run or a folder it did not write, and replacing a dataset is atomic:
killed at any point, the dataset folder holds the old dataset or the new one, whole."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.export.destination import DestinationRefused
from pipeline.export.export import export_run
from storage import SPLITS, DatasetDir
from tests.test_export import build_run

pytestmark = pytest.mark.slow  # runs the emoforge command

ROOT = Path(__file__).resolve().parents[1]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _clip_ids(ds: Path) -> set[str]:
    d = DatasetDir(ds)
    return {r.clip_id for s in SPLITS for r in d.read_split(s)}


def _emoforge(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(ROOT / ".venv" / "bin" / "emoforge"), *args], capture_output=True, text=True, timeout=300, env=env)


def test_export_onto_the_run_is_refused_and_the_run_kept(tmp_path):
    run, _ = build_run(tmp_path / "run")
    before = _snapshot(run.root)
    for out in (run.root, run.root / "tables", run.root / "dataset", tmp_path, ROOT / "tests" / ".."):
        proc = _emoforge("export", str(run.root), "--out", str(out))
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "emoforge: error:" in lines[0] and "Traceback" not in proc.stderr, proc.stderr
        assert str(out) in lines[0]
    assert _snapshot(run.root) == before  # not a byte of the run touched
    assert (ROOT / "README.md").exists()


def test_only_new_empty_or_dataset_folders_are_written(tmp_path):
    run, config = build_run(tmp_path / "run")
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    with pytest.raises(DestinationRefused, match="not an emoforge dataset"):
        export_run(run, other, config, "r")
    assert (other / "mine.txt").read_text() == "keep me" and len(list(other.iterdir())) == 1
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(DestinationRefused, match="not a folder"):
        export_run(run, afile, config, "r")
    other_run, _ = build_run(tmp_path / "other-run")
    with pytest.raises(DestinationRefused, match="run directory"):
        export_run(run, other_run.root / "ds", config, "r")  # inside someone else's run
    empty = tmp_path / "empty"
    empty.mkdir()
    export_run(run, empty, config, "r")
    export_run(run, empty, config, "r")  # a dataset of ours is replaced
    assert len(_clip_ids(empty)) == 24


def test_dataset_files_get_normal_permissions(tmp_path):
    run, config = build_run(tmp_path / "run")
    umask = os.umask(0o022)
    try:
        export_run(run, tmp_path / "ds", config, "r")
    finally:
        os.umask(umask)
    paths = [tmp_path / "ds", *(tmp_path / "ds").rglob("*")]
    assert {stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_dir()} == {0o755}
    assert {stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_file()} == {0o644}


# a second export is killed (SIGKILL: no cleanup runs) at one point of its life
KILLER = """
import os, signal, sys
from pathlib import Path
import pipeline.export.destination as dest
from pipeline.export.export import export_run
from tests.test_export import build_run
from storage import DatasetDir

where, root = sys.argv[1], Path(sys.argv[2])
run, config = build_run(root / "run-new", n_sources=5)
die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if where == "writing":
    DatasetDir.write_features = die
elif where == "after-swap":
    dest.shutil.rmtree = die
elif where == "between-renames":
    dest._exchange = lambda a, b: False
    real = os.rename
    calls = []
    def rename(a, b):
        calls.append(a)
        if len(calls) == 2:
            die()
        real(a, b)
    dest.os.rename = rename
export_run(run, root / "ds", config, "new")
"""


@pytest.mark.parametrize("where", ["writing", "after-swap", "between-renames"])
def test_a_reexport_killed_midway_leaves_a_whole_dataset(tmp_path, where):
    run, config = build_run(tmp_path / "run-old")
    ds = tmp_path / "ds"
    export_run(run, ds, config, "old")
    old = _clip_ids(ds)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", KILLER, where, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr  # really killed midway
    new = {c.clip_id for c in build_run(tmp_path / "probe", n_sources=5)[0].read("clips")}
    assert new != old
    if where == "between-renames":
        # the one moment without a dataset at `ds` (only where the file system cannot exchange two
        # names in one step): the old dataset is whole beside it, and the next export puts it back
        assert not ds.exists()
        [aside] = [p for p in tmp_path.iterdir() if p.name.startswith(".ds") and p.name.endswith("-old")]
        assert _clip_ids(aside) == old
    else:
        held = _clip_ids(ds)
        assert held == (new if where == "after-swap" else old)
        for s in SPLITS:  # every part of the dataset readable, the card and Croissant there
            DatasetDir(ds).read_split(s)
        assert (ds / "croissant.json").exists() and (ds / "README.md").exists() and (ds / "clips.parquet").exists()
    export_run(run, ds, config, "again")  # the next export clears what the killed one left behind
    assert _clip_ids(ds) == old and not [p for p in tmp_path.iterdir() if p.name.startswith(".ds")]
