"""Which clips a person should label first while the run has no voice model of its own.

Blind, the offline vocal agents are near chance on acted speech (README, label quality); a few
labelled clips let the run fit its own voice model (agents/learned_voice.py), which then carries the
consensus on speech. With a small labelling budget it matters which clips are labelled: at low
budgets the typical clips of the data's distinct regions teach a classifier more than random or
least-certain ones (Hacohen, Dekel & Weinshall 2022, "Active learning on a budget: opposite
strategies suit high and low budgets", ICML; k-means sampling as in Zhdanov 2019). So the voiced
clips are clustered with k-means (scikit-learn) on what the voice model reads, reduced by PCA, into
as many clusters as the budget, and from each cluster the clip nearest its centre is chosen. Fixed
seeds: the same run chooses the same clips."""

from __future__ import annotations

import numpy as np

PCA_DIMS = 20  # k-means distances in hundreds of dimensions are mostly noise
K_MEANS_STARTS = 4


def choose_teach_set(ids: list[str], x: np.ndarray, n: int) -> set[str]:
    """Up to `n` of `ids` (rows of `x`, the voice model's z-scored input) that cover the run's
    voices: each k-means cluster's clip nearest its centre. All of them when there are no more than `n`."""
    if n <= 0 or not ids:
        return set()
    if len(ids) <= n:
        return set(ids)
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    z = StandardScaler().fit_transform(x)
    z = PCA(min(PCA_DIMS, z.shape[0] - 1, z.shape[1]), random_state=0).fit_transform(z)
    km = KMeans(n_clusters=n, n_init=K_MEANS_STARTS, random_state=0).fit(z)
    dist = ((z - km.cluster_centers_[km.labels_]) ** 2).sum(axis=1)
    nearest: dict[int, int] = {}
    for i, c in enumerate(km.labels_.tolist()):
        if c not in nearest or dist[i] < dist[nearest[c]]:
            nearest[c] = i
    return {ids[i] for i in nearest.values()}
