"""An evaluation report written out: JSON and markdown files (all or nothing), and rich tables for
the terminal."""

from __future__ import annotations

import json
import math
from pathlib import Path

from pipeline.export.evaluate.errors import EvaluationError
from schemas.evaluation import EvaluationReport
from storage.parquet import atomic_write_bytes


def _fmt(x: float | None, digits: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def render_markdown(report: EvaluationReport) -> str:
    r = report
    lines = [
        f"# Evaluation: {Path(r.predictions).name if r.predictions else 'predictions'} on {r.split}",
        "",
        f"- dataset: `{r.dataset}`",
        f"- clips scored: {r.n_scored} of {r.n_clips} ({r.n_unlabelled} without a gold label)",
        f"- predictions: {r.n_predictions}; missing (counted as wrong): {r.n_missing}",
        f"- taxonomy ({r.taxonomy_source}): {', '.join(r.labels)}",
        "",
        "| metric | value |",
        "|---|---:|",
        f"| accuracy | {_fmt(r.accuracy)} |",
        f"| macro F1 | {_fmt(r.macro_f1)} |",
        f"| weighted F1 | {_fmt(r.weighted_f1)} |",
        f"| UAR (macro recall) | {_fmt(r.uar)} |",
        f"| WAR (weighted recall) | {_fmt(r.war)} |",
        f"| ROUGE-L F ({r.rationale.n_pairs} rationales) | {_fmt(r.rationale.rouge_l)} |",
        f"| BLEU ({r.rationale.n_pairs} rationales) | {_fmt(r.rationale.bleu, 1)} |",
        f"| evidence coverage ({r.evidence.supported}/{r.evidence.n_cited} supported) | {_fmt(r.evidence.coverage)} |",
        "",
        "## Per class",
        "",
        "| label | precision | recall | F1 | support | predicted |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {c.label} | {_fmt(c.precision)} | {_fmt(c.recall)} | {_fmt(c.f1)} | {c.support} | {c.predicted} |" for c in r.per_class),
        "",
        "## Confusion matrix (rows gold, columns predicted)",
        "",
        "| gold \\ predicted | " + " | ".join(r.confusion.predicted) + " |",
        "|---|" + "---:|" * len(r.confusion.predicted),
        *(f"| {g} | " + " | ".join(str(v) for v in row) + " |" for g, row in zip(r.confusion.gold, r.confusion.matrix)),
        "",
        "## Evidence",
        "",
        f"{r.evidence.n_cited} pieces of evidence cited by {r.evidence.n_predictions_citing} predictions: "
        f"{r.evidence.supported} supported, {r.evidence.contradicted} contradicted, {r.evidence.unverifiable} unverifiable.",
    ]
    if r.evidence.contradictions:
        lines += ["", "| clip | evidence | why contradicted |", "|---|---|---|"]
        lines += [f"| {p.clip_id} | {p.evidence_id} | {p.reason.replace('|', '/')} |" for p in r.evidence.contradictions]
    if r.missing_clip_ids:
        lines += ["", "## Missing predictions", "", ", ".join(r.missing_clip_ids)]
    return "\n".join(lines) + "\n"


def write_outputs(report: EvaluationReport, json_path: Path | None = None, markdown_path: Path | None = None) -> list[Path]:
    """Write the JSON and/or markdown report, each atomically; if one fails, remove what was written."""
    payloads = []
    if json_path is not None:
        payloads.append((Path(json_path), (json.dumps(report.model_dump(mode="json"), indent=2) + "\n").encode()))
    if markdown_path is not None:
        payloads.append((Path(markdown_path), render_markdown(report).encode()))
    written: list[Path] = []
    for path, data in payloads:
        try:
            existed = path.exists()
            atomic_write_bytes(path, data)
        except OSError as exc:
            for w, was in written:
                if not was:
                    w.unlink(missing_ok=True)
            raise EvaluationError(path, f"cannot write: {exc.strerror or exc}") from None
        written.append((path, existed))
    return [w for w, _ in written]


def rich_tables(report: EvaluationReport) -> list:
    """The report for the terminal: a heading line, then rich tables (summary, per class, confusion matrix)."""
    from rich.table import Table

    r = report
    from rich.text import Text

    heading = Text(f"evaluation: {Path(r.predictions).name if r.predictions else 'predictions'} on {r.split} of {r.dataset} "
                   f"({r.n_scored} clips scored, {r.n_missing} missing)", style="bold")
    summary = Table()
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    for name, value in (("accuracy", _fmt(r.accuracy)), ("macro F1", _fmt(r.macro_f1)), ("weighted F1", _fmt(r.weighted_f1)),
                        ("UAR", _fmt(r.uar)), ("WAR", _fmt(r.war)),
                        (f"ROUGE-L ({r.rationale.n_pairs})", _fmt(r.rationale.rouge_l)), (f"BLEU ({r.rationale.n_pairs})", _fmt(r.rationale.bleu, 1)),
                        (f"evidence coverage ({r.evidence.supported}/{r.evidence.n_cited})", _fmt(r.evidence.coverage)),
                        ("contradicted evidence", str(r.evidence.contradicted))):
        summary.add_row(name, value)
    per = Table(title="per class", title_justify="left")
    for col in ("label", "precision", "recall", "F1", "support", "predicted"):
        per.add_column(col, justify="left" if col == "label" else "right")
    for c in r.per_class:
        per.add_row(c.label, _fmt(c.precision), _fmt(c.recall), _fmt(c.f1), str(c.support), str(c.predicted))
    cm = Table(title="confusion matrix (rows gold, columns predicted)", title_justify="left")
    cm.add_column("gold")
    for col in r.confusion.predicted:
        cm.add_column(col, justify="right")
    for g, row in zip(r.confusion.gold, r.confusion.matrix):
        cm.add_row(g, *(str(v) if v else "[dim]0[/dim]" for v in row))
    return [heading, summary, per, cm]
