"""Resolving a run: each clip's label from the reliability-weighted consensus (or a vote), its
calibrated confidence, the flags that explain it, and which clips go to a person (routing)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from agents.judge import calibration, reliability
from agents.judge.aggregate import Votes, label_distributions, summarise
from agents.judge.flags import review_threshold
from agents.judge.roles import roles
from agents.judge.judge_index import JudgeIndex
from schemas import AnnotatorReliability, Clip, Consensus, EmoforgeConfig, Provenance, Routing
from schemas.features import LabelProb
from schemas.trusted import trusted

if TYPE_CHECKING:
    from agents.judge.stage import Tally


@dataclass
class Resolved:
    consensus: list[Consensus]
    threshold: float
    routing: Routing
    reliability: list[AnnotatorReliability]
    posterior: dict[str, list[float]]  # clip -> posterior over the taxonomy (reliability aggregation only)


def resolve(clips: list[Clip], index: dict[str, JudgeIndex], tally: "Tally", config: EmoforgeConfig,
            gold: dict[str, list[str]], known: dict[str, list[str]], prov: Provenance,
            person: dict[str, str] | None = None) -> Resolved:
    """`person`: clip -> whose clip it is (a speaker's voice group, else the source), for the interval
    around the accepted clips' accuracy (calibration.accepted_interval)."""
    jc = config.judge
    labels = tally.labels
    clip_ids = tally.clip_ids
    votes = tally.votes()
    known_rows = _known_matrix(clip_ids, labels, known)
    whose = _groups(clips, person)  # whose each clip is: cross-fitting folds and the interval resample by it
    annotators: list[AnnotatorReliability] = []
    posterior: dict[str, list[float]] = {}
    if jc.aggregation == "reliability":
        rc = jc.reliability
        fit_votes, calibrated = roles(config, votes.annotator_ids).votes(tally.soft_votes())
        measured = np.array([a in rc.annotator_priors for a in votes.annotator_ids], dtype=bool)
        fit_on_known = partial(reliability.fit, fit_votes, prior_strength=np.where(measured, rc.measured_prior_strength, rc.prior_strength),
                               class_prior_weight=rc.class_prior_weight,
                               prior_accuracy=np.array([rc.annotator_priors.get(a, rc.prior_accuracy) for a in votes.annotator_ids]),
                               calibrated=calibrated, blind_evidence=rc.blind_evidence,
                               stated=np.bincount(votes.label, minlength=len(labels)) > 0)
        fitted = fit_on_known(known_rows)
        dist, free = fitted.posterior, fitted.free_posterior
        free = held_out_beliefs(fit_on_known, known_rows, free, whose)
        posterior = {c: row for c, row in zip(clip_ids, dist.tolist())}
        annotators = _annotator_reliability(fitted, votes, known_rows, labels, np.bincount(fit_votes.annotator, minlength=len(votes.annotator_ids)))
    else:
        dist = free = label_distributions(votes, jc.aggregation)
    top, margin, entropy, uncertainty = summarise(dist, len(labels))

    n_answers = np.bincount(votes.clip, minlength=len(clip_ids))
    agree = votes.label == top[votes.clip]
    n_agree = np.bincount(votes.clip, weights=agree, minlength=len(clip_ids))
    s_agree = np.bincount(votes.clip, weights=votes.weight * agree, minlength=len(clip_ids))
    agreement = np.divide(n_agree, n_answers, out=np.zeros(len(clip_ids)), where=n_answers > 0)
    s_mean = np.divide(s_agree, n_agree, out=np.full(len(clip_ids), np.nan), where=n_agree > 0)

    # calibrated confidence: the review score. Fitted on the clips with known labels, from what the
    # answers alone said about them (the known label held out of the belief, not of the fit)
    is_known = known_rows.sum(axis=1) > 0
    raw = free.max(axis=1)
    free_top = np.where(free.sum(axis=1) > 0, free.argmax(axis=1), -1)
    fit_on = is_known & (free_top >= 0)
    right = known_rows[np.nonzero(fit_on)[0], free_top[fit_on]] > 0
    calibrate = calibration.fit_calibrator(raw[fit_on], right.astype(float), jc.reliability.calibration_prior_strength)
    confidence = np.where(top >= 0, calibrate(raw), 0.0)
    confidence[is_known & (top >= 0)] = 1.0  # the label is the known one
    review = confidence

    gold_correct = None
    if gold:
        gold_correct = np.array([np.nan if c not in gold else float(top[i] >= 0 and labels[top[i]] in gold[c])
                                 for i, c in enumerate(clip_ids)])
    rule = jc.threshold
    if rule.mode == "target":
        # only clips whose label the model gives are routed: known labels would pad the accepted
        # set's accuracy and let doubtful clips through
        cut = calibration.cut_for_target(review[(top >= 0) & ~is_known], rule.target_accuracy)
        threshold = cut.threshold
    else:
        threshold = review_threshold(review, rule, gold_correct)

    hallucinated, rejected, cited = tally.hallucinated, tally.rejected, tally.cited
    # plain Python values: indexing numpy arrays one element at a time costs more than the rest of the loop
    top_, margin_, entropy_, uncertainty_, agreement_, n_answers_, s_mean_, review_, dist_, known_ = (
        x.tolist() for x in (top, margin, entropy, uncertainty, agreement, n_answers, s_mean, review, dist, is_known))
    flag_on = set(jc.flag_on)
    # a posterior is never exactly 0: labels it gives under 0.001 are left out of the stored distribution
    floor = 1e-3 if jc.aggregation == "reliability" else 0.0
    out = []
    for i, clip in enumerate(clips):
        cid = clip.clip_id
        flags = []
        if review_[i] < threshold:
            flags.append("low_score")
        if top_[i] < 0:
            flags.append("no_answer")  # every annotator abstained or failed: only a person can label it
        else:
            if margin_[i] < jc.min_margin:
                flags.append("thin_margin")
            if agreement_[i] < jc.min_agreement:
                flags.append("disagreement")
        if cid in hallucinated:
            flags.append("hallucinated_evidence")
        if index[cid].modalities - cited.get(cid, set()):  # measured, but no answer looked at it
            flags.append("missing_modality")
        if cid in rejected:
            flags.append("rejected_answer")
        if (lv := index[cid].learned_voice) is not None and lv.teach:
            flags.append("teach_voice_model")  # no voice model yet: its label would teach one most
        out.append(trusted(
            Consensus, clip_id=cid, label=labels[top_[i]] if top_[i] >= 0 else None,
            distribution=[trusted(LabelProb, label=labels[k], prob=round(p, 6)) for k, p in enumerate(dist_[i]) if p > floor],
            method=jc.aggregation, margin=margin_[i], entropy=entropy_[i], uncertainty=uncertainty_[i],
            agreement=agreement_[i], n_answers=n_answers_[i],
            s_final_mean=None if math.isnan(s_mean_[i]) else s_mean_[i], review_score=review_[i],
            confidence=review_[i] if top_[i] >= 0 else None,
            gold_label=(gold.get(cid) or [None])[0], flags=flags,
            # a clip whose label is known (gold, a reviewer's verdict) has nothing left to ask a person
            needs_review=not known_[i] and not flag_on.isdisjoint(flags), provenance=prov))
    # accepted: labelled by the model and sent to no one (a known label is neither)
    accepted = np.array([not c.needs_review and c.label is not None for c in out], dtype=bool) & ~is_known
    est, lo, hi = calibration.accepted_estimate(review[accepted])
    if fit_on.any() and accepted.any():
        labelled = np.nonzero(fit_on)[0]
        lo, hi = calibration.accepted_interval(
            raw[accepted], raw[labelled], right.astype(float),
            [whose[i] for i in labelled], jc.reliability.calibration_prior_strength)
    routing = Routing(mode=rule.mode, threshold=float(threshold), target_accuracy=rule.target_accuracy if rule.mode in ("target", "calibrated") else None,
                      n_clips=int((~is_known).sum()), n_known=int(is_known.sum()), n_accepted=int(accepted.sum()),
                      estimated_accuracy=est, ci_low=lo, ci_high=hi,
                      calibrated_on=int(fit_on.sum()), calibration=calibrate.method,
                      n_teach=sum("teach_voice_model" in c.flags for c in out))
    return Resolved(out, float(threshold), routing, annotators, posterior)


CROSS_FIT_FOLDS = 5


def held_out_beliefs(fit_on_known, known_rows: np.ndarray, free: np.ndarray, groups: list[str]) -> np.ndarray:
    """`free` with each labelled clip's row replaced by what a fit that never saw its label says of it.
    The full fit learns the confusion matrices from the labelled clips themselves, so its belief about
    them is optimistic, and a calibration fitted on it overstates how often the unlabelled clips are
    right. Cross-fitting (K folds of whole groups, a person's clips together, as
    calibration.accepted_interval resamples them; of single clips where there is one group) gives
    each labelled clip an out-of-fold belief, as agents/learned_voice.py does for the voice model's."""
    labelled = np.nonzero(known_rows.sum(axis=1) > 0)[0]
    if len(labelled) == 0:
        return free
    names = sorted({groups[i] for i in labelled})
    unit = {g: u for u, g in enumerate(names)}
    units = np.array([unit[groups[i]] for i in labelled]) if len(names) > 1 else np.arange(len(labelled))
    folds = min(CROSS_FIT_FOLDS, int(units.max()) + 1)
    out = free.copy()
    for f in range(folds):
        rows = labelled[units % folds == f]
        held = known_rows.copy()
        held[rows] = 0.0
        out[rows] = fit_on_known(held).free_posterior[rows]
    return out


def _groups(clips: list[Clip], person: dict[str, str] | None) -> list[str]:
    """Whose each clip is: a speaker's voice group where the run has one, else the source."""
    return [(person or {}).get(c.clip_id) or c.source_id for c in clips]


def _known_matrix(clip_ids: list[str], labels: list[str], known: dict[str, list[str]]) -> np.ndarray:
    """(N, K): a known clip's labels spread evenly; zeros elsewhere."""
    out = np.zeros((len(clip_ids), len(labels)))
    lpos = {lab: k for k, lab in enumerate(labels)}
    for i, c in enumerate(clip_ids):
        ks = [lpos[x] for x in known.get(c, []) if x in lpos]
        if ks:
            out[i, ks] = 1.0 / len(ks)
    return out


def _annotator_reliability(fitted: reliability.Reliability, votes: Votes, known_rows: np.ndarray,
                           labels: list[str], fitted_votes: np.ndarray) -> list[AnnotatorReliability]:
    """`fitted_votes`: how many of each annotator's answers the confusion-matrix fit took. For one
    it took none of (calibrated, or replaced by one that reads its input), the estimate is the
    consensus's mean belief in its labels instead, and no per-class recall is claimed."""
    acc = fitted.accuracy()
    belief = fitted.posterior[votes.clip, votes.label]
    n = np.bincount(votes.annotator, minlength=len(votes.annotator_ids))
    seen = fitted.posterior[np.unique(votes.clip)].sum(axis=0) > 0.5  # classes the run's clips hold
    out = []
    for j, name in enumerate(votes.annotator_ids):
        mine = votes.annotator == j
        on_known = mine & (known_rows[votes.clip].sum(axis=1) > 0)
        right = known_rows[votes.clip[on_known], votes.label[on_known]] > 0
        modelled = fitted_votes[j] > 0
        out.append(AnnotatorReliability(
            annotator_id=name, n_answers=int(n[j]),
            estimated_accuracy=round(float(acc[j] if modelled else belief[mine].mean()), 4),
            recall=[LabelProb(label=labels[k], prob=round(float(fitted.confusion[j, k, k]), 4)) for k in range(len(labels)) if seen[k] and modelled],
            gold_accuracy=round(float(right.mean()), 4) if on_known.any() else None, n_gold=int(on_known.sum())))
    return out
