"""`emoforge` command line: run the pipeline, build and run the demo."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows.prefect_env import configure_prefect

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Turn raw video into explainable emotion datasets.")
err = Console(stderr=True)
out = Console()


class UserError(Exception):
    """A mistake on the command line: reported in one line, no traceback."""


class RichProgress:
    def __init__(self, console: Console):
        self.progress = Progress(
            TextColumn("[bold]{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(), console=console, transient=False,
        )
        self.tasks: dict[str, int] = {}
        self.reused: dict[str, int] = {}

    def start(self, stage: str, total: int) -> None:
        self.progress.start()  # idempotent: one live display, a bar per stage
        self.reused[stage] = 0
        self.tasks[stage] = self.progress.add_task(stage, total=total, note="")

    def advance(self, stage: str, item: str, reused: bool) -> None:
        self.reused[stage] += reused
        note = Path(item).name + (f"  ({self.reused[stage]} reused)" if self.reused[stage] else "")
        self.progress.update(self.tasks[stage], advance=1, note=note)

    def finish(self, stage: str) -> None:
        self.progress.update(self.tasks[stage], note=f"{self.reused[stage]} reused" if self.reused[stage] else "")

    def close(self) -> None:
        self.progress.stop()


def expand_inputs(inputs: list[Path]) -> list[str]:
    """Check that every input names something to read. The flow lists directories itself: every file,
    taken or rejected by its content (pipeline/sampling/inputs.py), never by its name."""
    from pipeline.sampling.inputs import InputError, list_inputs

    try:
        list_inputs(inputs)
    except InputError as exc:
        raise UserError(str(exc)) from None
    return [str(p) for p in inputs]


def print_summary(summary) -> None:
    table = Table(title=f"emoforge run {summary.run_id}", title_justify="left")
    for col in ("stage", "items", "computed", "reused", "outputs", "rejects", "seconds"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for s in summary.stages:
        table.add_row(s.stage, str(s.items), str(s.computed), str(s.reused), str(s.outputs), str(s.rejects), f"{s.seconds:.1f}")
    out.print(table)
    files = summary.files
    out.print(f"files: {files.found} found, {files.used} used, {files.rejected} rejected"
              + (" (each has a row in tables/rejects.parquet, listed below)" if files.rejected else ""), markup=False, highlight=False)
    if summary.rejects:
        rt = Table(title="rejects and warnings", title_justify="left")
        rt.add_column("severity")
        rt.add_column("stage")
        rt.add_column("reason", overflow="fold")
        for r in summary.rejects:
            rt.add_row(r.severity, r.stage, r.reason)
        out.print(rt)
    tables = sorted(f.stem for f in (Path(summary.out_dir) / "tables").glob("*.parquet"))
    out.print(f"tables: {summary.out_dir}/tables  ({', '.join(tables)})")
    judge = next((s for s in summary.stages if s.stage == "judge"), None)
    if judge is not None:
        out.print(f"review: {judge.outputs} of {summary.stages[0].outputs} clips flagged for human review")
        from storage import RunDir

        manifest = RunDir(Path(summary.out_dir)).read_manifest()
        routing = manifest.routing.model_dump() if manifest and manifest.routing else {}
        if routing.get("estimated_accuracy") is not None:
            out.print(f"accepted: {routing['n_accepted']} clips, expected accuracy {routing['estimated_accuracy']:.2f} "
                      f"(95% interval {routing['ci_low']:.2f}-{routing['ci_high']:.2f}; confidence calibrated on "
                      f"{routing['calibrated_on']} labelled clips)")
    root = Path(summary.out_dir)
    if (root / "dataset" / "README.md").exists():
        out.print(f"dataset: {root / 'dataset'}  (card README.md, croissant.json; report: {root / 'report' / 'report.md'})")


def _notice(message: str) -> None:
    err.print(f"emoforge: {message}", markup=False, highlight=False, soft_wrap=True)


def _run(inputs: list[str], out_dir: Path, config_file: Optional[Path], overrides: list[str], wait: bool = False):
    from schemas.config import ConfigError, load_config

    try:
        config = load_config(config_file, overrides)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: output path exists and is not a directory")
    from storage.lock import RunDirLocked, RunLock
    from storage.run_dir import new_run_id

    run_id = new_run_id()
    try:  # before the slow imports below, so a refusal is immediate
        lock = RunLock(out_dir, "run", run_id).acquire(wait=wait, notify=_notice)
    except RunDirLocked as exc:
        raise UserError(str(exc)) from None
    with lock:
        from flows.prefect_server import ServerError, use_local_server

        try:
            use_local_server(notify=_notice)  # before prefect is imported: it reads the API URL once
        except ServerError as exc:
            raise UserError(str(exc)) from None
        configure_prefect()
        from flows import progress
        from flows.pipeline_flow import run_pipeline

        from flows.task_runners import SchedulerUnreachable

        bars = RichProgress(err)
        progress.set_hook(bars)
        try:
            summary = run_pipeline(inputs, str(out_dir), config, run_id, notify=_notice, lock=lock)
        except SchedulerUnreachable as exc:
            raise UserError(str(exc)) from None
        finally:
            bars.close()
            progress.set_hook(None)
    print_summary(summary)
    return summary


@app.command()
def run(
    inputs: Annotated[list[Path], typer.Argument(help="media files or directories")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="run directory (created; reruns resume)")],
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML configuration file")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="override, e.g. sampling.clips.max_clip_s=10")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="if another command is writing OUT, wait for it (default: exit 2)")] = False,
) -> None:
    """Run the pipeline on media files."""
    _run(expand_inputs(inputs), out_dir, config, overrides or [], wait)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="run directory")] = Path("emoforge-demo"),
    config: Annotated[Optional[Path], typer.Option("--config", "-c")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set")] = None,
) -> None:
    """Build demo media from recordings inside installed packages and run the pipeline on them."""
    from flows.demo import DemoMediaError, build_demo_media

    try:
        media = build_demo_media(out_dir / "demo-media")
    except DemoMediaError as exc:
        raise UserError(str(exc)) from None
    err.print(f"demo media: {out_dir / 'demo-media'} ({len(media)} files, see SOURCES.md)")
    _run([str(m) for m in media], out_dir, config, overrides or [])


@app.command("server")
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


@app.command("config")
def show_config(
    config: Annotated[Optional[Path], typer.Option("--config", "-c")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set")] = None,
) -> None:
    """Print the resolved configuration (defaults = the offline default) as YAML."""
    import yaml

    from schemas.config import ConfigError, load_config

    try:
        resolved = load_config(config, overrides or [])
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    out.print(yaml.safe_dump(resolved.model_dump(mode="json"), sort_keys=False), end="", highlight=False, markup=False)


@app.command("agreement")
def agreement_command(
    ratings: Annotated[Path, typer.Argument(help="ratings table (.csv or .parquet): an item column, then one column per rater")],
    level: Annotated[str, typer.Option("--level", help="nominal | ordinal | interval | ratio")] = "nominal",
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write every statistic and the decision as JSON")] = None,
    kappa_gate: Annotated[Optional[float], typer.Option("--kappa-gate", help="kappa must exceed this  [default: 0.8]")] = None,
    icc_gate: Annotated[Optional[float], typer.Option("--icc-gate", help="ICC(2,1) must exceed this  [default: 0.9]")] = None,
    alpha_gate: Annotated[Optional[float], typer.Option("--alpha-gate", help="Krippendorff's alpha must exceed this (off unless given)")] = None,
    categories: Annotated[Optional[str], typer.Option("--categories", help="comma-separated labels, in order for ordinal text labels")] = None,
    model_column: Annotated[Optional[str], typer.Option("--model-column", help="a column of model labels (not a rater): human-vs-model kappa")] = None,
) -> None:
    """Agreement between reviewers: kappas, Krippendorff's alpha, ICC, Spearman; held to the gates."""
    import json

    from pydantic import ValidationError
    from rich.markup import escape

    from pipeline.review.agreement import LEVELS, RatingsError, assess, read_ratings
    from schemas.config import AgreementGates

    if level not in LEVELS:
        raise UserError(f"--level must be one of {', '.join(LEVELS)}, not {level!r}")
    given = {"kappa": kappa_gate, "icc": icc_gate, "alpha": alpha_gate}
    try:
        gates = AgreementGates(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        bad = exc.errors()[0]
        raise UserError(f"--{bad['loc'][0]}-gate: {bad['msg']}") from None
    cats = [c.strip() for c in categories.split(",")] if categories else None
    try:
        table = read_ratings(ratings, level, cats)  # type: ignore[arg-type]
        model = None
        if model_column is not None:
            if model_column not in table.columns:
                raise UserError(f"{ratings}: no column {model_column!r} for --model-column (columns: {', '.join(table.columns)})")
            model = table.pop(model_column)
            if table.shape[1] < 2:
                raise UserError(f"{ratings}: agreement needs at least 2 rater columns besides {model_column!r}")
        report = assess(table, level, gates, cats, model_labels=model, source=str(ratings))  # type: ignore[arg-type]
    except RatingsError as exc:
        raise UserError(str(exc)) from None

    table_out = Table(
        title=f"agreement: {ratings.name}  ({report.level}, {report.n_items} items, {len(report.raters)} raters)", title_justify="left"
    )
    for col, justify in (("statistic", "left"), ("value", "right"), ("items", "right"), ("gate", "right"), ("result", "left"), ("note", "left")):
        table_out.add_column(col, justify=justify, overflow="fold")
    for s in report.stats:
        result = "" if s.gate is None else ("[green]pass[/green]" if s.passed else "[red]fail[/red]" if s.passed is False else "[yellow]n/a[/yellow]")
        value = "—" if s.value is None else f"{s.value:.3f}"
        note = s.reason if s.value is None else (s.note or "")
        table_out.add_row(escape(s.name), value, str(s.n_items), "" if s.gate is None else f"> {s.gate:g}", result, escape(note or ""))
    out.print(table_out)
    colour = "green" if report.decision == "accepted" else "red"
    out.print(f"decision: [bold {colour}]{report.decision}[/bold {colour}]")
    for reason in report.reasons:
        out.print(f"  - {reason}", markup=False, highlight=False)
    if json_out is not None:
        try:
            json_out.write_text(json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
        except OSError as exc:
            raise UserError(f"{json_out}: cannot write: {exc.strerror or exc}") from None
        err.print(f"written: {json_out}")


@app.command("evaluate")
def evaluate_command(
    predictions: Annotated[Path, typer.Argument(help="predictions: .csv (clip_id,label[,rationale]), .jsonl or .parquet (Prediction fields)")],
    dataset: Annotated[Path, typer.Option("--dataset", "-d", help="exported dataset directory (stage 6)")],
    split: Annotated[str, typer.Option("--split", help="train | validation | test (test is scored against the answer key)")] = "test",
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write every metric as JSON")] = None,
    report_out: Annotated[Optional[Path], typer.Option("--report", help="write a markdown report")] = None,
    allow_missing: Annotated[bool, typer.Option("--allow-missing", help="clips without a prediction count as wrong instead of an error")] = False,
) -> None:
    """Score a model's predictions against an exported benchmark: labels, rationales, evidence."""
    from pipeline.export.evaluate import EvaluationError, evaluate, read_predictions, rich_tables, write_outputs
    from storage.dataset_dir import SPLITS

    if split not in SPLITS:
        raise UserError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    try:
        report = evaluate(read_predictions(predictions), dataset, split, allow_missing=allow_missing, predictions_path=predictions)
        written = write_outputs(report, json_out, report_out)
    except EvaluationError as exc:
        raise UserError(str(exc)) from None
    for table in rich_tables(report):
        out.print(table)
    if report.n_missing:
        err.print(f"{report.n_missing} clip(s) had no prediction and were counted as wrong", markup=False, highlight=False)
    for path in written:
        err.print(f"written: {path}", markup=False, highlight=False)


@app.command("serve")
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
    from flows.serve import ServeError, serve
    from schemas.config import ConfigError, load_config

    expand_inputs(inputs)  # fail now, not at 3 am
    try:
        load_config(config, overrides or [])
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    configure_prefect()
    try:
        serve([str(i.resolve()) for i in inputs], str(out_dir.resolve()), cron=cron, interval=interval,
              config_file=str(config.resolve()) if config else None, overrides=overrides or [], name=name)
    except ServeError as exc:
        raise UserError(str(exc)) from None


@app.command("worker")
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


def _finished_run(run_dir: Path, config_file: Optional[Path], overrides: list[str], command: str, wait: bool):
    """The run, its configuration and id, read holding its lock (returned last: the caller holds it)."""
    from schemas.config import ConfigError, load_config
    from storage import RunDir
    from storage.lock import RunDirLocked, RunLock

    if not (run_dir / "tables").is_dir():
        raise UserError(f"{run_dir}: not an emoforge run directory (no tables/)")
    try:
        lock = RunLock(run_dir, command).acquire(wait=wait, notify=_notice, create=False)
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


@app.command("export")
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


@app.command("report")
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


def main() -> None:
    code = 0
    try:
        returned = app(standalone_mode=False)
        code = returned if isinstance(returned, int) else 0  # typer.Exit(n) returns n in this mode
    except UserError as exc:
        from rich.markup import escape

        # one line however long (paths are): wrapping would break greps and scripts reading stderr
        err.print(f"[red]emoforge: error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
        code = 2
    except typer.Abort:
        code = 130
    except Exception as exc:  # click usage errors carry their own exit code and message
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            code = exc.exit_code
        else:
            raise
    hard_exit(code)


def hard_exit(code: int) -> None:
    """Exit without interpreter teardown: native libraries (ctranslate2/oneDNN) can crash there after
    all work is done. atexit handlers still run first, so Prefect stops its temporary API server."""
    import atexit

    try:
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
