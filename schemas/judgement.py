"""Stage-4 output: scores per annotation and the resolved answer per clip (the formulas are in
agents/judge/scores.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, model_validator

from schemas.features import LabelProb
from schemas.provenance import Provenance

# teach_voice_model: one of the clips whose labels would teach the run's voice model most (agents/teach_set.py);
# no_answer: every annotator abstained or failed, so the clip has no model label
Flag = Literal["low_score", "thin_margin", "disagreement", "hallucinated_evidence", "missing_modality", "rejected_answer",
               "teach_voice_model", "no_answer"]
Verdict = Literal["supported", "contradicted", "unverifiable"]


class JudgeWeights(BaseModel):
    # measured on labelled media (bench/label_quality.py): S_rec, the reliability model's posterior,
    # tells right answers from wrong best; the reasoning scores add what it cannot see
    alpha: float = 0.7  # recognition
    beta: float = 0.2  # reasoning
    gamma: float = 0.1  # chain-of-thought completeness

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
    verdict: Verdict  # is the cited fact true?
    reason: str
    # does what was measured for this cue favour the answer's label over its strongest rival?
    # (agents/judge/inference.py: 1 clearly, 0.5 cannot tell, 0 favours another; None: says nothing about emotion)
    support: float | None = None


class StepScore(BaseModel):
    step_index: int
    score: float
    reason: str | None = None


class Judgement(BaseModel):
    annotation_id: str
    clip_id: str
    annotator_id: str
    label: str | None
    s_rec: float | None  # None when nothing measured it (s_rec_basis "none")
    s_reason: float
    s_cot: float
    s_final: float
    # what S_rec was measured against: a gold label, the reliability-weighted consensus of the clip's
    # answers (this one included), the other annotators, only the LLM judge's mark, or nothing (then
    # S_final renormalises β and γ over the scores that exist)
    s_rec_basis: Literal["gold", "consensus", "peers", "llm", "none"]
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
    review_score: float = 0.0  # what the review threshold is applied to: the calibrated confidence
    # calibrated P(label is right) (agents/judge/calibration.py); 1 for a clip whose label is known
    confidence: float | None = None
    gold_label: str | None = None
    flags: list[Flag] = []
    needs_review: bool = False
    provenance: Provenance


class AnnotatorReliability(BaseModel):
    """What the run learned about one annotator (agents/judge/reliability.py)."""

    annotator_id: str
    n_answers: int
    # Σ_k π_k θ[k, k] under the fitted model; for an annotator the confusion-matrix fit did not take
    # (a calibrated model, or one it subsumes on every clip), the consensus's mean belief in its labels
    estimated_accuracy: float
    recall: list[LabelProb] = []  # θ[k, k] per true class k the run saw (none claimed where no matrix was fitted)
    gold_accuracy: float | None = None  # on the clips with known labels, where it answered any
    n_gold: int = 0


class Routing(BaseModel):
    """How the review threshold was chosen and what the accepted (unflagged) clips are expected to be."""

    mode: str
    threshold: float
    target_accuracy: float | None = None
    n_clips: int = 0  # clips whose label the model gives (routing decides on these)
    n_known: int = 0  # clips whose label is known (gold, reviewers' verdicts): never routed, nor counted above
    n_accepted: int = 0  # of n_clips, those under no routing flag
    estimated_accuracy: float | None = None  # mean calibrated confidence of the accepted clips
    # 95% interval around that estimate: Jeffreys on the expected count before any label is known;
    # once the calibration is fitted, one that also carries its error, resampling labelled people
    ci_low: float | None = None
    ci_high: float | None = None
    calibrated_on: int = 0  # clips with known labels (gold, reviewed) the confidence was fitted on
    calibration: str = "prior"  # "centred-isotonic" once labelled clips exist (agents/judge/calibration.py)
    n_teach: int = 0  # clips flagged teach_voice_model: no voice model yet, and their labels would teach it most


class SourceJudgements(BaseModel):
    """Stage 4 for a run: every annotation's scores and every clip's resolved answer."""

    judgements: list[Judgement]
    consensus: list[Consensus]
    threshold: float  # the review threshold in force (after budget or calibration)
    routing: Routing | None = None
    reliability: list[AnnotatorReliability] = []
    rejects: list["Reject"] = []

    def producer_run_id(self) -> str | None:
        return self.judgements[0].provenance.run_id if self.judgements else None


from schemas.reject import Reject  # noqa: E402

SourceJudgements.model_rebuild()
