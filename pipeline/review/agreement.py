"""Agreement between reviewers (stage 5): kappas, Krippendorff's alpha, ICC, Spearman, human vs model.

A ratings table (pipeline/review/ratings.py) has one row per item and one column per rater; a missing
cell means that rater did not rate that item. Values are category labels (nominal; ordinal with an ordered category list) or numbers
(ordinal, interval, ratio). Every statistic comes from a maintained library:

* Cohen's kappa per rater pair — ``sklearn.metrics.cohen_kappa_score`` on the items both rated;
  unweighted at nominal level, linear weights at ordinal, quadratic at interval/ratio. The mean over
  pairs (Light's kappa) is ``cohen_kappa_mean``.
* Fleiss' kappa — ``statsmodels.stats.inter_rater.fleiss_kappa`` on ``aggregate_raters`` counts. Fleiss'
  kappa needs the same number of ratings per item, but not the same raters, so missing cells are
  handled by keeping the items that have the most common number m >= 2 of ratings (all items of a
  complete table); items with another count are left out and the note says how many.
* Krippendorff's alpha — ``krippendorff.alpha`` at the table's level; missing cells are native to it.
* ICC, the six Shrout & Fleiss (1979) forms — ``pingouin.intraclass_corr``, complete cases only (items
  rated by every rater; the others are left out and the note says how many). Numeric levels only
  (interval, ratio, ordinal with numbers). ``icc1``=ICC(1,1), ``icc2``=ICC(2,1)=ICC(A,1) absolute
  agreement, ``icc3``=ICC(3,1)=ICC(C,1) consistency, and the average-of-k forms ``icc1k``/``icc2k``/``icc3k``.
* Spearman's rho per rater pair — ``scipy.stats.spearmanr`` on items both rated (ordinal and above),
  with the mean ``spearman_mean``.
* Human vs model — Cohen's kappa (weighted as above) of each rater, and of the human majority (the
  unique most common rating of an item; tied items are left out), against per-item model labels.

A statistic that cannot be computed (one rater, fewer than 2 shared items, constant ratings) has value
None and a ``reason``; nothing here raises for such data. ``apply_gates`` (pipeline/review/gates.py) holds
the statistics to ``schemas.config.AgreementGates``: kappa > gates.kappa on ``fleiss_kappa`` (nominal level only: at other
levels it would ignore the order) and on ``cohen_kappa_mean``; ICC > gates.icc on ``icc2`` (two-way
random effects, absolute agreement, single rater: how well one reviewer's score generalises to another
reviewer); alpha > gates.alpha on ``krippendorff_alpha`` when set. A gate whose statistics all could not
be computed escalates, as does a table with no gated statistic at all.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from pipeline.review.gates import Decision, apply_gates
from pipeline.review.ratings import EncodedRatings, Level, encode, label_text, missing, prepare_ratings
from schemas.config import AgreementGates
from schemas.review import AgreementStat

#: Shrout & Fleiss form -> pingouin's ``Type`` label (pingouin >= 0.7 uses McGraw & Wong names;
#: older releases used ICC1.. names)
ICC_FORMS = {
    "icc1": ("ICC(1,1)", "ICC1"),
    "icc2": ("ICC(A,1)", "ICC2"),
    "icc3": ("ICC(C,1)", "ICC3"),
    "icc1k": ("ICC(1,k)", "ICC1k"),
    "icc2k": ("ICC(A,k)", "ICC2k"),
    "icc3k": ("ICC(C,k)", "ICC3k"),
}
KAPPA_WEIGHTS: dict[str, str | None] = {"nominal": None, "ordinal": "linear", "interval": "quadratic", "ratio": "quadratic"}


class AgreementResult(AgreementStat):
    """An ``AgreementStat`` with what it was computed on and, when value is None, why."""

    raters: list[str] = []
    level: Level | None = None
    reason: str | None = None  # why value is None
    note: str | None = None  # how the data was used: weights, items left out


class AgreementReport(BaseModel):
    source: str | None = None
    level: Level
    n_items: int
    raters: list[str]
    stats: list[AgreementResult]
    gates: AgreementGates
    decision: Decision
    reasons: list[str]


def _positions(r: EncodedRatings) -> tuple[np.ndarray, int, str]:
    """Integer positions for kappa's confusion matrix (sklearn weights by position, not value) and a
    note. Category codes are their own positions. Numbers: at interval/ratio, position = value on the
    finest decimal grid (0-3 decimals, at most 1001 steps) that holds every value, so weights follow
    the real distances; otherwise (and at ordinal level) the rank among the distinct values."""
    m = r.matrix
    if not r.numeric:
        return m, len(r.labels), ""
    seen = m[~np.isnan(m)]
    if seen.size == 0:
        return m, 0, ""
    if r.level in ("interval", "ratio"):
        lo, hi = seen.min(), seen.max()
        for d in range(4):
            scaled = seen * 10**d
            if np.allclose(scaled, np.round(scaled), atol=1e-9) and (hi - lo) * 10**d <= 1000:
                pos = np.round((m - lo) * 10**d)
                return pos, int(round((hi - lo) * 10**d)) + 1, f"distance in steps of {10.0**-d:g}"
    distinct = np.unique(seen)
    pos = np.where(np.isnan(m), np.nan, np.searchsorted(distinct, np.nan_to_num(m)))
    return pos.astype(float), len(distinct), "distance in ranks of the distinct values"


def _stat(name: str, value: float | None, n_items: int, r: EncodedRatings, raters: Iterable[str], reason: str | None = None, note: str | None = None) -> AgreementResult:
    if value is not None and not math.isfinite(value):
        value, reason = None, reason or "undefined for these ratings"
    return AgreementResult(
        name=name, value=None if value is None else float(value), n_items=int(n_items), raters=list(raters),
        level=r.level, reason=reason if value is None else None, note=note or None,
    )


def _constant_reason(values: np.ndarray, r: EncodedRatings) -> str | None:
    seen = values[~np.isnan(values)]
    if seen.size and np.all(seen == seen[0]):
        return f"constant ratings (every rating is {r.show(seen[0])})"
    return None


def _mean(name: str, parts: list[AgreementResult], r: EncodedRatings, items: int, what: str) -> AgreementResult:
    done = [p.value for p in parts if p.value is not None]
    if not done:
        reason = "one rater: no pair to compare" if len(r.raters) < 2 else f"no {what} could be computed"
        return _stat(name, None, items, r, r.raters, reason)
    note = f"mean of {len(done)} pair{'s' if len(done) > 1 else ''}" + (f" of {len(parts)}" if len(done) < len(parts) else "")
    return _stat(name, float(np.mean(done)), items, r, r.raters, note=note)


# ----------------------------------------------------------------------------------------- statistics


def _kappa(a: np.ndarray, b: np.ndarray, n_pos: int, weights: str | None) -> tuple[float | None, int, str | None]:
    from sklearn.metrics import cohen_kappa_score

    both = ~np.isnan(a) & ~np.isnan(b)
    n = int(both.sum())
    if n < 2:
        return None, n, f"{n} item{'s' if n != 1 else ''} rated by both (need 2)"
    x, y = a[both].astype(int), b[both].astype(int)
    if np.unique(np.concatenate([x, y])).size < 2:
        return None, n, "constant ratings: both gave one and the same value (chance agreement is 1)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = cohen_kappa_score(x, y, labels=np.arange(n_pos), weights=weights)
    return float(k), n, None


def _weights_note(r: EncodedRatings, pos_note: str) -> str:
    w = KAPPA_WEIGHTS[r.level]
    if r.level == "nominal" or w is None:
        return "unweighted"
    return f"{w} weights" + (f", {pos_note}" if pos_note else "")


def cohen_kappas(ratings: pd.DataFrame, level: Level = "nominal", categories: Sequence[Any] | None = None) -> list[AgreementResult]:
    """Cohen's kappa for every rater pair on the items both rated (``cohen_kappa[a,b]``), then their
    mean (``cohen_kappa_mean``, Light's kappa). Weighted at ordinal (linear) and interval/ratio (quadratic)."""
    r = encode(ratings, level, categories)
    pos, n_pos, pos_note = _positions(r)
    weights = KAPPA_WEIGHTS[r.level]
    note = _weights_note(r, pos_note)
    out = []
    for i, j in combinations(range(len(r.raters)), 2):
        k, n, reason = _kappa(pos[:, i], pos[:, j], n_pos, weights)
        out.append(_stat(f"cohen_kappa[{r.raters[i]},{r.raters[j]}]", k, n, r, (r.raters[i], r.raters[j]), reason, note))
    rated2 = int((np.sum(~np.isnan(r.matrix), axis=1) >= 2).sum())
    out.append(_mean("cohen_kappa_mean", out, r, rated2, "rater pair"))
    if out[-1].value is not None:
        out[-1].note = f"{out[-1].note}; {note}"
    return out


def fleiss_kappa(ratings: pd.DataFrame, level: Level = "nominal", categories: Sequence[Any] | None = None) -> AgreementResult:
    """Fleiss' kappa (statsmodels) over the items with the most common number m >= 2 of ratings
    (raters need not be the same people; items with another count are left out). Values are treated
    as unordered categories at every level."""
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    r = encode(ratings, level, categories)
    name = "fleiss_kappa"
    if len(r.raters) < 2:
        return _stat(name, None, 0, r, r.raters, "one rater: no agreement to measure")
    counts = np.sum(~np.isnan(r.matrix), axis=1)
    usable = Counter(int(c) for c in counts if c >= 2)
    if not usable:
        return _stat(name, None, 0, r, r.raters, "no item has 2 or more ratings")
    m = max(usable, key=lambda c: (usable[c], c))
    rows = r.matrix[counts == m]
    note = f"items with {m} ratings"
    left = int((counts >= 2).sum()) - len(rows)
    if left:
        note += f"; {left} item{'s' if left > 1 else ''} with another number of ratings left out"
    if r.level != "nominal":
        note += "; values as unordered categories"
    if len(rows) < 2:
        return _stat(name, None, len(rows), r, r.raters, f"{len(rows)} item with {m} ratings (need 2)", note)
    reason = _constant_reason(rows, r)
    if reason:
        return _stat(name, None, len(rows), r, r.raters, reason, note)
    compact = np.array([row[~np.isnan(row)] for row in rows])  # items x m, who rated does not matter
    _, cat = np.unique(compact, return_inverse=True)
    table, _ = aggregate_raters(cat.reshape(compact.shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = sm_fleiss(table, method="fleiss")
    return _stat(name, float(k), len(rows), r, r.raters, None, note)


def krippendorff_alpha(ratings: pd.DataFrame, level: Level = "nominal", categories: Sequence[Any] | None = None) -> AgreementResult:
    """Krippendorff's alpha (krippendorff package) at the table's level; missing cells are native.
    n_items counts the items with 2 or more ratings (the pairable ones)."""
    import krippendorff

    r = encode(ratings, level, categories)
    name = "krippendorff_alpha"
    pairable = np.sum(~np.isnan(r.matrix), axis=1) >= 2
    n = int(pairable.sum())
    if len(r.raters) < 2:
        return _stat(name, None, n, r, r.raters, "one rater: no agreement to measure")
    if n < 2:
        return _stat(name, None, n, r, r.raters, f"{n} item{'s' if n != 1 else ''} with 2 or more ratings (need 2)")
    reason = _constant_reason(r.matrix[pairable], r)
    if reason:
        return _stat(name, None, n, r, r.raters, reason)
    kwargs: dict[str, Any] = {}
    if r.labels is not None and r.level == "ordinal":
        kwargs["value_domain"] = list(range(len(r.labels)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = krippendorff.alpha(reliability_data=r.matrix.T, level_of_measurement=r.level, **kwargs)
    except (ValueError, ZeroDivisionError) as exc:
        return _stat(name, None, n, r, r.raters, f"krippendorff: {exc}")
    return _stat(name, float(a), n, r, r.raters)


def iccs(ratings: pd.DataFrame, level: Level = "interval", categories: Sequence[Any] | None = None) -> list[AgreementResult]:
    """The six Shrout & Fleiss ICC forms (pingouin) on the items rated by every rater (complete cases).
    Empty list when the ratings are not numbers (nominal level, or ordinal text labels)."""
    r = encode(ratings, level, categories)
    if not r.numeric:
        return []
    complete = ~np.isnan(r.matrix).any(axis=1)
    n = int(complete.sum())
    left = len(r.items) - n
    note = "complete cases" + (f"; {left} item{'s' if left > 1 else ''} not rated by every rater left out" if left else "")

    def none(reason: str) -> list[AgreementResult]:
        return [_stat(f, None, n, r, r.raters, reason, note) for f in ICC_FORMS]

    if len(r.raters) < 2:
        return none("one rater: no agreement to measure")
    if n < 2:
        return none(f"{n} item{'s' if n != 1 else ''} rated by every rater (need 2)")
    data = r.matrix[complete]
    if np.all(data == data[0, 0]):
        return none(f"constant ratings (every rating is {r.show(data[0, 0])})")
    if np.allclose(data.mean(axis=1), data.mean()):
        return none("no variance between items (every item has the same mean rating)")
    import pingouin as pg

    long = pd.DataFrame(data, columns=r.raters).rename_axis("item").reset_index().melt(id_vars="item", var_name="rater", value_name="rating")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = pg.intraclass_corr(long, targets="item", raters="rater", ratings="rating", nan_policy="omit")
    by_type = dict(zip(table["Type"], table["ICC"]))
    out = []
    for form, labels in ICC_FORMS.items():
        value = next((by_type[t] for t in labels if t in by_type), None)
        out.append(_stat(form, value, n, r, r.raters, None if value is not None else "pingouin gave no such form", note))
    return out


def spearman_correlations(ratings: pd.DataFrame, level: Level = "ordinal", categories: Sequence[Any] | None = None) -> list[AgreementResult]:
    """Spearman's rho (scipy) for every rater pair on the items both rated (``spearman[a,b]``; 3 or
    more items, since 2 always give +-1), then the mean (``spearman_mean``). Empty list at nominal level."""
    from scipy.stats import spearmanr

    r = encode(ratings, level, categories)
    if r.level == "nominal":
        return []
    out = []
    for i, j in combinations(range(len(r.raters)), 2):
        a, b = r.matrix[:, i], r.matrix[:, j]
        both = ~np.isnan(a) & ~np.isnan(b)
        n = int(both.sum())
        pair = (r.raters[i], r.raters[j])
        name = f"spearman[{pair[0]},{pair[1]}]"
        if n < 3:
            out.append(_stat(name, None, n, r, pair, f"{n} item{'s' if n != 1 else ''} rated by both (need 3)"))
            continue
        flat = [who for who, v in zip(pair, (a[both], b[both])) if np.all(v == v[0])]
        if flat:
            out.append(_stat(name, None, n, r, pair, f"constant ratings by {' and '.join(flat)}"))
            continue
        rho = spearmanr(a[both], b[both]).statistic
        out.append(_stat(name, float(rho), n, r, pair))
    rated2 = int((np.sum(~np.isnan(r.matrix), axis=1) >= 2).sum())
    out.append(_mean("spearman_mean", out, r, rated2, "rater pair"))
    return out


def _majority(row: np.ndarray) -> float:
    seen = row[~np.isnan(row)]
    if seen.size == 0:
        return np.nan
    top = Counter(seen.tolist()).most_common()
    if len(top) > 1 and top[0][1] == top[1][1]:
        return np.nan
    return top[0][0]


def model_kappas(
    ratings: pd.DataFrame, model_labels: Mapping[Any, Any] | pd.Series, level: Level = "nominal", categories: Sequence[Any] | None = None
) -> list[AgreementResult]:
    """Cohen's kappa of each rater vs the model (``model_kappa[rater]``) and of the human majority vs
    the model (``model_kappa[majority]``; majority = an item's unique most common rating, ties left
    out), on the items both have. ``model_labels`` maps item id -> label; checked like the ratings.
    Weighted as ``cohen_kappas``."""
    r = encode(ratings, level, categories)
    given = model_labels.to_dict() if isinstance(model_labels, pd.Series) else dict(model_labels)
    column = pd.DataFrame({"model": list(given.values())}, index=[label_text(k) for k in given], dtype=object)
    checked = prepare_ratings(column, r.level, r.labels if r.fixed else None, source="model labels")["model"]
    by_item = {i: v for i, v in checked.items() if not missing(v)}
    if r.labels is not None:  # a label the model used and no human did: a category of its own (disagreement)
        rated = set(r.items)
        new = sorted({v for i, v in by_item.items() if i in rated} - set(r.labels))
        if new:
            r = EncodedRatings(r.matrix, r.items, r.raters, r.level, r.labels + new, r.fixed)
    model = np.array([r.code(by_item[i]) if i in by_item else np.nan for i in r.items], dtype=float)
    joint = EncodedRatings(np.column_stack([r.matrix, model]), r.items, r.raters + ["model"], r.level, r.labels, r.fixed)
    pos, n_pos, pos_note = _positions(joint)
    weights = KAPPA_WEIGHTS[r.level]
    note = _weights_note(r, pos_note)
    out = []
    if np.isnan(model).all():
        return [_stat(f"model_kappa[{who}]", None, 0, r, (who, "model"), "no model label for any rated item") for who in [*r.raters, "majority"]]
    for i, who in enumerate(r.raters):
        k, n, reason = _kappa(pos[:, i], pos[:, -1], n_pos, weights)
        out.append(_stat(f"model_kappa[{who}]", k, n, r, (who, "model"), reason, note))
    majority_pos = np.array([_majority(row) for row in pos[:, :-1]])
    k, n, reason = _kappa(majority_pos, pos[:, -1], n_pos, weights)
    ties = int(sum(1 for row in r.matrix if (~np.isnan(row)).any()) - (~np.isnan(majority_pos)).sum())
    mnote = note + (f"; {ties} tied item{'s' if ties > 1 else ''} left out" if ties else "")
    out.append(_stat("model_kappa[majority]", k, n, r, ("majority", "model"), reason, mnote))
    return out


def agreement_stats(
    ratings: pd.DataFrame,
    level: Level = "nominal",
    categories: Sequence[Any] | None = None,
    model_labels: Mapping[Any, Any] | pd.Series | None = None,
) -> list[AgreementResult]:
    """Every statistic that applies to the level: Cohen (pairs, mean), Fleiss, Krippendorff's alpha,
    ICC (numeric values), Spearman (ordinal and above), and human vs model when model labels are given."""
    r = encode(ratings, level, categories)
    stats = [*cohen_kappas(r, level), fleiss_kappa(r, level), krippendorff_alpha(r, level), *iccs(r, level), *spearman_correlations(r, level)]
    if model_labels is not None:
        stats += model_kappas(r, model_labels, level)
    return stats


def assess(
    ratings: pd.DataFrame,
    level: Level = "nominal",
    gates: AgreementGates | None = None,
    categories: Sequence[Any] | None = None,
    model_labels: Mapping[Any, Any] | pd.Series | None = None,
    source: str | None = None,
) -> AgreementReport:
    """All statistics for the table, held to the gates: the report the CLI prints and writes as JSON."""
    gates = gates or AgreementGates()
    r = encode(ratings, level, categories)
    stats = agreement_stats(r, level, model_labels=model_labels)
    decision = apply_gates(stats, gates)
    return AgreementReport(
        source=source, level=level, n_items=len(r.items), raters=r.raters, stats=decision.stats, gates=gates,
        decision=decision.decision, reasons=decision.reasons,
    )
