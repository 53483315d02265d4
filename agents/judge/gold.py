"""Gold labels for S_rec and threshold calibration: a CSV or Parquet file with clip_id and label
(several labels for one clip: separate with '|' or give several rows)."""

from __future__ import annotations

from pathlib import Path


class GoldError(ValueError):
    pass


def load_gold(path: str | Path, taxonomy: list[str]) -> dict[str, list[str]]:
    from agents.table_file import read_named_table

    table = read_named_table(path, ("clip_id", "label"), "gold label", GoldError)
    gold: dict[str, list[str]] = {}
    for row, (clip, label) in enumerate(zip(table["clip_id"].to_pylist(), table["label"].to_pylist()), start=2):
        labels = [x.strip().lower() for x in str(label or "").split("|") if x.strip()]
        unknown = [x for x in labels if x not in taxonomy]
        if not clip or not labels or unknown:
            why = f"label {unknown[0]!r} is not in the taxonomy" if unknown else "empty clip_id or label"
            raise GoldError(f"{path}: row {row}: {why}")
        gold.setdefault(str(clip), [])
        gold[str(clip)] += [x for x in labels if x not in gold[str(clip)]]
    return gold
