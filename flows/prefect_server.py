"""The local Prefect API server that `emoforge run` uses, so a run does not pay for a temporary one.

Without one, every run starts Prefect's temporary ("ephemeral") server and stops it at exit: seconds
of fixed cost per run, the largest part of an unchanged rerun. So by default a run finds a healthy
server on 127.0.0.1:PORT (`EMOFORGE_PREFECT_PORT`, default 4200) or starts one, detached, that
outlives the run; later runs reuse it. `emoforge server status|start|stop` manages it
(`scripts/prefect-server` calls this module). `EMOFORGE_PREFECT=ephemeral` keeps the old per-run
temporary server (for machines that must leave nothing running); a `PREFECT_API_URL` already set
wins over both. The server keeps its SQLite database and log under `$EMOFORGE_HOME/prefect-server`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 4200
STARTUP_TIMEOUT_S = 120.0  # a first start migrates a new database


class ServerError(RuntimeError):
    pass


@dataclass(frozen=True)
class LocalServer:
    port: int
    home: Path

    @classmethod
    def configured(cls, port: int | None = None) -> "LocalServer":
        env = os.environ
        port = port or int(env.get("EMOFORGE_PREFECT_PORT", DEFAULT_PORT))
        base = env.get("EMOFORGE_PREFECT_HOME") or str(Path(env.get("EMOFORGE_HOME", Path.home() / ".cache" / "emoforge")) / "prefect-server")
        return cls(port, Path(base).expanduser())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def pidfile(self) -> Path:
        return self.home / f"server-{self.port}.pid"

    @property
    def log(self) -> Path:
        return self.home / f"server-{self.port}.log"

    def healthy(self, timeout: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=timeout) as r:
                return r.status == 200
        except (OSError, ValueError):
            return False

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def start(self, timeout: float = STARTUP_TIMEOUT_S) -> str:
        """The API URL of a healthy server on the port, started (detached) if none answers."""
        if self.healthy():
            return self.url
        self.home.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PREFECT_HOME=str(self.home), DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   PREFECT_SERVER_LOGGING_LEVEL="WARNING")
        env.pop("PREFECT_API_URL", None)
        prefect = Path(sys.executable).with_name("prefect")
        cmd = [str(prefect) if prefect.exists() else "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port),
               "--analytics-off"]
        with open(self.log, "ab") as log:
            # its own session: the server outlives the command that started it and its terminal
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.pidfile.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return self.url
            if proc.poll() is not None:
                tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
                self.pidfile.unlink(missing_ok=True)
                raise ServerError(f"the Prefect server on port {self.port} exited during startup (see {self.log}): " + " | ".join(tail))
            time.sleep(0.5)
        raise ServerError(f"no healthy Prefect server on port {self.port} after {timeout:.0f} s; see {self.log}")

    def stop(self, timeout: float = 20.0) -> bool:
        """Stop the server this module started on the port; False when there was none."""
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        try:
            os.killpg(pid, signal.SIGTERM)  # the CLI forks uvicorn: stop the whole session it leads
        except OSError:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            os.killpg(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)
        return True


def use_local_server(notify=None) -> str | None:
    """Point this process at the local server (starting it if needed), unless PREFECT_API_URL is set
    or EMOFORGE_PREFECT=ephemeral. Returns the URL, or None when the run uses a temporary server;
    a server that cannot start is reported and the run falls back to a temporary one."""
    env = os.environ
    if env.get("PREFECT_API_URL"):
        return env["PREFECT_API_URL"]
    mode = env.get("EMOFORGE_PREFECT", "server")
    if mode == "ephemeral":
        return None
    if mode != "server":
        raise ServerError(f"EMOFORGE_PREFECT={mode!r}: expected 'server' (default) or 'ephemeral'")
    server = LocalServer.configured()
    try:
        started = not server.healthy()
        url = server.start()
    except ServerError as exc:
        if notify:
            notify(f"{exc}; this run uses a temporary Prefect server")
        return None
    if started and notify:
        notify(f"started a Prefect server at {url} for this and later runs (emoforge server stop ends it)")
    env["PREFECT_API_URL"] = url
    return url


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    cmd = args[0] if args else "start"
    server = LocalServer.configured(int(args[1]) if len(args) > 1 else None)
    if cmd == "start":
        try:
            print(server.start())
        except ServerError as exc:
            print(f"prefect-server: {exc}", file=sys.stderr)
            return 1
        return 0
    if cmd == "stop":
        server.stop()
        return 0
    if cmd == "status":
        print(f"{server.url} {'healthy' if server.healthy() else 'not running'} (pid {server.pid() or '-'}, log {server.log})")
        return 0 if server.healthy() else 1
    print("usage: prefect_server start|stop|status [PORT]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
