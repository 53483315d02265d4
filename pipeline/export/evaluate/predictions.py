"""Reading a model's predictions: CSV (clip_id,label[,rationale]), JSONL or Parquet, into Prediction
records. Anything unreadable or malformed is a PredictionsError naming the file and the line."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

from pydantic import ValidationError

from pipeline.export.evaluate.errors import PredictionsError, some
from schemas import Prediction


def read_predictions(path: str | Path) -> list[Prediction]:
    """Predictions from CSV (columns clip_id,label[,rationale]), JSONL (one Prediction object a line)
    or Parquet (columns as Prediction's fields). Raises PredictionsError naming the file."""
    path = Path(path)
    if not path.exists():
        raise PredictionsError(path, "no such file")
    if not path.is_file():
        raise PredictionsError(path, "not a file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            raw = _read_csv(path)
        elif suffix in (".jsonl", ".ndjson"):
            raw = _read_jsonl(path)
        elif suffix in (".parquet", ".pq"):
            raw = _read_parquet(path)
        else:
            raise PredictionsError(path, f"unsupported format {suffix or '(no extension)'!r}; use .csv, .jsonl or .parquet")
    except UnicodeDecodeError as exc:
        raise PredictionsError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise PredictionsError(path, f"cannot read: {exc.strerror or exc}") from None
    if not raw:
        raise PredictionsError(path, "holds no predictions")
    preds: list[Prediction] = []
    for where, rec in raw:
        if not isinstance(rec, dict):
            raise PredictionsError(path, f"{where}: expected an object with clip_id and label, got {type(rec).__name__}")
        rec = {k: v for k, v in rec.items() if v is not None}
        for key in ("clip_id", "label"):
            if isinstance(rec.get(key), str):
                rec[key] = rec[key].strip()
            if rec.get(key) in ("", None):
                raise PredictionsError(path, f"{where}: empty {key}")
        if isinstance(rec.get("rationale"), str) and not rec["rationale"].strip():
            rec.pop("rationale")
        try:
            preds.append(Prediction.model_validate(rec))
        except ValidationError as exc:
            e = exc.errors()[0]
            loc = ".".join(str(p) for p in e["loc"]) or "record"
            raise PredictionsError(path, f"{where}: {loc}: {e['msg']}") from None
    dupes = [c for c, n in Counter(p.clip_id for p in preds).items() if n > 1]
    if dupes:
        raise PredictionsError(path, f"{len(dupes)} clip id(s) predicted more than once: {some(dupes)}")
    return preds


def _read_csv(path: Path) -> list[tuple[str, dict]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        try:
            reader = csv.DictReader(fh)
            fields = [f.strip() for f in (reader.fieldnames or [])]
            missing = [c for c in ("clip_id", "label") if c not in fields]
            if missing:
                raise PredictionsError(path, f"CSV needs columns clip_id,label[,rationale]; missing {', '.join(missing)} "
                                             f"(header: {','.join(fields) or 'none'})")
            reader.fieldnames = fields
            out = []
            for i, row in enumerate(reader, start=2):
                if None in row:
                    raise PredictionsError(path, f"line {i}: more fields than the header has")
                if not any((v or "").strip() for v in row.values()):
                    continue  # a blank line
                rec = {k: row.get(k) for k in ("clip_id", "label", "rationale") if k in row}
                out.append((f"line {i}", rec))
            return out
        except csv.Error as exc:
            raise PredictionsError(path, f"not valid CSV: {exc}") from None


def _read_jsonl(path: Path) -> list[tuple[str, dict]]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.append((f"line {i}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise PredictionsError(path, f"line {i}: not valid JSON ({exc.msg})") from None
    return out


def _read_parquet(path: Path) -> list[tuple[str, dict]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise PredictionsError(path, f"not a readable Parquet file ({exc})") from None
    missing = [c for c in ("clip_id", "label") if c not in table.column_names]
    if missing:
        raise PredictionsError(path, f"Parquet file needs columns clip_id and label; missing {', '.join(missing)}")
    keep = [c for c in table.column_names if c in Prediction.model_fields]
    return [(f"row {i + 1}", rec) for i, rec in enumerate(table.select(keep).to_pylist())]
