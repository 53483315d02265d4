"""GPU annotators on their own Prefect work pool, so GPU machines take only GPU work.

`emoforge worker --pool NAME` (on each GPU machine) registers the deployment
`emoforge-annotate-gpu/NAME` and starts workers on the pool: by default one resident process per GPU
(`--gpus`, pinned with CUDA_VISIBLE_DEVICES) that keeps its model loaded from job to job
(flows/gpu_slot.py); with `--per-job`, Prefect process workers that start a process per job. With `runtime.gpu.pool` set,
stage 3 sends each (source, GPU annotator) pair there as one flow run: the job (clips, features,
spec) is written into the run directory, which the workers see at the same path, and the answers
come back beside it. The stage-3 task waiting on the run keeps its cache key, so a rerun reuses
answers the pool already gave. A flow run whose process died (out of memory, lost machine) ends
Crashed and is submitted again; answers are written once, atomically, so nothing is duplicated."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from prefect import flow

from schemas import AnnotatorInput, EmoforgeConfig, SourceAnnotations
from schemas.annotation import AnnotateJob
from schemas.config import AnnotatorSpec
from schemas.provenance import stable_hash
from storage.parquet import atomic_write_bytes

FLOW_NAME = "emoforge-annotate-gpu"
GPU_BACKENDS = {"transformers"}  # backends that load model weights onto an accelerator
log = logging.getLogger(__name__)


class PoolRunFailed(RuntimeError):
    pass


def runs_on_pool(spec: AnnotatorSpec, config: EmoforgeConfig) -> bool:
    gpu = config.runtime.gpu
    if gpu.pool is None:
        return False
    return spec.id in gpu.annotators if gpu.annotators is not None else spec.backend in GPU_BACKENDS


@flow(name=FLOW_NAME, validate_parameters=False)
def annotate_on_pool(job_file: str) -> int:
    """Runs on a GPU worker: answer one job and write the answers next to it."""
    from agents import annotator_hash, shared_annotator
    from pipeline.models import release

    job = AnnotateJob.model_validate_json(Path(job_file).read_text())
    if release("annotator", annotator_hash(job.spec, job.config)):  # a resident slot holds one model at a time
        free_gpu_memory()
    answers = shared_annotator(job.spec, job.config).annotate(job.items, job.run_id)
    atomic_write_bytes(Path(job.answers_file), SourceAnnotations(annotations=answers).model_dump_json().encode())
    return len(answers)


def free_gpu_memory() -> None:
    import gc

    gc.collect()
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        sys.modules["torch"].cuda.empty_cache()


def annotate_via_pool(items: list[AnnotatorInput], spec: AnnotatorSpec, config: EmoforgeConfig, run_id: str) -> SourceAnnotations:
    """Send one source's clips to the pool and wait for the answers (called inside the stage-3 task)."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Cancelled

    gpu = config.runtime.gpu
    jobs = Path(items[0].media_root or ".") / ".cache" / "pool-jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    key = f"{items[0].clip.source_id}-{spec.id}-{stable_hash([spec, [i.clip.clip_id for i in items], run_id])}"
    job_file, answers_file = jobs / f"{key}.job.json", jobs / f"{key}.answers.json"
    answers_file.unlink(missing_ok=True)
    job = AnnotateJob(spec=spec, config=config, items=items, run_id=run_id, answers_file=str(answers_file))
    atomic_write_bytes(job_file, job.model_dump_json().encode())
    deployment = f"{FLOW_NAME}/{gpu.pool}"
    # a busy server (503) is asked again; the idempotency key makes a repeated call find the flow run
    # it already created instead of creating a second one
    submit = retry_while_busy(run_deployment)
    for attempt in range(gpu.crash_retries + 1):
        try:
            run = submit(deployment, parameters={"job_file": str(job_file)}, timeout=gpu.timeout_s, poll_interval=1,
                         tags=["emoforge", f"annotator:{spec.id}"], idempotency_key=f"{key}-{attempt}")
        except Exception as exc:  # no such deployment: nobody ran `emoforge worker --pool` against this server
            raise PoolRunFailed(f"annotator {spec.id}: cannot start {deployment} ({type(exc).__name__}: {exc}); "
                                f"start a worker with `emoforge worker --pool {gpu.pool}`") from None
        state = run.state
        if state is not None and state.is_completed():
            return SourceAnnotations.model_validate_json(answers_file.read_text())
        if state is None or not state.is_final():
            with get_client(sync_client=True) as client:  # never let a late worker answer twice
                client.set_flow_run_state(run.id, Cancelled(message="emoforge stopped waiting"), force=True)
            raise PoolRunFailed(f"annotator {spec.id}: no worker on pool {gpu.pool!r} finished flow run {run.name} within "
                                f"{gpu.timeout_s:g} s (state {state.name if state else 'unknown'}); is `emoforge worker --pool {gpu.pool}` running?")
        if state.is_crashed() and attempt < gpu.crash_retries:
            log.warning("annotator %s: flow run %s on pool %s crashed (%s); submitting again", spec.id, run.name, gpu.pool, state.message)
            continue
        raise PoolRunFailed(f"annotator {spec.id}: flow run {run.name} on pool {gpu.pool!r} ended {state.name}: {state.message}")
    raise AssertionError("unreachable")


def _server_busy(exc: BaseException) -> bool:
    """A Prefect server on SQLite answers 503 while its database is locked: worth another try."""
    from prefect.deployments.runner import DeploymentApplyError
    from prefect.exceptions import PrefectHTTPStatusError

    cause = exc.__cause__ if isinstance(exc, DeploymentApplyError) else exc
    return isinstance(cause, PrefectHTTPStatusError) and cause.response.status_code >= 500


def retry_while_busy(fn):
    """Call fn again (up to six tries, backing off) while the Prefect server answers 5xx."""
    from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

    return retry(retry=retry_if_exception(_server_busy), stop=stop_after_attempt(6), wait=wait_exponential(multiplier=0.5, max=8),
                 reraise=True)(fn)


def register_deployment(pool: str) -> str:
    """Create the process work pool if missing and (re)register the GPU annotate deployment on it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments.runner import EntrypointType
    from prefect.exceptions import ObjectAlreadyExists

    @retry_while_busy
    def register() -> None:
        with get_client(sync_client=True) as client:
            try:
                client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            except ObjectAlreadyExists:
                pass
        # by module path: workers import the installed package, wherever their working directory is
        annotate_on_pool.to_deployment(name=pool, work_pool_name=pool, entrypoint_type=EntrypointType.MODULE_PATH,
                                       description="emoforge stage 3: GPU annotators").apply()

    register()
    return f"{FLOW_NAME}/{pool}"


def worker_argv(pool: str, limit: int, name: str | None = None) -> list[str]:
    prefect = str(Path(sys.executable).with_name("prefect"))
    return [prefect, "worker", "start", "--pool", pool, "--type", "process", "--limit", str(limit), *(["--name", name] if name else [])]


def parse_gpus(text: str) -> list[str]:
    """`0,1,3` or `all` (every CUDA device this machine has) as CUDA_VISIBLE_DEVICES values, one per slot."""
    if text.strip() == "all":
        import torch

        gpus = [str(i) for i in range(torch.cuda.device_count())]
        if not gpus:
            raise ValueError("--gpus all: this machine has no CUDA device")
        return gpus
    gpus = [g.strip() for g in text.split(",")]
    if not all(gpus) or len(set(gpus)) != len(gpus):
        raise ValueError(f"--gpus {text!r}: give distinct device indexes or UUIDs separated by commas (e.g. 0,1), or all")
    return gpus


def slot_env(gpu: str) -> dict[str, str]:
    """The environment of one GPU slot's worker: its flow runs (child processes) inherit it, so every
    job on the slot sees only its own GPU as cuda:0 and sizes its batches from that GPU's memory."""
    return {**os.environ, "CUDA_VISIBLE_DEVICES": gpu}


def start_worker(pool: str, limit: int, gpus: list[str] | None = None) -> int:
    """Without gpus: replace this process with one Prefect process worker on the pool. With gpus: one
    worker per GPU, each pinned to its GPU (CUDA_VISIBLE_DEVICES) and taking `limit` jobs at a time;
    this process waits on them, passes SIGTERM/SIGINT on, and stops them all when one exits."""
    if not gpus:
        argv = worker_argv(pool, limit)
        os.execv(argv[0], argv)
    import signal
    import socket
    import subprocess
    import time

    host = socket.gethostname()
    slots = [subprocess.Popen(worker_argv(pool, limit, f"{host}-gpu{g}"), env=slot_env(g)) for g in gpus]

    stopping = []

    def stop(signum, _frame) -> None:
        stopping.append(signum)
        for proc in slots:
            if proc.poll() is None:
                proc.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while all(proc.poll() is None for proc in slots):
        time.sleep(0.5)
    ended = [proc for proc in slots if proc.poll() is not None]
    if not stopping:  # a slot died on its own: the others go too, so a supervisor restarts the whole machine's set
        log.warning("GPU slot worker %s exited (%s); stopping the others", ended[0].args[-1], ended[0].returncode)
        stop(signal.SIGTERM, None)
    for proc in slots:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return ended[0].returncode or 0
