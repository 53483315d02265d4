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
`prior_accuracy` of them on the diagonal) keeps rare classes and small runs from degenerate fits."""

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


def _answer_likelihoods(votes: SoftVotes, confusion: np.ndarray) -> np.ndarray:
    """(A, K): for each answer, Σ_l p_a(l) θ_j[k, l] for every true class k."""
    out = np.empty_like(votes.probs)
    for j in range(votes.n_annotators):
        rows = votes.annotator == j
        out[rows] = votes.probs[rows] @ confusion[j].T
    return out


def _posteriors(incidence: sparse.csr_matrix, like: np.ndarray, prior: np.ndarray) -> np.ndarray:
    log_q = incidence @ np.log(np.maximum(like, 1e-300)) + np.log(prior)
    log_q -= log_q.max(axis=1, keepdims=True)
    q = np.exp(log_q)
    return q / q.sum(axis=1, keepdims=True)


def fit(votes: SoftVotes, known: np.ndarray | None = None, n_iter: int = 100, tol: float = 1e-4,
        prior_strength: float = 2.0, prior_accuracy: float = 0.6, class_prior_weight: float = 1.0) -> Reliability:
    """`known`: (N, K) label distributions of clips whose truth is known (a row of zeros where not)."""
    n, k, a = votes.n_clips, votes.n_labels, len(votes.clip)
    answered = np.bincount(votes.clip, minlength=n) > 0
    known = np.zeros((n, k)) if known is None else known
    is_known = known.sum(axis=1) > 0
    incidence = sparse.csr_matrix((np.ones(a), (votes.clip, np.arange(a))), shape=(n, a))
    off = (1.0 - prior_accuracy) / (k - 1) if k > 1 else 0.0
    pseudo = prior_strength * np.where(np.eye(k, dtype=bool), prior_accuracy, off)

    # start from the soft majority vote
    q = np.asarray(incidence @ votes.probs)
    q = np.divide(q, q.sum(axis=1, keepdims=True), out=np.zeros_like(q), where=q.sum(axis=1, keepdims=True) > 0)
    q[is_known] = known[is_known]
    confusion = np.zeros((votes.n_annotators, k, k))
    prior = np.full(k, 1.0 / k)
    it = 0
    for it in range(1, n_iter + 1):
        # M-step: confusion counts from the current beliefs about each answered clip's truth
        per_answer = q[votes.clip]
        for j in range(votes.n_annotators):
            rows = votes.annotator == j
            counts = per_answer[rows].T @ votes.probs[rows] + pseudo
            confusion[j] = counts / counts.sum(axis=1, keepdims=True)
        weight = answered | is_known
        # the class prior is held toward uniform by class_prior_weight × (clips) pseudo-clips: left free,
        # an annotator that gives one label to everything "explains" the run as all that label and
        # is taken as perfect (the classic degenerate Dawid-Skene fit)
        counted = q[weight].sum(axis=0)
        prior = counted + class_prior_weight * counted.sum() / k + 1.0
        prior /= prior.sum()
        # E-step
        new = _posteriors(incidence, _answer_likelihoods(votes, confusion), prior)
        new[is_known] = known[is_known]
        new[~answered & ~is_known] = 0.0
        delta = float(np.abs(new - q).max()) if n else 0.0
        q = new
        if delta < tol:
            break
    free = _posteriors(incidence, _answer_likelihoods(votes, confusion), prior)
    free[~answered] = 0.0
    return Reliability(posterior=q, free_posterior=free, confusion=confusion, prior=prior, iterations=it)
