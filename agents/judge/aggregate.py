"""Conflict resolution: one label distribution per clip from the panel's answers. Majority and
S_final-weighted votes are counted directly (numpy); the uncertainty-aware aggregators (Dawid-Skene,
one-coin Dawid-Skene, GLAD, MACE, Wawa) come from crowd-kit and learn each annotator's reliability
across the whole run."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

CROWDKIT = {"dawid_skene": "DawidSkene", "one_coin_dawid_skene": "OneCoinDawidSkene", "glad": "GLAD", "mace": "MACE", "wawa": "Wawa"}


@dataclass(frozen=True)
class Votes:
    """The usable answers of a run, one entry per answer (columns as arrays for speed)."""

    clip: np.ndarray  # int index into clip_ids
    annotator: np.ndarray  # int index into annotator_ids
    label: np.ndarray  # int index into labels
    weight: np.ndarray  # S_final of the answer
    clip_ids: list[str]
    annotator_ids: list[str]
    labels: list[str]


def label_distributions(votes: Votes, method: str) -> np.ndarray:
    """(n_clips, n_labels) matrix of label probabilities; a clip with no usable answer is all zeros."""
    n, k = len(votes.clip_ids), len(votes.labels)
    if method in ("majority", "weighted"):
        counts = np.zeros((n, k))
        w = np.ones(len(votes.clip)) if method == "majority" else votes.weight
        np.add.at(counts, (votes.clip, votes.label), w)
        if method == "weighted":  # a clip whose answers all scored 0 falls back to plain counts
            zero = counts.sum(axis=1) == 0
            if zero.any():
                plain = np.zeros((n, k))
                np.add.at(plain, (votes.clip, votes.label), 1.0)
                counts[zero] = plain[zero]
        total = counts.sum(axis=1, keepdims=True)
        return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    if method not in CROWDKIT:
        raise ValueError(f"unknown aggregation {method!r}")
    return _crowdkit(votes, method)


def _crowdkit(votes: Votes, method: str) -> np.ndarray:
    import pandas as pd
    from crowdkit import aggregation

    out = np.zeros((len(votes.clip_ids), len(votes.labels)))
    if len(votes.clip) == 0:
        return out
    df = pd.DataFrame({"task": votes.clip, "worker": votes.annotator, "label": votes.label})
    model = getattr(aggregation, CROWDKIT[method])()
    with warnings.catch_warnings():  # crowd-kit 1.4 uses pandas idioms pandas 3 deprecates, thousands of times
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        if hasattr(model, "fit_predict_proba"):
            proba = model.fit_predict_proba(df)
            cols = [int(c) for c in proba.columns]
            out[np.ix_(proba.index.to_numpy(dtype=int), cols)] = proba.to_numpy(dtype=float)
        else:  # aggregators that only give a label
            pred = model.fit_predict(df)
            out[pred.index.to_numpy(dtype=int), pred.to_numpy(dtype=int)] = 1.0
    return out


def summarise(dist: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per clip: top label index (-1 for none), margin (top-1 minus top-2), entropy in bits, and
    uncertainty = entropy / log2(n_labels). Ties go to the label listed first in the taxonomy."""
    top = np.where(dist.sum(axis=1) > 0, dist.argmax(axis=1), -1)
    part = np.sort(dist, axis=1)
    margin = part[:, -1] - (part[:, -2] if dist.shape[1] > 1 else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nansum(np.where(dist > 0, dist * np.log2(dist), 0.0), axis=1)
    unc = ent / math.log2(n_labels) if n_labels > 1 else np.zeros_like(ent)
    unc = np.where(top < 0, 1.0, unc)
    return top, margin, ent, unc
