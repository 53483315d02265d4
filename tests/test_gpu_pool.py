"""GPU annotators on their own Prefect work pool: a real process worker started by
`emoforge worker` against the session's Prefect server takes the annotator's flow runs. No GPU
here, so a CPU annotator is routed to the pool by id (the path is the same for a GPU model)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter

from flows.gpu_pool import FLOW_NAME, register_deployment
from flows.pipeline_flow import run_pipeline
from schemas import load_config
from storage import RunDir

pytestmark = pytest.mark.slow  # starts Prefect workers

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "tests.plugins.crash_once:CrashOnceLexical"


def pool_runs(pool: str) -> list:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"{FLOW_NAME}/{pool}")
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id={"any_": [deployment.id]}))


@pytest.fixture()
def gpu_worker(request):
    pool = f"test-gpu-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_WORKER_QUERY_SECONDS": "2"}
    extra = getattr(request, "param", [])  # more `emoforge worker` options
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "emoforge"), "worker", "--pool", pool, *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = []
    for line in proc.stdout:  # warnings may come first; this line comes once the deployment is registered
        seen.append(line)
        if f"deployment {FLOW_NAME}/{pool} on work pool {pool}" in line:
            break
    else:
        pytest.fail(f"emoforge worker exited ({proc.wait()}) before registering its deployment:\n{''.join(seen)[-3000:]}")
    # keep draining the worker's output, so a full pipe never blocks it
    threading.Thread(target=lambda: seen.extend(proc.stdout), daemon=True).start()
    yield pool
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:  # Prefect's graceful shutdown waits on a busy API server: do not wait forever
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def test_pool_worker_answers_and_a_crashed_flow_run_is_resubmitted_once(gpu_worker, speech_dir, tmp_path):
    state = tmp_path / "plugin-state"
    state.mkdir()
    panel = json.dumps([{"id": "lexical", "backend": "lexical"}, {"id": "fragile", "backend": PLUGIN, "model": str(state)}])
    config = load_config(overrides=[f"annotate.panel={panel}", f"runtime.gpu.pool={gpu_worker}", 'runtime.gpu.annotators=["fragile"]',
                                    "runtime.gpu.timeout_s=240",
                                    # the word agent abstains on Beckett's words (no emotion words): release the clips unlabelled
                                    "export.include_unlabelled=true"])
    summary = run_pipeline([str(speech_dir / "beckett.wav")], str(tmp_path / "run"), config)
    assert not [r.reason for r in summary.rejects if r.severity == "error"]
    runs = sorted(pool_runs(gpu_worker), key=lambda r: r.created)
    # the first flow run died with its process (exit 17) and the worker said so; the second answered
    assert [r.state.name for r in runs] == ["Crashed", "Completed"], [(r.state.name, r.state.message) for r in runs]
    assert all(r.work_pool_name == gpu_worker for r in runs)
    run = RunDir(tmp_path / "run")
    clips, annotations = run.read("clips"), run.read("annotations")
    by = {(a.clip_id, a.annotator_id): a for a in annotations}
    assert sorted(by) == sorted((c.clip_id, a) for c in clips for a in ("lexical", "fragile")) and len(by) == len(annotations)
    # the pool ran the same agent the flow ran in-process: same verdicts
    assert [by[(c.clip_id, "fragile")].label for c in clips] == [by[(c.clip_id, "lexical")].label for c in clips]
    assert len(list(state.glob("done-*"))) == 1  # answered once, not once per attempt

    # a rerun takes the cached answers: no new flow run on the pool
    again = run_pipeline([str(speech_dir / "beckett.wav")], str(tmp_path / "run"), config)
    assert again.stages[2].computed == 0 and len(pool_runs(gpu_worker)) == 2


def test_pool_without_worker_is_a_reject_naming_the_pool_and_the_run_finishes(feat_data, tmp_path):
    pool = f"test-idle-{uuid.uuid4().hex[:6]}"
    register_deployment(pool)  # a deployment, but no worker polls the pool
    # the expression model answers on this face, so the run has labels to export without the pool's annotator
    panel = json.dumps([{"id": "face", "backend": "face-expression"}, {"id": "face-gpu", "backend": "face-expression"}])
    config = load_config(overrides=[f"annotate.panel={panel}", f"runtime.gpu.pool={pool}", 'runtime.gpu.annotators=["face-gpu"]',
                                    "runtime.gpu.timeout_s=3"])
    video = str(feat_data / "face_noface.mov")
    summary = run_pipeline([video], str(tmp_path / "run"), config)
    reasons = [r.reason for r in summary.rejects if r.stage == "annotate"]
    assert len(reasons) == 1 and f"no worker on pool {pool!r}" in reasons[0] and f"emoforge worker --pool {pool}" in reasons[0]
    assert [r.state.name for r in pool_runs(pool)] == ["Cancelled"]  # a late worker cannot answer twice
    run = RunDir(tmp_path / "run")
    assert {a.annotator_id for a in run.read("annotations")} == {"face"}  # the other annotator's answers kept
    assert (tmp_path / "run" / "dataset" / "README.md").exists()
    # a failure is not cached: the rerun asks the pool again (and keeps the rest from the cache)
    again = run_pipeline([video], str(tmp_path / "run"), config)
    assert again.stages[1].computed == 0 and len([r for r in again.rejects if r.stage == "annotate"]) == 1
    assert [r.state.name for r in pool_runs(pool)] == ["Cancelled", "Cancelled"]

    unknown = load_config(overrides=[f"annotate.panel={panel}", "runtime.gpu.pool=no-such-pool", 'runtime.gpu.annotators=["face-gpu"]'])
    summary = run_pipeline([video], str(tmp_path / "run2"), unknown)
    reasons = [r.reason for r in summary.rejects if r.stage == "annotate"]
    assert len(reasons) == 1 and "emoforge worker --pool no-such-pool" in reasons[0]


def test_a_slot_with_a_stale_list_does_not_claim_a_run_another_slot_finished(tmp_path):
    """Two slots poll the same pool: one may still hold a run in its list of due runs after the other
    has claimed, run and completed it. The server accepts Pending from Completed (the result is not
    persisted), so that claim would answer the job twice (seen on CI: a source annotated by both GPU
    slots). The stale claim leaves the run Completed and claims the next due run instead."""
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Completed, Pending, Running

    from flows.gpu_slot import claim_first

    pool = f"test-stale-{uuid.uuid4().hex[:6]}"
    register_deployment(pool)  # no worker polls this pool: the test is both slots
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"{FLOW_NAME}/{pool}")
        done, waiting = (client.create_flow_run_from_deployment(deployment.id, parameters={"job_file": str(tmp_path / f"{k}.job.json")})
                         for k in ("done", "waiting"))
        stale = [done, waiting]  # what the slow slot read while both were Scheduled
        # the quick slot claims the first, runs it and finishes
        assert claim_first(client, [done]).id == done.id
        client.set_flow_run_state(done.id, Running(), force=False)
        client.set_flow_run_state(done.id, Completed(), force=False)
        # the slow slot's stale list: the finished run is given back as it was, the next one is claimed
        assert claim_first(client, stale).id == waiting.id
        after = client.read_flow_run(done.id)
        assert after.state.is_completed() and after.run_count == 1
        assert client.read_flow_run(waiting.id).state.is_pending()
        # and a run another slot holds (Pending) is refused as before
        assert claim_first(client, [waiting]) is None
        assert client.set_flow_run_state(waiting.id, Pending(), force=False).status != SetStateStatus.ACCEPT


def slot_workers(parent: int) -> dict[str, str]:
    """CUDA_VISIBLE_DEVICES of each worker process under `parent` (resident slots or Prefect workers), by name."""
    out = {}
    for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        env = dict(e.split(b"=", 1) for e in Path(f"/proc/{child}/environ").read_bytes().split(b"\0") if b"=" in e)
        if b"flows.gpu_slot" not in argv and b"--name" not in argv:
            continue  # forked, not yet exec'd
        name = argv[argv.index(b"flows.gpu_slot") + 2] if b"flows.gpu_slot" in argv else argv[argv.index(b"--name") + 1]
        out[name.decode()] = env.get(b"CUDA_VISIBLE_DEVICES", b"").decode()
    return out


def pinned_workers(pool: str, count: int) -> dict[str, str]:
    """slot_workers of the `emoforge worker --pool POOL --gpus ...` process, once it has started `count`."""
    parent = next(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and
                  f"--pool\0{pool}\0--gpus".encode() in (p / "cmdline").read_bytes())
    for _ in range(60):  # it prints its line, then starts them
        workers = slot_workers(parent)
        if len(workers) >= count:
            return workers
        time.sleep(0.5)
    return workers


def probe_config(pool: str, state: Path):
    panel = json.dumps([{"id": "lexical", "backend": "lexical"}, {"id": "probe", "backend": "tests.plugins.gpu_probe:GpuProbeLexical",
                                                                  "model": str(state)}])
    return load_config(overrides=[f"annotate.panel={panel}", f"runtime.gpu.pool={pool}", 'runtime.gpu.annotators=["probe"]',
                                  "runtime.gpu.timeout_s=240", "export.include_unlabelled=true"])


@pytest.mark.parametrize("gpu_worker", [["--gpus", "3,5"]], indirect=True)
def test_resident_workers_one_per_gpu_pinned_and_keeping_their_model_between_jobs(gpu_worker, speech_dir, tmp_path):
    import socket

    host = socket.gethostname()
    assert pinned_workers(gpu_worker, 2) == {f"{host}-gpu3": "3", f"{host}-gpu5": "5"}
    with get_client(sync_client=True) as client:  # both slots poll the pool, under their own names
        for _ in range(60):
            names = {w.name for w in client.read_workers_for_work_pool(gpu_worker)}
            if {f"{host}-gpu3", f"{host}-gpu5"} <= names:
                break
            time.sleep(1)
        assert {f"{host}-gpu3", f"{host}-gpu5"} <= names
    state = tmp_path / "probe"
    state.mkdir()
    sources = [str(speech_dir / n) for n in ("beckett.wav", "endgame_nagg_nell.wav", "two_cities.wav")]
    summary = run_pipeline(sources, str(tmp_path / "run"), probe_config(gpu_worker, state))
    assert not [r.reason for r in summary.rejects if r.severity == "error"]
    jobs = [p.name.split("-") for p in state.iterdir()]  # cuda, gpus, pid, instance, source
    assert len(jobs) == 3 and {j[4] for j in jobs} == {s.source_id for s in RunDir(tmp_path / "run").read("sources")}
    assert {j[1] for j in jobs} <= {"3", "5"} and os.getpid() not in {int(j[2]) for j in jobs}
    by_pid: dict[str, set[str]] = {}
    for j in jobs:
        by_pid.setdefault(j[2], set()).add(j[3])
    assert len(by_pid) <= 2 and all(len(instances) == 1 for instances in by_pid.values())  # one load per slot, not per job
    assert all(len({j[1] for j in jobs if j[2] == pid}) == 1 for pid in by_pid)  # a slot always sees its own GPU


@pytest.mark.parametrize("gpu_worker", [["--gpus", "7", "--per-job"]], indirect=True)
def test_per_job_workers_are_pinned_too(gpu_worker, speech_dir, tmp_path):
    import socket

    assert pinned_workers(gpu_worker, 1) == {f"{socket.gethostname()}-gpu7": "7"}
    state = tmp_path / "probe"
    state.mkdir()
    summary = run_pipeline([str(speech_dir / "beckett.wav")], str(tmp_path / "run"), probe_config(gpu_worker, state))
    assert not [r.reason for r in summary.rejects if r.severity == "error"]
    [job] = [p.name.split("-") for p in state.iterdir()]
    assert job[1] == "7" and int(job[2]) != os.getpid()  # a flow-run process of the worker, which saw only GPU 7


@pytest.mark.parametrize("gpu_worker", [["--gpus", "3"]], indirect=True)
def test_a_resident_worker_survives_a_job_cancelled_under_it_and_serves_the_next(gpu_worker, speech_dir, tmp_path):
    pinned_workers(gpu_worker, 1)
    parent = next(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and
                  f"--pool\0{gpu_worker}\0--gpus".encode() in (p / "cmdline").read_bytes())
    [slot] = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    state = tmp_path / "probe"
    state.mkdir()
    (state / "sleep").write_text("8")
    config = probe_config(gpu_worker, state).model_copy(deep=True)
    config.runtime.gpu.timeout_s = 3  # stage 3 stops waiting (and cancels the run) before the slow job ends
    summary = run_pipeline([str(speech_dir / "beckett.wav")], str(tmp_path / "run"), config)
    assert any("no worker on pool" in r.reason for r in summary.rejects if r.stage == "annotate")
    time.sleep(10)  # the job ends, its run already Cancelled
    # the slot finished the job it had started (its answers are not read: stage 3 moved on), it did not crash
    assert [r.state.name for r in pool_runs(gpu_worker)] in (["Cancelled"], ["Completed"])
    assert Path(f"/proc/{parent}/task/{parent}/children").read_text().split() == [slot]  # the same process, not restarted
    (state / "sleep").unlink()
    summary = run_pipeline([str(speech_dir / "beckett.wav")], str(tmp_path / "run"), probe_config(gpu_worker, state))
    assert not [r.reason for r in summary.rejects if r.stage == "annotate"]
    assert sorted(r.state.name for r in pool_runs(gpu_worker))[-1] == "Completed" and len(pool_runs(gpu_worker)) == 2
    assert {p.name.split("-")[2] for p in state.iterdir()} == {slot}  # both jobs in the one resident process
