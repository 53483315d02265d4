"""Which clips go to human review: the review threshold (fixed, by budget, or calibrated on gold)
and the flags that explain why a clip was sent."""

from __future__ import annotations

import math

import numpy as np

from schemas.config import ReviewThreshold


class CalibrationError(ValueError):
    pass


def review_threshold(scores: np.ndarray, rule: ReviewThreshold, gold_correct: np.ndarray | None = None) -> float:
    """Clips with a review score below the returned value are flagged `low_score`.
    budget: the worst ceil(budget·N) clips fall below it; calibrated: the lowest threshold at which
    the gold clips kept (score ≥ threshold) are at least `target_accuracy` correct."""
    if rule.mode == "fixed":
        return rule.value
    if rule.mode == "budget":
        k = math.ceil(rule.budget * len(scores))
        if k == 0:
            return 0.0
        ordered = np.sort(scores)
        # just above the k-th worst; a tie at the cut flags every clip with that score
        return float(np.nextafter(ordered[k - 1], np.inf)) if k <= len(ordered) else math.inf
    if gold_correct is None or not np.isfinite(scores[~np.isnan(gold_correct)]).any():
        raise CalibrationError("judge.threshold.mode=calibrated needs gold labels for some clips (judge.gold)")
    mask = ~np.isnan(gold_correct)
    s, ok = scores[mask], gold_correct[mask]
    order = np.argsort(-s, kind="stable")
    s, ok = s[order], ok[order]
    acc = np.cumsum(ok) / np.arange(1, len(ok) + 1)  # accuracy of the gold clips kept at each cut
    # a cut can only fall between different scores: clips with equal scores are kept or flagged together
    ends = np.r_[s[1:] < s[:-1], True]
    good = np.nonzero((acc >= rule.target_accuracy) & ends)[0]
    if len(good) == 0:
        return math.inf  # no threshold reaches the target: everything goes to review
    return float(s[good[-1]])
