"""The dataset side of an evaluation: the gold label and reference rationale of each clip of a split
(the answer key for the test split, the split's own rows otherwise) and the taxonomy the metrics are
reported over (the dataset card's class names, else every label the dataset mentions)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml
from huggingface_hub.repocard import metadata_load
from pydantic import BaseModel

from pipeline.export.evaluate.errors import DatasetError, some
from schemas import AnswerKeyRow, DatasetRow, RationaleStep
from storage.dataset_dir import SPLITS, DatasetDir
from storage.parquet import TableError


def norm(label: str | None) -> str | None:
    """A label as compared: stripped and lower-cased; None when empty."""
    if label is None:
        return None
    s = label.strip().lower()
    return s or None


def read_dataset_table(ds: DatasetDir, what: str, fn):
    try:
        return fn()
    except TableError as exc:
        raise DatasetError(ds.root, f"{what}: {exc}") from None


def card_taxonomy(root: Path) -> list[str] | None:
    """Class names of the `label` feature in the dataset card's YAML front matter, if it has them."""
    card = root / "README.md"
    if not card.is_file():
        return None
    try:
        meta = metadata_load(card)  # the card's YAML front matter, as the Hugging Face Hub reads it
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
        return None
    own = (meta.get("emoforge") or {}).get("taxonomy") if isinstance(meta, dict) else None
    if isinstance(own, list) and own and all(isinstance(n, str) for n in own):  # written by emoforge's exporter
        return list(dict.fromkeys(norm(n) for n in own if norm(n)))
    infos = meta.get("dataset_info") if isinstance(meta, dict) else None
    for info in infos if isinstance(infos, list) else [infos]:
        feats = info.get("features") if isinstance(info, dict) else None
        for f in feats if isinstance(feats, list) else []:
            if isinstance(f, dict) and f.get("name") == "label":
                names = ((f.get("dtype") or {}).get("class_label") or {}).get("names") if isinstance(f.get("dtype"), dict) else None
                if isinstance(names, dict):  # HF also writes {"0": "anger", ...}
                    names = [names[k] for k in sorted(names, key=lambda k: int(k))]
                if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
                    return list(dict.fromkeys(norm(n) for n in names if norm(n)))
    return None


def dataset_taxonomy(ds: DatasetDir, key: list[AnswerKeyRow]) -> tuple[list[str], str]:
    """The dataset's label set (see the package docstring) and where it came from."""
    from_card = card_taxonomy(ds.root)
    if from_card:
        return from_card, "dataset card"
    from schemas.config import DEFAULT_TAXONOMY

    seen: set[str] = set()
    for split in SPLITS:
        for r in read_dataset_table(ds, f"{split} split", lambda s=split: ds.read_split(s)):
            seen.update(filter(None, [norm(r.label), *map(norm, r.labels), *(norm(p.label) for p in r.label_distribution),
                                      *(norm(a.label) for a in r.answers)]))
    for k in key:
        seen.update(filter(None, [norm(k.label), *map(norm, k.labels)]))
    order = [t for t in DEFAULT_TAXONOMY if t in seen] + sorted(seen - set(DEFAULT_TAXONOMY))
    return order, "dataset labels"


class Gold(BaseModel):
    clip_id: str
    label: str | None
    steps: list[RationaleStep] = []
    start: float
    end: float


def gold_labels(ds: DatasetDir, split: str) -> tuple[list[Gold], list[AnswerKeyRow]]:
    if not ds.root.is_dir():
        raise DatasetError(ds.root, "no such dataset directory")
    rows: list[DatasetRow] = read_dataset_table(ds, f"{split} split", lambda: ds.read_split(split))
    if not rows:
        raise DatasetError(ds.split_path(split), f"the {split} split is empty or missing")
    dupes = [c for c, n in Counter(r.clip_id for r in rows).items() if n > 1]
    if dupes:
        raise DatasetError(ds.split_path(split), f"clip id(s) listed more than once: {some(dupes)}")
    key = read_dataset_table(ds, "answer key", ds.read_answer_key) if ds.answer_key_path.exists() else []
    if split != "test":
        return [Gold(clip_id=r.clip_id, label=norm(r.label), steps=r.steps, start=r.start, end=r.end) for r in rows], key
    if not key:
        raise DatasetError(ds.answer_key_path, "the test split's answer key is missing or empty")
    by_id = {k.clip_id: k for k in key}
    lacking = [r.clip_id for r in rows if r.clip_id not in by_id]
    if lacking:
        raise DatasetError(ds.answer_key_path, f"{len(lacking)} test clip(s) have no answer: {some(lacking)}")
    return [Gold(clip_id=r.clip_id, label=norm(by_id[r.clip_id].label), steps=by_id[r.clip_id].steps, start=r.start, end=r.end)
            for r in rows], key
