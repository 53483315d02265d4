"""`emoforge server`, `serve` and `worker`: the long-running services around the pipeline (the local
Prefect server, a schedule that re-annotates, GPU workers for pipelines elsewhere)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from flows.cli_common import load_config_checked, UserError, err, out
from flows.prefect_env import configure_prefect


def server(
    action: Annotated[str, typer.Argument(help="status, start or stop")] = "status",
    port: Annotated[Optional[int], typer.Option("--port", help="default: EMOFORGE_PREFECT_PORT or 4200")] = None,
) -> None:
    """The local Prefect server that runs reuse (`emoforge run` starts it when none answers)."""
    from flows.prefect_server import LocalServer, ServerError

    local = LocalServer.configured(port)
    if action == "start":
        try:
            out.print(local.start(), markup=False)
        except ServerError as exc:
            raise UserError(str(exc)) from None
    elif action == "stop":
        out.print(f"stopped the Prefect server on port {local.port}" if local.stop() else f"no Prefect server of ours on port {local.port}")
    elif action == "status":
        state = "healthy" if local.healthy() else "not running"
        out.print(f"{local.url}: {state} (pid {local.pid() or '-'}; database and log in {local.home})", markup=False)
        if state != "healthy":
            raise typer.Exit(1)
    else:
        raise UserError(f"server {action!r}: expected status, start or stop")


def serve_command(
    inputs: Annotated[list[Path], typer.Argument(help="media files or directories (re-read at every run)")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="run directory the schedule keeps up to date")],
    cron: Annotated[Optional[str], typer.Option("--cron", help="cron schedule in UTC, e.g. '0 3 * * *'")] = None,
    interval: Annotated[Optional[float], typer.Option("--interval", help="or: seconds between runs")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML configuration, re-read at every run")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set")] = None,
    name: Annotated[str, typer.Option("--name", help="deployment name")] = "reannotate",
) -> None:
    """Re-annotate on a schedule (a Prefect deployment; needs PREFECT_API_URL). Edit the config file
    and the next run recomputes only what changed and writes a new dataset version."""
    from flows.cli import expand_inputs
    from flows.serve import ServeError, serve

    expand_inputs(inputs)  # fail now, not at 3 am
    load_config_checked(config, overrides or [])
    configure_prefect()
    try:
        serve([str(i.resolve()) for i in inputs], str(out_dir.resolve()), cron=cron, interval=interval,
              config_file=str(config.resolve()) if config else None, overrides=overrides or [], name=name)
    except ServeError as exc:
        raise UserError(str(exc)) from None


def worker_command(
    pool: Annotated[str, typer.Option("--pool", help="work pool name; the pipeline's runtime.gpu.pool")] = "emoforge-gpu",
    limit: Annotated[int, typer.Option("--limit", min=1, help="flow runs at once per worker (per GPU with --gpus)")] = 1,
    gpus: Annotated[Optional[str], typer.Option("--gpus", help="one worker per GPU, pinned with CUDA_VISIBLE_DEVICES: 0,1,... or all")] = None,
    per_job: Annotated[bool, typer.Option("--per-job", help="a Prefect process worker: a fresh process (model load) per job")] = False,
) -> None:
    """Run GPU annotators for pipelines elsewhere: registers the pool's deployment, then serves its jobs
    (needs PREFECT_API_URL and the run directories at the same paths). By default one resident process
    per GPU keeps its model loaded from job to job; --per-job starts Prefect process workers instead.
    With --gpus every worker sees only its own GPU."""
    from flows.gpu_pool import parse_gpus, register_deployment, start_worker
    from flows.gpu_slot import supervise

    if not os.environ.get("PREFECT_API_URL"):
        raise UserError("worker needs the pipeline's Prefect server: export PREFECT_API_URL=http://HOST:4200/api")
    try:
        slots = parse_gpus(gpus) if gpus is not None else None
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if limit > 1 and not per_job:
        raise UserError("--limit is for --per-job workers; a resident worker runs one job at a time per GPU (give more with --gpus)")
    configure_prefect()
    kind = "per-job worker" if per_job else "resident worker"
    where = f"; starting one {kind} per GPU ({', '.join(slots)})" if slots else f"; starting a {kind}"
    err.print(f"deployment {register_deployment(pool)} on work pool {pool}{where}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(start_worker(pool, limit, slots) if per_job else supervise(pool, slots))
