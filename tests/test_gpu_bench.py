"""bench/gpu_annotators.py, rehearsed on CPU with small shapes: the same preparation, checkpoint
building, agent loading and timed passes that run at full size on a GPU machine, so the script a
GPU session depends on works before a GPU is lent."""

from __future__ import annotations

import json
import sys

import pytest

from pipeline.sampling.media import file_sha256
from pipeline.sampling.stage import sample_source
from schemas import Clip
from storage.parquet import write_records
from tests.conftest import ROOT
from tests.fixtures.tiny_models import QWEN_NAMES

sys.path.insert(0, str(ROOT / "bench"))

import gpu_annotators  # noqa: E402

pytestmark = pytest.mark.slow  # loads transformers models


def test_gpu_bench_rehearses_both_models_on_real_clips(tmp_path, feat_data, speech_dir, config, run_dir, monkeypatch):
    clips = [c for path in (feat_data / "single_face.mp4", speech_dir / "beckett.wav")
             for c in sample_source(path, file_sha256(path), config, run_dir, "r").clips]
    write_records(run_dir.tables_dir / "clips.parquet", clips, Clip)
    dest, out = tmp_path / "gpu", tmp_path / "out"
    gpu_annotators.prepare(run_dir.root, dest)
    assert len((dest / "inputs.jsonl").read_text().splitlines()) == len(clips)

    monkeypatch.setattr(sys, "argv", ["gpu_annotators.py", "measure", str(dest), "--out", str(out), "--tiny", "--clips", "3",
                                      "--single-clips", "1", "--max-tokens", "48", "--scratch", str(tmp_path)])
    gpu_annotators.main()
    report = json.loads((out / "gpu_annotators.json").read_text())
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
