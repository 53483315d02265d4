"""A file or clip that a stage could not use, and why. Rejects never stop a run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field


class Reject(BaseModel):
    run_id: str
    stage: str
    path: str
    source_id: str | None = None
    clip_id: str | None = None
    severity: Literal["error", "warning"] = "error"  # warning: the item was used in part (e.g. truncated media)
    reason: str
    error_type: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
