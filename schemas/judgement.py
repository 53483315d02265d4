"""Stage-4 output: scores per annotation and the resolved answer per clip (the formulas are in
agents/judge/scores.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, model_validator

from schemas.features import LabelProb
from schemas.provenance import Provenance

Flag = Literal["low_score", "thin_margin", "disagreement", "hallucinated_evidence", "missing_modality", "rejected_answer"]
Verdict = Literal["supported", "contradicted", "unverifiable"]


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


class ClaimCheck(BaseModel):
    """One cited piece of evidence held against the clip's measured features."""

    evidence_id: str
    verdict: Verdict
    reason: str


class StepScore(BaseModel):
    step_index: int
    score: float
    reason: str | None = None


class Judgement(BaseModel):
    annotation_id: str
    clip_id: str
    annotator_id: str
    label: str | None
    s_rec: float
    s_reason: float
    s_cot: float
    s_final: float
    # what S_rec was measured against: a gold label, the other annotators, only the LLM judge's mark,
    # or nothing (then S_final renormalises β and γ over the scores that exist)
    s_rec_basis: Literal["gold", "peers", "llm", "none"]
    weights: JudgeWeights
    claims: list[ClaimCheck] = []
    step_scores: list[StepScore] = []  # from the optional LLM judge
    flags: list[Flag] = []
    provenance: Provenance


class Consensus(BaseModel):
    clip_id: str
    label: str | None
    distribution: list[LabelProb] = []
    method: str  # "majority", "weighted", "dawid_skene", ...
    margin: float  # top-1 minus top-2 probability
    entropy: float  # of the distribution, in bits
    uncertainty: float  # entropy / log2(number of labels): 0 certain, 1 uniform
    agreement: float = 0.0  # share of usable answers that chose the consensus label
    n_answers: int = 0
    s_final_mean: float | None = None  # mean S_final of the answers that chose the consensus label
    review_score: float = 0.0  # what the review threshold is applied to
    gold_label: str | None = None
    flags: list[Flag] = []
    needs_review: bool = False
    provenance: Provenance


class SourceJudgements(BaseModel):
    """Stage 4 for a run: every annotation's scores and every clip's resolved answer."""

    judgements: list[Judgement]
    consensus: list[Consensus]
    threshold: float  # the review threshold in force (after budget or calibration)
    rejects: list["Reject"] = []

    def producer_run_id(self) -> str | None:
        return self.judgements[0].provenance.run_id if self.judgements else None


from schemas.reject import Reject  # noqa: E402

SourceJudgements.model_rebuild()
