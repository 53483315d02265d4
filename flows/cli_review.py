"""`emoforge agreement` and `emoforge evaluate`: agreement between reviewers held to the gates
(stage 5), and a model's predictions scored against an exported benchmark (stage 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from flows.cli_common import UserError, err, out


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

    from pipeline.review.agreement import assess
    from pipeline.review.ratings import LEVELS, RatingsError, read_ratings
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
