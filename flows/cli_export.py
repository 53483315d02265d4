"""`emoforge export` and `emoforge report`: a finished run exported as a benchmark dataset, and its
run report, each read holding the run's lock."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from flows.cli_common import UserError, err, notice


def _finished_run(run_dir: Path, config_file: Optional[Path], overrides: list[str], command: str, wait: bool):
    """The run, its configuration and id, read holding its lock (returned last: the caller holds it)."""
    from schemas.config import ConfigError, load_config
    from storage import RunDir
    from storage.lock import RunDirLocked, RunLock

    if not (run_dir / "tables").is_dir():
        raise UserError(f"{run_dir}: not an emoforge run directory (no tables/)")
    try:
        lock = RunLock(run_dir, command).acquire(wait=wait, notify=notice, create=False)
    except RunDirLocked as exc:
        raise UserError(str(exc)) from None
    try:
        # a run's own resolved configuration is the default: exporting again gives the same splits
        base = config_file or (run_dir / "config.yaml" if (run_dir / "config.yaml").exists() else None)
        config = load_config(base, overrides)
    except ConfigError as exc:
        lock.release()
        raise UserError(str(exc)) from None
    run = RunDir(run_dir)
    return run, config, getattr(run.read_manifest(), "run_id", run_dir.name), lock


def export_command(
    run_dir: Annotated[Path, typer.Argument(help="a finished run directory")],
    out: Annotated[Path, typer.Option("--out", "-o", help="dataset folder to write: new, empty, or an earlier export (replaced whole); anything else is refused")],
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML configuration (default: the run's own)")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="override, e.g. export.seed=3")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="if another command is writing the run, wait for it (default: exit 2)")] = False,
    media: Annotated[Optional[str], typer.Option("--media", help="media the dataset ships: clips (MP4/FLAC + key frames), keyframes, or none (default: export.media, clips)")] = None,
    formats: Annotated[Optional[list[str]], typer.Option("--format", help="instruction-tuning files too: sharegpt (LLaMA-Factory), swift (ms-swift), merr (Emotion-LLaMA); repeatable")] = None,
) -> None:
    """Export a run as a Parquet benchmark (splits, hidden test labels, card, Croissant, media) somewhere else."""
    from pipeline.export.dataset import ExportError
    from pipeline.export.export import export_run

    from pipeline.export.destination import check_destination

    try:  # before the lock: a refused --out leaves the run untouched, not even a lock file made
        check_destination(out, run_dir)
    except ExportError as exc:
        raise UserError(str(exc)) from None
    # the options are overrides, so the configuration validates them (and a bad one names the key)
    extra = ([f"export.media={media}"] if media is not None else []) + ([f"export.formats=[{','.join(formats)}]"] if formats else [])
    run, cfg, run_id, lock = _finished_run(run_dir, config, [*(overrides or []), *extra], "export", wait)
    try:
        sizes = export_run(run, out, cfg, run_id)
    except ExportError as exc:
        raise UserError(str(exc)) from None
    finally:
        lock.release()
    out_sizes = ", ".join(f"{k} {v}" for k, v in sizes.splits.items())
    err.print(f"written: {out} ({out_sizes})", markup=False, highlight=False)


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="a finished run directory")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="directory for report.md and the plots (default RUN/report)")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="if another command is writing the run, wait for it (default: exit 2)")] = False,
) -> None:
    """Write the run report (label distribution, S_final, annotator agreement, review funnel, timings)."""
    from pipeline.export.report import write_run_report

    run, _, _, lock = _finished_run(run_dir, None, [], "report", wait)
    with lock:
        path = write_run_report(run, out or run_dir / "report")
    err.print(f"written: {path}", markup=False, highlight=False)
