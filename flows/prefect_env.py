"""Prefect settings that must be in place before prefect is imported: offline, quiet, and a
persistent home so the ephemeral API's database is migrated once, not per run."""

from __future__ import annotations

import os
from pathlib import Path


def configure_prefect() -> None:
    env = os.environ
    env.setdefault("PREFECT_HOME", str(Path(env.get("EMOFORGE_HOME", Path.home() / ".cache" / "emoforge")) / "prefect"))
    # prefect creates only the last level of its home; the SQLite file fails to open otherwise
    Path(env["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
    if not env.get("PREFECT_API_URL"):
        env.setdefault("PREFECT_SERVER_EPHEMERAL_ENABLED", "true")
    # offline machines: telemetry calls fail and lock the SQLite database
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
    env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    env.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "WARNING")
    env.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL", "WARNING")
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    # model hubs are unreachable here; local weights only
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
