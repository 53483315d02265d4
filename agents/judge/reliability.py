"""Reliability-weighted consensus: the Dawid–Skene model (Dawid & Skene 1979) fitted by EM over the
whole run, on each answer's full label distribution rather than its top label.

Each annotator j has a confusion matrix θ_j[k, l] = P(it answers l | the truth is k) and the run a
class prior π. A clip's posterior over the truth is

    q(k) ∝ π_k · ∏_answers Σ_l p_a(l) · θ_j[k, l]

(a soft answer is a mixture of the hard answers it could have given). An annotator that gives the
same label whatever the truth has identical rows, so its answers multiply every class alike and move
nothing: it earns no weight without a rule that says so. Clips with known labels (gold, or a human
verdict from review) keep their label in every E-step and anchor the confusion matrices.

crowd-kit's DawidSkene takes hard labels only and costs tens of seconds on a million answers; this is
the same EM on soft votes in a few matrix products per iteration (a test checks that on one-hot votes
it lands where crowd-kit does). A Dirichlet prior on each row (`prior_strength` pseudo-answers,
`prior_accuracy` of them on the diagonal) keeps rare classes and small runs from degenerate fits.

Answers that are already calibrated estimates of P(truth | what the annotator read) under equal
class rates (a model fitted with balanced class weights and checked out of fold on the run's own
labelled clips) are not opinions to be weighed: pushed through a confusion matrix they lose what
they know (the soft mixture flattens them and reorders close calls). Such a p(k) is proportional
to the likelihood of what the model read under class k, so it enters every posterior as a fixed
log p(k) next to the run's class prior: Bayes' rule (`calibrated_offset`).

Clips whose truth is not known teach the confusion matrices only through the model's own beliefs
about them, and the model is wrong in a known way: agents that read the same features are not
independent given the truth. Left at full weight, a large blind run lets that self-teaching outweigh
the measured priors however weak the answers are (on single words in an unknown language the fit
flattened every annotator and stated a confidence far below how often it was right). So the unlabelled
clips of a run together count as at most `blind_evidence` labelled ones: semi-supervised EM with a
down-weighted unlabelled part (Nigam, McCallum, Thrun & Mitchell 2000, "EM-λ"), a tempered likelihood
for a misspecified model (Grünwald & van Ommen 2017). Known clips always count in full, and a small
run (up to `blind_evidence` answered clips) learns as before, so an annotator that says one label to
everything still earns no weight.

The reported posteriors scale down a label that no answer put first and no known clip carries
(`named_labels`) by how telling its absence is over the run's clips (Laplace's rule of succession):
the prior held toward uniform and the smoothed confusion rows leave such labels mass that is not
evidence, and over many clips that understated how sure the run is, by a different amount on every
clip."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class SoftVotes:
    """The usable answers of a run: one row per answer."""

    clip: np.ndarray  # (A,) int index into the run's clips
    annotator: np.ndarray  # (A,) int index into the annotators
    probs: np.ndarray  # (A, K) each answer's distribution over the taxonomy; rows sum to 1
    n_clips: int
    n_annotators: int

    @property
    def n_labels(self) -> int:
        return self.probs.shape[1]


@dataclass(frozen=True)
class Reliability:
    posterior: np.ndarray  # (N, K) anchored on known labels; all zeros for a clip without answers
    free_posterior: np.ndarray  # (N, K) what the answers alone say, known labels ignored (for calibration)
    confusion: np.ndarray  # (J, K, K) θ_j[k, l]
    prior: np.ndarray  # (K,) π
    iterations: int

    def accuracy(self) -> np.ndarray:
        """Each annotator's expected accuracy, Σ_k π_k θ_j[k, k]."""
        return np.einsum("k,jkk->j", self.prior, self.confusion)


def _answer_likelihoods(probs: np.ndarray, bounds: list[tuple[int, int]], confusion: np.ndarray) -> np.ndarray:
    """(A, K): for each answer, Σ_l p_a(l) θ_j[k, l] for every true class k (answers sorted by annotator)."""
    out = np.empty_like(probs)
    for j, (lo, hi) in enumerate(bounds):
        # einsum, not matmul: BLAS is an order of magnitude slower on (A, K) x (K, K) with K this small
        np.einsum("al,kl->ak", probs[lo:hi], confusion[j].astype(probs.dtype), out=out[lo:hi])
    return out


def _posteriors(incidence: sparse.csr_matrix, like: np.ndarray, prior: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
    np.maximum(like, 1e-30, out=like)
    log_q = (incidence @ np.log(like, out=like)).astype(np.float64) + np.log(prior)
    if offset is not None:
        log_q += offset
    log_q -= log_q.max(axis=1, keepdims=True)
    q = np.exp(log_q, out=log_q)
    return q / q.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class CalibratedAnswers:
    log_likelihood: np.ndarray  # (N, K) summed over a clip's calibrated answers
    answered: np.ndarray  # (N,) bool: a model that says the same everywhere adds nothing, but the clip was answered


def calibrated_offset(votes: SoftVotes, calibrated: np.ndarray, floor: float = 1e-4) -> tuple[SoftVotes, CalibratedAnswers | None]:
    """Split off the answers of the annotators marked in `calibrated` (one bool per annotator): the
    rest stay votes for the confusion-matrix fit; these become an (N, K) sum of log-likelihoods. A
    label an answer gives no probability (one the model was never shown) gets that answer's lowest:
    the model cannot speak for it, and must not favour it either."""
    mine = calibrated[votes.annotator]
    if not mine.any():
        return votes, None
    offset = np.zeros((votes.n_clips, votes.n_labels))
    answered = np.zeros(votes.n_clips, dtype=bool)
    answered[votes.clip[mine]] = True
    for j in np.nonzero(calibrated)[0]:
        rows = votes.annotator == j
        if not rows.any():
            continue
        p = votes.probs[rows]
        shown = p > 0
        log_like = np.log(np.clip(p, floor, 1.0))
        lowest = np.where(shown, log_like, np.inf).min(axis=1, keepdims=True)
        np.add.at(offset, votes.clip[rows], np.where(shown, log_like, lowest))
    rest = ~mine
    return SoftVotes(votes.clip[rest], votes.annotator[rest], votes.probs[rest], votes.n_clips, votes.n_annotators), CalibratedAnswers(offset, answered)


def fit(votes: SoftVotes, known: np.ndarray | None = None, n_iter: int = 30, tol: float = 1e-3,
        prior_strength: float | np.ndarray = 2.0, prior_accuracy: float | np.ndarray = 0.6, class_prior_weight: float = 1.0,
        calibrated: CalibratedAnswers | None = None, blind_evidence: float | None = None,
        stated: np.ndarray | None = None) -> Reliability:
    """`known`: (N, K) label distributions of clips whose truth is known (a row of zeros where not).
    `prior_accuracy`, `prior_strength`: one value, or one per annotator (what labelled media measured
    of each, and how many pseudo-answers per confusion row that measurement is worth).
    `calibrated`: the calibrated answers' log-likelihoods (`calibrated_offset`), or None.
    `blind_evidence`: how many labelled clips the unlabelled ones are worth at most (None: no cap).
    `stated`: (K,) bool, labels the run's answers stated, voting or not (an answer may state a label
    its own distribution does not put first); they count as named (`named_labels`)."""
    n, k, a = votes.n_clips, votes.n_labels, len(votes.clip)
    # answers sorted by annotator, so each annotator's are one contiguous block (views, not copies)
    order = np.argsort(votes.annotator, kind="stable")
    # single precision for the per-answer arrays: half the memory traffic, and the posteriors need no more
    clip_of, probs = votes.clip[order], votes.probs[order].astype(np.float32)
    edges = np.searchsorted(votes.annotator[order], np.arange(votes.n_annotators + 1))
    bounds = list(zip(edges[:-1].tolist(), edges[1:].tolist()))
    answered = np.bincount(clip_of, minlength=n) > 0
    offset = None if calibrated is None else calibrated.log_likelihood
    if calibrated is not None:
        answered |= calibrated.answered
    known = np.zeros((n, k)) if known is None else known
    is_known = known.sum(axis=1) > 0
    incidence = sparse.csr_matrix((np.ones(a, dtype=np.float32), (clip_of, np.arange(a))), shape=(n, a))
    acc = np.broadcast_to(np.asarray(prior_accuracy, dtype=float), (votes.n_annotators,))
    off = (1.0 - acc) / (k - 1) if k > 1 else np.zeros_like(acc)
    # a prior counts only for the information the run's answers carry (a vanishing floor keeps a row
    # no clip informs defined)
    strength = np.maximum(np.broadcast_to(np.asarray(prior_strength, dtype=float), (votes.n_annotators,))
                          * information_share(probs, bounds, acc, k), 1e-6)
    pseudo = strength[:, None, None] * np.where(np.eye(k, dtype=bool)[None], acc[:, None, None], off[:, None, None])

    # start from the soft majority vote (and what the calibrated answers say)
    q = np.asarray(incidence @ probs, dtype=np.float64)
    if calibrated is not None:
        q += np.where(calibrated.answered[:, None], np.exp(offset - offset.max(axis=1, keepdims=True)), 0.0)
    total = q.sum(axis=1, keepdims=True)
    q = np.divide(q, total, out=np.zeros_like(q), where=total > 0)
    q[is_known] = known[is_known]
    confusion = np.zeros((votes.n_annotators, k, k))
    prior = np.full(k, 1.0 / k)
    weight = answered | is_known
    # the unlabelled clips together teach the confusion matrices as much as `blind_evidence` known ones at most
    n_blind = int((answered & ~is_known).sum())
    unlabelled_weight = 1.0 if blind_evidence is None or n_blind <= blind_evidence else blind_evidence / n_blind
    clip_weight = None if unlabelled_weight == 1.0 else np.where(is_known, 1.0, unlabelled_weight)[:, None]
    it = 0
    for it in range(1, n_iter + 1):
        # M-step: confusion counts from the current beliefs about each answered clip's truth
        per_answer = (q if clip_weight is None else q * clip_weight).astype(np.float32)[clip_of]
        for j, (lo, hi) in enumerate(bounds):
            counts = per_answer[lo:hi].T @ probs[lo:hi] + pseudo[j]
            confusion[j] = counts / counts.sum(axis=1, keepdims=True)
        # the class prior is held toward uniform by class_prior_weight × (clips) pseudo-clips: left free,
        # an annotator that gives one label to everything "explains" the run as all that label and
        # is taken as perfect (the classic degenerate Dawid-Skene fit)
        counted = q[weight].sum(axis=0)
        prior = counted + class_prior_weight * counted.sum() / k + 1.0
        prior /= prior.sum()
        # E-step
        new = _posteriors(incidence, _answer_likelihoods(probs, bounds, confusion), prior, offset)
        new[is_known] = known[is_known]
        new[~weight] = 0.0
        delta = float(np.abs(new - q).max()) if n else 0.0
        q = new
        if delta < tol:
            break
    free = _posteriors(incidence, _answer_likelihoods(probs, bounds, confusion), prior, offset)
    free[~answered] = 0.0
    named = named_labels(probs, known, calibrated, stated)
    seen = int((answered | is_known).sum())
    return Reliability(posterior=_within(q, named, seen), free_posterior=_within(free, named, seen), confusion=confusion, prior=prior,
                       iterations=it)


def information_share(probs: np.ndarray, bounds: list[tuple[int, int]], accuracy: np.ndarray, k: int) -> np.ndarray:
    """(J,) the share of each annotator's prior this run's answers can bear. What an annotator's answers
    tell about the truth is at most what they carry at all (the data-processing inequality: I(truth;
    answer) <= H(answer), the entropy of the labels it gave), and a one-coin prior of accuracy a over
    K labels claims ln K + a ln a + (1 - a) ln((1 - a)/(K - 1)) nats. Where the run's answers carry
    less, the prior does not describe what the annotator does here, and it counts for that share of
    its pseudo-answers; an annotator that gives one label to everything carries nothing, so the run
    alone decides its rows, and they come out identical (flattening its prior rows instead is not
    enough: flat pseudo-answers beside the capped data still leave the rows apart). Without this a
    capped blind fit (the measured priors outweighing `blind_evidence` clips) let two constant
    annotators outvote an informative one. Read only where an annotator gave at least K answers:
    fewer cannot show it."""
    share = np.ones(len(bounds))
    if k < 2:
        return share
    for j, (lo, hi) in enumerate(bounds):
        if hi - lo < k:
            continue
        given = np.bincount(probs[lo:hi].argmax(axis=1), minlength=k) / (hi - lo)
        carried = float(-(given[given > 0] * np.log(given[given > 0])).sum())
        a = float(accuracy[j])
        claimed = np.log(k) + a * np.log(a) + (1 - a) * np.log((1 - a) / (k - 1)) if 0 < a < 1 else np.log(k)
        if claimed > 0:
            share[j] = min(1.0, carried / claimed)
    return share


def named_labels(probs: np.ndarray, known: np.ndarray, calibrated: CalibratedAnswers | None = None,
                 stated: np.ndarray | None = None) -> np.ndarray:
    """(K,) bool: the labels some answer of the run put first (ties included: an exclamation names
    every aroused emotion alike) or stated (`stated`, (K,) bool, voting or not), a calibrated answer
    put first, or a known clip carries."""
    named = (probs >= probs.max(axis=1, keepdims=True) - 1e-6).any(axis=0) if len(probs) else np.zeros(probs.shape[1], dtype=bool)
    named |= known.sum(axis=0) > 0
    if stated is not None:
        named |= stated
    if calibrated is not None and calibrated.answered.any():
        ll = calibrated.log_likelihood[calibrated.answered]
        named |= (ll >= ll.max(axis=1, keepdims=True) - 1e-6).any(axis=0)
    return named


def _within(q: np.ndarray, named: np.ndarray, clips: int) -> np.ndarray:
    """The posterior with the class prior of a label no answer named scaled down by how telling its
    absence is: over `clips` clips, Laplace's rule of succession puts a label never seen at 1/(n + K)
    against (n/K' + 1)/(n + K) for a label seen as often as the K' named ones are on average, a
    ratio of K'/(n + K'). The fit holds its prior toward uniform (so that a one-label annotator
    cannot explain the run), which leaves every label mass through the confusion matrices'
    smoothing; on a label nobody said in hundreds of clips that mass is not evidence, and it lowered
    the confidence by a different amount from clip to clip. On a run of one clip the factor is
    K'/(1 + K'): there the absence says little. A clip's label changes only where its top was a
    label nobody named."""
    if named.all() or not named.any():
        return q
    k_named = int(named.sum())
    r = q * np.where(named, 1.0, k_named / (clips + k_named))
    total = r.sum(axis=1, keepdims=True)
    return np.where(total > 0, r / np.where(total > 0, total, 1.0), q)
