"""The local Prefect server runs reuse: `emoforge run` starts one when none answers, later runs use
it instead of a temporary server each, and `emoforge server stop` ends it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flows.prefect_server import LocalServer, ServerError, use_local_server
from tests.conftest import PREFECT_TEMPLATE_DB, _free_port

pytestmark = pytest.mark.slow  # starts Prefect servers

CLI = Path(sys.executable).with_name("emoforge")


@pytest.fixture
def server_env(tmp_path, monkeypatch):
    """A port and home of this test's own, and no PREFECT_API_URL (the suite's server is not ours)."""
    port, home = _free_port(), tmp_path / "prefect-server"
    home.mkdir()
    if PREFECT_TEMPLATE_DB.exists():  # a migrated database: the server is up in seconds
        shutil.copyfile(PREFECT_TEMPLATE_DB, home / "prefect.db")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("EMOFORGE_PREFECT", raising=False)
    monkeypatch.setenv("EMOFORGE_PREFECT_PORT", str(port))
    monkeypatch.setenv("EMOFORGE_PREFECT_HOME", str(home))
    server = LocalServer.configured()
    yield server
    server.stop()


def test_a_run_starts_the_server_once_and_later_runs_reuse_it(server_env, feat_data, tmp_path):
    photo = tmp_path / "in" / "face.jpg"
    photo.parent.mkdir()
    shutil.copyfile(feat_data / "0-f15-hao-ph.jpg", photo)
    env = dict(os.environ)

    def run(out: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(CLI), "run", str(photo.parent), "--out", str(tmp_path / out)], capture_output=True, text=True,
                              env=env, timeout=600)

    assert not server_env.healthy()
    first = run("a")
    assert first.returncode == 0, first.stderr[-2000:]
    assert f"started a Prefect server at {server_env.url}" in first.stderr
    pid = server_env.pid()
    assert pid and server_env.healthy()  # it outlived the run
    second = run("b")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "started a Prefect server" not in second.stderr and server_env.pid() == pid
    status = subprocess.run([str(CLI), "server", "status"], capture_output=True, text=True, env=env, timeout=60)
    assert status.returncode == 0 and "healthy" in status.stdout
    stop = subprocess.run([str(CLI), "server", "stop"], capture_output=True, text=True, env=env, timeout=60)
    assert stop.returncode == 0 and "stopped" in stop.stdout
    assert not server_env.healthy() and server_env.pid() is None
    status = subprocess.run([str(CLI), "server", "status"], capture_output=True, text=True, env=env, timeout=60)
    assert status.returncode == 1 and "not running" in status.stdout


def test_an_api_url_or_ephemeral_mode_starts_nothing(server_env, monkeypatch):
    monkeypatch.setenv("EMOFORGE_PREFECT", "ephemeral")
    assert use_local_server() is None and "PREFECT_API_URL" not in os.environ
    monkeypatch.setenv("EMOFORGE_PREFECT", "sometimes")
    with pytest.raises(ServerError, match="EMOFORGE_PREFECT='sometimes'"):
        use_local_server()
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # a URL the user gave wins
    assert use_local_server() == "http://127.0.0.1:9/api"
    assert not server_env.healthy() and server_env.pid() is None


def test_a_server_that_cannot_start_leaves_the_run_on_a_temporary_one(server_env, monkeypatch, tmp_path):
    # a port someone else holds: the server exits during startup; the run is told and goes on
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setenv("EMOFORGE_PREFECT_PORT", str(busy.getsockname()[1]))
        notes: list[str] = []
        assert use_local_server(notes.append) is None
        assert "PREFECT_API_URL" not in os.environ
        assert notes and "temporary Prefect server" in notes[0]
