"""Reviewers' answers as Label Studio itself writes them: one JSON file per annotation, in a
directory the project's local-files target storage points at.

Label Studio's export serializes every task on each request (~2-4 ms a task on the server), so a
pull of 10k answers through it cannot be fast. A target storage moves that cost to the moment an
answer is saved: the server writes the annotation (with its task) to `<dir>/<annotation id>` in
the same request, and removes the file when the annotation is deleted. A pull then reads files.

The files are a view the server keeps; the pull trusts them only when, merged into the run's
mirror, they add up to the server's counts of tasks, answers and skips (see mirror.py). An answer
that never passed through a save (imported with its task) has no file, and a file may outlive its
answer (a storage that keeps deleted objects); then the counts disagree and the pull exports, keeps
the imported answers in the mirror, and removes the stale files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Iterator

from pipeline.review.mirror import slim_task

log = logging.getLogger(__name__)


def answers_dir(base: Path, url: str, project_id: int) -> Path:
    """The project's answer directory beneath `base`: one per server and project, like the mirror."""
    key = hashlib.sha1(f"{url.rstrip('/')}|{project_id}".encode()).hexdigest()[:12]
    return Path(base) / f"project-{project_id}-{key}"


def _slim_annotation(ann: dict) -> dict:
    return {k: v for k, v in ann.items() if k != "task"}


def _files(root: Path) -> Iterator[tuple[str, dict | OSError | ValueError]]:
    """(path, parsed JSON, or the error reading it raised) of each answer file."""
    with os.scandir(root) as entries:
        for e in entries:
            if e.is_file() and not e.name.startswith("."):
                try:
                    with open(e.path, "rb") as f:
                        yield e.path, json.loads(f.read())
                except (OSError, ValueError) as exc:
                    yield e.path, exc


def _task_and_answers(obj: dict) -> tuple[dict, list[dict]]:
    if "task" in obj:  # the default layout: an annotation with its task nested
        return obj["task"], [_slim_annotation(obj)]
    # servers with FUTURE_SAVE_TASK_TO_STORAGE write the task with all its annotations
    return obj, [_slim_annotation(a) for a in obj.get("annotations") or []]


def read_answer_files(root: Path) -> tuple[dict[int, dict], int] | None:
    """task id -> {id, clip_id, updated_at, annotations} for every answer file under `root`, and how
    many files were read; None (with a warning naming the file) when one cannot be read, e.g.
    while the server is still writing it."""
    tasks: dict[int, dict] = {}
    n = 0
    for path, obj in _files(root):
        if isinstance(obj, FileNotFoundError):  # removed (its annotation deleted) since the listing
            continue
        try:
            if isinstance(obj, Exception):
                raise obj
            task, anns = _task_and_answers(obj)
            tid, ids = int(task["id"]), [int(a["id"]) for a in anns]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("answer file %s unreadable (%s); this pull asks the server instead", path, exc)
            return None
        n += 1
        have = tasks.setdefault(tid, slim_task(dict(task, annotations=[])))
        known = {int(a["id"]) for a in have["annotations"]}
        have["annotations"] += [a for a, i in zip(anns, ids) if i not in known]
    return tasks, n


def prune_stale(root: Path, tasks: dict[int, dict], since: datetime | None) -> int:
    """Remove the files of annotations the server no longer has (`tasks`: the mirror after an
    export that added up), so the next pull adds up from files again. Known by (task, annotation):
    a server on SQLite may give a deleted answer's id to a new one. Only files older than `since`
    (when the counts were read) and with an id below the newest known one: an answer saved during
    the pull is newer on both counts and stays."""
    known = {(tid, int(a["id"])) for tid, t in tasks.items() for a in t["annotations"] if a.get("id") is not None}
    top = max((i for _, i in known), default=0)
    removed = 0
    for path, obj in _files(root):
        try:
            task, anns = _task_and_answers(obj)  # an error in place of obj fails here: left alone
            pairs = [(int(task["id"]), int(a["id"])) for a in anns]
            mtime = datetime.fromtimestamp(os.stat(path).st_mtime).astimezone()
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if pairs and all(p not in known and p[1] < top for p in pairs) and (since is None or mtime < since):
            try:
                os.remove(path)
                removed += 1
            except OSError:
                pass
    if removed:
        log.info("review pull: removed %d answer file(s) the server no longer has from %s", removed, root)
    return removed
