"""The command line: user mistakes are one clear line and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the emoforge command

EMOFORGE = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "emoforge")


def emoforge(*args, cwd=None):
    return subprocess.run([EMOFORGE, *args], capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "missing.mp4", "--out", "o"], "missing.mp4: no such file or directory"),
        (["run", ".", "--out", "o", "--config", "nope.yaml"], None),
        (["run", "{media}", "--out", "o", "--set", "sampling.clips.max_clip_s=-1"], "sampling.clips.max_clip_s"),
        (["run", "{media}", "--out", "o", "--config", "nope.yaml"], "nope.yaml: config file not found"),
    ],
)
def test_user_mistakes_are_reported_without_traceback(tmp_path, feat_data, args, message):
    args = [a.replace("{media}", str(feat_data / "single_face.mp4")) for a in args]
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = emoforge(*args, cwd=empty)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "emoforge: error:" in proc.stderr
    if message:
        assert message in proc.stderr.replace("\n", "")
    else:
        assert "holds no media files" in proc.stderr


def test_run_prints_a_summary_and_writes_tables(tmp_path, feat_data):
    proc = emoforge("run", str(feat_data / "single_face.mp4"), str(feat_data / "no_face.mp4"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    assert "sampling" in proc.stdout and "computed" in proc.stdout
    assert "Traceback" not in proc.stderr
    for table in ("clips", "sources", "rejects"):
        assert (tmp_path / "o" / "tables" / f"{table}.parquet").exists()


@pytest.mark.parametrize(
    "overrides,message",
    [
        (['annotate.panel=[{"id": "x", "backend": "gpt-9"}]'], "annotate.panel.0.backend: unknown backend 'gpt-9'"),
        (['annotate.panel=[{"id": "x", "backend": "openai", "endpoint": "http://h/v1", "max_pixels": 9}]'],
         "annotate.panel.0.max_pixels: not a setting of backend 'openai'"),
        (['annotate.panel=[{"id": "x", "backend": "no_such_pkg.agents:Mine"}]'],
         "annotate.panel.0.backend: cannot import backend 'no_such_pkg.agents:Mine'"),
        (['annotate.panel=[{"id": "x", "backend": "pathlib:Path"}]'],
         "annotate.panel.0.backend: backend 'pathlib:Path' is not an agents.Annotator subclass"),
        (["sampling.instruction.version=v9"], "sampling.instruction: no instruction template emotion-cot:v9"),
        (["judge.gold={gold_missing}"], "judge.gold: {gold_missing}: gold label file not found"),
        (["judge.gold={gold_bad}"], "judge.gold: {gold_bad}: a gold label file needs columns clip_id and label"),
        (['judge.llm_judge={"annotator": {"id": "j", "backend": "facs-rules"}}'],
         "judge.llm_judge.annotator.backend: backend 'facs-rules' has no language model"),
    ],
)
def test_bad_configuration_fails_at_load_before_any_work(tmp_path, feat_data, overrides, message):
    gold_bad = tmp_path / "gold.csv"
    gold_bad.write_text("clip,emotion\nc1,happiness\n")
    paths = {"{gold_missing}": str(tmp_path / "no-gold.csv"), "{gold_bad}": str(gold_bad)}
    for k, v in paths.items():
        overrides = [o.replace(k, v) for o in overrides]
        message = message.replace(k, v)
    out = tmp_path / "out"
    sets = [a for o in overrides for a in ("--set", o)]
    media = str(feat_data / "single_face.mp4")
    for command in (["run", media, "--out", str(out)], ["config"], ["serve", media, "--out", str(out), "--cron", "0 3 * * *"]):
        proc = emoforge(*command, *sets)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("emoforge: error:"), proc.stderr  # one line, no traceback
        assert message in lines[0]
        assert not out.exists()  # nothing written: no lock, no run directory


def test_retired_key_in_an_old_config_warns_and_runs_the_config_command(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("annotate:\n  panel:\n  - {id: lexical, backend: lexical, model: null, prompt_template: emotion-cot,"
                   " prompt_version: v2}\nreview:\n  label_studio:\n    webhook_port: 8099\n")
    proc = emoforge("config", "--config", str(old))
    assert proc.returncode == 0, proc.stderr
    warnings = proc.stderr.strip().splitlines()
    assert len(warnings) == 2, proc.stderr
    assert "annotate.panel.0.prompt_version is retired and ignored" in warnings[0]
    assert "review.label_studio.webhook_port is retired and ignored" in warnings[1]
    assert "prompt_version" not in proc.stdout and "webhook_port" not in proc.stdout
