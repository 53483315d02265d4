"""evaluate(): one model's predictions held against a split of an exported dataset (see the package
docstring for what is measured). Checks that the predictions fit the split, then gathers the metrics."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pipeline.export.evaluate.errors import DatasetError, PredictionsError, some
from pipeline.export.evaluate.gold import dataset_taxonomy, gold_labels, norm
from pipeline.export.evaluate.metrics import MISSING, evidence_coverage, label_metrics, rationale_metrics
from schemas import Prediction
from schemas.evaluation import EvaluationReport
from storage.dataset_dir import SPLITS, DatasetDir


def evaluate(predictions: list[Prediction], dataset_dir: str | Path, split: str = "test", *, allow_missing: bool = False,
             predictions_path: str | Path | None = None) -> EvaluationReport:
    """Score predictions against a split of an exported dataset. Writes nothing.

    Raises DatasetError for an unusable dataset or split, PredictionsError (naming predictions_path, or
    "predictions") for unknown clip ids, duplicate clip ids, labels outside the taxonomy, or clips of the
    split without a prediction (unless allow_missing)."""
    if split not in SPLITS:
        raise DatasetError(dataset_dir, f"unknown split {split!r} (splits: {', '.join(SPLITS)})")
    ds = DatasetDir(dataset_dir)
    where = predictions_path if predictions_path is not None else "predictions"
    gold, key = gold_labels(ds, split)
    taxonomy, tax_source = dataset_taxonomy(ds, key)
    if not taxonomy:
        raise DatasetError(ds.root, "the dataset has no labels at all, so there is nothing to score against")

    if not predictions:
        raise PredictionsError(where, "holds no predictions")
    dupes = [c for c, n in Counter(p.clip_id for p in predictions).items() if n > 1]
    if dupes:
        raise PredictionsError(where, f"{len(dupes)} clip id(s) predicted more than once: {some(dupes)}")
    gold_by_id = {g.clip_id: g for g in gold}
    unknown = [p.clip_id for p in predictions if p.clip_id not in gold_by_id]
    if unknown:
        raise PredictionsError(where, f"{len(unknown)} prediction(s) for clip ids not in the {split} split: {some(unknown)}")
    tax = set(taxonomy)
    outside = sorted({p.label for p in predictions if norm(p.label) not in tax})
    if outside:
        raise PredictionsError(where, f"label(s) outside the dataset's taxonomy: {some(outside)} (taxonomy: {', '.join(taxonomy)})")
    pred_by_id = {p.clip_id: p for p in predictions}
    scored = [g for g in gold if g.label is not None]
    if not scored:
        raise DatasetError(ds.root, f"no clip of the {split} split has a gold label")
    bad_gold = sorted({g.label for g in scored if g.label not in tax})
    if bad_gold:  # only possible when the card's class list disagrees with the data
        raise DatasetError(ds.root, f"gold label(s) outside the dataset card's class names: {some(bad_gold)}")
    missing = [g.clip_id for g in scored if g.clip_id not in pred_by_id]
    if missing and not allow_missing:
        raise PredictionsError(where, f"{len(missing)} clip(s) of the {split} split have no prediction: {some(missing)} "
                                      f"(--allow-missing counts them as wrong)")

    y_true = [g.label for g in scored]
    y_pred = [norm(pred_by_id[g.clip_id].label) if g.clip_id in pred_by_id else MISSING for g in scored]
    metrics = label_metrics(y_true, y_pred, taxonomy)
    return EvaluationReport(
        dataset=str(ds.root), predictions=None if predictions_path is None else str(predictions_path), split=split,
        labels=taxonomy, taxonomy_source=tax_source, n_clips=len(gold), n_scored=len(scored), n_unlabelled=len(gold) - len(scored),
        n_predictions=len(predictions), n_missing=len(missing), missing_clip_ids=missing, **metrics,
        rationale=rationale_metrics(scored, pred_by_id),
        evidence=evidence_coverage(ds, gold_by_id, [pred_by_id[g.clip_id] for g in gold if g.clip_id in pred_by_id]),
    )
