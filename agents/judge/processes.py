"""Judging a large run on every core. Scoring a clip needs only that clip's features and answers, so
clips are scored in forked worker processes, which inherit the run's records instead of receiving
them pickled; they send back named tuples (scored.ScoredAnswer), and the parent builds the records. Below
PARALLEL_MIN_ANSWERS, or with an LLM judge (a model per process would not fit), it stays in one process."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator

from agents.judge.scored import ClipJob, ScoreSettings

PARALLEL_MIN_ANSWERS = 20_000  # below this, starting processes costs more than it saves
_CHUNKS_PER_PROCESS = 16  # small enough pieces that a slow one does not leave a core idle at the end
_shared: tuple | None = None  # (score, jobs, settings), set before the fork


def judge_processes(config, n_answers: int, llm_judge) -> int:
    """How many processes score this run."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)  # Linux / macOS
    wanted = config.runtime.judge_processes or cores
    if wanted <= 1 or llm_judge is not None or n_answers < PARALLEL_MIN_ANSWERS:
        return 1
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1  # spawn would pickle every record over: slower than one process
    return wanted


def score_in_processes(jobs: list[ClipJob], settings: ScoreSettings, processes: int,
                       score: Callable | None = None) -> Iterator[tuple[list, set[str]]]:
    """score(ix, answers, weights, gold, settings) for every job, in job order, from `processes` workers."""
    global _shared
    if score is None:
        from agents.judge.stage import score_answers as score
    size = max(1, -(-len(jobs) // (processes * _CHUNKS_PER_PROCESS)))
    _shared = (score, jobs, settings)
    try:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            for part in pool.imap(_score_range, [(i, i + size) for i in range(0, len(jobs), size)]):
                yield from part
    finally:
        _shared = None


def _score_range(span: tuple[int, int]) -> list[tuple[list, set[str]]]:
    score, jobs, settings = _shared
    start, end = span
    return [score(job.ix, job.answers, job.weights, job.gold, settings) for job in jobs[start:end]]
