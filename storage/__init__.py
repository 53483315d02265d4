"""Run directories and Parquet tables of typed records."""

from storage.dataset_dir import SPLITS, DatasetDir
from storage.parquet import TableError, atomic_write_bytes, read_records, write_records
from storage.run_dir import TABLES, RunDir

__all__ = ["SPLITS", "TABLES", "DatasetDir", "RunDir", "TableError", "atomic_write_bytes", "read_records", "write_records"]
