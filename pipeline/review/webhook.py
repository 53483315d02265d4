"""Listen for Label Studio's annotation webhooks and pull when reviewers submit.

A stdlib HTTP server on 127.0.0.1 records every ANNOTATION_CREATED/UPDATED event and wakes one
worker thread that runs the pull. Events that arrive while a pull runs coalesce into one more pull
(an export covers every annotation), so a burst of submissions costs two pulls, not one per event.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from pipeline.review.label_studio import LabelStudioClient

log = logging.getLogger(__name__)
ACTIONS = ["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"]


class WebhookListener:
    def __init__(self, on_change: Callable[[], Any] | None = None, port: int = 0, host: str = "127.0.0.1"):
        self.on_change = on_change
        self.events: list[dict] = []  # every payload received, in order (action, task, annotation)
        self.pulls = 0  # how many times on_change ran
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                size = int(self.headers.get("Content-Length") or 0)
                try:
                    payload = json.loads(self.rfile.read(size) or b"{}")
                except ValueError:
                    payload = {"action": None, "error": "body is not JSON"}
                self.send_response(200)
                self.end_headers()
                listener._record(payload)

            def log_message(self, fmt: str, *args: Any) -> None:  # keep the test and CLI output clean
                log.debug("webhook: " + fmt, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._threads = [threading.Thread(target=self._server.serve_forever, daemon=True, name="ls-webhook"),
                         threading.Thread(target=self._work, daemon=True, name="ls-webhook-pull")]

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> "WebhookListener":
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "WebhookListener":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _record(self, payload: dict) -> None:
        with self._lock:
            self.events.append(payload)
        if payload.get("action") in ACTIONS:
            self._idle.clear()
            self._wake.set()

    def _work(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            self._wake.clear()  # events from here on ask for one more pull
            if self.on_change is not None:
                try:
                    self.on_change()
                except Exception as exc:  # a failed pull is retried by the next event, not fatal
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("webhook-triggered pull failed: %s", self.last_error)
                self.pulls += 1
            if not self._wake.is_set():
                self._idle.set()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every received event has been pulled (for tests and a clean shutdown)."""
        return self._idle.wait(timeout)


def register_webhook(client: LabelStudioClient, project_id: int, url: str) -> int:
    """Register (once) a webhook on the project that posts annotation events to `url`.
    The server must run with SSRF_PROTECTION_ENABLED=false to post to 127.0.0.1 (scripts/label-studio does)."""
    return client.ensure_webhook(project_id, url, ACTIONS)
