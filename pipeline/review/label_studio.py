"""A thin client over label-studio-sdk: the few calls stage 5 needs, each with bounded retries and
errors that say which server and what to do.

The SDK's own retries cover 429/5xx only, not a refused connection, and its errors print whole
response headers; every call here goes through `_call`, which retries connection errors and 5xx
with backoff (config.review.label_studio.max_retries) and turns 401/403 into one clear sentence.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from schemas import EmoforgeConfig
from schemas.config import LabelStudioConfig

log = logging.getLogger(__name__)
T = TypeVar("T")
PAGE = 1000  # tasks per page when listing a project


class LabelStudioError(RuntimeError):
    """Label Studio could not be used; the message names the server and the likely fix."""


class LabelStudioAuthError(LabelStudioError):
    pass


class LabelStudioUnavailable(LabelStudioError):
    pass


@dataclass
class LabelStudioClient:
    url: str
    token: str
    timeout_s: float = 30.0
    max_retries: int = 3
    backoff_s: float = 0.5  # first wait; doubles per retry, capped at 8 s
    token_env: str = "LABEL_STUDIO_API_KEY"
    _sdk: LabelStudio = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self._sdk = LabelStudio(base_url=self.url, api_key=self.token, timeout=self.timeout_s)

    @classmethod
    def from_config(cls, config: EmoforgeConfig | LabelStudioConfig, token: str | None = None) -> "LabelStudioClient":
        ls = config.review.label_studio if isinstance(config, EmoforgeConfig) else config
        token = token or os.environ.get(ls.token_env)
        if not token:
            raise LabelStudioAuthError(f"no Label Studio API token: set {ls.token_env} (the token of a user on {ls.url})")
        return cls(url=ls.url, token=token, timeout_s=ls.timeout_s, max_retries=ls.max_retries, token_env=ls.token_env)

    @property
    def sdk(self) -> LabelStudio:
        return self._sdk

    # -- the one place that talks to the server ------------------------------------------------
    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # SDK retries off: ours cover refused connections too, and the count stays the configured one
        kwargs.setdefault("request_options", {"max_retries": 0, "timeout_in_seconds": self.timeout_s})
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            try:
                return fn(*args, **kwargs)
            except ApiError as exc:
                code = exc.status_code or 0
                if code in (401, 403):
                    raise LabelStudioAuthError(
                        f"Label Studio at {self.url} refused the API token ({code}) while trying to {what}; "
                        f"check {self.token_env} (legacy tokens also need LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true on the server)"
                    ) from None
                if code < 500 and code != 429:
                    raise LabelStudioError(f"Label Studio at {self.url} answered {code} to {what}: {_body(exc)}") from None
                last = exc
            except httpx.TransportError as exc:  # refused, reset, timed out
                last = exc
            if attempt < self.max_retries:
                wait = min(self.backoff_s * 2**attempt, 8.0)
                log.warning("Label Studio at %s: %s failed (%s); retry %d/%d in %.1f s", self.url, what,
                            _short(last), attempt + 1, self.max_retries, wait)
                time.sleep(wait)
        raise LabelStudioUnavailable(
            f"Label Studio at {self.url} is not answering ({_short(last)}) after {self.max_retries + 1} attempts to {what}; "
            f"is the server running? (scripts/label-studio start)"
        )

    def _http(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        """A raw API request (for endpoints the SDK types too strictly), same retries and errors."""
        def go(request_options: dict | None = None) -> Any:
            r = httpx.request(method, self.url + path, headers={"Authorization": f"Token {self.token}"},
                              timeout=self.timeout_s, **kwargs)
            if r.status_code >= 400:
                raise ApiError(status_code=r.status_code, body=r.text[:500])
            return r.json() if r.content else None

        return self._call(what, go)

    # -- projects, storage, tasks ----------------------------------------------------------------
    def check(self) -> dict:
        """Who the token belongs to; fails fast on a wrong token or a server that is down."""
        return self._http("GET", "/api/current-user/whoami", "check the API token")

    def ensure_project(self, title: str, label_config: str) -> int:
        """The project with this title (its label config brought up to date), or a new one."""
        found = self._http("GET", "/api/projects", "list projects", params={"title": title, "page_size": 100})
        rows = found.get("results", found) if isinstance(found, dict) else found
        for p in rows:
            if p.get("title") == title:
                if p.get("label_config") != label_config:
                    # a changed taxonomy or interface: the server validates it against existing annotations
                    self._call("update the label config", self._sdk.projects.update, p["id"], label_config=label_config)
                return int(p["id"])
        p = self._call(f"create project {title!r}", self._sdk.projects.create, title=title, label_config=label_config,
                       # the reviewers should judge, not rubber-stamp: the model's answer is shown
                       # pre-filled (a prediction) but the Data Manager orders by its score
                       show_collab_predictions=True, maximum_annotations=1)
        return int(p.id)

    def ensure_local_storage(self, project_id: int, path: Path, title: str) -> int:
        """A local-files import storage for `path`: the server serves /data/local-files/ only beneath one."""
        path = str(Path(path).resolve())
        rows = self._call("list storages", self._sdk.import_storage.local.list, project=project_id)
        for s in rows:
            if s.path == path:
                return int(s.id)
        s = self._call("add a local-files storage", self._sdk.import_storage.local.create, project=project_id,
                       path=path, title=title, use_blob_urls=False)
        return int(s.id)

    def task_index(self, project_id: int) -> dict[str, int]:
        """clip_id -> task id for every task in the project (re-push looks clips up here)."""
        pairs = self._task_pages(project_id, "id,data", lambda t: ((t.get("data") or {}).get("clip_id"), int(t["id"])))
        return {str(cid): tid for cid, tid in pairs if cid is not None}

    def import_tasks(self, project_id: int, tasks: list[dict]) -> list[int]:
        if not tasks:
            return []
        r = self._call(f"import {len(tasks)} tasks", self._sdk.projects.import_tasks, project_id, request=tasks,
                       return_task_ids=True)
        return list(r.task_ids or [])

    def set_overlap(self, project_id: int, reviewers: int, share: float) -> int:
        """Ask for `reviewers` reviewers on `share` of the project's tasks: Label Studio's own overlap
        setting (maximum annotations, enforced on a cohort of that percentage of tasks), which the
        server keeps as tasks are imported. One request, and only when the setting changes; returns
        the cohort percentage in force."""
        want = {"maximum_annotations": reviewers if share > 0 else 1,
                "overlap_cohort_percentage": max(1, round(100 * share)) if share > 0 else 100}
        have = self._project(project_id)
        if any(have.get(k) != v for k, v in want.items()):
            self._http("PATCH", f"/api/projects/{project_id}", "set the project's overlap", json=want)
        return want["overlap_cohort_percentage"] if share > 0 else 0

    def review_tasks(self, project_id: int) -> list[dict]:
        """Every task with its annotations (the JSON export) and its overlap, i.e. how many reviewers
        it asks for (the export lacks it; the Data Manager lists it, and only lists annotation ids)."""
        tasks = self.export_tasks(project_id)
        most = int(self._project(project_id).get("maximum_annotations") or 1)
        # only a task with some answers but fewer than the most any task asks for can be waiting on a
        # reviewer; listing every task's overlap costs ~1.3 ms a task, so it is read only then
        waiting = [t for t in tasks if 0 < sum(not a.get("was_cancelled") for a in t.get("annotations") or []) < most]
        overlap = self.task_overlaps(project_id) if waiting else {}
        for t in tasks:
            t["overlap"] = overlap.get(t.get("id"), 1)
        return tasks

    def task_overlaps(self, project_id: int) -> dict[int, int]:
        """task id -> how many reviewers the task asks for."""
        return dict(self._task_pages(project_id, "id,overlap", lambda t: (int(t["id"]), int(t.get("overlap") or 1))))

    def _project(self, project_id: int) -> dict:
        return self._http("GET", f"/api/projects/{project_id}", "read the project")

    def export_tasks(self, project_id: int) -> list[dict]:
        """Every task with its annotations (JSON export, all tasks so unannotated ones are seen too)."""
        chunks = self._call("export annotations", lambda request_options=None: b"".join(
            self._sdk.projects.exports.download_sync(project_id, export_type="JSON", download_all_tasks=True,
                                                     download_resources=False, request_options=request_options)))
        return json.loads(chunks)

    def _task_pages(self, project_id: int, include: str, row: Callable[[dict], T]) -> list[T]:
        """One value per task of the project, from the Data Manager's task list, page by page."""
        out: list[T] = []
        page = 1
        while True:
            r = self._http("GET", "/api/tasks", "list tasks", params={
                "project": project_id, "page": page, "page_size": PAGE, "fields": "task_only", "include": include})
            rows = r.get("tasks", []) if isinstance(r, dict) else r
            out += [row(t) for t in rows]
            total = r.get("total", 0) if isinstance(r, dict) else 0
            if not rows or page * PAGE >= total:
                return out
            page += 1

    def users(self) -> dict[int, str]:
        """user id -> email (exports name annotators by id)."""
        rows = self._http("GET", "/api/users", "list users")
        return {int(u["id"]): (u.get("email") or u.get("username") or str(u["id"])) for u in rows}

    def ensure_webhook(self, project_id: int, url: str, actions: list[str]) -> int:
        rows = self._http("GET", "/api/webhooks", "list webhooks", params={"project": project_id})
        for w in rows:
            if w.get("url") == url:
                return int(w["id"])
        w = self._http("POST", "/api/webhooks", "register a webhook", json={
            "project": project_id, "url": url, "send_payload": True, "send_for_all_actions": False,
            "actions": actions, "is_active": True})
        return int(w["id"])


def _short(exc: Exception | None) -> str:
    if isinstance(exc, ApiError):
        return f"HTTP {exc.status_code}"
    return type(exc).__name__ + (f": {exc}" if str(exc) else "") if exc else "no answer"


def _body(exc: ApiError) -> str:
    body = exc.body
    return (json.dumps(body) if not isinstance(body, str) else body)[:300]
