"""Layout of a run directory: one Parquet table per stage, rejects, media written by stages, caches.

    OUT/
      run.json                 last run's id, inputs, config and counts (a link to tables/run.json)
      config.yaml              the resolved configuration of the last run (a link to tables/config.yaml)
      tables -> .runs/<run_id> the table set of the last complete run (a symlink, swapped at its end)
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
      .cache/work/<run_id>/    scratch space of one run (key-frame candidates)
      .runs/<run_id>/          table sets: the current one, the one it replaced, and the one being written
      .emoforge.lock           held by the command writing here (storage/lock.py)

A run writes its tables into its own set, `.runs/<run_id>/` (begun with hard links to the current
set's files, so tables it does not write carry over), and swaps the `tables` link to it when it has
finished: a reader sees all tables of one run, never clips of one and consensus of another.
`RunDir(OUT)` pins the set current when it is made, so all its reads come from one run.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from schemas import Annotation, AnnotatorReliability, Clip, ClipFeatures, Consensus, Judgement, Reject, Review, SourceMedia
from schemas.run import RunManifest, RunRecords
from storage.files import link_or_copy
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


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


RUNS = ".runs"
LINKED = ("run.json", "config.yaml")  # OUT/<name> -> tables/<name>: they describe the current set


def current_tables(root: Path) -> Path:
    """The table set readers see now: the target of OUT/tables (or OUT/tables itself, in a run
    directory written before table sets)."""
    link = Path(root) / "tables"
    return link.resolve() if link.is_symlink() else link


@dataclass(frozen=True)
class RunDir:
    root: Path
    tables_dir: Path = field(default=None, compare=False)  # type: ignore[assignment]  # None: the current set, pinned now

    def __post_init__(self) -> None:
        if self.tables_dir is None:
            object.__setattr__(self, "tables_dir", current_tables(self.root))

    @classmethod
    def create(cls, root: str | Path) -> "RunDir":
        root = Path(root).resolve()
        if root.exists() and not root.is_dir():
            raise NotADirectoryError(f"{root}: output path exists and is not a directory")
        for sub in ("tables", "media", ".cache"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        return cls(root)

    @classmethod
    def begin(cls, root: str | Path, run_id: str) -> "RunDir":
        """A run's own table set, started from the current one. Call it holding the lock
        (storage/lock.py): scratch and sets of runs that died are cleared here."""
        root = Path(root).resolve()
        if root.exists() and not root.is_dir():
            raise NotADirectoryError(f"{root}: output path exists and is not a directory")
        for sub in ("media", ".cache", RUNS):
            (root / sub).mkdir(parents=True, exist_ok=True)
        work = root / ".cache" / "work"
        if work.is_dir():  # the lock holder is the only run alive: any other scratch is a dead run's
            for d in work.iterdir():
                if d.name != run_id:
                    shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)
        mine = root / RUNS / run_id
        shutil.rmtree(mine, ignore_errors=True)
        mine.mkdir()
        current = current_tables(root)
        for f in sorted(current.glob("*.parquet")) if current.is_dir() else []:
            link_or_copy(f, mine / f.name)  # tables are replaced, never modified in place: sharing the file is safe
        return cls(root, mine)

    def commit(self) -> None:
        """Make this run's table set the current one (one atomic rename of the `tables` link); keep the
        set it replaces for readers that pinned it a moment ago, delete older ones."""
        link = self.root / "tables"
        previous = current_tables(self.root)
        if link.is_dir() and not link.is_symlink():  # a run directory from before table sets: its tables become one
            previous = self.root / RUNS / f"before-{datetime.now().strftime('%Y%m%dT%H%M%S')}"
            link.rename(previous)
        _replace_with_link(link, os.path.relpath(self.tables_dir, self.root))
        for name in LINKED:
            if not (self.root / name).is_symlink():
                _replace_with_link(self.root / name, f"tables/{name}")
        shutil.rmtree(self.cache_dir / "work" / self.tables_dir.name, ignore_errors=True)  # this run's scratch
        for d in (self.root / RUNS).iterdir():
            if d.resolve() not in (self.tables_dir.resolve(), previous.resolve()):
                shutil.rmtree(d, ignore_errors=True)

    @property
    def config_path(self) -> Path:
        return self.tables_dir / "config.yaml"

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
        return self.tables_dir / f"{name}.parquet"

    def write(self, name: str, records: list[BaseModel]) -> int:
        return write_records(self.table_path(name), records, TABLES[name])

    def read(self, name: str, model: type[R] | None = None) -> list[R]:
        model = model or TABLES[name]  # type: ignore[assignment]
        return read_records(self.table_path(name), model)  # type: ignore[arg-type]

    # each table as its records: what stages 5 and 6 (and readers of a finished run) take
    def sources(self) -> list[SourceMedia]:
        return self.read("sources")

    def clips(self) -> list[Clip]:
        return self.read("clips")

    def features(self) -> list[ClipFeatures]:
        return self.read("features")

    def annotations(self) -> list[Annotation]:
        return self.read("annotations")

    def judgements(self) -> list[Judgement]:
        return self.read("judgements")

    def consensus(self) -> list[Consensus]:
        return self.read("consensus")

    def reviews(self) -> list[Review]:
        return self.read("reviews")

    def reliability(self) -> list[AnnotatorReliability]:
        return self.read("reliability")

    def rejects(self) -> list[Reject]:
        return self.read("rejects")

    def records(self) -> RunRecords:
        """The tables stages 5 and 6 take, read at once."""
        return RunRecords(sources=self.sources(), clips=self.clips(), features=self.features(), annotations=self.annotations(),
                          judgements=self.judgements(), consensus=self.consensus(), reviews=self.reviews())

    def relative(self, path: Path) -> str:
        return str(Path(path).resolve().relative_to(self.root))

    def write_manifest(self, manifest: RunManifest) -> None:
        # through json.dumps, so run.json reads as it always has (indent, ASCII escapes)
        atomic_write_bytes(self.tables_dir / "run.json", json.dumps(manifest.model_dump(mode="json"), indent=2).encode())

    def read_manifest(self) -> RunManifest | None:
        """The set's run.json; None when there is none. One that does not read is a ValueError naming it."""
        p = self.tables_dir / "run.json"
        p = p if p.exists() else self.root / "run.json"  # a run directory from before table sets
        if not p.exists():
            return None
        try:
            return RunManifest.model_validate_json(p.read_bytes())
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(x) for x in problem["loc"]) or "the file"
            raise ValueError(f"{p}: not a run manifest ({where}: {problem['msg']})") from None


def _replace_with_link(path: Path, target: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, path)

