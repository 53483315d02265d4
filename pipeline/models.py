"""One instance of a model per configuration per process: loading weights per clip or per source
would dominate run time. Every stage and agent gets its models through `shared`."""

from __future__ import annotations

import threading
from typing import Callable, TypeVar

from pydantic import BaseModel

T = TypeVar("T")

_instances: dict[tuple[str, str], object] = {}
_lock = threading.Lock()


def shared(kind: str, config: BaseModel | str, build: Callable[[], T]) -> T:
    """The instance built for (kind, config), building it on first use."""
    key = (kind, config if isinstance(config, str) else config.model_dump_json())
    with _lock:  # held while building: two threads must not load the same weights twice
        if key not in _instances:
            _instances[key] = build()
        return _instances[key]  # type: ignore[return-value]


def release(kind: str, keep: str) -> int:
    """Forget every instance of `kind` except the one built for `keep`, so a long-lived process that
    serves one job after another holds one model at a time; how many were dropped."""
    with _lock:
        drop = [key for key in _instances if key[0] == kind and key[1] != keep]
        for key in drop:
            del _instances[key]
    return len(drop)
