"""Arrow schemas derived from the pydantic records, so a record and its Parquet schema cannot drift.

Mapping: str/Literal/str-Enum -> string, int -> int64, float -> float64, bool -> bool,
datetime -> timestamp[us, UTC], list[T] -> list<T>, nested record -> struct, Optional[T] -> nullable T.
Records avoid dict fields on purpose: Arrow maps round-trip as lists of pairs, structs don't.
"""

from __future__ import annotations

import enum
import types
import typing
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal, TypeVar, Union

import pyarrow as pa
from pydantic import BaseModel

SCHEMA_VERSION = "1"

R = TypeVar("R", bound=BaseModel)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
        raise TypeError(f"unions other than Optional have no Arrow type: {tp}")
    return tp, False


def arrow_type(tp: Any) -> pa.DataType:
    tp, _ = _unwrap_optional(tp)
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return arrow_type(typing.get_args(tp)[0])
    if origin is Literal:
        values = typing.get_args(tp)
        if all(isinstance(v, str) for v in values):
            return pa.string()
        if all(isinstance(v, int) for v in values):
            return pa.int64()
        raise TypeError(f"mixed Literal has no Arrow type: {tp}")
    if origin in (list, tuple) or tp in (list, tuple):
        args = typing.get_args(tp)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise TypeError(f"use list[T] or tuple[T, ...], not {tp}")
        return pa.list_(arrow_type(args[0]))
    if isinstance(tp, type):
        if issubclass(tp, BaseModel):
            return pa.struct(_fields(tp))
        if issubclass(tp, enum.Enum):
            return pa.string()
        if issubclass(tp, bool):
            return pa.bool_()
        if issubclass(tp, int):
            return pa.int64()
        if issubclass(tp, float):
            return pa.float64()
        if issubclass(tp, str):
            return pa.string()
        if issubclass(tp, datetime):
            return pa.timestamp("us", tz="UTC")
    raise TypeError(f"no Arrow type for {tp!r}")


def _fields(model: type[BaseModel]) -> list[pa.Field]:
    fields = []
    for name, info in model.model_fields.items():
        _, optional = _unwrap_optional(info.annotation)
        fields.append(pa.field(name, arrow_type(info.annotation), nullable=optional or not info.is_required()))
    return fields


@lru_cache(maxsize=None)
def arrow_schema(model: type[BaseModel]) -> pa.Schema:
    """The Parquet schema of a record type, tagged with the record name and schema version."""
    return pa.schema(
        _fields(model),
        metadata={b"emoforge.record": model.__name__.encode(), b"emoforge.schema_version": SCHEMA_VERSION.encode()},
    )


def to_table(records: typing.Iterable[BaseModel], model: type[BaseModel]) -> pa.Table:
    rows = [r.model_dump(mode="python") for r in records]
    return pa.Table.from_pylist(rows, schema=arrow_schema(model))


def _defaults_for_nulls(row: dict, model: type[BaseModel]) -> dict:
    """A table written before a field existed reads that field as null; a non-optional field with a
    default then takes its default (so older run directories stay readable)."""
    for name, info in model.model_fields.items():
        value = row.get(name)
        inner, optional = _unwrap_optional(info.annotation)
        if value is None:
            if name in row and not optional and not info.is_required():
                del row[name]
            continue
        args = typing.get_args(inner)
        if isinstance(inner, type) and issubclass(inner, BaseModel) and isinstance(value, dict):
            _defaults_for_nulls(value, inner)
        elif args and isinstance(args[0], type) and issubclass(args[0], BaseModel) and isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _defaults_for_nulls(item, args[0])
    return row


def from_table(table: pa.Table, model: type[R]) -> list[R]:
    return [model.model_validate(_defaults_for_nulls(row, model)) for row in table.to_pylist()]
