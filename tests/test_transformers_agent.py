"""transformers backend end to end on tiny random Qwen2.5-VL, Qwen2-Audio and Qwen2.5-Omni models:
real loading, processor, chat template, key frames, clip audio, batched generation, schema-constrained
decoding, parsing and the repair retry. Noise in; parsed, repaired or rejected out, no crash."""

from __future__ import annotations

import json

import jsonschema
import pytest

from agents import build_panel
from agents.llm_text import answer_schema
from pipeline.sampling.media import file_sha256
from pipeline.sampling.stage import sample_source
from schemas import AnnotatorInput, load_config
from tests.fixtures.tiny_models import tiny_qwen25_omni, tiny_qwen25_vl

pytestmark = pytest.mark.slow  # loads transformers models


def agent_for(**spec):
    [agent] = build_panel(load_config(overrides=[f"annotate.panel=[{json.dumps({'backend': 'transformers', **spec})}]"]))
    return agent


def assert_kept_and_decided(anns):
    for a in anns:
        # a random model writes noise: every answer is kept raw and either parsed or rejected with a reason
        assert a.raw_answer is not None and a.status in {"ok", "repaired", "rejected"}
        assert (a.label is None) == (a.status == "rejected")
        if a.status == "rejected":  # asked once more before giving up, both answers kept
            assert "--- repair attempt ---" in a.raw_answer and "after one repair retry" in a.error


@pytest.fixture(scope="module")
def vl_dir(tmp_path_factory):
    return tiny_qwen25_vl(tmp_path_factory.mktemp("tiny-qwen25-vl"))


@pytest.fixture(scope="module")
def omni_dir(tmp_path_factory):
    return tiny_qwen25_omni(tmp_path_factory.mktemp("tiny-qwen25-omni"))


@pytest.fixture()
def video_items(feat_data, config, run_dir):
    path = feat_data / "WolfgangLanger_Pexels.mp4"  # video with a silent audio track
    clips = sample_source(path, file_sha256(path), config, run_dir, "r").clips
    return [AnnotatorInput(clip=c, media_root=str(run_dir.root)) for c in clips]


def test_tiny_qwen25_vl_annotates_clips_with_key_frames(vl_dir, video_items):
    items = video_items * 2
    # unconstrained: noise rarely parses, so the repair retry runs
    agent = agent_for(id="qwen-vl", model=str(vl_dir), max_tokens=24, batch_size=3, max_images=2, json_schema=False)
    assert agent.model_type == "qwen2_5_vl" and agent.device == "cpu" and agent.grammar is None
    req = agent._request(items[0], None)
    assert len(req.images) == min(2, len(items[0].clip.keyframes)) and agent.prompt(req.messages).count("<|image_pad|>") == len(req.images)
    anns = agent.annotate(items, "run-t")
    assert len(anns) == len(items)
    assert_kept_and_decided(anns)
    assert any(a.status == "rejected" for a in anns)  # the retry path ran (this noise never parses)
    assert all(a.provenance.model_id == str(vl_dir) for a in anns)


def test_tiny_qwen2_audio_hears_the_clip_audio(tmp_path, speech_dir, config, run_dir):
    from tests.fixtures.tiny_models import tiny_qwen2_audio

    model_dir = tiny_qwen2_audio(tmp_path / "tiny-qwen2-audio")
    path = speech_dir / "beckett.wav"
    clips = sample_source(path, file_sha256(path), config, run_dir, "r").clips
    agent = agent_for(id="qwen-audio", model=str(model_dir), max_tokens=16, batch_size=2)
    assert agent.model_type == "qwen2_audio"
    [audio] = agent._audio([AnnotatorInput(clip=clips[0])])
    assert abs(audio.size / 16000 - clips[0].duration) < 0.01  # the clip's own span of the source
    req = agent._request(AnnotatorInput(clip=clips[0]), audio)
    assert "<|AUDIO|>" in agent.prompt(req.messages) and req.audio is audio
    anns = agent.annotate([AnnotatorInput(clip=c) for c in clips] * 3, "run-a")
    assert len(anns) == 3 * len(clips)
    assert_kept_and_decided(anns)


def test_tiny_qwen25_omni_sees_video_and_hears_audio(omni_dir, video_items, speech_dir, config, run_dir):
    path = speech_dir / "beckett.wav"
    speech = [AnnotatorInput(clip=c) for c in sample_source(path, file_sha256(path), config, run_dir, "s").clips]
    items = video_items + speech  # mixed batches: video + silent audio track, audio only
    agent = agent_for(id="qwen-omni", model=str(omni_dir), max_tokens=24, batch_size=3, max_images=3)
    assert agent.model_type == "qwen2_5_omni_thinker" and agent.grammar is not None
    proc = agent.processor
    audio = agent._audio(items)
    req = agent._request(items[0], audio[0])
    assert len(req.videos) == 1 and 1 <= len(req.videos[0]) <= 3 and req.audio is audio[0] and req.audio.size
    # the chat prompt holds one video and one audio placeholder, and the processor expands both into
    # the tokens the vision and audio encoders fill
    prompt = agent.prompt(req.messages)
    assert prompt.count(proc.video_token) == 1 and prompt.count(proc.audio_token) == 1
    inputs = proc(text=[prompt], videos=req.videos, audio=[req.audio], sampling_rate=16000, return_tensors="pt")
    ids = inputs["input_ids"][0]
    assert (ids == proc.video_token_id).sum() > 1 and (ids == proc.audio_token_id).sum() > 1
    assert inputs["pixel_values_videos"].numel() and inputs["input_features"].numel()
    speech_req = agent._request(speech[0], audio[len(video_items)])
    assert not speech_req.videos and speech_req.audio is not None
    anns = agent.annotate(items, "run-o")
    assert len(anns) == len(items)
    assert_kept_and_decided(anns)


def test_full_omni_checkpoint_loads_only_its_thinker(tmp_path):
    full = tiny_qwen25_omni(tmp_path / "omni-full", full=True)
    agent = agent_for(id="qwen-omni", model=str(full), max_tokens=16)
    assert agent.model_type == "qwen2_5_omni"
    assert type(agent.model).__name__ == "Qwen2_5OmniThinkerForConditionalGeneration"
    from safetensors.torch import load_file

    saved = load_file(str(full / "model.safetensors"))
    weights = agent.model.state_dict()
    assert saved and all(k.startswith("thinker.") for k in saved)

    def loaded(key):  # the checkpoint's thinker.* names in the thinker class's own layout
        k = key.removeprefix("thinker.")
        return next(weights[c] for c in (k, f"model.{k}", k.replace("model.", "model.language_model.", 1)) if c in weights)

    assert all((loaded(k) == v).all() for k, v in saved.items())  # the checkpoint's weights, not fresh ones


def test_constrained_decoding_makes_noise_schema_valid(omni_dir, video_items, speech_dir, config, run_dir):
    path = speech_dir / "beckett.wav"
    speech = [AnnotatorInput(clip=c) for c in sample_source(path, file_sha256(path), config, run_dir, "s").clips]
    items = video_items[:2] + speech[:1]
    # the schema bounds every string and array, so a long enough budget always completes the object
    agent = agent_for(id="qwen-omni", model=str(omni_dir), max_tokens=3000, batch_size=3, max_images=2)
    schema = answer_schema(agent.context.taxonomy)
    lengths = {len(agent.processor.tokenizer(agent.prompt(agent._request(i, None).messages))["input_ids"]) for i in items}
    assert len(lengths) > 1  # rows of different lengths: the batch is left-padded
    anns = agent.annotate(items, "run-c")  # one batch, one grammar matcher per row
    assert len(anns) == len(items)
    for a in anns:
        obj = json.loads(a.raw_answer)  # strict JSON, no repair
        jsonschema.validate(obj, schema)
        assert a.status == "ok" and a.label == obj["label"] and a.intensity == obj["intensity"]
