"""What scoring one clip hands on, as named tuples: as cheap to build and to send back from a worker
process (agents/judge/processes.py) as plain tuples, but read by name. The Judgement records are
built from them once, in stage.add_judgements."""

from __future__ import annotations

from typing import Any, NamedTuple


class ClaimFact(NamedTuple):
    """One cited piece of evidence held against the features (grounding.check_claim)."""

    evidence_id: str
    verdict: str  # supported / contradicted / unverifiable
    reason: str


class ScoredAnswer(NamedTuple):
    """One usable answer's scores. `rec` and `final` are None while they wait for the reliability model
    (basis "consensus"); `supports`: each claim's support for the answer's label (None: says nothing)."""

    rec: float | None
    reason: float
    cot: float
    final: float | None
    basis: str  # where S_rec came from: gold, peers, consensus (the model), llm, none
    claims: list[ClaimFact]
    supports: list[float | None]
    flags: list[str]  # only "hallucinated_evidence" is set while scoring
    steps: list  # the LLM judge's step scores (StepScore), empty without one


Scored = ScoredAnswer | None  # None: an answer that was not usable (rejected, no label)


class ScoreSettings(NamedTuple):
    """The run-wide settings every clip is scored with."""

    unverifiable_credit: float
    from_model: bool  # S_rec comes from the reliability model, after every clip is scored
    cue_maps: dict[str, Any]  # cue kind -> calibrated support (calibration.Calibrator)


class ClipJob(NamedTuple):
    """One clip to score: its index, its answers, the S_final weights of its instruction, its gold labels."""

    ix: Any  # clip_index.ClipIndex
    answers: list  # Annotation
    weights: Any  # JudgeWeights
    gold: list[str] | None
