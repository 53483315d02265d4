"""The benchmark evaluator: one model's predictions held against an exported dataset (stage 6).
Predictions files come in (predictions.py), the dataset's gold side is read (gold.py), the metrics are
computed (metrics.py, gathered by score.evaluate) into an EvaluationReport (schemas/evaluation.py),
and written out (output.py).

    preds = read_predictions("preds.csv")               # CSV (clip_id,label[,rationale]), JSONL or Parquet
    report = evaluate(preds, "run/dataset", split="test")
    write_outputs(report, json_path=Path("eval.json"), markdown_path=Path("eval.md"))

What is measured, and against what
  gold labels  the answer key (DIR/answer_key/test.parquet) for the test split, the split's own rows
               otherwise. Rows whose gold label is empty (no consensus) are not scored: predictions for
               them are accepted and ignored, and they are not "missing".
  taxonomy     the label set the metrics are reported over, in this order of preference: the class
               names in the dataset card (README.md front matter, Hugging Face `class_label.names` of the
               `label` feature); otherwise every label the dataset mentions (labels, multi-labels,
               label distributions and annotator answers of every split, plus the answer key), ordered
               as in emoforge's default taxonomy with any other labels after it alphabetically. Labels
               are compared lower-cased and stripped. A predicted label outside the taxonomy is an error.
  labels       accuracy; macro and weighted F1; UAR (unweighted average recall: the mean recall over the
               classes that occur in the gold labels); WAR (weighted average recall: recall weighted by
               support, which equals accuracy); per-class precision/recall/F1/support over the whole
               taxonomy; the confusion matrix (rows gold, columns predicted, taxonomy order). Macro F1
               averages over the classes present in gold or predictions (scikit-learn's default), so
               predicting a class that never occurs costs macro F1. All via scikit-learn, zero_division=0.
  missing      a scored clip of the split without a prediction is an error, unless allow_missing: then it
               counts as wrong (a "(missing)" prediction: it lowers accuracy and that class's recall, it is
               no false positive of any class) and is listed in the report.
  rationale    ROUGE-L F-measure (rouge-score, stemmed; mean over clips that have both a predicted
               rationale and reference steps) and corpus BLEU (sacrebleu, 0-100) of the predicted rationale
               against the clip's reference rationale steps joined with spaces.
  evidence     every piece of evidence a prediction cites is checked against the clip's measured features
               with the judge's hallucination check (evidence.grounding.verify); coverage is the share
               that is "supported". Evidence on a clip the dataset has no features for is "unverifiable".

Errors: EvaluationError (PredictionsError for the predictions file, DatasetError for the dataset), whose
message starts with the file it is about. evaluate() writes nothing; write_outputs() writes only after
everything is computed, each file atomically, and removes what it wrote if a later write fails.
"""

from pipeline.export.evaluate.errors import DatasetError, EvaluationError, PredictionsError
from pipeline.export.evaluate.gold import card_taxonomy, dataset_taxonomy
from pipeline.export.evaluate.metrics import MISSING, reference_rationale
from pipeline.export.evaluate.output import render_markdown, rich_tables, write_outputs
from pipeline.export.evaluate.predictions import read_predictions
from pipeline.export.evaluate.score import evaluate
from schemas.evaluation import (ClassMetrics, ConfusionMatrix, EvaluationReport, EvidenceCoverage, EvidenceProblem,
                                RationaleMetrics)

__all__ = [
    "MISSING", "ClassMetrics", "ConfusionMatrix", "DatasetError", "EvaluationError", "EvaluationReport", "EvidenceCoverage",
    "EvidenceProblem", "PredictionsError", "RationaleMetrics", "card_taxonomy", "dataset_taxonomy", "evaluate",
    "read_predictions", "reference_rationale", "render_markdown", "rich_tables", "write_outputs",
]
