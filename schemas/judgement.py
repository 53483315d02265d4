"""Stage-4 output: scores per annotation and the resolved answer per clip."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, model_validator

from schemas.features import LabelProb
from schemas.provenance import Provenance

Flag = Literal["low_score", "thin_margin", "disagreement", "hallucinated_evidence", "missing_modality", "rejected_answer"]


class JudgeWeights(BaseModel):
    alpha: float = 0.4  # recognition
    beta: float = 0.4  # reasoning
    gamma: float = 0.2  # chain-of-thought completeness

    @model_validator(mode="after")
    def _convex(self) -> "JudgeWeights":
        if min(self.alpha, self.beta, self.gamma) < 0:
            raise ValueError("judge weights must be non-negative")
        if abs(self.alpha + self.beta + self.gamma - 1.0) > 1e-6:
            raise ValueError(f"judge weights must sum to 1, got {self.alpha + self.beta + self.gamma:g}")
        return self


class StepScore(BaseModel):
    step_index: int
    score: float
    reason: str | None = None


class Judgement(BaseModel):
    annotation_id: str
    clip_id: str
    annotator_id: str
    s_rec: float
    s_reason: float
    s_cot: float
    s_final: float
    weights: JudgeWeights
    step_scores: list[StepScore] = []
    flags: list[Flag] = []
    provenance: Provenance


class Consensus(BaseModel):
    clip_id: str
    label: str | None
    distribution: list[LabelProb] = []
    method: str  # "majority", "weighted", "dawid_skene", ...
    margin: float  # top-1 minus top-2 probability
    entropy: float
    uncertainty: float
    s_final_mean: float | None = None
    flags: list[Flag] = []
    needs_review: bool = False
    provenance: Provenance
