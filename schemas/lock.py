"""Who holds a run directory's lock (storage/lock.py): written into the lock file by its holder, read by
a second command that finds the directory taken, so it can say for whom it waits or why it stops."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class LockHolder(BaseModel):
    pid: int
    host: str
    started_at: datetime
    command: str  # e.g. "run", "export", "report", "serve"
    run_id: str | None = None

    def describe(self) -> str:
        what = f"emoforge {self.command}" + (f" (run {self.run_id})" if self.run_id else "")
        return f"{what}, pid {self.pid} on {self.host}, started {self.started_at.isoformat(timespec='seconds')}"
