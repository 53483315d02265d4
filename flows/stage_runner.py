"""The bookkeeping every stage of the flow shares, done once: its counts (schemas.run.StageCounts),
its time, its progress bar, and, for the run-wide stages (4-6), a failure turned into a reject row
so the stages before it stay written and the run says why."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flows.progress import hook
from schemas import Reject
from schemas.run import StageCounts

# (severity, reason) of the reject row a failed stage leaves
Failure = Callable[[str, Exception], tuple[str, str]]


def error_row(stage: str, exc: Exception) -> tuple[str, str]:
    return "error", f"{stage}: {type(exc).__name__}: {exc}"


class StageRunner:
    """Runs the stages of one flow run in order; `done` keeps their counts, in that order."""

    def __init__(self, run_id: str, rejects: list[Reject]):
        self.run_id, self.rejects = run_id, rejects
        self.progress = hook()
        self.done: list[StageCounts] = []

    @contextmanager
    def per_source(self, name: str, items: int, bar: int, started: float | None = None) -> Iterator[StageCounts]:
        """Stages 1-3: one task per source; `flows.pipeline_flow.collect` advances the bar and counts
        what was computed, reused and rejected. `started`: when the stage's clock started, if before now."""
        counts = StageCounts(stage=name, items=items)
        t = time.perf_counter() if started is None else started
        self.progress.start(name, bar)
        yield counts
        counts.seconds = round(time.perf_counter() - t, 3)
        self.done.append(counts)

    @contextmanager
    def whole_run(self, name: str, items: int, *, label: str, path: str, failure: Failure = error_row) -> Iterator[StageCounts]:
        """Stages 4-6: one step over the whole run. An exception inside ends the stage with a reject row
        (path: what failed, e.g. the gold file or the server; `failure` words it) instead of the run."""
        counts = StageCounts(stage=name, items=items)
        t = time.perf_counter()
        self.progress.start(name, 1)
        try:
            yield counts
        except Exception as exc:
            severity, reason = failure(name, exc)
            self.rejects.append(Reject(run_id=self.run_id, stage=name, path=path, severity=severity, reason=reason,
                                       error_type=type(exc).__name__))
            counts.rejects += severity == "error"
        self.progress.advance(name, label, reused=False)
        self.progress.finish(name)
        counts.seconds = round(time.perf_counter() - t, 3)
        self.done.append(counts)
