"""scripts/label-studio without a real server: no preset credentials (random ones made on first
use, kept 0600, shown by `token`), the token never on a command line, and no home folder served."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts Label Studio

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "scripts" / "label-studio")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOFORGE_LS_")}
    return {**env, "EMOFORGE_LS_HOME": str(home), **extra}


def test_first_use_makes_random_credentials_kept_private(tmp_path):
    one = subprocess.run([SCRIPT, "token"], env=_env(tmp_path / "a"), capture_output=True, text=True, timeout=60)
    assert one.returncode == 0, one.stderr
    token = one.stdout.strip()
    creds = tmp_path / "a" / "credentials"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    kept = dict(line.split("=", 1) for line in creds.read_text().splitlines())
    assert kept["token"] == token and len(token) >= 32 and len(kept["password"]) >= 20
    again = subprocess.run([SCRIPT, "token"], env=_env(tmp_path / "a"), capture_output=True, text=True, timeout=60)
    assert again.stdout.strip() == token  # kept, not remade
    other = subprocess.run([SCRIPT, "token"], env=_env(tmp_path / "b"), capture_output=True, text=True, timeout=60)
    assert other.stdout.strip() != token  # random per home, nothing preset
    text = Path(SCRIPT).read_text()
    assert "emoforge-admin" not in text and "dev-token" not in text


def _cmdlines() -> list[bytes]:
    out = []
    for p in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            out.append(p.read_bytes())
        except OSError:
            pass
    return out


def test_the_token_never_appears_on_a_command_line(tmp_path):
    """A stand-in server answers the script's health check; while the checking process waits for the
    answer, every process's command line is read."""
    token = subprocess.run([SCRIPT, "token"], env=_env(tmp_path / "home"), capture_output=True, text=True, timeout=60).stdout.strip()
    seen: dict[str, object] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.path.startswith("/api/current-user/whoami"):
                seen["auth"] = self.headers.get("Authorization")
                seen["on_a_command_line"] = any(token.encode() in c for c in _cmdlines())
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        docroot = tmp_path / "runs"
        docroot.mkdir()
        proc = subprocess.run([SCRIPT, "start", str(server.server_address[1])], env=_env(tmp_path / "home"), cwd=docroot,
                              capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stderr
    assert seen["auth"] == f"Token {token}"  # the check really ran, with the kept token
    assert seen["on_a_command_line"] is False


def test_a_home_folder_is_not_served_by_default(tmp_path):
    home = tmp_path / "user"
    home.mkdir()
    env = _env(tmp_path / "ls", HOME=str(home))
    proc = subprocess.run([SCRIPT, "start", "1"], env=env, cwd=home, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "will not serve" in proc.stderr and str(home) in proc.stderr


def test_the_client_repr_hides_the_token():
    from pipeline.review.label_studio import LabelStudioClient

    client = LabelStudioClient(url="http://127.0.0.1:9", token="tok-0123456789abcdef")
    assert "tok-0123456789abcdef" not in repr(client) and "127.0.0.1:9" in repr(client)
