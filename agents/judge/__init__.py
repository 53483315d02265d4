"""Stage 4, the judge agent: grounded scores per answer (S_rec, S_reason, S_cot, S_final), conflict
resolution per clip, and flags for human review.

In:  the run's `Clip`s, `ClipFeatures` and `Annotation`s (stages 1-3), the configuration, gold and
     reviewed labels where known, and the voice baselines the vocal agents used.
Out: `SourceJudgements`: a `Judgement` per answer (with a `ClaimCheck` per cited piece of evidence),
     a `Consensus` per clip (label, distribution, confidence, `needs_review`), `AnnotatorReliability`
     per annotator and the `Routing` that chose the review threshold (run.json keeps it).

`judge_run` (stage.py) runs over the whole run at once; inside, scoring one clip hands on named
tuples (scored.py), cheap enough for a million answers; the records are built from them as each clip's
scores arrive, and the reliability model's S_rec is written into them once it is fitted."""

from agents.judge.stage import judge_run

__all__ = ["judge_run"]
