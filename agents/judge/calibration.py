"""From the consensus's own belief to P(the label is right), and from that to which clips need a person.

Calibration is isotonic regression (scikit-learn) of "was the consensus right" on its top
probability, fitted on the clips whose truth is known (gold labels, reviewers' verdicts). Before any
exist, the stated prior is that the model's probability is right: it enters the fit as
`prior_strength` pseudo-clips spread over [0, 1] whose outcome equals their probability, so a few
labelled clips bend the map a little and many bend it fully.

The map is centred isotonic regression (Oron & Flournoy 2017): each block the pool-adjacent-
violators fit merges is placed at the mean of its points, and the map runs linearly between the
blocks' centres. A block that holds labelled clips is placed at the mean of those alone: pooled with
the prior's pseudo-clips below them, thirty wrong answers at a raw 0.95 sat at 0.86, and the map
rose from there toward the prior's point at 1.0, calibrating those very answers to 0.67. Plain
isotonic regression is a staircase: clips across a whole step get one confidence, so the ranking
the consensus had among them is lost, and routing has to accept or flag each step together. The
centred map keeps that ranking and is no less faithful to the points.

Routing to a target accuracy flags the fewest clips such that the accepted ones are expected to be
right at least `target` of the time: accept clips in order of confidence while the mean confidence
of the accepted set stays at or above the target."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRIOR_GRID = 21


@dataclass(frozen=True)
class Calibrator:
    xs: np.ndarray  # the centres of the isotonic blocks, ascending
    ys: np.ndarray
    n_labelled: int

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return np.clip(np.interp(raw, self.xs, self.ys), 0.0, 1.0)

    @property
    def method(self) -> str:
        return "centred-isotonic" if self.n_labelled else "prior"


def fit_calibrator(raw: np.ndarray, correct: np.ndarray, prior_strength: float = 10.0) -> Calibrator:
    """raw: the consensus's top probability on labelled clips; correct: 1.0 where it was right."""
    grid = np.linspace(0.0, 1.0, PRIOR_GRID)
    x = np.r_[grid, raw]
    y = np.r_[grid, correct]
    w = np.r_[np.full(PRIOR_GRID, prior_strength / PRIOR_GRID), np.ones(len(raw))]
    if len(raw) == 0:
        fitted = y  # the stated prior alone (a blind run) is increasing already: the fit would return it
    else:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(x, y, sample_weight=w)
        fitted = iso.predict(x)
    # the blocks: runs of points with one fitted value (ascending in x, as the values are). A block
    # sits where its labelled clips are: the prior's pseudo-clips bend its value, not its place
    values, block = np.unique(np.round(fitted, 12), return_inverse=True)
    centres = np.bincount(block, weights=w * x) / np.bincount(block, weights=w)
    labelled = np.r_[np.zeros(PRIOR_GRID), np.ones(len(raw))]
    n_data = np.bincount(block, weights=labelled, minlength=len(values))
    data_centres = np.bincount(block, weights=labelled * x, minlength=len(values)) / np.where(n_data > 0, n_data, 1.0)
    centres = np.where(n_data > 0, data_centres, centres)
    return Calibrator(xs=centres, ys=values, n_labelled=len(raw))


@dataclass(frozen=True)
class TargetCut:
    threshold: float  # clips with confidence below it are flagged
    n_accepted: int
    estimated_accuracy: float | None
    ci_low: float | None
    ci_high: float | None


def accepted_estimate(confidence: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """Expected accuracy of a set of clips, with a 95% Jeffreys interval treating the expected number
    right as the observed count (it ignores the calibration's own error, which the interval would widen)."""
    from scipy.stats import beta

    n = len(confidence)
    if n == 0:
        return None, None, None
    right = float(confidence.sum())
    lo, hi = beta.ppf([0.025, 0.975], right + 0.5, n - right + 0.5)
    return right / n, float(lo), float(hi)


def accepted_interval(accepted_raw: np.ndarray, labelled_raw: np.ndarray, labelled_right: np.ndarray,
                      labelled_groups: list[str], prior_strength: float = 10.0, n_boot: int = 200,
                      seed: int = 0) -> tuple[float | None, float | None]:
    """95% interval of the accepted clips' accuracy that also carries the calibration's own error.
    The calibration is refitted on labelled clips resampled by group (a person's clips together:
    how often a model is right varies more between people than within one, so labels from two
    speakers cannot vouch for a third as well as many clips of one suggest); each refit's expected
    accuracy of the accepted clips is drawn from (binomially), and the percentiles are taken. With
    one group, the clips themselves are resampled. Seeded: the same run gives the same interval."""
    from scipy.stats import beta

    n = len(accepted_raw)
    if n == 0 or len(labelled_raw) == 0:
        return None, None
    rng = np.random.default_rng(seed)
    _, group = np.unique(np.asarray(labelled_groups), return_inverse=True)
    members = np.split(np.argsort(group, kind="stable"), np.cumsum(np.bincount(group))[:-1])
    if len(members) < 2:
        members = [np.array([i]) for i in range(len(labelled_raw))]
    draws = np.empty(n_boot)
    for b in range(n_boot):
        rows = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        expected = float(fit_calibrator(labelled_raw[rows], labelled_right[rows], prior_strength)(accepted_raw).sum())
        draws[b] = beta.rvs(expected + 0.5, n - expected + 0.5, random_state=rng)
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return float(lo), float(hi)


def cut_for_target(confidence: np.ndarray, target: float) -> TargetCut:
    """The lowest threshold whose accepted set (confidence ≥ threshold) has mean confidence ≥ target.
    Clips with equal confidence are accepted or flagged together."""
    if len(confidence) == 0:
        return TargetCut(0.0, 0, None, None, None)
    order = np.argsort(-confidence, kind="stable")
    c = confidence[order]
    mean = np.cumsum(c) / np.arange(1, len(c) + 1)
    ends = np.r_[c[1:] < c[:-1], True]  # a cut falls only between different confidences
    good = np.nonzero((mean >= target - 1e-12) & ends)[0]
    if len(good) == 0:
        return TargetCut(float(np.nextafter(c[0], np.inf)), 0, None, None, None)
    k = good[-1] + 1
    est, lo, hi = accepted_estimate(c[:k])
    return TargetCut(float(c[k - 1]), int(k), est, lo, hi)
