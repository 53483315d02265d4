"""What a real Qwen checkpoint on a real GPU needs from the transformers backend, observed on tiny
random models on CPU: the pixel cap, token-budget batches, halving on CUDA out-of-memory (injected at
model.generate, the boundary a CPU cannot reach), falling back when the grammar fails at decode time
(injected where xgrammar applies its bitmask, where Triton fails without a C compiler), the tokenizer's
end tokens, Omni's video timing, the frames both backends send, and audio at the processor's rate."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from agents import build_panel
from agents.batching import memory_token_budget, run_halving, token_batches
from agents.frames import spread_keyframes
from pipeline.sampling.media import file_sha256
from pipeline.sampling.stage import sample_source
from schemas import AnnotatorInput, load_config
from tests.fixtures import tiny_models
from tests.fixtures.tiny_models import (
    tiny_qwen2_audio,
    tiny_qwen25_omni,
    tiny_qwen25_vl,
)

pytestmark = pytest.mark.slow  # loads transformers models


def agent_for(**spec):
    [agent] = build_panel(load_config(overrides=[f"annotate.panel=[{json.dumps({'backend': 'transformers', **spec})}]"]))
    return agent


@pytest.fixture(scope="module")
def vl_dir(tmp_path_factory):
    return tiny_qwen25_vl(tmp_path_factory.mktemp("tiny-vl"), checkpoint_pixels=True)


@pytest.fixture(scope="module")
def omni_dir(tmp_path_factory):
    return tiny_qwen25_omni(tmp_path_factory.mktemp("tiny-omni"), generation_eos=False)


@pytest.fixture()
def video_items(feat_data, config, run_dir):
    path = feat_data / "WolfgangLanger_Pexels.mp4"
    clips = sample_source(path, file_sha256(path), config, run_dir, "r").clips
    return [AnnotatorInput(clip=c, media_root=str(run_dir.root)) for c in clips]


def with_keyframes(item: AnnotatorInput, times: list[float], size=(640, 360)) -> AnnotatorInput:
    """The clip with key frames at these times (each a distinct image written into the run)."""
    from pathlib import Path

    root, base = Path(item.media_root), item.clip.keyframes[0]
    frames = []
    for n, t in enumerate(times):
        path = f"frames/test-{item.clip.clip_id}-{size[0]}x{size[1]}-{n}.jpg"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((size[1], size[0], 3), 10 * n, np.uint8)).save(root / path)
        frames.append(base.model_copy(update={"time": t, "frame_index": int(t * 25), "path": path}))
    return item.model_copy(update={"clip": item.clip.model_copy(update={"keyframes": frames})})


def image_tokens(agent, item) -> int:
    inputs = agent.inputs([agent._request(item, None)])
    return int((inputs["input_ids"] == agent.processor.image_token_id).sum())


def test_a_1080p_frame_is_capped_to_max_pixels(vl_dir, video_items):
    item = with_keyframes(video_items[0], [video_items[0].clip.start + 0.5], size=(1920, 1080))
    agent = agent_for(id="vl", model=str(vl_dir), max_images=1)
    # the checkpoint's own processor takes the frame at native size: a visual token per 28x28 pixels
    from transformers import AutoProcessor

    native = AutoProcessor.from_pretrained(vl_dir).image_processor(images=[Image.new("RGB", (1920, 1080))], return_tensors="pt")
    assert int(native["image_grid_thw"].prod()) // 4 > 2500
    capped = image_tokens(agent, item)
    assert 1000 < capped <= 1280  # default max_pixels 1280*28*28
    smaller = agent_for(id="vl", model=str(vl_dir), max_images=1, max_pixels=256 * 28 * 28, min_pixels=64 * 28 * 28)
    assert 200 < image_tokens(smaller, item) <= 256


def test_pixel_range_is_validated():
    with pytest.raises(ValueError, match=r"annotator 'vl': max_pixels \(1000\) is below min_pixels \(200704\)"):
        load_config(overrides=['annotate.panel=[{"id": "vl", "backend": "transformers", "model": "m", "max_pixels": 1000}]'])


def test_token_batches_respect_the_budget_with_padding():
    costs = [100, 900, 400, 420, 80, 2000]
    batches = token_batches(costs, budget=1000, max_rows=3)
    assert sorted(i for b in batches for i in b) == list(range(len(costs)))
    assert batches[0] == [5]  # over the budget alone: still answered, in a batch of one
    for b in batches:
        assert len(b) <= 3 and (len(b) == 1 or len(b) * max(costs[i] for i in b) <= 1000)
    assert [2, 3] in [sorted(b) for b in batches]  # rows of similar length share a batch


def test_memory_budget_counts_kv_cache_and_activations():
    from transformers import Qwen2Config

    small = Qwen2Config(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4)
    bigger = Qwen2Config(hidden_size=3584, intermediate_size=18944, num_hidden_layers=56, num_attention_heads=28, num_key_value_heads=4)
    assert memory_token_budget(8 << 30, bigger, 2) < memory_token_budget(8 << 30, small, 2) < memory_token_budget(16 << 30, small, 2)
    assert memory_token_budget(1 << 40, small, 2) == 32768  # never above the ceiling


def test_agent_batches_by_prompt_tokens(vl_dir, video_items):
    items = video_items[:4]
    agent = agent_for(id="vl", model=str(vl_dir), max_images=2, max_tokens=16, max_pixels=128 * 28 * 28, min_pixels=32 * 28 * 28)
    requests = [agent._request(i, None) for i in items]
    costs = [agent.prompt_tokens(r) + 16 for r in requests]
    agent.spec = agent.spec.model_copy(update={"max_batch_tokens": 2 * max(costs)})
    done = agent.generate_all(requests)
    assert sorted(done.outputs) == list(range(len(items))) and not done.failed
    assert done.batch_sizes == [len(b) for b in token_batches(costs, 2 * max(costs))] and max(done.batch_sizes) == 2


def oom_above(agent, rows: int, always_for_longest: bool = False):
    """model.generate that runs out of CUDA memory for batches of more than `rows` rows (and, with
    always_for_longest, for any batch holding the longest prompt): the boundary a CPU cannot reach."""
    real, seen = agent.model.generate, []

    def generate(**kwargs):
        ids = kwargs["input_ids"]
        seen.append(ids.shape[0])
        if ids.shape[0] > rows or (always_for_longest and ids.shape[1] >= oom_above.longest):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(**kwargs)

    agent.model.generate = generate
    return seen


def test_a_batch_that_runs_out_of_memory_is_halved_down_to_one(vl_dir, video_items):
    items = (video_items * 3)[:4]
    agent = agent_for(id="vl", model=str(vl_dir), max_images=1, max_tokens=16, json_schema=False, max_batch_tokens=10**6, batch_size=4)
    seen = oom_above(agent, rows=1)
    anns = agent.annotate(items, "run-oom")
    assert len(anns) == 4 and all(a.raw_answer is not None for a in anns)  # every clip answered
    # 4 fails, 2 fails, then one at a time; the repair retries after them are single rows too
    assert seen[:6] == [4, 2, 1, 1, 1, 1] and set(seen[6:]) <= {1}


def test_a_clip_that_does_not_fit_alone_is_rejected_and_the_rest_answered(vl_dir, video_items):
    # the second clip's frame is four times the others' size
    items = [with_keyframes(item, [item.clip.start + 0.2], size=size) for item, size in zip((video_items * 3)[:3], [(320, 180), (640, 360), (320, 180)])]
    agent = agent_for(id="vl", model=str(vl_dir), max_images=1, max_tokens=16, json_schema=False, max_batch_tokens=10**6, min_pixels=32 * 28 * 28)
    lengths = [agent.prompt_tokens(agent._request(i, None)) for i in items]
    oom_above.longest = max(lengths)
    oom_above(agent, rows=3, always_for_longest=True)
    anns = agent.annotate(items, "run-oom")
    longest = lengths.index(max(lengths))
    assert longest == 1 and sorted(lengths)[1] < lengths[1]
    assert anns[longest].status == "rejected" and "out of memory even alone" in anns[longest].error
    others = [a for i, a in enumerate(anns) if lengths[i] < max(lengths)]
    assert others and all(a.raw_answer is not None and "out of memory" not in (a.error or "") for a in others)


def test_a_repair_that_runs_out_of_memory_leaves_the_first_answers_rejection(vl_dir, video_items):
    items = video_items[:2]
    agent = agent_for(id="vl", model=str(vl_dir), max_images=1, max_tokens=16, json_schema=False)
    oom_above.longest = max(agent.prompt_tokens(agent._request(i, None)) for i in items) + 1  # only the longer repair prompts
    oom_above(agent, rows=len(items), always_for_longest=True)
    anns = agent.annotate(items, "run-r")  # unconstrained noise: every clip needs a repair, none fits
    assert len(anns) == 2 and all(a.status == "rejected" and "repair attempt ran out of GPU memory" in a.raw_answer for a in anns)


def test_decode_time_grammar_failure_falls_back_to_unconstrained_decoding(omni_dir, video_items, monkeypatch):
    import xgrammar

    calls = []

    def no_compiler(*args, **kwargs):  # what Triton raises in an image without a C compiler
        calls.append(1)
        raise RuntimeError("Failed to find C compiler. Please specify via CC environment variable.")

    monkeypatch.setattr(xgrammar, "apply_token_bitmask_inplace", no_compiler)
    agent = agent_for(id="omni", model=str(omni_dir), max_images=2, max_tokens=24, min_pixels=32 * 28 * 28, max_pixels=64 * 28 * 28, video_max_pixels=64 * 28 * 28)
    assert agent.grammar is not None
    constrained_hash = agent.prompt_hash
    items = video_items[:2] * 2
    anns = agent.annotate(items, "run-g")
    assert len(anns) == len(items) and all(a.raw_answer for a in anns)  # no clip lost
    assert all(a.status in {"ok", "repaired", "rejected"} and (a.label is None) == (a.status == "rejected") for a in anns)
    assert any("--- repair attempt ---" in a.raw_answer for a in anns)  # the repair path ran on the noise
    assert "Failed to find C compiler" in agent.unconstrained_since
    assert len(calls) == 1  # given up once, not tried again for every batch
    assert all(a.provenance.prompt_hash != constrained_hash for a in anns)  # the answers' provenance says unconstrained


def test_end_tokens_come_from_the_tokenizer_and_greedy_has_no_repetition_penalty(omni_dir):
    agent = agent_for(id="omni", model=str(omni_dir), max_tokens=200)
    tok = agent.processor.tokenizer
    assert agent.model.generation_config.eos_token_id is None  # this thinker alone does not know when to stop
    end, pad = tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")
    assert set(agent.stop_ids) == {end, pad} and agent.pad_id == pad
    real, calls = agent.model.generate, []

    def generate(**kwargs):
        out = real(**kwargs)
        calls.append((kwargs, out[:, kwargs["input_ids"].shape[1]:]))
        return out

    agent.model.generate = generate
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": False}
    reply = agent.chat([{"role": "user", "content": "Is this fine? Answer in JSON."}], schema=schema, max_tokens=200)
    [(kwargs, new)] = calls
    assert set(kwargs["eos_token_id"]) == {end, pad} and kwargs["pad_token_id"] == pad and kwargs["repetition_penalty"] == 1.0
    # the grammar closes the object with an end token and generation stops there; without the
    # tokenizer's end tokens it would run on, unconstrained, to max_tokens
    row = new[0].tolist()
    assert row[-1] in (end, pad) and len(row) < 50 and json.loads(reply) in ({"ok": True}, {"ok": False})


def test_omni_gets_each_clips_real_video_timing(omni_dir, video_items):
    a = with_keyframes(video_items[0], [video_items[0].clip.start + d for d in (0.1, 0.5, 0.9, 1.3)])
    b = with_keyframes(video_items[1], [video_items[1].clip.start + d for d in (0.2, 0.7)])
    agent = agent_for(id="omni", model=str(omni_dir), max_images=4)
    reqs = [agent._request(a, None), agent._request(b, None)]
    assert reqs[0].video_fps == [pytest.approx(4 / a.clip.duration)] and reqs[1].video_fps == [pytest.approx(2 / b.clip.duration)]
    inputs = agent.inputs(reqs)
    # two frames per temporal patch: each grid step spans the share of the clip its frames cover
    seconds = inputs["video_second_per_grid"].tolist()
    assert seconds == pytest.approx([2 * a.clip.duration / 4, 2 * b.clip.duration / 2])
    assert seconds[0] * inputs["video_grid_thw"][0][0] == pytest.approx(a.clip.duration)  # the video lasts as long as the clip


def test_omni_sees_a_single_frame_as_an_image(omni_dir, video_items):
    item = with_keyframes(video_items[0], [video_items[0].clip.start + 0.3])
    agent = agent_for(id="omni", model=str(omni_dir), max_images=4, max_tokens=16, json_schema=False)
    req = agent._request(item, None)
    assert len(req.images) == 1 and not req.videos
    inputs = agent.inputs([req])
    assert (inputs["input_ids"] == agent.processor.image_token_id).sum() > 1 and "video_second_per_grid" not in inputs
    [ann] = agent.annotate([item], "run-i")
    assert ann.raw_answer is not None


def test_both_backends_send_the_same_frames_spread_over_the_clip(vl_dir, video_items):
    item = video_items[0]
    start, d = item.clip.start, item.clip.duration
    item = with_keyframes(item, [start + d * f for f in (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 0.95)])
    picked = spread_keyframes(item.clip, 3)
    assert [k.time for k in picked] == [item.clip.keyframes[i].time for i in (3, 6, 7)]  # start, middle and end
    assert picked[-1].time > start + 0.9 * d  # the end of the clip is seen
    local = agent_for(id="vl", model=str(vl_dir), max_images=3)
    server = {"id": "srv", "backend": "openai", "endpoint": "http://127.0.0.1:9/v1", "max_images": 3}
    [http] = build_panel(load_config(overrides=[f"annotate.panel=[{json.dumps(server)}]"]))
    sent = [p["image_url"]["url"].split(",", 1)[1] for p in http.request_body(item)["messages"][1]["content"] if p["type"] == "image_url"]
    from_http = [np.asarray(Image.open(io.BytesIO(base64.b64decode(s))).convert("RGB")) for s in sent]
    from_local = [np.asarray(im) for im in local._request(item, None).images]
    expected = [np.asarray(Image.open(f"{item.media_root}/{k.path}").convert("RGB")) for k in picked]
    assert len(from_http) == len(from_local) == 3
    assert all((x == e).all() and (y == e).all() for x, y, e in zip(from_http, from_local, expected))


def test_audio_is_resampled_to_the_processors_rate_and_the_official_template_hears_it(tmp_path, speech_dir, config, run_dir):
    model = tiny_qwen2_audio(tmp_path / "audio-8k", sampling_rate=8000, template=tiny_models.QWEN2_AUDIO_TEMPLATE)
    path = speech_dir / "beckett.wav"
    clips = sample_source(path, file_sha256(path), config, run_dir, "r").clips
    items = [AnnotatorInput(clip=c) for c in clips]
    agent = agent_for(id="audio", model=str(model), max_tokens=16)
    assert agent.sampling_rate == 8000 != config.sampling.audio_sample_rate
    audio = agent._audio(items)
    assert abs(audio[0].size / 8000 - clips[0].duration) < 0.01
    prompt = agent.prompt(agent._request(items[0], audio[0]).messages)
    assert "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>" in prompt  # the template found the audio part by its key
    inputs = agent.inputs([agent._request(items[0], audio[0])])
    assert (inputs["input_ids"] == agent.processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")).sum() > 1
    anns = agent.annotate(items, "run-a")  # the feature extractor refuses audio at any other rate
    assert len(anns) == len(items) and all(a.raw_answer is not None for a in anns)


def test_run_halving_propagates_other_errors():
    def boom(batch):
        raise ValueError("not memory")

    with pytest.raises(ValueError, match="not memory"):
        run_halving([[0, 1]], boom, lambda e: isinstance(e, torch.cuda.OutOfMemoryError))


def test_a_decode_failure_outside_the_grammar_keeps_constrained_decoding(omni_dir, video_items):
    agent = agent_for(id="omni-err", model=str(omni_dir), max_images=2, max_tokens=24, min_pixels=32 * 28 * 28,
                      max_pixels=64 * 28 * 28, video_max_pixels=64 * 28 * 28)
    assert agent.grammar is not None

    real = agent.model.generate

    def broken(**kwargs):  # a model bug that shows on the constrained call, not from the schema constraint
        if kwargs.get("logits_processor"):
            raise RuntimeError("shape mismatch in attention")
        return real(**kwargs)

    agent.model.generate = broken
    with pytest.raises(RuntimeError, match="shape mismatch"):
        agent.generate([agent._request(video_items[0], None)])
    assert agent.unconstrained_since is None  # one unrelated error does not turn the schema off for the process
