"""Train / validation / test splits that never split a source: StratifiedGroupKFold (scikit-learn)
deals whole sources into folds while keeping label proportions close, and the folds are handed to
the splits by the configured ratios. Deterministic for a given seed."""

from __future__ import annotations

import warnings

import numpy as np

from schemas.config import ExportConfig


def assign_splits(clip_ids: list[str], groups: list[str], labels: list[str], cfg: ExportConfig) -> dict[str, str]:
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    n_groups = len(set(groups))
    ratios = {"train": cfg.train, "validation": cfg.validation, "test": cfg.test}
    smallest = min(r for r in ratios.values() if r > 0)
    k = min(n_groups, max(2, round(1 / smallest)))
    if n_groups < 2:
        return {c: "train" for c in clip_ids}  # one source cannot be split without leaking it
    folds = np.zeros(len(clip_ids), dtype=int)
    x = np.zeros(len(clip_ids))
    with warnings.catch_warnings():  # rare labels (fewer clips than folds) are expected in small runs
        warnings.simplefilter("ignore", UserWarning)
        try:
            held_out = list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=cfg.seed).split(x, labels, groups))
        except ValueError:  # no label has k clips: nothing to stratify, so deal whole sources only
            held_out = list(GroupKFold(n_splits=k, shuffle=True, random_state=cfg.seed).split(x, labels, groups))
    for f, (_, held) in enumerate(held_out):
        folds[held] = f
    # folds -> splits by ratio: test and validation get at least one fold each when asked for
    n_test = max(1, round(cfg.test * k)) if cfg.test > 0 else 0
    n_val = max(1, round(cfg.validation * k)) if cfg.validation > 0 else 0
    if n_test + n_val >= k:  # too few sources for every split: keep at least one fold for training
        n_val = max(0, k - 1 - n_test)
        n_test = min(n_test, k - 1)
    name = ["test"] * n_test + ["validation"] * n_val + ["train"] * (k - n_test - n_val)
    return {c: name[f] for c, f in zip(clip_ids, folds)}
