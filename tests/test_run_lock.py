"""One writer per run directory (issue 17): a second command on the same OUT is refused naming the
holder, or waits for it; a killed run's lock is taken over and what it left half done repaired;
the tables a reader sees always come from one run; a scheduled run skips a directory in use."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from schemas import Reject
from schemas.run import RunManifest
from storage import RunDir
from storage.lock import LOCK_FILE, RunDirLocked, RunLock, read_holder

pytestmark = pytest.mark.slow  # runs the pipeline and the emoforge command

ROOT = Path(__file__).resolve().parents[1]
EMOFORGE = str(ROOT / ".venv" / "bin" / "emoforge")
HOLD = """
import sys, time
from storage.lock import RunLock
lock = RunLock(sys.argv[1], "run", "held-by-child").acquire()
print("held", flush=True)
time.sleep(600)
"""


def hold_in_child(out: Path) -> subprocess.Popen:
    """Another process holding OUT's lock, as a running `emoforge run` does."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.stdout.readline().strip() == "held"
    return proc


def wait_for(check, timeout: float, what: str, every: float = 0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def assert_consistent(out: Path, inputs: list[str] | None = None, settled: bool = True) -> dict:
    """Every table, and run.json, from one run; once no command is at work (`settled`), nothing of
    another run or a dead one left behind, and the lock let go."""
    run = RunDir(out)
    manifest = run.read_manifest()
    clips = {c.clip_id for c in run.read("clips")}
    assert clips, "no clips"
    assert {f.clip_id for f in run.read("features")} == clips
    assert {c.clip_id for c in run.read("consensus")} == clips
    assert {a.clip_id for a in run.read("annotations")} == clips
    tables = manifest.tables
    assert (tables.clips, tables.features, tables.consensus) == (len(clips),) * 3
    assert tables.annotations == len(run.read("annotations")) and tables.judgements == len(run.read("judgements"))
    assert [r.reason for r in run.read("rejects") if r.severity == "error"] == []
    if inputs is not None:
        assert manifest.inputs == inputs
    assert (out / "tables").is_symlink() and run.tables_dir.name == manifest.run_id
    if not settled:
        return manifest
    work = out / ".cache" / "work"
    assert ([d.name for d in work.iterdir()] if work.exists() else []) == []  # no scratch left, of this run or any other
    assert read_holder(out / LOCK_FILE, settle_s=0) is None  # released
    return manifest


# ---- the lock itself, between processes ----

def test_lock_refuses_a_second_holder_naming_it_and_waits_when_asked(tmp_path):
    out = tmp_path / "run"
    child = hold_in_child(out)
    try:
        with pytest.raises(RunDirLocked) as refused:
            RunLock(out, "report").acquire()
        holder = refused.value.holder
        assert (holder.pid, holder.host, holder.command, holder.run_id) == (child.pid, socket.gethostname(), "run", "held-by-child")
        assert f"pid {child.pid} on {socket.gethostname()}" in str(refused.value) and "--wait" in str(refused.value)

        heard: list[str] = []
        t0 = time.monotonic()
        killer = subprocess.Popen(["sh", "-c", f"sleep 2; kill {child.pid}"])
        with RunLock(out, "report").acquire(wait=True, notify=heard.append) as lock:
            assert time.monotonic() - t0 >= 1.5  # it waited for the holder to go
            assert len(heard) == 2 and f"waiting for emoforge run (run held-by-child), pid {child.pid}" in heard[0]
            assert lock.took_over is not None and lock.took_over.pid == child.pid  # killed: it never let go
            assert "took over the lock of emoforge run (run held-by-child)" in heard[1]
            assert read_holder(out / LOCK_FILE).pid == os.getpid()
        killer.wait()
        assert read_holder(out / LOCK_FILE, settle_s=0) is None  # let go cleanly: the next holder takes over nothing
        with RunLock(out, "run").acquire() as again:
            assert again.took_over is None
    finally:
        child.kill()
        child.wait()


def test_a_sigkilled_holders_lock_is_taken_over(tmp_path):
    out = tmp_path / "run"
    child = hold_in_child(out)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert read_holder(out / LOCK_FILE).pid == child.pid  # the file still names the dead holder
    heard: list[str] = []
    with RunLock(out, "run", "next").acquire(notify=heard.append) as lock:
        assert lock.took_over.pid == child.pid
        assert heard == [f"{out}: took over the lock of {lock.took_over.describe()}, which ended without releasing it"]


def test_export_and_report_are_refused_in_one_line_while_a_run_writes(tmp_path):
    out = tmp_path / "run"
    (out / "tables").mkdir(parents=True)
    child = hold_in_child(out)
    try:
        for args in (["export", str(out), "--out", str(tmp_path / "ds")], ["report", str(out)]):
            proc = subprocess.run([EMOFORGE, *args], capture_output=True, text=True, timeout=300)
            assert proc.returncode == 2, proc.stderr
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("emoforge: error:"), proc.stderr
            assert f"in use by emoforge run (run held-by-child), pid {child.pid} on {socket.gethostname()}, started " in lines[0]
        assert not (tmp_path / "ds").exists() and not (out / "report").exists()
    finally:
        child.kill()
        child.wait()


# ---- table sets ----

def test_readers_see_one_runs_tables_while_the_next_run_swaps_its_set_in(tmp_path):
    out = tmp_path / "run"

    def rejects(run_id: str, n: int) -> list[Reject]:
        return [Reject(run_id=run_id, stage="sampling", path=f"{run_id}-{i}", reason="x") for i in range(n)]

    first = RunDir.begin(out, "r1")
    first.write("rejects", rejects("r1", 1))
    first.write("sources", [])
    first.write_manifest(RunManifest(run_id="r1"))
    first.commit()
    reader = RunDir(out)  # pins r1's set
    second = RunDir.begin(out, "r2")
    assert [r.run_id for r in second.read("rejects")] == ["r1"]  # a table it has not written yet carries over
    second.write("rejects", rejects("r2", 2))
    assert [r.run_id for r in RunDir(out).read("rejects")] == ["r1"]  # not current until the run ends
    second.write_manifest(RunManifest(run_id="r2"))
    second.commit()
    assert [r.run_id for r in reader.read("rejects")] == ["r1"] and reader.read_manifest().run_id == "r1"
    assert [r.run_id for r in RunDir(out).read("rejects")] == ["r2", "r2"]
    assert json.loads((out / "run.json").read_text())["run_id"] == "r2"
    assert pq_rows(out / "tables" / "rejects.parquet") == 2  # any Parquet reader, by the documented path
    RunDir.begin(out, "r3").commit()  # a third set: r1's goes, r2's stays for readers that pinned it
    assert sorted(d.name for d in (out / ".runs").iterdir()) == ["r2", "r3"]


def test_a_run_directory_from_before_table_sets_becomes_one(tmp_path):
    out = tmp_path / "old"
    legacy = RunDir.create(out)
    legacy.write("rejects", [Reject(run_id="old", stage="sampling", path="p", reason="x")])
    (out / "run.json").write_text(json.dumps({"run_id": "old"}))
    assert RunDir(out).read_manifest().run_id == "old"
    run = RunDir.begin(out, "new")
    run.write_manifest(RunManifest(run_id="new"))
    run.commit()
    assert RunDir(out).read_manifest().run_id == "new" and [r.run_id for r in RunDir(out).read("rejects")] == ["old"]


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows


# ---- whole runs through the CLI ----

def start(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([EMOFORGE, "run", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_two_runs_at_once_one_is_refused_naming_the_other(tmp_path, speech_dir, feat_data):
    out = tmp_path / "run"
    a_inputs = [str(speech_dir / "beckett.wav"), str(feat_data / "face_noface.mov")]
    a = start(*a_inputs, "--out", str(out))
    b = start(str(speech_dir / "beckett.wav"), "--out", str(out))
    (a_out, a_err), (b_out, b_err) = a.communicate(timeout=600), b.communicate(timeout=600)
    assert sorted([a.returncode, b.returncode]) == [0, 2], (a_err, b_err)
    winner, loser_err = (a, b_err) if a.returncode == 0 else (b, a_err)
    lines = loser_err.strip().splitlines()
    assert len(lines) == 1 and "emoforge: error:" in lines[0], loser_err
    assert "in use by emoforge run (run " in lines[0] and f"pid {winner.pid} on {socket.gethostname()}, started " in lines[0]
    manifest = assert_consistent(out, a_inputs if winner is a else [str(speech_dir / "beckett.wav")])
    assert manifest.run_id in (a_out if winner is a else b_out)


def test_two_runs_that_wait_run_one_after_the_other(tmp_path, speech_dir, feat_data):
    """The everyday collision (issue 17): the same OUT, different inputs, started together. Both
    finish, one after the other; the tables are the later run's, all of them."""
    out = tmp_path / "run"
    small = [str(speech_dir / "beckett.wav")]
    big = [str(speech_dir / "beckett.wav"), str(feat_data / "face_noface.mov")]
    a = start(*big, "--out", str(out), "--wait")
    b = start(*small, "--out", str(out), "--wait")
    (a_out, a_err), (b_out, b_err) = a.communicate(timeout=900), b.communicate(timeout=900)
    assert (a.returncode, b.returncode) == (0, 0), (a_err, b_err)
    waited = [(p, err, o) for p, err, o in ((a, a_err, a_out), (b, b_err, b_out)) if "waiting for emoforge run" in err]
    assert len(waited) == 1, (a_err, b_err)
    later, later_err, later_out = waited[0]
    first = b if later is a else a
    assert "waiting for emoforge run (run " in later_err and f"pid {first.pid} on {socket.gethostname()}" in later_err
    manifest = assert_consistent(out, big if later is a else small)
    assert manifest.run_id in later_out
    assert len(RunDir(out).read("clips")) == (3 if later is a else 1)


def test_a_sigkilled_run_is_taken_over_and_its_leftovers_cleared(tmp_path, speech_dir, feat_data):
    out = tmp_path / "run"
    inputs = [str(speech_dir / "beckett.wav"), str(feat_data / "face_noface.mov")]
    proc = start(*inputs, "--out", str(out), start_new_session=True)
    results = out / ".cache" / "results"
    def finished_results() -> list[Path]:  # not the temporary files of a write in progress
        return sorted(f for f in results.iterdir() if not f.name.startswith(".")) if results.is_dir() else []

    wait_for(lambda: proc.poll() is not None or finished_results(), 300, "the first task result", 0.05)
    assert proc.poll() is None, "run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    dead = read_holder(out / LOCK_FILE)
    assert dead.pid == proc.pid
    left = sorted(d.name for d in (out / ".runs").iterdir())
    assert left == [dead.run_id] and not (out / "tables").exists()  # its set never became current
    # a damaged result (a disk error, a writer from before results were written atomically) must not fail the rerun
    written = finished_results()[0]
    written.write_bytes(written.read_bytes()[:100])

    again = subprocess.run([EMOFORGE, "run", *inputs, "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    said = " ".join(again.stderr.split())
    assert f"took over the lock of emoforge run (run {dead.run_id}), pid {dead.pid} on {dead.host}" in said, again.stderr
    json.loads(written.read_bytes())  # taken for a miss and written again (no reject row: assert_consistent)
    assert_consistent(out, inputs)
    assert not (out / ".runs" / dead.run_id).exists()


def test_a_scheduled_run_skips_a_run_directory_a_manual_run_holds(tmp_path, speech_dir):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    assert os.environ.get("PREFECT_API_URL"), "conftest starts a Prefect server"
    cfg = tmp_path / "panel.yaml"
    cfg.write_text("annotate:\n  panel:\n  - {id: lexical, backend: lexical}\n")
    out = tmp_path / "run"
    name = f"reannotate-{uuid.uuid4().hex[:6]}"

    def runs():
        with get_client(sync_client=True) as client:
            return client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])))

    manual = RunLock(out, "run", "manual").acquire()  # what `emoforge run --out OUT` holds while it works
    serve = subprocess.Popen([EMOFORGE, "serve", str(speech_dir / "beckett.wav"), "--out", str(out), "--interval", "5",
                              "--config", str(cfg), "--name", name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        skipped = wait_for(lambda: [r for r in runs() if r.state_name == "Cancelled" and "skipped" in (r.state.message or "")],
                           300, "a scheduled run to be skipped", 2)
        msg = skipped[0].state.message
        assert f"in use by emoforge run (run manual), pid {os.getpid()} on {socket.gethostname()}" in msg
        assert not (out / "tables").exists()  # it wrote nothing
        manual.release()
        wait_for(lambda: [r for r in runs() if r.state_name == "Completed"], 300, "a scheduled run once the manual one let go", 2)
        assert_consistent(out, [str((speech_dir / "beckett.wav").resolve())], settled=False)  # serve goes on firing runs
    finally:
        manual.release()
        serve.terminate()
        try:
            serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            serve.kill()
