"""One writer per run directory. `emoforge run`, `export`, `report` and every scheduled run hold an
exclusive lock on OUT/.emoforge.lock for their whole length, taken before they write anything.

The lock is the kernel's flock (through filelock), so it dies with its holder: a SIGKILLed run leaves
the file but not the lock. The holder writes who it is (LockHolder) into the file once it has the
lock and empties the file when it lets go, so a second command can name the holder, and a holder
that finds the file still filled knows the previous one died without letting go (a stale lock) and
says so. What a killed run leaves behind needs no repair: its table set never became current, its
scratch and set are cleared by the next run (RunDir.begin, commit), and stage results are written
atomically (flows/result_cache.py), a damaged one being a miss that is computed again."""

from __future__ import annotations

import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Callable

from filelock import FileLock, Timeout
from pydantic import ValidationError

from schemas.lock import LockHolder

LOCK_FILE = ".emoforge.lock"


class RunDirLocked(RuntimeError):
    """Another command holds the run directory."""

    def __init__(self, root: Path, holder: LockHolder | None):
        self.root, self.holder = root, holder
        who = holder.describe() if holder else "a process that has not said who it is yet"
        super().__init__(f"{root}: in use by {who}; rerun with --wait to wait for it")


def read_holder(path: Path, settle_s: float = 1.0) -> LockHolder | None:
    """The holder named in a lock file. A holder writes its name just after it wins the lock, so an
    empty file is read again for a moment before it counts as unnamed."""
    end = time.monotonic() + settle_s
    while True:
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            text = ""
        if text.strip():
            try:
                return LockHolder.model_validate_json(text)
            except ValidationError:
                pass  # half written: read again
        if time.monotonic() >= end:
            return None
        time.sleep(0.05)


class RunLock:
    """`with RunLock(out, "run", run_id).acquire(wait=...)`: holds OUT for the block."""

    def __init__(self, root: str | Path, command: str, run_id: str | None = None):
        self.root = Path(root).resolve()
        self.path = self.root / LOCK_FILE
        self.me = LockHolder(pid=os.getpid(), host=socket.gethostname(), started_at=datetime.now(UTC), command=command, run_id=run_id)
        self.took_over: LockHolder | None = None  # the dead holder whose lock this one took over
        self._stale_text = ""
        # fallback_to_soft=False: a filesystem without flock must fail loudly, not give a lock that a
        # killed process leaves held forever; thread_local=False: released from whichever thread
        self._lock = FileLock(str(self.path), thread_local=False, preserve_lock_file=True, fallback_to_soft=False,
                              on_acquired=self._claim)

    def _claim(self, fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        self._stale_text = b"".join(chunks).decode(errors="replace")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, self.me.model_dump_json().encode())
        os.fsync(fd)

    def acquire(self, wait: bool = False, notify: Callable[[str], None] | None = None, create: bool = True) -> "RunLock":
        """Take the lock now, or raise RunDirLocked naming the holder; with `wait`, wait for it and
        say for whom (again whenever the holder changes)."""
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        elif not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: no such directory")
        announced: LockHolder | None | str = "nobody yet"
        while True:
            try:
                self._lock.acquire(timeout=0 if announced == "nobody yet" else 1.0)
                break
            except Timeout:
                holder = read_holder(self.path)
                if not wait:
                    raise RunDirLocked(self.root, holder) from None
                if holder != announced and notify is not None:
                    notify(f"{self.root}: waiting for {holder.describe() if holder else 'another emoforge command'} to finish")
                announced = holder
        if self._stale_text.strip():
            try:
                self.took_over = LockHolder.model_validate_json(self._stale_text)
            except ValidationError:  # killed while writing its name
                self.took_over = LockHolder(pid=0, host="unknown", started_at=datetime.fromtimestamp(0, UTC), command="unknown")
            if notify is not None:
                notify(f"{self.root}: took over the lock of {self.took_over.describe()}, which ended without releasing it")
        return self

    def release(self) -> None:
        if self._lock.is_locked:
            os.truncate(self.path, 0)  # an empty file: this holder let go and left nothing half done
            self._lock.release()

    def __enter__(self) -> "RunLock":
        if not self._lock.is_locked:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
