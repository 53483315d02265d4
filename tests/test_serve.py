"""Scheduled re-annotation against the real Prefect server: `emoforge serve` runs the pipeline on an
interval; editing the config file (one more annotator) makes the next run compute only that
annotator's answers and write a new dataset version; runs never overlap."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs a Prefect deployment

ROOT = Path(__file__).resolve().parents[1]


def wait_for(check, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_schedule_reannotates_only_what_changed_and_never_overlaps(tmp_path, feat_data):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    assert os.environ.get("PREFECT_API_URL"), "conftest starts a Prefect server"
    cfg = tmp_path / "panel.yaml"
    # a video with a face: the expression agent answers on it (the word and voice agents abstain on one
    # short recording, which leaves no labelled clip to version)
    cfg.write_text("annotate:\n  panel:\n  - {id: face-expression, backend: face-expression}\n")
    out = tmp_path / "run"
    name = f"reannotate-{uuid.uuid4().hex[:6]}"
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "emoforge"), "serve", str(feat_data / "face_noface.mov"), "--out", str(out),
                             "--interval", "5", "--config", str(cfg), "--name", name],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: (out / "versions" / "v1" / "changes.json").exists(), 300, "the first scheduled run")
        cfg.write_text("annotate:\n  panel:\n  - {id: face-expression, backend: face-expression}\n"
                       "  - {id: face-expression-2, backend: face-expression}\n")
        changes = json.loads(wait_for(lambda: (out / "versions" / "v2" / "changes.json").exists()
                                      and (out / "versions" / "v2" / "changes.json").read_text(), 300, "a run with the new panel"))
        assert changes["annotators_added"] == ["face-expression-2"] and changes["previous"] == 1
        # the run that made version 2 writes its manifest after its export
        from schemas import DatasetRow
        from storage import read_records

        v2_run = read_records(out / "versions" / "v2" / "rows.parquet", DatasetRow)[0].provenance.run_id
        manifest = wait_for(lambda: (out / "run.json").exists() and json.loads((out / "run.json").read_text())["run_id"] == v2_run
                            and json.loads((out / "run.json").read_text()), 120, "the manifest of the run that made version 2")
        annotate = next(s for s in manifest["stages"] if s["stage"] == "annotate")
        sampling = next(s for s in manifest["stages"] if s["stage"] == "sampling")
        assert sampling["computed"] == 0 and annotate["reused"] == annotate["computed"] > 0  # the first reused, the second new
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])))
    ran = sorted((r.start_time, r.end_time) for r in runs if r.state_name == "Completed")
    assert len(ran) >= 2
    for (s1, e1), (s2, _) in zip(ran, ran[1:]):
        assert s2 >= e1, "two scheduled runs overlapped"
    # a run that outlasts the 5 s interval (the first, which loads the models and caches nothing) makes
    # the schedule fire while it is in progress, so the check above saw a collision: the runner
    # cancelled or held the later run back (which of the two is timing), never ran it alongside. A
    # warm rerun may finish inside the interval (one took 4.4 s), so not every run is asked to outlast it
    assert max((e - s).total_seconds() for s, e in ran) > 5
