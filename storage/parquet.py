"""Parquet I/O for typed records. Writes are atomic: a crash leaves the old file or the new one, never half."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from schemas.arrow import arrow_schema, from_table, to_table

R = TypeVar("R", bound=BaseModel)


class TableError(RuntimeError):
    """A stored table that cannot be read as the record type it should hold."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_records(path: Path, records: Iterable[BaseModel], model: type[BaseModel]) -> int:
    """Write records as one Parquet file (atomically); returns the row count."""
    table = to_table(records, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return table.num_rows


def read_records(path: Path, model: type[R]) -> list[R]:
    """Read a table back as typed records; a missing table is empty, a foreign one is an error."""
    if not path.exists():
        return []
    try:
        # only the record's columns: a dataset split also carries embedded media (pipeline/export/hf_media.py)
        names = [n for n in pq.read_schema(path).names if n in model.model_fields]
        table = pq.read_table(path, columns=names)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise TableError(f"{path}: not a readable Parquet file ({exc})") from None
    stored = (table.schema.metadata or {}).get(b"emoforge.record", b"").decode()
    if stored and stored != model.__name__:
        raise TableError(f"{path}: holds {stored} records, not {model.__name__}")
    try:
        table = table.cast(arrow_schema(model))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        pass  # written before a field existed: rows are validated into records, missing fields take their defaults
    return from_table(table, model)
