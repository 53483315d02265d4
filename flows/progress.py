"""Progress reporting from inside flows to whoever is watching (the CLI draws rich bars).
Prefect draws none, and tasks run in threads of this process, so a process-wide hook suffices."""

from __future__ import annotations

from typing import Protocol


class ProgressHook(Protocol):
    def start(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, item: str, reused: bool) -> None: ...

    def finish(self, stage: str) -> None: ...


class _Silent:
    def start(self, stage: str, total: int) -> None:
        pass

    def advance(self, stage: str, item: str, reused: bool) -> None:
        pass

    def finish(self, stage: str) -> None:
        pass


_hook: ProgressHook = _Silent()


def set_hook(hook: ProgressHook | None) -> None:
    global _hook
    _hook = hook or _Silent()


def hook() -> ProgressHook:
    return _hook
