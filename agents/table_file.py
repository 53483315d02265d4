"""A CSV (or Parquet) file a user names in the configuration (gold labels, speakers): read with the
columns it must have, every problem one error naming the file."""

from __future__ import annotations

from pathlib import Path


def read_named_table(path: str | Path, columns: tuple[str, ...], what: str, error: type[ValueError]):
    """The file as a pyarrow Table with `columns` read as text; `what` names it in messages."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        if path.suffix == ".parquet":
            table = pq.read_table(path)
        else:
            table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(column_types={c: pa.string() for c in columns}))
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise error(f"{path}: cannot read the {what} file ({exc})") from None
    missing = set(columns) - set(table.column_names)
    if missing:
        raise error(f"{path}: a {what} file needs columns {' and '.join(columns)} (missing {', '.join(sorted(missing))})")
    return table
