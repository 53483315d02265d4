"""Records from values the caller has already checked: what pydantic's `model_construct` does, without
its per-field default and alias handling. That handling costs more than validating a small model
(about 7 µs against 5 µs for a ClaimCheck), and the judge builds millions of records per large run.
The caller passes every field; tests re-validate each record type built this way."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__
_FIELDS: dict[type, set[str]] = {}  # one set of field names per record type, shared by its records


def trusted(cls: type[M], /, **values) -> M:
    record = cls.__new__(cls)
    _set(record, "__dict__", values)
    # with every field passed, the records of a type share one fields set (pydantic only adds an
    # assigned field's name to it, which is in it already): a set per record was half the memory of a
    # judgement, and a million-answer run pays for fresh memory in page faults
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = _FIELDS[cls] = set(cls.model_fields)
    _set(record, "__pydantic_fields_set__", fields if len(values) == len(fields) else set(values))
    _set(record, "__pydantic_extra__", None)
    _set(record, "__pydantic_private__", None)
    return record
