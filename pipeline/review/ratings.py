"""Ratings tables for the agreement statistics (stage 5, pipeline/review/agreement.py): one row per
item, one column per rater, a missing cell where that rater did not rate the item. read_ratings reads
one from CSV or Parquet, prepare_ratings checks every cell against the level of measurement; either
raises RatingsError naming the file (or table), row and column. encode turns a checked table into
the float matrix the statistics work on."""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS: tuple[str, ...] = get_args(Level)

#: cell texts read as missing besides the empty cell
MISSING_TEXT = ("", "NA", "N/A", "NaN", "nan")


class RatingsError(ValueError):
    """A ratings table that cannot be used: the message names the file (or table), row and column."""


def missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and v.strip() in MISSING_TEXT


def label_text(v: Any) -> str:
    """A category label as text: 1, 1.0, '1' and ' 1 ' are the same category."""
    if isinstance(v, bool) or isinstance(v, np.bool_):
        return str(bool(v))
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real) and float(v).is_integer():
        return str(int(v))
    return str(v).strip()


def _number(v: Any) -> float | None:
    if isinstance(v, (bool, np.bool_)):
        return None
    if isinstance(v, numbers.Real):
        x = float(v)
    else:
        try:
            x = float(str(v).strip())
        except ValueError:
            return None
    return x if math.isfinite(x) else None


def normalise_categories(categories: Sequence[Any] | None, level: str, source: str) -> list[str] | None:
    if categories is None:
        return None
    if level not in ("nominal", "ordinal"):
        raise RatingsError(f"{source}: a category list applies to nominal and ordinal levels, not {level}")
    labels = [label_text(c) for c in categories]
    if not labels:
        raise RatingsError(f"{source}: the category list is empty")
    dup = [c for c, n in Counter(labels).items() if n > 1]
    if dup:
        raise RatingsError(f"{source}: category {dup[0]!r} is listed twice")
    return labels


def check_level(level: str) -> None:
    if level not in LEVELS:
        raise RatingsError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")


def _cell(v: Any, level: str, categories: list[str] | None, where: str) -> Any:
    """One non-missing cell checked against the level: a label (str) or a number (float)."""
    if categories is not None:
        lab = label_text(v)
        if lab not in categories:
            raise RatingsError(f"{where}: {lab!r} is not one of the categories ({', '.join(categories)})")
        return lab
    if level == "nominal":
        return label_text(v)
    x = _number(v)
    if x is None:
        hint = "; ordinal text labels need an ordered category list" if level == "ordinal" else ""
        raise RatingsError(f"{where}: {str(v).strip()!r} is not a number ({level} level{hint})")
    if level == "ratio" and x < 0:
        raise RatingsError(f"{where}: {x:g} is negative (ratio level needs values >= 0)")
    return x


def prepare_ratings(
    ratings: pd.DataFrame, level: Level = "nominal", categories: Sequence[Any] | None = None, source: str = "ratings table"
) -> pd.DataFrame:
    """Check every cell against the level and return a clean table: index = item ids (text, named
    "item"), columns = rater names (text), cells = labels (text) at nominal level or with a category
    list, floats otherwise; missing cells are NaN. Raises RatingsError naming row, item and column."""
    check_level(level)
    cats = normalise_categories(categories, level, source)
    numeric = cats is None and level != "nominal"
    items = [label_text(i) for i in ratings.index]
    raters = [str(c) for c in ratings.columns]
    out = np.full(ratings.shape, np.nan, dtype=float if numeric else object)
    values = ratings.to_numpy(dtype=object)
    for r in range(values.shape[0]):
        for c in range(values.shape[1]):
            v = values[r, c]
            if not missing(v):
                out[r, c] = _cell(v, level, cats, f"{source}: row {r + 1} (item {items[r]!r}), column {raters[c]!r}")
    table = pd.DataFrame(out, index=pd.Index(items, name="item"), columns=raters)
    return table


def read_ratings(path: str | Path, level: Level = "nominal", categories: Sequence[Any] | None = None) -> pd.DataFrame:
    """Read a ratings table from CSV (.csv, .tsv, .txt) or Parquet (.parquet, .pq).

    The item id is the column named ``item`` (any case) or else the first column; every other column
    is a rater. Empty cells (and NA, N/A, NaN) are missing. Returns ``prepare_ratings``' clean table.
    Raises RatingsError, naming the file, for a missing or unreadable file, no rater columns, fewer than
    2 raters, no items, missing or repeated item ids, and values that do not fit the level."""
    p = Path(path)
    check_level(level)
    if not p.exists():
        raise RatingsError(f"{p}: no such file")
    if p.is_dir():
        raise RatingsError(f"{p}: is a directory, not a ratings table")
    suffix = p.suffix.lower()
    try:
        if suffix in (".csv", ".tsv", ".txt"):
            df = pd.read_csv(
                p, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False,
                na_values=list(MISSING_TEXT), skipinitialspace=True,
            )
        elif suffix in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        else:
            raise RatingsError(f"{p}: unknown table type {p.suffix or '(none)'}; use .csv, .tsv or .parquet")
    except RatingsError:
        raise
    except pd.errors.EmptyDataError:
        raise RatingsError(f"{p}: empty file, no header row") from None
    except Exception as exc:  # parser, encoding, arrow errors
        raise RatingsError(f"{p}: cannot read as {suffix.lstrip('.')}: {str(exc).strip().splitlines()[0]}") from None
    columns = [str(c).strip() for c in df.columns]
    df.columns = columns
    if not columns:
        raise RatingsError(f"{p}: no columns")
    for i, c in enumerate(columns):
        if not c or c.startswith("Unnamed: "):
            raise RatingsError(f"{p}: column {i + 1} has no name")
    item_col = next((c for c in columns if c.lower() == "item"), columns[0])
    raters = [c for c in columns if c != item_col]
    if not raters:
        raise RatingsError(f"{p}: no rater columns (only the item column {item_col!r})")
    if len(raters) < 2:
        raise RatingsError(f"{p}: agreement needs at least 2 rater columns, found 1 ({raters[0]})")
    if len(df) == 0:
        raise RatingsError(f"{p}: no items (the table has a header but no rows)")
    ids = df[item_col].tolist()
    seen: dict[str, int] = {}
    for r, v in enumerate(ids):
        if missing(v):
            raise RatingsError(f"{p}: row {r + 1}: no item id in column {item_col!r}")
        key = label_text(v)
        if key in seen:
            raise RatingsError(f"{p}: item {key!r} appears twice (rows {seen[key] + 1} and {r + 1})")
        seen[key] = r
    table = df[raters].copy()
    table.index = pd.Index([label_text(v) for v in ids], name="item")
    return prepare_ratings(table, level, categories, source=str(p))


@dataclass
class EncodedRatings:
    """Ratings as a float matrix (items x raters, NaN = missing): numbers as they are, labels as codes."""

    matrix: np.ndarray
    items: list[str]
    raters: list[str]
    level: str
    labels: list[str] | None  # code -> label when categorical; None when the values are numbers
    fixed: bool = False  # labels are the caller's category list (else the labels seen in the table)

    @property
    def numeric(self) -> bool:
        return self.labels is None

    def code(self, value: Any) -> float:
        return float(self.labels.index(value)) if self.labels is not None else float(value)

    def show(self, x: float) -> str:
        return self.labels[int(x)] if self.labels is not None else f"{x:g}"


def encode(ratings: pd.DataFrame | EncodedRatings, level: Level, categories: Sequence[Any] | None) -> EncodedRatings:
    if isinstance(ratings, EncodedRatings):
        return ratings
    table = prepare_ratings(ratings, level, categories)
    cats = normalise_categories(categories, level, "ratings table")
    if cats is None and level != "nominal":
        return EncodedRatings(table.to_numpy(dtype=float), list(table.index), list(table.columns), level, None)
    fixed = cats is not None
    if cats is None:
        cats = sorted({v for v in table.to_numpy().ravel() if isinstance(v, str)})
    index = {c: i for i, c in enumerate(cats)}
    matrix = np.array([[index[v] if isinstance(v, str) else np.nan for v in row] for row in table.to_numpy()], dtype=float)
    matrix = matrix.reshape(table.shape)
    return EncodedRatings(matrix, list(table.index), list(table.columns), level, cats, fixed)
