"""Layout of a run directory: one Parquet table per stage, rejects, media written by stages, caches.

    OUT/
      run.json                 last run's id, inputs, config and counts
      config.yaml              the resolved configuration of the last run
      tables/sources.parquet   SourceMedia       (stage 1)
      tables/clips.parquet     Clip              (stage 1)
      tables/features.parquet  ClipFeatures      (stage 2)
      tables/annotations.parquet Annotation      (stage 3)
      tables/judgements.parquet Judgement        (stage 4)
      tables/consensus.parquet Consensus         (stage 4)
      tables/reviews.parquet   Review            (stage 5)
      tables/rejects.parquet   Reject            (every stage)
      media/<source_id>/<clip_id>/kf_*.jpg       key frames
      dataset/                 exported benchmark (stage 6)
      .cache/                  task results that let a rerun skip finished work; the review
                               project as last pulled (pipeline/review/mirror.py)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from schemas import Annotation, AnnotatorReliability, Clip, ClipFeatures, Consensus, Judgement, Reject, Review, SourceMedia
from storage.parquet import atomic_write_bytes, read_records, write_records

R = TypeVar("R", bound=BaseModel)

TABLES: dict[str, type[BaseModel]] = {
    "sources": SourceMedia,
    "clips": Clip,
    "features": ClipFeatures,
    "annotations": Annotation,
    "judgements": Judgement,
    "consensus": Consensus,
    "reviews": Review,
    "reliability": AnnotatorReliability,
    "rejects": Reject,
}


@dataclass(frozen=True)
class RunDir:
    root: Path

    @classmethod
    def create(cls, root: str | Path) -> "RunDir":
        root = Path(root).resolve()
        if root.exists() and not root.is_dir():
            raise NotADirectoryError(f"{root}: output path exists and is not a directory")
        for sub in ("tables", "media", ".cache"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        return cls(root)

    @property
    def cache_dir(self) -> Path:
        return self.root / ".cache"

    @property
    def media_dir(self) -> Path:
        return self.root / "media"

    @property
    def dataset_dir(self) -> Path:
        return self.root / "dataset"

    def table_path(self, name: str) -> Path:
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; known: {', '.join(TABLES)}")
        return self.root / "tables" / f"{name}.parquet"

    def write(self, name: str, records: list[BaseModel]) -> int:
        return write_records(self.table_path(name), records, TABLES[name])

    def read(self, name: str, model: type[R] | None = None) -> list[R]:
        model = model or TABLES[name]  # type: ignore[assignment]
        return read_records(self.table_path(name), model)  # type: ignore[arg-type]

    def relative(self, path: Path) -> str:
        return str(Path(path).resolve().relative_to(self.root))

    def write_manifest(self, manifest: dict) -> None:
        atomic_write_bytes(self.root / "run.json", json.dumps(manifest, indent=2, default=str).encode())

    def read_manifest(self) -> dict | None:
        p = self.root / "run.json"
        return json.loads(p.read_text()) if p.exists() else None
