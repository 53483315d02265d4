"""Run directories and Parquet tables of typed records.

In:  records from `schemas/` (one record type per table) and a run's manifest (`RunManifest`).
Out: the same records back, validated: `RunDir(OUT).clips()`, `.features()`, `.consensus()`... or
     `.read(name)`; `DatasetDir` for an exported dataset; the run directory's lock (lock.py).
Nothing here imports a stage."""

from storage.dataset_dir import SPLITS, DatasetDir
from storage.files import link_or_copy
from storage.parquet import TableError, atomic_write_bytes, read_records, write_records
from storage.run_dir import TABLES, RunDir

__all__ = ["SPLITS", "TABLES", "DatasetDir", "RunDir", "TableError", "atomic_write_bytes", "link_or_copy", "read_records", "write_records"]
