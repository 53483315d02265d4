"""The Prefect flow: outputs, caching across reruns, and resuming a run killed mid-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from flows.pipeline_flow import run_pipeline
from schemas import load_config
from storage import RunDir

pytestmark = pytest.mark.slow  # runs the pipeline

ROOT = Path(__file__).resolve().parents[1]


def test_rerun_reuses_everything_and_config_change_recomputes(feat_data, speech_dir, config, tmp_path):
    inputs = [str(feat_data / "face_noface.mov"), str(speech_dir / "beckett.wav")]
    out = tmp_path / "run"
    first = run_pipeline(inputs, str(out), config)
    assert (first.stages[0].computed, first.stages[0].reused) == (2, 0)
    clips_first = RunDir(out).read("clips")
    assert clips_first and {c.provenance.run_id for c in clips_first} == {first.run_id}

    annotations = RunDir(out).read("annotations")
    assert {(a.clip_id, a.annotator_id) for a in annotations} == {
        (c.clip_id, spec.id) for c in clips_first for spec in config.annotate.panel}
    assert any(a.status == "ok" for a in annotations) and all(a.status in {"ok", "abstained"} for a in annotations)
    features_first = RunDir(out).read("features")
    assert [f.clip_id for f in features_first] == [c.clip_id for c in clips_first]
    assert first.stages[1].computed == len(clips_first)
    # stage 4: every answer judged, every clip resolved, flagged clips counted in the summary
    judgements, consensus = RunDir(out).read("judgements"), RunDir(out).read("consensus")
    assert {j.annotation_id for j in judgements} == {a.annotation_id for a in annotations if a.status != "abstained"}
    assert [c.clip_id for c in consensus] == [c.clip_id for c in clips_first]
    assert all(0 <= j.s_final <= 1 and j.provenance.stage == "judge" for j in judgements)
    assert first.stages[3].stage == "judge" and first.stages[3].outputs == sum(c.needs_review for c in consensus)

    second = run_pipeline(inputs, str(out), config)
    assert (second.stages[0].computed, second.stages[0].reused) == (0, 2)
    assert (second.stages[1].computed, second.stages[1].reused) == (0, len(clips_first))
    assert [c.label for c in RunDir(out).read("consensus")] == [c.label for c in consensus]  # same answers, same verdicts
    assert RunDir(out).read("features") == features_first
    assert [c.clip_id for c in RunDir(out).read("clips")] == [c.clip_id for c in clips_first]

    changed = load_config(overrides=["sampling.keyframes.max_per_clip=2"])
    third = run_pipeline(inputs, str(out), changed)
    assert (third.stages[0].computed, third.stages[0].reused) == (2, 0)
    # video clips changed (fewer key frames) so their features are recomputed; the audio-only clip
    # is identical, so its features are reused
    video = sum(c.has_video for c in clips_first)
    assert (third.stages[1].computed, third.stages[1].reused) == (video, len(clips_first) - video)
    assert all(len(c.keyframes) <= 2 for c in RunDir(out).read("clips"))
    manifest = RunDir(out).read_manifest()
    assert manifest.run_id == third.run_id and manifest.tables.clips == len(RunDir(out).clips())
    assert [s.model_dump() for s in manifest.stages] == [s.model_dump() for s in third.stages]  # run.json holds what the run returned

    # one more annotator: only its answers are computed; sampling, features and the others' answers are reused
    # (an expression model that answers on the smiling face: a word agent abstains on these words)
    panel = [sp.model_dump() for sp in changed.annotate.panel] + [{"id": "face-expression-2", "backend": "face-expression"}]
    bigger = load_config(overrides=["sampling.keyframes.max_per_clip=2", f"annotate.panel={json.dumps(panel)}"])
    fourth = run_pipeline(inputs, str(out), bigger)
    n = len(RunDir(out).read("clips"))
    assert fourth.stages[0].computed == 0 and fourth.stages[1].computed == 0
    assert (fourth.stages[2].computed, fourth.stages[2].reused) == (n, n * len(changed.annotate.panel))
    assert {a.annotator_id for a in RunDir(out).read("annotations")} == {sp["id"] for sp in panel}
    # the re-annotation is a new dataset version with a report of what changed and why
    versions = sorted((out / "versions").glob("v*"))
    latest = json.loads((versions[-1] / "changes.json").read_text())
    assert len(versions) >= 2 and latest["annotators_added"] == ["face-expression-2"] and latest["previous"] == len(versions) - 1
    assert (versions[-1] / "CHANGES.md").read_text().startswith(f"# Dataset version {len(versions)}")


def test_run_killed_midway_resumes_without_recomputing(feat_data, speech_dir, tmp_path):
    inputs = [str(speech_dir / "beckett.wav"), str(feat_data / "WolfgangLanger_Pexels.mp4"),
              str(speech_dir / "two_cities.wav"), str(feat_data / "face_noface.mov")]
    out = tmp_path / "run"
    cmd = [str(ROOT / ".venv" / "bin" / "emoforge"), "run", *inputs, "--out", str(out), "--set", "runtime.workers=1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    results = out / ".cache" / "results"  # JSON records, one per finished task (flows/result_cache.py)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if results.exists() and len(list(results.glob("*.json"))) >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(results.glob("*.json")))
    assert 1 <= finished < len(inputs)
    assert not (out / "tables" / "clips.parquet").exists()  # killed before the tables were written

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    stage = json.loads((out / "run.json").read_text())["stages"][0]
    assert stage["reused"] == finished and stage["computed"] == len(inputs) - finished
    resumed = RunDir(out).read("clips")

    clean = run_pipeline(inputs, str(tmp_path / "clean"), load_config())
    assert clean.stages[0].computed == len(inputs)
    assert [c.clip_id for c in resumed] == [c.clip_id for c in RunDir(tmp_path / "clean").read("clips")]
    for c in resumed:  # key frames of reused work are still on disk
        assert all((out / k.path).exists() for k in c.keyframes)
