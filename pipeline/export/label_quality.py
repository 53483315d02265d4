"""Label quality against known labels: how right the consensus is, and whether the judge's scores
tell right from wrong (AUROC), what routing buys (risk-coverage), how calibrated the confidence is
(ECE), and each annotator against the consensus on that annotator's own items.

Each headline figure also gets a bootstrap interval over the clips (`intervals`), and two runs of
the same media a paired comparison (`paired_difference`): on a few dozen clips a clip's worth of
difference is noise, and these say how much.

Pure functions over small typed records, so the label-quality benchmark (bench/label_quality.py)
and a run report can share them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClipOutcome:
    """One clip with a known label and what the run concluded."""

    clip_id: str
    gold: str
    predicted: str | None  # None: no consensus label (every answer abstained or was rejected)
    confidence: float  # P(consensus label is correct) as the run states it
    review_score: float  # higher = more trusted; routing flags clips below its threshold
    needs_review: bool

    @property
    def correct(self) -> bool:
        return self.predicted == self.gold

    @classmethod
    def from_row(cls, row: dict) -> "ClipOutcome":
        """One clip of a bench result's `outcomes` (which also names its item)."""
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class AnswerOutcome:
    """One annotator's usable answer on a clip with a known label, and the judge's scores for it."""

    clip_id: str
    annotator_id: str
    label: str
    gold: str
    s_final: float
    s_rec: float
    s_reason: float
    s_cot: float
    stated: float | None = None  # the probability the annotator itself gave its label (None: it gave none)

    @property
    def correct(self) -> bool:
        return self.label == self.gold


def auroc(scores: list[float], correct: list[bool]) -> float | None:
    """P(a right item scores above a wrong one), ties half; None when only one class is present. The
    Mann–Whitney form on average ranks (scipy), the same value as sklearn's roc_auc_score at a tenth
    of its per-call cost, which the bootstrap intervals pay a thousand times."""
    from scipy.stats import rankdata

    y = np.asarray(correct, dtype=bool)
    n_right = int(y.sum())
    if n_right in (0, len(y)):
        return None
    ranks = rankdata(np.asarray(scores, dtype=float))
    return float((ranks[y].sum() - n_right * (n_right + 1) / 2) / (n_right * (len(y) - n_right)))


def classification(gold: list[str], predicted: list[str | None], order: list[str] | None = None) -> dict:
    """Accuracy, UAR (mean recall over the gold classes), WAR (support-weighted recall, = accuracy),
    per-class recall and the confusion matrix (rows gold, columns predicted; "none" = no label)."""
    from sklearn.metrics import confusion_matrix, recall_score

    if not gold:
        return {"n": 0}
    pred = [p if p is not None else "none" for p in predicted]
    gold_classes = _ordered(set(gold), order)
    labels = _ordered(set(gold) | set(pred), order)
    recalls = recall_score(gold, pred, labels=gold_classes, average=None, zero_division=0)
    return {
        "n": len(gold),
        "accuracy": float(np.mean([g == p for g, p in zip(gold, pred)])),
        "uar": float(np.mean(recalls)),
        "war": float(recall_score(gold, pred, labels=gold_classes, average="weighted", zero_division=0)),
        "recall": {c: float(r) for c, r in zip(gold_classes, recalls)},
        "support": {c: gold.count(c) for c in gold_classes},
        "confusion": {"labels": labels, "matrix": confusion_matrix(gold, pred, labels=labels).tolist()},
    }


def _ordered(labels: set[str], order: list[str] | None) -> list[str]:
    order = order or []
    known = [x for x in order if x in labels]
    return known + sorted(labels - set(known) - {"none"}) + (["none"] if "none" in labels else [])


@dataclass(frozen=True)
class CoveragePoint:
    threshold: float  # accept clips scoring >= this
    flagged: float  # share of clips flagged (below the threshold)
    accepted: int
    accuracy: float  # of the accepted clips


def risk_coverage(scores: list[float], correct: list[bool]) -> list[CoveragePoint]:
    """Accept the clips scoring at or above each distinct score, from the strictest threshold to
    accepting all; tied clips are accepted or flagged together (a threshold cannot split them)."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(correct, dtype=bool)
    n = len(s)
    points = []
    for t in sorted(set(s.tolist()), reverse=True):
        keep = s >= t
        points.append(CoveragePoint(float(t), float(1 - keep.sum() / n), int(keep.sum()), float(y[keep].mean())))
    return points


def flagged_for_accuracy(curve: list[CoveragePoint], target: float) -> float | None:
    """The smallest flagged share whose accepted set is at least `target` accurate (None: no
    threshold reaches it while accepting anything)."""
    ok = [p.flagged for p in curve if p.accuracy >= target - 1e-12]
    return min(ok) if ok else None


def expected_calibration_error(confidence: list[float], correct: list[bool], bins: int = 10) -> float | None:
    """ECE with `bins` equal-width bins on [0, 1]: sum over bins of |accuracy - mean confidence|
    weighted by the bin's share of items (1.0 falls in the last bin)."""
    if not confidence:
        return None
    c = np.clip(np.asarray(confidence, dtype=float), 0.0, 1.0)
    return float(_ece_of_draws(c, np.asarray(correct, dtype=float)[None], bins)[0])


def _ece_of_draws(confidence: np.ndarray, draws: np.ndarray, bins: int) -> np.ndarray:
    """The ECE of each row of `draws` (0/1 outcomes, the last axis the items) against one fixed
    confidence in [0, 1]: `expected_calibration_error` for one row, the calibration null for many."""
    idx = np.minimum((confidence * bins).astype(int), bins - 1)
    total = np.zeros(draws.shape[:-1])
    for b in np.unique(idx):
        m = idx == b
        total += m.sum() / len(confidence) * np.abs(draws[..., m].mean(axis=-1) - confidence[m].mean())
    return total


# outcomes drawn at once by the calibration null: its memory stays bounded on a run of any size
NULL_BATCH_VALUES = 4_000_000


def ece_if_calibrated(confidence: list[float], correct: list[bool], bins: int = 10, draws: int = 2000,
                      seed: int = 0) -> dict[str, float] | None:
    """The ECE a perfectly calibrated confidence would show on these clips, and whether this one's is
    larger than that. The plug-in ECE is biased upward on few clips: with 29 clips in 10 bins a bin
    holds a handful, whose share right strays from its mean confidence by chance. Consistency
    resampling (Bröcker & Smith 2007, "Increasing the reliability of reliability diagrams") draws
    each clip's outcome as right with exactly its stated probability and takes the ECE of every draw:
    scipy's Monte Carlo test against that null. `mean` and `upper` (its 95th percentile) are what
    calibration alone gives here; `p` the share of calibrated draws with an ECE at least the observed
    one (small: miscalibrated beyond what the clips' number explains). Seeded; None under two clips."""
    if len(confidence) < 2:
        return None
    from scipy.stats import monte_carlo_test

    c = np.clip(np.asarray(confidence, dtype=float), 0.0, 1.0)
    rng = np.random.default_rng(seed)
    result = monte_carlo_test(np.asarray(correct, dtype=float), lambda size: (rng.random(size) < c).astype(float),
                              lambda y, axis: _ece_of_draws(c, np.moveaxis(y, axis, -1), bins),
                              vectorized=True, n_resamples=draws, batch=max(1, NULL_BATCH_VALUES // len(c)), alternative="greater")
    null = result.null_distribution
    return {"mean": float(null.mean()), "upper": float(np.percentile(null, 95)), "p": float(result.pvalue)}


def kappa(gold: list[str], labels: list[str | None]) -> float | None:
    """Cohen's κ of labels against gold: agreement beyond what the two label rates give by chance
    (0: chance, whatever the corpus's classes and the annotator's favourite label; 1: always right).
    None where it is undefined (one label on both sides)."""
    from sklearn.metrics import cohen_kappa_score

    labels = [x if x is not None else "<none>" for x in labels]
    if len(set(gold) | set(labels)) < 2:
        return None
    k = float(cohen_kappa_score(gold, labels))
    return None if np.isnan(k) else k


def per_annotator(answers: list[AnswerOutcome], clips: list[ClipOutcome]) -> dict[str, dict]:
    """Each annotator's accuracy and Cohen's κ (is it above chance on its items?), the consensus's
    accuracy on the clips that annotator answered (abstentions and rejected answers are not
    answers), its mean S_final, and whether its own distribution is calibrated: the mean probability
    it gave its label against how often that label was right, the ECE of that probability, and what
    a calibrated annotator would show on as many answers (`ece_if_calibrated`)."""
    by_clip = {c.clip_id: c for c in clips}
    out: dict[str, dict] = {}
    for annotator in sorted({a.annotator_id for a in answers}):
        mine = [a for a in answers if a.annotator_id == annotator and a.clip_id in by_clip]
        if not mine:
            continue
        out[annotator] = {
            "answered": len(mine),
            "accuracy": float(np.mean([a.correct for a in mine])),
            "kappa": kappa([a.gold for a in mine], [a.label for a in mine]),
            "consensus_accuracy": float(np.mean([by_clip[a.clip_id].correct for a in mine])),
            **against_consensus([a.correct for a in mine], [by_clip[a.clip_id].correct for a in mine]),
            "mean_s_final": float(np.mean([a.s_final for a in mine])),
            "mean_s_final_right": _mean([a.s_final for a in mine if a.correct]),
            "mean_s_final_wrong": _mean([a.s_final for a in mine if not a.correct]),
        }
        said = [a for a in mine if a.stated is not None]
        if said:
            out[annotator]["mean_stated"] = float(np.mean([a.stated for a in said]))
            out[annotator]["stated_ece"] = expected_calibration_error([a.stated for a in said], [a.correct for a in said])
            # on a handful of answers a calibrated annotator shows a large ECE too
            out[annotator]["stated_ece_if_calibrated"] = ece_if_calibrated([a.stated for a in said], [a.correct for a in said])
    return out


def mcnemar(first: list[bool], second: list[bool]) -> tuple[int, int, float]:
    """Of the same items, those only `first` gets right and those only `second` gets right, and the
    exact McNemar test of whether they differ (a two-sided binomial test on those discordant items)."""
    from scipy.stats import binomtest

    only_first = sum(a and not b for a, b in zip(first, second))
    only_second = sum(b and not a for a, b in zip(first, second))
    n = only_first + only_second
    return only_first, only_second, float(binomtest(only_first, n, 0.5).pvalue) if n else 1.0


def against_consensus(annotator: list[bool], consensus: list[bool]) -> dict:
    """The clips only the annotator gets right and those only the consensus gets right, and McNemar's
    p: a gap of a clip or two on hundreds is not evidence that the consensus is worse."""
    only_annotator, only_consensus, p = mcnemar(annotator, consensus)
    return {"only_annotator_right": only_annotator, "only_consensus_right": only_consensus, "mcnemar_p": p}


def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


TARGETS = (0.85, 0.90)


def evaluate(clips: list[ClipOutcome], answers: list[AnswerOutcome], order: list[str] | None = None, ece_bins: int = 10) -> dict:
    """Every label-quality figure for one set of clips with known labels, as a JSON-ready dict."""
    correct = [c.correct for c in clips]
    right = [a.correct for a in answers]
    curves = {
        "confidence": risk_coverage([c.confidence for c in clips], correct),
        "review_score": risk_coverage([c.review_score for c in clips], correct),
    }
    accepted = [c for c in clips if not c.needs_review]
    return {
        "clips": len(clips),
        "answers": len(answers),
        "consensus": classification([c.gold for c in clips], [c.predicted for c in clips], order),
        "answer_auroc": {
            name: auroc([getattr(a, name) for a in answers], right) for name in ("s_final", "s_rec", "s_reason", "s_cot")
        },
        "answer_accuracy": _mean([float(x) for x in right]),
        "clip_auroc": {
            "review_score": auroc([c.review_score for c in clips], correct),
            "confidence": auroc([c.confidence for c in clips], correct),
        },
        "risk_coverage": {k: [p.__dict__ for p in v] for k, v in curves.items()},
        "flagged_for_accuracy": {
            k: {f"{t:.2f}": flagged_for_accuracy(v, t) for t in TARGETS} for k, v in curves.items()
        },
        "routing": {
            "flagged_share": _mean([float(c.needs_review) for c in clips]),
            "accepted": len(accepted),
            "accepted_accuracy": _mean([float(c.correct) for c in accepted]),
        },
        "ece": {"bins": ece_bins, "value": expected_calibration_error([c.confidence for c in clips], correct, ece_bins),
                "if_calibrated": ece_if_calibrated([c.confidence for c in clips], correct, ece_bins)},
        "annotators": per_annotator(answers, clips),
    }


# The goals' figures, in the order the goals table reads them. "flagged_0.85" is the share of clips
# flagged, trusting the calibrated confidence, for the accepted ones to be 0.85 right; where no
# threshold gets there it is 1.0 (a user would have to look at every clip).
HEADLINE = ("accuracy", "uar", "s_final_auroc", "s_reason_auroc", "review_auroc", "flagged_0.85", "ece")
# how the reports name them
HEADLINE_NAMES = {"accuracy": "consensus accuracy", "uar": "UAR", "s_final_auroc": "answer-level AUROC of S_final",
                  "s_reason_auroc": "AUROC of S_reason", "review_auroc": "review-score AUROC",
                  "flagged_0.85": "flagged share for 0.85 accepted", "ece": "ECE"}


def headline(clips: list[ClipOutcome], answers: list[AnswerOutcome], ece_bins: int = 10) -> dict[str, float | None]:
    """The goal figures of `evaluate` on their own (the same values, given the same `ece_bins`), cheap
    enough to recompute on every bootstrap resample."""
    correct = np.array([c.correct for c in clips], dtype=bool)
    gold = np.array([c.gold for c in clips])
    right = [a.correct for a in answers]
    flagged = flagged_for_accuracy(risk_coverage([c.confidence for c in clips], correct.tolist()), 0.85) if clips else None
    return {
        "accuracy": float(correct.mean()) if clips else None,
        # mean recall over the gold classes present, as `classification` computes it
        "uar": float(np.mean([correct[gold == g].mean() for g in np.unique(gold)])) if clips else None,
        "s_final_auroc": auroc([a.s_final for a in answers], right),
        "s_reason_auroc": auroc([a.s_reason for a in answers], right),
        "review_auroc": auroc([c.review_score for c in clips], correct.tolist()),
        "flagged_0.85": (1.0 if flagged is None else flagged) if clips else None,
        "ece": expected_calibration_error([c.confidence for c in clips], correct.tolist(), ece_bins),
    }


def _clusters(clips: list[ClipOutcome], answers: list[AnswerOutcome]) -> list[list[AnswerOutcome]]:
    """Each clip's answers, in the clips' order: a resample draws a clip with all its answers, since
    the answers on one clip are not independent of each other."""
    by_clip: dict[str, list[AnswerOutcome]] = {}
    for a in answers:
        by_clip.setdefault(a.clip_id, []).append(a)
    return [by_clip.get(c.clip_id, []) for c in clips]


def _resampled(clips, clusters, idx) -> tuple[list[ClipOutcome], list[AnswerOutcome]]:
    idx = np.asarray(idx, dtype=int)
    return [clips[i] for i in idx], [a for i in idx for a in clusters[i]]


# a figure undefined on more than this share of the resamples gets no interval
MAX_UNDEFINED = 0.1


def _interval(result, level: float) -> dict[str, list[float] | None]:
    """Percentile interval of each figure over the resamples where it is defined: scipy's own
    percentile interval is NaN as soon as one resample is (an AUROC where every drawn clip happens to
    be right, a few in a thousand on twenty clips)."""
    out = {}
    for k, draws in zip(HEADLINE, np.atleast_2d(result.bootstrap_distribution)):
        ok = draws[~np.isnan(draws)]
        if len(ok) < (1 - MAX_UNDEFINED) * len(draws):
            out[k] = None
            continue
        lo, hi = np.percentile(ok, [50 * (1 - level), 50 * (1 + level)])
        out[k] = [float(lo), float(hi)]
    return out


def _bootstrap(statistic, n: int, level: float, resamples: int, seed: int) -> dict[str, list[float] | None]:
    """scipy's bootstrap over the indices of n clips; `statistic` maps drawn indices to the headline
    figures. scipy's own interval is not used (see `_interval`), nor its warning that it is NaN."""
    import warnings

    from scipy.stats import DegenerateDataWarning, bootstrap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        result = bootstrap((np.arange(n),), statistic, vectorized=False, n_resamples=resamples, confidence_level=level,
                           method="percentile", random_state=np.random.default_rng(seed))
    return _interval(result, level)


def _figures(values: dict[str, float | None]) -> np.ndarray:
    return np.array([np.nan if values[k] is None else values[k] for k in HEADLINE], dtype=float)


def intervals(clips: list[ClipOutcome], answers: list[AnswerOutcome], level: float = 0.95, resamples: int = 1000,
              seed: int = 0, ece_bins: int = 10) -> dict[str, list[float] | None]:
    """A `level` percentile-bootstrap interval for each headline figure, resampling clips (with their
    answers) with scipy's bootstrap; seeded, so a rerun gives the same interval. On a few dozen clips
    these are wide: a difference of a clip or two between two runs sits well inside them. None for a
    figure undefined on more than MAX_UNDEFINED of the resamples (an AUROC where every drawn answer is
    right); the ones where it is defined give its interval otherwise. The plug-in ECE is biased
    upward on few clips (a bin of few draws strays from its mean), and so is its interval, which can
    sit mostly above the figure."""
    if len(clips) < 2:
        return {k: None for k in HEADLINE}
    clusters = _clusters(clips, answers)
    return _bootstrap(lambda idx: _figures(headline(*_resampled(clips, clusters, idx), ece_bins)), len(clips), level, resamples, seed)


def paired_difference(before: tuple[list[ClipOutcome], list[AnswerOutcome]], after: tuple[list[ClipOutcome], list[AnswerOutcome]],
                      level: float = 0.95, resamples: int = 1000, seed: int = 0) -> dict:
    """Two runs over the same clips (matched by clip_id; the others are counted and left out): each
    headline figure before and after, the difference's paired bootstrap interval (the same clips
    drawn for both runs), and McNemar's test on the consensus being right. What says whether a
    change moved the labels or the run only drew different close calls."""
    b_clips, b_answers = before
    a_clips, a_answers = after
    shared = sorted({c.clip_id for c in b_clips} & {c.clip_id for c in a_clips})
    keep = set(shared)

    def on_shared(clips, answers):
        by_id = {c.clip_id: c for c in clips}
        return [by_id[k] for k in shared], [a for a in answers if a.clip_id in keep]

    b_clips, b_answers = on_shared(b_clips, b_answers)
    a_clips, a_answers = on_shared(a_clips, a_answers)
    only_before, only_after, p = mcnemar([c.correct for c in b_clips], [c.correct for c in a_clips])
    out = {"clips": len(shared), "only_before": len(set(c.clip_id for c in before[0]) - keep),
           "only_after": len(set(c.clip_id for c in after[0]) - keep),
           "before": headline(b_clips, b_answers), "after": headline(a_clips, a_answers),
           "only_before_right": only_before, "only_after_right": only_after, "mcnemar_p": p}
    if len(shared) < 2:
        out["difference"] = {k: None for k in HEADLINE}
        return out
    b_clusters, a_clusters = _clusters(b_clips, b_answers), _clusters(a_clips, a_answers)

    def change(idx):
        return _figures(headline(*_resampled(a_clips, a_clusters, idx))) - _figures(headline(*_resampled(b_clips, b_clusters, idx)))

    out["difference"] = _bootstrap(change, len(shared), level, resamples, seed)
    return out
