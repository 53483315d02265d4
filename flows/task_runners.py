"""Where stages 1-3 run their per-source tasks: threads in the flow's process (the default), or a
Dask cluster through Prefect's Dask task runner (a LocalCluster here, or a scheduler's address).
Stages 4-6 look across the whole run and stay in the flow's process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from schemas import EmoforgeConfig


class SchedulerUnreachable(RuntimeError):
    """The configured Dask scheduler did not answer; raised before any work starts."""


def check_scheduler(address: str, timeout_s: float) -> int:
    """Connect once to a Dask scheduler; return its worker count, or say plainly why we cannot."""
    import distributed

    try:
        with distributed.Client(address, timeout=timeout_s, set_as_default=False) as client:
            return len(client.scheduler_info(n_workers=-1).get("workers", {}))
    except (OSError, TimeoutError, ValueError) as exc:  # refused, timed out, or not a scheduler address
        raise SchedulerUnreachable(
            f"Dask scheduler {address} (runtime.dask.address) is unreachable after {timeout_s:g} s: {type(exc).__name__}: {exc}. "
            "Start one (`dask scheduler` plus `dask worker ADDRESS`), fix the address, or set runtime.task_runner=threads."
        ) from None


def make_task_runner(config: EmoforgeConfig) -> TaskRunner:
    runtime = config.runtime
    if runtime.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=runtime.workers)
    from prefect_dask import DaskTaskRunner

    dask = runtime.dask
    if dask.address:
        check_scheduler(dask.address, dask.connect_timeout_s)
        return DaskTaskRunner(address=dask.address)
    # Worker processes, not threads: decoding, VAD and feature extraction hold the GIL in places.
    # The nanny sets OMP/MKL threads to 1 per worker, so torch does not oversubscribe the cores.
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs={
        "n_workers": dask.n_workers or runtime.workers, "threads_per_worker": dask.threads_per_worker,
        "processes": True, "dashboard_address": None})


@contextlib.contextmanager
def api_for_workers(config: EmoforgeConfig) -> Iterator[None]:
    """Dask worker processes report task runs to the flow's Prefect API. With no server configured,
    each worker would start a temporary server of its own (slow, and all on one SQLite file), so
    start the temporary server here and hand its URL to every process of the run."""
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    if config.runtime.task_runner != "dask" or get_current_settings().api.url:
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the process-wide one Prefect's own ephemeral mode would use
    server.start(timeout=get_current_settings().server.ephemeral.startup_timeout_seconds)
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield
