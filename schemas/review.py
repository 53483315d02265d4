"""Stage-5 output: human verdicts from Label Studio and agreement between people."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from schemas.provenance import Provenance


class ReviewerAnswer(BaseModel):
    reviewer: str
    labels: list[str]
    intensity: float | None = None
    evidence_correct: bool | None = None
    correction: str | None = None
    submitted_at: datetime | None = None
    task_id: int | None = None
    annotation_id: int | None = None


class AgreementStat(BaseModel):
    name: str  # "cohen_kappa", "fleiss_kappa", "krippendorff_alpha", "icc2", "spearman", ...
    value: float | None
    n_items: int
    gate: float | None = None  # threshold it was held to, if any
    passed: bool | None = None


class Review(BaseModel):
    clip_id: str
    task_id: int | None = None
    answers: list[ReviewerAnswer] = []
    final_label: str | None = None
    final_labels: list[str] = []
    final_source: Literal["human", "model"] = "model"
    agreement: list[AgreementStat] = []
    decision: Literal["accepted", "escalated", "pending"] = "pending"
    provenance: Provenance


class ReviewTask(BaseModel):
    """A Label Studio task as a pull reads it (pipeline/review/mirror.py keeps these fields of each):
    which clip it is, its reviewers' annotations as Label Studio wrote them (pull.parse_answer reads
    them), and how many reviewers Label Studio asks for on it."""

    id: int
    clip_id: str | None = None
    updated_at: str | None = None
    annotations: list[dict] = []
    overlap: int = 1
