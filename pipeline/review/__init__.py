"""Stage 5: human review in Label Studio and agreement between reviewers.

In:  the run's `Consensus` (the clips the judge flagged: `needs_review`), with their `Clip`s,
     `ClipFeatures`, `Annotation`s and `Judgement`s to show the reviewer (read from the `RunDir`).
Out: a Label Studio task per flagged clip (push.py); what reviewers answered comes back as
     `ReviewTask`s (pull.py, through the run's task mirror) and becomes one `Review` per flagged clip
     (`ReviewerAnswer`s, the settled label, `AgreementStat`s), written to tables/reviews.parquet.
     `review_run` (stage.py) returns a `ReviewOutcome`: the push and pull reports and the agreement
     gates' decision."""
