"""Resident GPU workers: one long-lived process per GPU slot takes the pool's flow runs and runs them
in-process, so a model loaded for one job serves the next (a Prefect process worker starts a fresh
process, and loads the weights again, for every job).

A slot polls the work pool, claims a scheduled run of the GPU deployment by moving it to Pending (the
server accepts that move from one claimant only, while the run is Pending or Running), and runs it
with Prefect's flow engine in its own process. The server also accepts Pending from a Completed run
whose result is not persisted (ours are not): a slot holding a stale list of due runs could claim one
another slot had already finished, and answer it twice. A claimed run that has run before is given
back its state and skipped. Its supervisor (`emoforge worker`) restarts a slot whose process died
and marks the flow run it was running Crashed, so stage 3 submits it again
(`runtime.gpu.crash_retries`), as it does for a crashed process worker."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from flows.gpu_pool import FLOW_NAME, annotate_on_pool, retry_while_busy, slot_env

log = logging.getLogger(__name__)
POLL_S = float(os.environ.get("PREFECT_WORKER_QUERY_SECONDS", "5"))


def serve_slot(pool: str, name: str, state_file: Path) -> None:
    """Take the pool's GPU flow runs one at a time, forever; `state_file` names the run in progress."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import Abort
    from prefect.flow_engine import run_flow

    with get_client(sync_client=True) as client:
        deployment = retry_while_busy(client.read_deployment_by_name)(f"{FLOW_NAME}/{pool}")
    while True:
        with get_client(sync_client=True) as client:
            client.send_worker_heartbeat(pool, name, heartbeat_interval_seconds=POLL_S)  # the pool lists the slot
            due = client.get_scheduled_flow_runs_for_work_pool(pool, scheduled_before=datetime.now(UTC))
            runs = sorted((r.flow_run for r in due if r.flow_run.deployment_id == deployment.id),
                          key=lambda r: r.expected_start_time or r.created)
            claimed = claim_first(client, runs)
        if claimed is None:
            time.sleep(POLL_S)
            continue
        state_file.write_text(str(claimed.id))
        try:
            run_flow(annotate_on_pool, flow_run=claimed)
        except Abort:  # the server refused the run's next state (e.g. cancelled under it): the slot goes on
            log.warning("slot %s: flow run %s was aborted by the server", name, claimed.name)
        except Exception as exc:  # noqa: BLE001  (the engine has already set the run Failed, with the error)
            log.warning("slot %s: flow run %s failed: %s: %s", name, claimed.name, type(exc).__name__, exc)
        finally:
            state_file.unlink(missing_ok=True)


def claim_first(client, runs: list) -> object | None:
    """The first of `runs` this slot moved to Pending and that had never run (read back, as the engine
    needs it), or None. `runs` may be stale: one another slot finished since is put back as it was."""
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Pending

    for run in runs:
        if client.set_flow_run_state(run.id, Pending(), force=False).status != SetStateStatus.ACCEPT:
            continue
        claimed = client.read_flow_run(run.id)
        if claimed.run_count == 0:
            return claimed
        before = [s for s in client.read_flow_run_states(run.id) if not s.is_pending()]
        last = max(before, key=lambda s: s.timestamp)
        # a busy server is asked again: left Pending, the run would look claimed by nobody for ever
        retry_while_busy(client.set_flow_run_state)(run.id, last.fresh_copy(), force=True)
        log.info("flow run %s had run already (%s); left as it was", claimed.name, last.name)
    return None


class Slot:
    """One resident worker process, pinned to its GPU when it has one, restarted when it dies."""

    def __init__(self, pool: str, gpu: str | None, name: str, state_dir: Path):
        self.pool, self.gpu, self.name = pool, gpu, name
        self.state_file = state_dir / f"{name}.flow-run"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = slot_env(self.gpu) if self.gpu is not None else dict(os.environ)
        self.proc = subprocess.Popen([sys.executable, "-m", "flows.gpu_slot", self.pool, self.name, str(self.state_file)], env=env)

    def crashed_run(self) -> str | None:
        """The flow run the dead process was running, marked Crashed (stage 3 submits it again)."""
        if not self.state_file.exists():
            return None
        from prefect.client.orchestration import get_client
        from prefect.states import Crashed

        run_id = self.state_file.read_text().strip()
        self.state_file.unlink()
        with get_client(sync_client=True) as client:
            retry_while_busy(client.set_flow_run_state)(run_id, Crashed(message=f"GPU slot {self.name} exited with {self.proc.returncode}"),
                                                        force=True)
        return run_id


def supervise(pool: str, gpus: list[str] | None) -> int:
    """Run one resident slot per GPU (one unpinned slot without gpus) until SIGTERM/SIGINT."""
    import socket
    import tempfile

    host = socket.gethostname()
    state_dir = Path(tempfile.mkdtemp(prefix="emoforge-slots-"))
    slots = [Slot(pool, g, f"{host}-gpu{g}", state_dir) for g in gpus] if gpus else [Slot(pool, None, host, state_dir)]
    stopping: list[int] = []

    def stop(signum, _frame) -> None:
        stopping.append(signum)
        for slot in slots:
            if slot.proc and slot.proc.poll() is None:
                slot.proc.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in slots:
        slot.start()
    while not stopping:
        for slot in slots:
            if slot.proc.poll() is None or stopping:
                continue
            run = slot.crashed_run()
            log.warning("GPU slot %s exited (%s)%s; starting it again", slot.name, slot.proc.returncode,
                        f" while running flow run {run}, now Crashed" if run else "")
            slot.start()
        time.sleep(0.5)
    for slot in slots:
        try:
            slot.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            slot.proc.kill()
            slot.proc.wait()
        slot.crashed_run()  # a job cut short by the shutdown is submitted again elsewhere
    return 0


if __name__ == "__main__":
    from flows.prefect_env import configure_prefect

    configure_prefect()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    serve_slot(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
