"""The benchmark evaluator's report (pipeline/export/evaluate): label metrics, rationale overlap and
evidence coverage of one model's predictions on one split of an exported dataset."""

from __future__ import annotations

from pydantic import BaseModel


class ClassMetrics(BaseModel):
    label: str
    precision: float
    recall: float
    f1: float
    support: int  # gold clips of this class
    predicted: int  # clips predicted as this class


class ConfusionMatrix(BaseModel):
    gold: list[str]  # rows
    predicted: list[str]  # columns: the taxonomy, plus "(missing)" when predictions were missing
    matrix: list[list[int]]


class RationaleMetrics(BaseModel):
    n_pairs: int  # clips with both a predicted rationale and reference steps
    n_without_prediction: int  # scored clips whose prediction has no rationale
    n_without_reference: int  # predicted rationales on clips without reference steps
    rouge_l: float | None  # mean ROUGE-L F-measure, 0-1
    bleu: float | None  # sacrebleu corpus BLEU, 0-100


class EvidenceProblem(BaseModel):
    clip_id: str
    evidence_id: str
    verdict: str
    reason: str


class EvidenceCoverage(BaseModel):
    n_cited: int
    supported: int
    contradicted: int
    unverifiable: int
    coverage: float | None  # supported / cited
    n_predictions_citing: int
    contradictions: list[EvidenceProblem] = []


class EvaluationReport(BaseModel):
    dataset: str
    predictions: str | None
    split: str
    labels: list[str]  # the taxonomy, in order
    taxonomy_source: str  # "dataset card" or "dataset labels"
    n_clips: int  # clips of the split
    n_scored: int  # clips with a gold label
    n_unlabelled: int  # clips of the split without a gold label (not scored)
    n_predictions: int
    n_missing: int
    missing_clip_ids: list[str] = []
    accuracy: float
    macro_f1: float
    weighted_f1: float
    macro_precision: float
    uar: float
    war: float
    per_class: list[ClassMetrics]
    confusion: ConfusionMatrix
    rationale: RationaleMetrics
    evidence: EvidenceCoverage
