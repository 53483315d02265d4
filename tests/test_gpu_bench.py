"""bench/gpu_annotators.py, rehearsed on CPU with small shapes: the same preparation, checkpoint
building, agent loading and timed passes that run at full size on a GPU machine, so the script a
GPU session depends on works before a GPU is lent."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from pipeline.sampling.media import file_sha256
from pipeline.sampling.stage import sample_source
from schemas import Clip, load_config
from storage import RunDir
from storage.parquet import write_records
from tests.conftest import ROOT
from tests.fixtures.tiny_models import QWEN_NAMES

sys.path.insert(0, str(ROOT / "bench"))

import gpu_annotators  # noqa: E402

pytestmark = pytest.mark.slow  # loads transformers models


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, feat_data, speech_dir):
    """A video clip and a speech clip of a run, prepared as the GPU machine receives them."""
    run = RunDir.create(tmp_path_factory.mktemp("gpu-bench") / "run")
    config = load_config()
    clips = [c for path in (feat_data / "single_face.mp4", speech_dir / "beckett.wav")
             for c in sample_source(path, file_sha256(path), config, run, "r").clips]
    write_records(run.tables_dir / "clips.parquet", clips, Clip)
    dest = run.root.parent / "gpu"
    gpu_annotators.prepare(run.root, dest)
    return dest, clips


def measure(monkeypatch, dest, out, *extra: str) -> dict:
    monkeypatch.setattr(sys, "argv", ["gpu_annotators.py", "measure", str(dest), "--out", str(out), "--tiny",
                                      "--scratch", str(out), *extra])
    gpu_annotators.main()
    return json.loads((out / "gpu_annotators.json").read_text())


def test_gpu_bench_rehearses_both_models_on_real_clips(prepared, tmp_path, monkeypatch):
    dest, clips = prepared
    assert len((dest / "inputs.jsonl").read_text().splitlines()) == len(clips)
    report = measure(monkeypatch, dest, tmp_path, "--clips", "3", "--single-clips", "1", "--max-tokens", "48")
    for kind in ("omni", "vl"):
        entry = report[kind]
        assert "error" not in entry, entry.get("error")
        assert entry["device"] == "cpu" and entry["constrained"]
        assert sum(entry["batched"]["status"].values()) == 3 and entry["batched"]["failed_alone"] == 0
        assert sum(entry["batched"]["batch_sizes"]) == 3 and entry["one_at_a_time"]["batch_sizes"] == [1]
        assert entry["batched_vs_one_first_pass"] > 0
        assert not (tmp_path / f"ckpt-{kind}").exists()  # the checkpoint is scratch, removed after
    # a real byte-level BPE (realistic prompt lengths), not one token per byte
    tok = gpu_annotators.tokenizer(dest, QWEN_NAMES)
    sentence = "The speaker sounds sad and tired today."
    assert len(tok(sentence, add_special_tokens=False)["input_ids"]) <= len(sentence) // 3
    assert tok.convert_tokens_to_ids("<|image_pad|>") != tok.unk_token_id


def test_gpu_bench_profiles_steps_and_first_passes(prepared, tmp_path, monkeypatch):
    dest, _ = prepared
    steps = measure(monkeypatch, dest, tmp_path / "steps", "--models", "omni", "--step-profile", "--max-tokens", "16")["omni"]
    assert "error" not in steps, steps.get("error")
    decoded = [r for r in steps["decode_steps"] if "decoding" in r]
    assert {(r["rows"], r["decoding"]) for r in decoded} == {(n, d) for n in (16, 1) for d in ("grammar", "none")}
    assert all(r["new_tokens"] > 1 and r["prefill_s"] > 0 for r in decoded)
    first = measure(monkeypatch, dest, tmp_path / "first", "--models", "vl", "--first-passes", "--max-tokens", "16")["vl"]
    assert "error" not in first, first.get("error")
    assert [r["rows"] for r in first["first_passes"]] == list(gpu_annotators.FIRST_PASS_ROWS)
    assert all(r["s"] > 0 and r["longest_answer_tokens"] > 0 and r["new_triton_cache_files"] >= 0 for r in first["first_passes"])
    # a second process loads the checkpoint the first one saved, so it times only the passes
    try:
        report = measure(monkeypatch, dest, tmp_path / "second", "--models", "vl", "--first-passes", "--max-tokens", "16",
                         "--reuse-checkpoint", "--scratch", str(tmp_path / "first"), "--no-cudnn-sdpa")
    finally:  # a process-wide torch setting: the tests after this one get it back
        torch.backends.cuda.enable_cudnn_sdp(True)
    assert report["cudnn_sdpa"] is False
    second = report["vl"]
    assert second["checkpoint"] == {"reused": str(tmp_path / "first" / "ckpt-vl")}
    assert [r["rows"] for r in second["first_passes"]] == list(gpu_annotators.FIRST_PASS_ROWS)
