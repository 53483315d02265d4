"""Which clips a person should label first while the run has no voice model of its own.

Blind, the offline vocal agents are near chance on acted speech (README, label quality); a few
labelled clips let the run fit its own voice model (agents/learned_voice.py), which then carries the
consensus on speech. With a small labelling budget it matters which clips are labelled: at low
budgets the typical clips of the data's distinct regions teach a classifier more than random or
least-certain ones (Hacohen, Dekel & Weinshall 2022, "Active learning on a budget: opposite
strategies suit high and low budgets", ICML; k-means sampling as in Zhdanov 2019). So the voiced
clips are clustered with k-means (scikit-learn) on what the voice model reads, reduced by PCA, into
as many clusters as the budget plus the clips already labelled; a cluster that holds a labelled clip
is covered, and from each of the largest uncovered ones the unlabelled clip nearest its centre is
chosen (TypiClust's rule, with distance to the centre for typicality). Fixed seeds: the same run
chooses the same clips."""

from __future__ import annotations

import numpy as np

PCA_DIMS = 20  # k-means distances in hundreds of dimensions are mostly noise
K_MEANS_STARTS = 4


def choose_teach_set(ids: list[str], x: np.ndarray, n: int, known: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """Up to `n` of the `ids` not in `known` (rows of `x`, the voice model's z-scored input) that
    cover the run's voices where no labelled clip does. All of them when there are no more than `n`."""
    unlabelled = [i for i in ids if i not in known]
    if n <= 0 or not unlabelled:
        return set()
    if len(unlabelled) <= n:
        return set(unlabelled)
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    z = StandardScaler().fit_transform(x)
    z = PCA(min(PCA_DIMS, z.shape[0] - 1, z.shape[1]), random_state=0).fit_transform(z)
    km = KMeans(n_clusters=n + len(ids) - len(unlabelled), n_init=K_MEANS_STARTS, random_state=0).fit(z)
    cluster = km.labels_.tolist()
    dist = ((z - km.cluster_centers_[km.labels_]) ** 2).sum(axis=1)
    covered = {c for c, i in zip(cluster, ids) if i in known}
    nearest: dict[int, int] = {}
    for k, (c, i) in enumerate(zip(cluster, ids)):
        if c not in covered and i not in known and (c not in nearest or dist[k] < dist[nearest[c]]):
            nearest[c] = k
    size = np.bincount(km.labels_)
    largest = sorted(nearest, key=lambda c: (-size[c], c))[:n]
    return {ids[nearest[c]] for c in largest}
