"""Stage 5 for a run: push the flagged clips, pull what reviewers answered, measure how well the
reviewers agree on the clips several of them saw (and how well they agree with the model), and hold
that to the configured gates. A failed gate escalates the human decisions of this round."""

from __future__ import annotations

import pandas as pd
from pydantic import BaseModel

from pipeline.review.agreement import AgreementReport, assess
from pipeline.review.pull import PullReport, pull_review
from pipeline.review.push import PushReport, push_review
from schemas import AgreementStat, EmoforgeConfig, Review
from schemas.run import RunRecords
from storage import RunDir


class ReviewOutcome(BaseModel):
    push: PushReport
    pull: PullReport
    labels: AgreementReport | None = None  # reviewers' labels on clips with several reviewers
    intensity: AgreementReport | None = None  # their intensity ratings on the same clips
    decision: str = "pending"  # accepted / escalated by the gates; pending while too few clips have several answers


def _table(reviews: list[Review], value) -> pd.DataFrame:
    raters = sorted({a.reviewer for r in reviews for a in r.answers})
    table = pd.DataFrame(index=[r.clip_id for r in reviews], columns=raters, dtype=object)
    for r in reviews:
        for a in r.answers:
            table.loc[r.clip_id, a.reviewer] = value(a)
    return table.dropna(how="all")


def agreement(reviews: list[Review], model_labels: dict[str, str | None], config: EmoforgeConfig) -> tuple[AgreementReport | None, AgreementReport | None]:
    shared = [r for r in reviews if len(r.answers) >= 2]
    if not shared:
        return None, None
    labels = _table(shared, lambda a: a.labels[0] if a.labels else None)
    label_report = assess(labels, "nominal", config.review.gates, categories=config.taxonomy,
                          model_labels={k: v for k, v in model_labels.items() if k in labels.index and v}, source="reviews")
    intens = _table(shared, lambda a: a.intensity)
    intensity_report = None
    if intens.notna().sum().sum() >= 4:
        intensity_report = assess(intens.astype(float), "interval",
                                  config.review.gates, source="reviews")
    return label_report, intensity_report


def review_run(run: RunDir, config: EmoforgeConfig, run_id: str, client=None, records: RunRecords | None = None) -> ReviewOutcome:
    """Push the run's flagged clips, pull the verdicts, hold them to the gates and write the reviews.
    `records`: the run's clips, features, answers and judge results (default: its tables)."""
    records = run.records() if records is None else records
    push = push_review(run, config, client, consensus=records.consensus, clips=records.clips, annotations=records.annotations,
                       judgements=records.judgements, features=records.features)
    pull = pull_review(run, config, client, consensus=records.consensus, run_id=run_id, write=False)
    consensus = {c.clip_id: c.label for c in records.consensus}
    labels, intensity = agreement(pull.reviews, consensus, config)
    outcome = ReviewOutcome(push=push, pull=pull, labels=labels, intensity=intensity)
    reports = [r for r in (labels, intensity) if r is not None]
    if reports:
        outcome.decision = "escalated" if any(r.decision == "escalated" for r in reports) else "accepted"
        stats = [AgreementStat(**s.model_dump(include=set(AgreementStat.model_fields))) for r in reports for s in r.stats]
        for review in pull.reviews:
            if len(review.answers) >= 2:
                review.agreement = stats
            if outcome.decision == "escalated" and review.decision == "accepted":
                review.decision = "escalated"  # reviewers who do not agree well enough do not settle labels alone
    run.write("reviews", pull.reviews)
    return outcome
