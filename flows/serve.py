"""Scheduled re-annotation: a Prefect deployment that reruns the pipeline on a cron (or interval)
schedule against a real Prefect server. Each run re-reads the configuration file, so editing the
panel, prompts or judge weights takes effect at the next run; the caches make it recompute only
what changed, and the export records a new dataset version with a change report. A run never
overlaps the previous one: the deployment's concurrency limit is 1 (a run that fires while one is
in progress is cancelled) and the serving runner executes one run at a time."""

from __future__ import annotations

import os

from prefect import flow


@flow(name="emoforge-scheduled", log_prints=True)
def scheduled_run(inputs: list[str], out_dir: str, config_file: str | None = None, overrides: list[str] | None = None):
    """One scheduled run. A run directory held by another command (a manual `emoforge run`, an
    export) is not waited for: this run is skipped, ending Cancelled with the holder in its message,
    and the next one on the schedule tries again."""
    from flows.cli import expand_inputs
    from flows.pipeline_flow import run_pipeline
    from prefect import get_run_logger
    from prefect.states import Cancelled
    from schemas import load_config
    from storage.lock import RunDirLocked
    from pathlib import Path

    logger = get_run_logger()
    config = load_config(config_file, overrides or [])
    try:
        summary = run_pipeline(expand_inputs([Path(i) for i in inputs]), out_dir, config, notify=logger.warning, command="serve")
    except RunDirLocked as exc:
        logger.warning("skipped: %s", exc)
        return Cancelled(message=f"skipped: {exc}")
    return {"run_id": summary.run_id, "stages": [s.model_dump() for s in summary.stages]}


class ServeError(RuntimeError):
    pass


def serve(inputs: list[str], out_dir: str, *, cron: str | None, interval: float | None, config_file: str | None,
          overrides: list[str], name: str) -> None:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    if not os.environ.get("PREFECT_API_URL"):
        raise ServeError("serve needs a running Prefect server: export PREFECT_API_URL=$(scripts/prefect-server start)")
    if (cron is None) == (interval is None):
        raise ServeError("give exactly one of --cron and --interval")
    scheduled_run.serve(
        name=name, cron=cron, interval=interval, print_starting_message=False,
        parameters={"inputs": inputs, "out_dir": out_dir, "config_file": config_file, "overrides": overrides},
        global_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        limit=1,  # and this runner executes one run at a time
    )
