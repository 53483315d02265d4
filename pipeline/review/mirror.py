"""The review project's tasks as of the last pull, kept in the run's cache, so a pull asks Label
Studio only for the tasks that changed since.

Label Studio's export costs ~2 ms a task on the server however few answers changed; a pull after
reviewers added a handful of answers should not cost the whole project again. Creating or editing
an annotation (or a task) moves the task's `updated_at`, so the next pull exports only tasks
updated after the server's clock when the last pull began (its Date header; less a margin, as an
edit in flight then may commit with an earlier time).

Deleting an annotation or a task moves no timestamp. So a delta is trusted only if the mirror then
holds exactly as many tasks, answers and skips as the server counts; otherwise the pull falls back
to a full export. Losing or corrupting the mirror costs one full export, never a wrong answer.
A push into an empty project seeds the mirror (every task, no answers), so the first pull is a
delta too.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from pipeline.review.label_studio import LabelStudioClient, ProjectCounts, server_time
from storage.parquet import atomic_write_bytes

log = logging.getLogger(__name__)
# re-read tasks updated this long before the last pull began: an edit in flight then is saved with
# an earlier time than it commits (a missed new answer would break the counts anyway)
MARGIN = timedelta(seconds=2)
FORMAT = 1
FROM_FILE = "from_answer_file"  # marks an answer the mirror took from an answer file


@dataclass
class SyncReport:
    full: bool  # the whole project was exported (first pull, or the delta did not add up)
    fetched: int  # tasks the server exported
    reason: str  # why a full export (empty for a delta)
    answer_files: int = 0  # answer files read instead of an export (0: the server exported)


def slim_task(task: dict) -> dict:
    """What a pull reads of a task; the rest (media URLs, rationale HTML) is the push's business."""
    cid = (task.get("data") or {}).get("clip_id")
    return {"id": int(task["id"]), "clip_id": None if cid is None else str(cid),
            "updated_at": task.get("updated_at"), "annotations": task.get("annotations") or []}


class TaskMirror:
    def __init__(self, path: Path, url: str, project_id: int):
        self.path, self.url, self.project_id = Path(path), url, project_id
        self.tasks: dict[int, dict] = {}
        # the server's time when the last pull counted, before it exported (or, from a server that
        # sends no Date header, the latest updated_at seen)
        self.synced_from: str | None = None

    @classmethod
    def for_project(cls, cache_dir: Path, url: str, project_id: int) -> "TaskMirror":
        key = hashlib.sha1(f"{url}|{project_id}".encode()).hexdigest()[:12]
        mirror = cls(Path(cache_dir) / f"label-studio-{project_id}-{key}.json", url, project_id)
        mirror.load()
        return mirror

    def load(self) -> None:
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_bytes())
            if data.get("format") != FORMAT or data.get("url") != self.url or data.get("project_id") != self.project_id:
                raise ValueError("written for another server, project or format")
            self.tasks = {int(t["id"]): t for t in data["tasks"]}
            self.synced_from = data.get("synced_from")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("review mirror %s unusable (%s); the next pull exports the whole project", self.path, exc)
            self.tasks, self.synced_from = {}, None

    def save(self) -> None:
        data = {"format": FORMAT, "url": self.url, "project_id": self.project_id, "synced_from": self.synced_from,
                "tasks": list(self.tasks.values())}
        atomic_write_bytes(self.path, json.dumps(data, separators=(",", ":")).encode())

    def adds_up(self, tasks: dict[int, dict], counts: ProjectCounts) -> bool:
        anns = [a for t in tasks.values() for a in t["annotations"]]
        skips = sum(bool(a.get("was_cancelled")) for a in anns)
        return (len(tasks), len(anns) - skips, skips) == (counts.tasks, counts.answers, counts.skips)

    def seed(self, client: LabelStudioClient, task_ids: dict[str, int]) -> bool:
        """Start from the tasks just imported into an empty project: nobody has answered them, so
        the first pull need export only the tasks reviewers touched since. Kept only when the
        server's counts agree (no answer yet, no other task) and it sends its clock."""
        counts = client.counts(self.project_id)
        tasks = {tid: {"id": tid, "clip_id": cid, "updated_at": None, "annotations": []} for cid, tid in task_ids.items()}
        if counts.as_of is None or not self.adds_up(tasks, counts):
            return False
        self.tasks, self.synced_from = tasks, counts.as_of.isoformat()
        self.save()
        return True

    def sync_from_files(self, found: dict[int, dict], files: int, counts: ProjectCounts) -> SyncReport | None:
        """Take the answers read from the project's answer files (answer_files.py) over the mirror.
        Files decide every answer that came from a file (one whose file is gone was deleted); an
        answer the mirror has from an export and no file has (imported with its task) stays, and a
        task seen only in files joins. None, leaving the mirror as it was, unless the result adds
        up to `counts` (an answer saved between the count and the read makes them differ: no harm)."""
        merged = {tid: dict(t, annotations=[a for a in t["annotations"] if not a.get(FROM_FILE)])
                  for tid, t in self.tasks.items()}
        for tid, t in found.items():
            have = merged.setdefault(tid, dict(t, annotations=[]))
            anns = {int(a["id"]): a for a in have["annotations"]}
            anns.update((int(a["id"]), dict(a, **{FROM_FILE: True})) for a in t["annotations"])
            have["annotations"] = [anns[i] for i in sorted(anns)]
        if not self.adds_up(merged, counts):
            return None
        self._take(merged, [], counts, full=False)
        return SyncReport(full=False, fetched=0, reason="", answer_files=files)

    def sync(self, client: LabelStudioClient, counts: ProjectCounts) -> SyncReport:
        """Bring the mirror up to the server's state; `counts` must be read before the export, so an
        answer that lands during it makes the delta not add up (a full export) rather than vanish."""
        since = server_time(self.synced_from)
        reason = "first pull" if not self.tasks else "no time seen yet"
        if self.tasks and since is not None:
            delta = [slim_task(t) for t in client.export_tasks(self.project_id, since - MARGIN)]
            merged = dict(self.tasks)
            merged.update((t["id"], t) for t in delta)
            if self.adds_up(merged, counts):
                self._take(merged, delta, counts, full=False)
                return SyncReport(full=False, fetched=len(delta), reason="")
            reason = "the delta does not add up to the server's counts (a task or answer was deleted)"
        everything = [slim_task(t) for t in client.export_tasks(self.project_id)]
        self._take({t["id"]: t for t in everything}, everything, counts, full=True)
        return SyncReport(full=True, fetched=len(everything), reason=reason)

    def _take(self, tasks: dict[int, dict], fetched: list[dict], counts: ProjectCounts, full: bool) -> None:
        self.tasks = tasks
        if counts.as_of is not None:
            self.synced_from = counts.as_of.isoformat()
            return
        seen = [s for s in (server_time(t.get("updated_at")) for t in fetched) if s is not None]
        if not full and server_time(self.synced_from) is not None:
            seen.append(server_time(self.synced_from))
        self.synced_from = max(seen).isoformat() if seen else None
