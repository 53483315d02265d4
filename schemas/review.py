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


class TranscriptLine(BaseModel):
    """Consecutive words of one speaker: one line of the dialogue a reviewer reads."""

    author: str
    text: str
    start: float | None = None
    end: float | None = None


class ReviewTaskData(BaseModel):
    """What a reviewer is shown of one flagged clip: a Label Studio task's `data`, whose keys the
    labeling config (pipeline/review/labeling.py) names."""

    clip_id: str
    source_id: str
    clip_start: float
    clip_end: float
    video: str  # a local-files URL of the clip cut for review
    audio: str  # the same file: <Audio> plays its track in sync with <Video>
    fps: int | float  # as probed; 25 when unknown
    transcript: list[TranscriptLine]
    rationale: str  # HTML: the best-scored agreeing answer's steps
    evidence: str  # HTML: its evidence with the judge's verdicts
    model_label: str
    review_score: float
    flags: str
    annotators: str


class TaskPrediction(BaseModel):
    """The judge's consensus, pre-selected for the reviewer; `result` is in Label Studio's own format."""

    model_version: str
    score: float
    result: list[dict]


class ReviewTaskPush(BaseModel):
    """One task as a push imports it: the clip shown and the consensus as a prediction."""

    data: ReviewTaskData
    predictions: list[TaskPrediction] = []

    def payload(self) -> dict:
        """The JSON Label Studio imports: fields left out here (no prediction, a line without times) stay out."""
        return self.model_dump(exclude_unset=True)
