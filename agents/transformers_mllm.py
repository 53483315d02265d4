"""Local multimodal LLM annotators through transformers: Qwen2.5-VL / Qwen2-VL (key frames + evidence
text), Qwen2-Audio (clip audio + evidence text) and Qwen2.5-Omni (key frames as a short video + clip
audio + evidence text), from a hub id or a local directory, bf16 on GPU. Images are resized into the
configured pixel range; batches are sized by prompt + answer tokens and halved when the GPU runs out of
memory. Decoding is constrained to the answer JSON schema (xgrammar), stops at the tokenizer's own end
tokens, and falls back to unconstrained decoding if the grammar fails at decode time; an answer that
still cannot be used is asked again once, then rejected with its raw text kept."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from agents.answer import to_annotation, with_repair
from agents.base import Annotator, clip_audio, register
from agents.batching import memory_token_budget, run_halving, token_batches
from agents.frames import frames_per_second, spread_keyframes
from agents.llm_text import SYSTEM, answer_schema, serialise
from schemas import Annotation, AnnotatorInput

log = logging.getLogger(__name__)

VISION = ("qwen2_5_vl", "qwen2_vl")  # key frames as images
OMNI = ("qwen2_5_omni", "qwen2_5_omni_thinker")  # key frames as a video, plus audio
HEARS = ("qwen2_audio", *OMNI)


def raised_by_grammar(exc: BaseException) -> bool:
    """Whether a decode failure came from the schema constraint (xgrammar, or the Triton kernel it
    applies its mask with): only then is unconstrained decoding the way out for the whole process."""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename.replace("\\", "/")
        if "/xgrammar/" in name or "/triton/" in name:
            return True
        tb = tb.tb_next
    return False


def model_class(model_type: str):
    import transformers as tf

    classes = {
        "qwen2_5_vl": tf.Qwen2_5_VLForConditionalGeneration,
        "qwen2_vl": tf.Qwen2VLForConditionalGeneration,
        "qwen2_audio": tf.Qwen2AudioForConditionalGeneration,
        # annotation needs text out only: a full Omni checkpoint loads just its thinker
        "qwen2_5_omni": tf.Qwen2_5OmniThinkerForConditionalGeneration,
        "qwen2_5_omni_thinker": tf.Qwen2_5OmniThinkerForConditionalGeneration,
    }
    if model_type not in classes:
        raise ValueError(f"transformers backend supports {', '.join(classes)}; this checkpoint is {model_type!r}")
    return classes[model_type]


@dataclass
class Request:
    """One clip's conversation and the media its placeholders stand for, in placeholder order."""

    messages: list[dict]
    images: list = field(default_factory=list)
    videos: list = field(default_factory=list)  # each a list of frames
    audio: np.ndarray | None = None
    video_fps: list[float] = field(default_factory=list)  # each video's frames per second of the clip


# Qwen chat models end a turn with <|im_end|> and pad with <|endoftext|>; a thinker loaded on its own
# may carry no eos in its generation config, so these come from the tokenizer too
END_TOKENS = ("<|im_end|>", "<|endoftext|>")


def stop_token_ids(tokenizer, generation_config) -> list[int]:
    eos = generation_config.eos_token_id
    ids = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    vocab = tokenizer.get_vocab()
    ids += [vocab[t] for t in END_TOKENS if t in vocab]
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return list(dict.fromkeys(ids))


def pad_token_id(tokenizer, stop_ids: list[int]) -> int:
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    return tokenizer.get_vocab().get("<|endoftext|>", stop_ids[0])


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError)

# xgrammar 0.2.8 builds maxLength strings from [^"\\\r\n]: control characters pass (invalid JSON)
_BOUNDED_CHAR = r'[^\"\\\r\n]'
_JSON_CHAR = r'[^\0-\x1f\"\\]'


def json_grammar(schema: dict, tokenizer, vocab_size: int, stop_ids: list[int]):
    import xgrammar as xgr

    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_ids)
    # compact JSON: with free whitespace a weak model can pad forever between tokens
    ebnf = str(xgr.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False)).replace(_BOUNDED_CHAR, _JSON_CHAR)
    return xgr.GrammarCompiler(info).compile_grammar(xgr.Grammar.from_ebnf(ebnf))


@register
class TransformersMLLM(Annotator):
    backend = "transformers"

    def __init__(self, spec, context):
        super().__init__(spec, context)
        import torch
        from transformers import AutoConfig, AutoProcessor

        from pipeline.threads import use_torch_threads

        use_torch_threads(context.threads)  # in whichever process builds it: a Dask or GPU pool worker too

        if not spec.model:
            raise ValueError(f"annotator {spec.id!r}: backend transformers needs model (hub id or local directory)")
        self.torch = torch
        self.device = spec.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        cfg = AutoConfig.from_pretrained(spec.model)
        self.model_type = cfg.model_type
        self.processor = AutoProcessor.from_pretrained(spec.model)
        self.processor.tokenizer.padding_side = "left"  # batched generation continues every row at its end
        cap_pixels(self.processor, spec)
        extra = {"config": cfg.thinker_config} if cfg.model_type == "qwen2_5_omni" else {}  # talker weights stay on disk
        self.model = model_class(cfg.model_type).from_pretrained(spec.model, dtype=self.dtype, **extra).to(self.device).eval()
        self.model_id = spec.model
        self.model_version = getattr(cfg, "_commit_hash", None) or Path(spec.model).name
        self.schema = answer_schema(context.taxonomy)
        self.stop_ids = stop_token_ids(self.processor.tokenizer, self.model.generation_config)
        self.pad_id = pad_token_id(self.processor.tokenizer, self.stop_ids)
        self.sampling_rate = getattr(getattr(self.processor, "feature_extractor", None), "sampling_rate", None) \
            or context.audio_sample_rate  # what the audio encoder was trained on
        self.unconstrained_since: str | None = None  # why schema-constrained decoding was given up, once it failed
        self._grammars: dict = {}  # compiled per schema (answers; the LLM judge's marks)
        self.grammar = self._grammar() if spec.json_schema else None
        self._lock = threading.Lock()

    def _grammar(self, schema: dict | None = None):
        schema = schema or self.schema
        key = json.dumps(schema, sort_keys=True)
        if key in self._grammars:
            return self._grammars[key]
        try:
            grammar = json_grammar(schema, self.processor.tokenizer, self.model.get_output_embeddings().out_features, self.stop_ids)
        except Exception as exc:  # an unusual tokenizer xgrammar cannot map: answers are still parsed tolerantly
            log.warning("annotator %s: no schema-constrained decoding (%s: %s)", self.spec.id, type(exc).__name__, exc)
            grammar = None
        self._grammars[key] = grammar
        return grammar

    def chat(self, messages, schema=None, max_tokens=400):
        parts = [{"role": m["role"], "content": [{"type": "text", "text": m["content"]}] if isinstance(m["content"], str) else m["content"]}
                 for m in messages]
        grammar = self._grammar(schema) if schema and self.spec.json_schema else None
        return self.generate([Request(messages=parts)], grammar=grammar, max_tokens=max_tokens)[0]

    @property
    def prompt_hash(self) -> str:
        # answers decoded after the grammar failed say so in their provenance
        constrained = self.grammar is not None and not self.unconstrained_since
        return hashlib.sha256((SYSTEM + str(self.schema) + ("constrained" if constrained else "")).encode()).hexdigest()[:16]

    def token_budget(self) -> int:
        if self.spec.max_batch_tokens:
            return self.spec.max_batch_tokens
        if not self.device.startswith("cuda"):
            return 8192
        free, _ = self.torch.cuda.mem_get_info(self.torch.device(self.device))
        return memory_token_budget(free, self.model.config.get_text_config(), self.model.dtype.itemsize)

    def _frames(self, item: AnnotatorInput) -> list:
        from PIL import Image

        return [Image.open(Path(item.media_root) / kf.path).convert("RGB") for kf in spread_keyframes(item.clip, self.spec.max_images)]

    def _request(self, item: AnnotatorInput, audio: np.ndarray | None) -> Request:
        text = f"{SYSTEM}\n\n{serialise(item)}\n\n{item.clip.instruction.text}"
        req = Request(messages=[])
        content: list[dict] = []
        frames = self._frames(item) if item.media_root and (self.model_type in VISION or self.model_type in OMNI) else []
        # Omni sees a clip as a video; a single frame (a photo, a clip with one key frame) as an image
        as_video = self.model_type in OMNI and len(frames) > 1 and item.clip.duration > 0
        if frames and not as_video:
            req.images = frames
            content += [{"type": "image"}] * len(frames)
        if frames and as_video:
            req.videos = [frames]
            req.video_fps = [frames_per_second(item.clip, len(frames))]
            content.append({"type": "video"})
        if self.model_type in HEARS and audio is not None and audio.size:
            req.audio = audio
            # Qwen2-Audio's template looks for an "audio" key, Omni's for the type: this part has both
            content.append({"type": "audio", "audio": f"clip {item.clip.clip_id}"})
        content.append({"type": "text", "text": text})
        req.messages = [{"role": "user", "content": content}]
        return req

    def prompt(self, messages: list[dict]) -> str:
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _audio(self, batch: list[AnnotatorInput]) -> list[np.ndarray | None]:
        if self.model_type not in HEARS:
            return [None] * len(batch)
        return clip_audio(batch, self.sampling_rate)

    def inputs(self, chunk: list[Request], on_device: bool = True):
        """The processor's tensors for a batch of requests (on the model's device unless told not)."""
        kwargs = {"text": [self.prompt(r.messages) for r in chunk], "return_tensors": "pt", "padding": True}
        images = [im for r in chunk for im in r.images]
        if images:
            kwargs["images"] = images
        videos = [v for r in chunk for v in r.videos]
        if videos:
            kwargs["videos"] = videos
        audios = [r.audio for r in chunk if r.audio is not None]
        if audios:
            kwargs["audio"] = audios
            kwargs["sampling_rate"] = self.sampling_rate
        inputs = self.processor(**kwargs)
        if videos and "video_second_per_grid" in inputs:
            # the processor takes one fps for the whole batch (2 by default); each clip has its own
            patch = self.processor.video_processor.temporal_patch_size
            inputs["video_second_per_grid"] = self.torch.tensor([patch / fps for r in chunk for fps in r.video_fps])
        return inputs.to(self.device) if on_device else inputs

    def prompt_tokens(self, request: Request) -> int:
        """The request's length once the processor has expanded its image, video and audio placeholders
        (counted on the host: the pixel tensors need not travel to the GPU to be counted)."""
        return int(self.inputs([request], on_device=False)["input_ids"].shape[1])

    def _decode(self, inputs, grammar, max_tokens: int | None):
        from transformers import LogitsProcessorList

        processors = LogitsProcessorList()
        if grammar is not None:
            import xgrammar as xgr

            # one grammar matcher per row (it reads only each row's newest token, so left padding is
            # harmless); single use, so a fresh one for every generate call
            processors.append(xgr.contrib.hf.LogitsProcessor(grammar))
        # greedy label decoding: checkpoints ship repetition_penalty > 1, which punishes the JSON's own
        # repeated quotes and keys
        sampling = {"temperature": self.spec.temperature} if self.spec.temperature > 0 else {"repetition_penalty": 1.0}
        return self.model.generate(**inputs, max_new_tokens=max_tokens or self.spec.max_tokens, do_sample=self.spec.temperature > 0,
                                   logits_processor=processors, eos_token_id=self.stop_ids, pad_token_id=self.pad_id, **sampling)

    def generate(self, chunk: list[Request], grammar=..., max_tokens: int | None = None) -> list[str]:
        inputs = self.inputs(chunk)
        grammar = self.grammar if grammar is ... else grammar
        with self._lock, self.torch.inference_mode():
            if grammar is None or self.unconstrained_since:
                out = self._decode(inputs, None, max_tokens)
            else:
                try:
                    out = self._decode(inputs, grammar, max_tokens)
                except Exception as exc:
                    if is_out_of_memory(exc) or not raised_by_grammar(exc):
                        raise
                    # e.g. Triton cannot build the bitmask kernel: answers are still parsed and repaired
                    out = self._decode(inputs, None, max_tokens)
                    self.unconstrained_since = f"{type(exc).__name__}: {str(exc)[:300]}"
                    log.warning("annotator %s: schema-constrained decoding failed (%s); decoding unconstrained from now on",
                                self.spec.id, self.unconstrained_since)
        return self.processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    def _relieve(self) -> None:
        if self.device.startswith("cuda"):
            self.torch.cuda.empty_cache()

    def generate_all(self, requests: list[Request]):
        """Every request's answer, in batches that fit the token budget (halved on out of memory)."""
        answer = self.spec.max_tokens
        costs = [self.prompt_tokens(r) + answer for r in requests] if len(requests) > 1 else [answer] * len(requests)
        batches = token_batches(costs, self.token_budget(), self.spec.batch_size)
        return run_halving(batches, lambda idx: self.generate([requests[i] for i in idx]), is_out_of_memory, self._relieve)

    def annotate(self, batch, run_id):
        requests = [self._request(item, a) for item, a in zip(batch, self._audio(batch))]
        done = self.generate_all(requests)
        out = []
        for i, (item, req) in enumerate(zip(batch, requests)):
            if i in done.failed:
                out.append(Annotation(**self.base(item, run_id), label=None, status="rejected", error=done.failed[i]))
                continue
            first = [done.outputs[i]]

            def ask(messages: list[dict], req=req, first=first) -> str:
                # the first answer comes from the batched pass; only an unusable one is asked again, alone
                if first:
                    return first.pop()
                try:
                    return self.generate([replace(req, messages=messages)])[0]
                except Exception as exc:
                    if not is_out_of_memory(exc):
                        raise
                    self._relieve()  # the longer repair prompt did not fit: the first answer's rejection stands
                    return f"(the repair attempt ran out of GPU memory: {str(exc)[:200]})"

            parse = lambda raw, item=item: to_annotation(raw, clip_id=item.clip.clip_id, annotator_id=self.annotator_id,  # noqa: E731
                                                         verbalizer=self.verbalizer, provenance=self.provenance(run_id),
                                                         multi_label=self.context.multi_label)
            out.append(with_repair(ask, req.messages, parse))
        return out


def cap_pixels(processor, spec) -> None:
    """Resize images into [min_pixels, max_pixels] and video frames into [min_pixels, video_max_pixels]
    (Qwen's recommended range), whatever the checkpoint's processor config says."""
    image = getattr(processor, "image_processor", None)
    if image is not None and hasattr(image, "size"):
        image.size = {"shortest_edge": spec.min_pixels, "longest_edge": spec.max_pixels}
    video = getattr(processor, "video_processor", None)
    if video is not None and hasattr(video, "size"):
        video.size = {"shortest_edge": spec.min_pixels, "longest_edge": spec.video_max_pixels}
