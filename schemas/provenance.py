"""Provenance carried by every record: what produced it, with which settings, in which run."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata

from pydantic import BaseModel, Field


@lru_cache(maxsize=1)  # reading package metadata parses a file (~1 ms); every record's provenance asks
def emoforge_version() -> str:
    try:
        return metadata.version("emoforge")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def stable_hash(obj: object, length: int = 16) -> str:
    """Hash of a JSON-able object that ignores key order: same settings, same hash."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    payload = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:length]


class Provenance(BaseModel):
    emoforge_version: str = Field(default_factory=emoforge_version)
    stage: str
    stage_config_hash: str
    run_id: str
    model_id: str | None = None
    model_version: str | None = None
    prompt_hash: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
