"""The evaluator's errors: each message starts with the file it is about."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class EvaluationError(Exception):
    """Bad input to the evaluator; the message starts with the file it is about."""

    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        super().__init__(f"{path}: {message}")


class PredictionsError(EvaluationError):
    """The predictions file cannot be read, or does not fit the dataset."""


class DatasetError(EvaluationError):
    """The dataset directory cannot be evaluated against (missing, empty split, no answer key)."""


def some(items: Iterable[str], n: int = 5) -> str:
    """The first few items for an error message, and how many more there are."""
    items = list(items)
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")
