"""Records from values the caller has already checked: what pydantic's `model_construct` does, without
its per-field default and alias handling. That handling costs more than validating a small model
(about 7 µs against 5 µs for a ClaimCheck), and the judge builds millions of records per large run.
The caller passes every field; tests re-validate each record type built this way."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__


def trusted(cls: type[M], /, **values) -> M:
    record = cls.__new__(cls)
    _set(record, "__dict__", values)
    _set(record, "__pydantic_fields_set__", set(values))
    _set(record, "__pydantic_extra__", None)
    _set(record, "__pydantic_private__", None)
    return record
