"""Local multimodal LLM annotators through transformers: Qwen2.5-VL / Qwen2-VL (key frames + evidence
text), Qwen2-Audio (clip audio + evidence text) and Qwen2.5-Omni (key frames as a short video + clip
audio + evidence text), from a hub id or a local directory, bf16 on GPU, batched generation with a
batch size sized from free GPU memory. Decoding is constrained to the answer JSON schema (xgrammar);
an answer that still cannot be used is asked again once, then rejected with its raw text kept."""

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
from agents.llm_text import SYSTEM, answer_schema, serialise
from schemas import AnnotatorInput

log = logging.getLogger(__name__)

VISION = ("qwen2_5_vl", "qwen2_vl")  # key frames as images
OMNI = ("qwen2_5_omni", "qwen2_5_omni_thinker")  # key frames as a video, plus audio
HEARS = ("qwen2_audio", *OMNI)


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

    def __init__(self, spec, config):
        super().__init__(spec, config)
        import torch
        from transformers import AutoConfig, AutoProcessor

        if not spec.model:
            raise ValueError(f"annotator {spec.id!r}: backend transformers needs model (hub id or local directory)")
        self.torch = torch
        self.device = spec.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        cfg = AutoConfig.from_pretrained(spec.model)
        self.model_type = cfg.model_type
        self.processor = AutoProcessor.from_pretrained(spec.model)
        self.processor.tokenizer.padding_side = "left"  # batched generation continues every row at its end
        extra = {"config": cfg.thinker_config} if cfg.model_type == "qwen2_5_omni" else {}  # talker weights stay on disk
        self.model = model_class(cfg.model_type).from_pretrained(spec.model, dtype=self.dtype, **extra).to(self.device).eval()
        self.model_id = spec.model
        self.model_version = getattr(cfg, "_commit_hash", None) or Path(spec.model).name
        self.schema = answer_schema(config.taxonomy)
        self._grammars: dict = {}  # compiled per schema (answers; the LLM judge's marks)
        self.grammar = self._grammar() if spec.json_schema else None
        self._lock = threading.Lock()

    def _grammar(self, schema: dict | None = None):
        schema = schema or self.schema
        key = json.dumps(schema, sort_keys=True)
        if key in self._grammars:
            return self._grammars[key]
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.processor.tokenizer.eos_token_id
        stop = [eos] if isinstance(eos, int) else list(eos)
        try:
            grammar = json_grammar(schema, self.processor.tokenizer, self.model.get_output_embeddings().out_features, stop)
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
        return hashlib.sha256((SYSTEM + str(self.schema) + ("constrained" if self.grammar else "")).encode()).hexdigest()[:16]

    def batch_size(self) -> int:
        if self.spec.batch_size:
            return self.spec.batch_size
        if not self.device.startswith("cuda"):
            return 4
        free, _ = self.torch.cuda.mem_get_info()
        params = sum(p.numel() * p.element_size() for p in self.model.parameters())
        # activations and KV cache per sample ~ 2% of the weights for these prompt sizes, floor 256 MB
        per_sample = max(256 << 20, params // 50)
        return int(max(1, min(32, (free * 0.8) // per_sample)))

    def _frames(self, item: AnnotatorInput) -> list:
        from PIL import Image

        kfs = sorted(item.clip.keyframes, key=lambda k: k.time)
        if self.model_type in OMNI and len(kfs) > self.spec.max_images:  # a video should span the clip: spread the picks
            kfs = [kfs[int(i)] for i in np.linspace(0, len(kfs) - 1, self.spec.max_images).round()]
        return [Image.open(Path(item.media_root) / kf.path).convert("RGB") for kf in kfs[: self.spec.max_images]]

    def _request(self, item: AnnotatorInput, audio: np.ndarray | None) -> Request:
        text = f"{SYSTEM}\n\n{serialise(item)}\n\n{item.clip.instruction.text}"
        req = Request(messages=[])
        content: list[dict] = []
        frames = self._frames(item) if item.media_root and (self.model_type in VISION or self.model_type in OMNI) else []
        if frames and self.model_type in VISION:
            req.images = frames
            content += [{"type": "image"}] * len(frames)
        if frames and self.model_type in OMNI:
            req.videos = [frames]
            content.append({"type": "video"})
        if self.model_type in HEARS and audio is not None and audio.size:
            req.audio = audio
            content.append({"type": "audio"})
        content.append({"type": "text", "text": text})
        req.messages = [{"role": "user", "content": content}]
        return req

    def prompt(self, messages: list[dict]) -> str:
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _audio(self, batch: list[AnnotatorInput]) -> list[np.ndarray | None]:
        if self.model_type not in HEARS:
            return [None] * len(batch)
        return clip_audio(batch, self.config.sampling.audio_sample_rate)

    def generate(self, chunk: list[Request], grammar=..., max_tokens: int | None = None) -> list[str]:
        from transformers import LogitsProcessorList

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
            kwargs["sampling_rate"] = self.config.sampling.audio_sample_rate
        inputs = self.processor(**kwargs).to(self.device)
        with self._lock, self.torch.inference_mode():
            processors = LogitsProcessorList()
            grammar = self.grammar if grammar is ... else grammar
            if grammar is not None:
                import xgrammar as xgr

                # one grammar matcher per row (it reads only each row's newest token, so left padding is
                # harmless); single use, so a fresh one for every generate call
                processors.append(xgr.contrib.hf.LogitsProcessor(grammar))
            out = self.model.generate(**inputs, max_new_tokens=max_tokens or self.spec.max_tokens, do_sample=self.spec.temperature > 0,
                                      logits_processor=processors,
                                      **({"temperature": self.spec.temperature} if self.spec.temperature > 0 else {}))
        return self.processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    def annotate(self, batch, run_id):
        requests = [self._request(item, a) for item, a in zip(batch, self._audio(batch))]
        raws: list[str] = []
        size = self.batch_size()
        for i in range(0, len(requests), size):
            raws.extend(self.generate(requests[i : i + size]))
        out = []
        for item, req, raw in zip(batch, requests, raws):
            first = [raw]

            def ask(messages: list[dict], req=req, first=first) -> str:
                # the first answer comes from the batched pass; only an unusable one is asked again, alone
                return first.pop() if first else self.generate([replace(req, messages=messages)])[0]

            parse = lambda raw, item=item: to_annotation(raw, clip_id=item.clip.clip_id, annotator_id=self.annotator_id,  # noqa: E731
                                                         verbalizer=self.verbalizer, provenance=self.provenance(run_id),
                                                         multi_label=self.config.multi_label)
            out.append(with_repair(ask, req.messages, parse))
        return out
