"""transformers backend end to end on a tiny random Qwen2.5-VL: real loading, processor, chat
template, key-frame images, batched generation, parsing. Noise in, rejected-or-parsed out, no crash."""

from __future__ import annotations

import json

import pytest

from agents import build_panel
from pipeline.sampling.media import file_sha256
from pipeline.sampling.stage import sample_source
from schemas import AnnotatorInput, load_config
from tests.fixtures.tiny_models import tiny_qwen25_vl


@pytest.fixture(scope="module")
def vl_dir(tmp_path_factory):
    return tiny_qwen25_vl(tmp_path_factory.mktemp("tiny-qwen25-vl"))


def test_tiny_qwen25_vl_annotates_clips_with_key_frames(vl_dir, feat_data, config, run_dir):
    path = feat_data / "WolfgangLanger_Pexels.mp4"
    clips = sample_source(path, file_sha256(path), config, run_dir, "r").clips
    items = [AnnotatorInput(clip=c, media_root=str(run_dir.root)) for c in clips] * 2
    spec = {"id": "qwen-vl", "backend": "transformers", "model": str(vl_dir), "max_tokens": 24, "batch_size": 3, "max_images": 2}
    [agent] = build_panel(load_config(overrides=[f"annotate.panel=[{json.dumps(spec)}]"]))
    assert agent.model_type == "qwen2_5_vl" and agent.device == "cpu"
    prompt, images, _ = agent._inputs(items[0], None)
    assert len(images) == min(2, len(clips[0].keyframes)) and prompt.count("<|image_pad|>") == len(images)
    anns = agent.annotate(items, "run-t")
    assert len(anns) == len(items)
    for a in anns:
        # a random model writes noise: every answer is kept raw and either parsed or rejected with a reason
        assert a.raw_answer is not None and a.status in {"ok", "repaired", "rejected"}
        assert (a.label is None) == (a.status == "rejected")
        assert a.provenance.model_id == str(vl_dir)


def test_tiny_qwen2_audio_hears_the_clip_audio(tmp_path, speech_dir, config, run_dir):
    from tests.fixtures.tiny_models import tiny_qwen2_audio

    model_dir = tiny_qwen2_audio(tmp_path / "tiny-qwen2-audio")
    path = speech_dir / "beckett.wav"
    clips = sample_source(path, file_sha256(path), config, run_dir, "r").clips
    spec = {"id": "qwen-audio", "backend": "transformers", "model": str(model_dir), "max_tokens": 16, "batch_size": 2}
    [agent] = build_panel(load_config(overrides=[f"annotate.panel=[{json.dumps(spec)}]"]))
    assert agent.model_type == "qwen2_audio"
    [audio] = agent._audio([AnnotatorInput(clip=clips[0])])
    assert abs(audio.size / 16000 - clips[0].duration) < 0.01  # the clip's own span of the source
    prompt, _, sent = agent._inputs(AnnotatorInput(clip=clips[0]), audio)
    assert "<|AUDIO|>" in prompt and sent is audio
    anns = agent.annotate([AnnotatorInput(clip=c) for c in clips] * 3, "run-a")
    assert len(anns) == 3 * len(clips) and all(a.raw_answer is not None for a in anns)
