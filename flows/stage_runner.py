"""The bookkeeping every stage of the flow shares, done once: its counts (schemas.run.StageCounts),
its time, its progress bar, and, for the run-wide stages (4-6), a failure turned into a reject row
so the stages before it stay written and the run says why. For stages 1-3, `Stage` and `collect`
run one cached task per source (flows/result_cache.py) and gather what they return."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prefect.futures import as_completed
from pydantic import BaseModel

from flows.progress import hook
from flows.result_cache import ResultCache
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
        """Stages 1-3: one task per source; `collect` advances the bar and counts
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


@dataclass(frozen=True)
class Job:
    """One per-source task: what to call it, how many items it covers, and its cache key."""

    key: str
    path: str
    source_id: str | None
    items: int
    cache_key: str = ""


class Stage:
    """A stage's per-source work: results found in the cache, and tasks submitted for the rest."""

    def __init__(self, cache: ResultCache, record: type[BaseModel]):
        self.cache, self.record = cache, record
        self.hits: list[tuple[Job, BaseModel]] = []
        self.futures: dict = {}

    def run(self, job: Job, task, *args) -> None:
        hit = self.cache.load(job.cache_key, self.record)
        if hit is not None:
            self.hits.append((job, hit))
        else:
            self.futures[task.submit(*args)] = job


def collect(stage: str, work: Stage, counts: StageCounts, rejects: list[Reject], run_id: str) -> dict[str, BaseModel]:
    """Wait for a stage's per-source tasks, keeping each result in the cache as it arrives (a run
    killed midway resumes from there); count computed vs reused (a result made by another run came
    from the cache), gather rejects, and turn a failure around a task into a reject row."""
    progress = hook()
    results: dict[str, BaseModel] = {}

    def finished():
        yield from work.hits
        for fut in as_completed(list(work.futures)):
            job: Job = work.futures[fut]
            try:
                res = fut.result()
            except Exception as exc:  # the task raised (a failed annotator), or a failure around it (a lost worker)
                yield job, exc
                continue
            work.cache.save(job.cache_key, res)
            yield job, res

    for job, res in finished():
        if isinstance(res, Exception):
            rejects.append(Reject(run_id=run_id, stage=stage, path=job.path, source_id=job.source_id,
                                  reason=f"{job.path}: {type(res).__name__}: {res}", error_type=type(res).__name__))
            counts.rejects += 1
            progress.advance(stage, job.path, reused=False)
            continue
        producer = res.producer_run_id()
        reused = producer is not None and producer != run_id
        counts.reused += job.items if reused else 0
        counts.computed += 0 if reused else job.items
        rejects.extend(res.rejects)
        counts.rejects += sum(1 for r in res.rejects if r.severity == "error")
        results[job.key] = res
        progress.advance(stage, job.path, reused=reused)
    progress.finish(stage)
    return results
