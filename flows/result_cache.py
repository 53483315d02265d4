"""Finished per-source work of stages 1-3, kept as JSON of our typed records in OUT/.cache/results/
so a rerun skips it. Not pickles, and not Prefect's own result records (whose stored metadata names
the serializer, pickle included, and whose JSON decoder imports whatever class a file names): a run
directory someone else made is read as data, validated against the record type the stage expects,
and never executes anything. A file that fails that check is a miss, recomputed and overwritten."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from storage import atomic_write_bytes

R = TypeVar("R", bound=BaseModel)


class ResultCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"

    def load(self, key: str, model: type[R]) -> R | None:
        path = self.path(key)
        try:
            doc = json.loads(path.read_bytes())
            if doc.get("key") != key or doc.get("record") != model.__name__:
                return None
            return model.model_validate(doc["value"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ValidationError):
            return None  # absent, damaged or not ours: recompute

    def save(self, key: str, value: BaseModel) -> None:
        doc = {"key": key, "record": type(value).__name__, "value": value.model_dump(mode="json")}
        atomic_write_bytes(self.path(key), json.dumps(doc).encode())
