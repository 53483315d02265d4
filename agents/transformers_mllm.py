"""Local multimodal LLM annotators through transformers: Qwen2.5-VL (key frames + evidence text) and
Qwen2-Audio (clip audio + evidence text), from a hub id or a local directory, bf16 on GPU, batched
generation with a batch size sized from free GPU memory. Answers go through the tolerant parser."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from agents.answer import to_annotation
from agents.base import Annotator, clip_audio, register
from agents.llm_text import SYSTEM, serialise
from schemas import AnnotatorInput


def model_class(model_type: str):
    import transformers as tf

    classes = {
        "qwen2_5_vl": tf.Qwen2_5_VLForConditionalGeneration,
        "qwen2_vl": tf.Qwen2VLForConditionalGeneration,
        "qwen2_audio": tf.Qwen2AudioForConditionalGeneration,
    }
    if model_type not in classes:
        raise ValueError(f"transformers backend supports {', '.join(classes)}; this checkpoint is {model_type!r}")
    return classes[model_type]


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
        self.model = model_class(cfg.model_type).from_pretrained(spec.model, dtype=self.dtype).to(self.device).eval()
        self.model_id = spec.model
        self.model_version = getattr(cfg, "_commit_hash", None) or Path(spec.model).name
        self._lock = threading.Lock()

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

    def _inputs(self, item: AnnotatorInput, audio: np.ndarray | None):
        text = f"{SYSTEM}\n\n{serialise(item)}\n\n{item.clip.instruction.text}"
        content: list[dict] = []
        images = []
        if self.model_type in ("qwen2_5_vl", "qwen2_vl") and item.media_root:
            from PIL import Image

            for kf in item.clip.keyframes[: self.spec.max_images]:
                images.append(Image.open(Path(item.media_root) / kf.path).convert("RGB"))
                content.append({"type": "image"})
        if self.model_type == "qwen2_audio" and audio is not None and audio.size:
            content.append({"type": "audio"})
        content.append({"type": "text", "text": text})
        prompt = self.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False)
        return prompt, images, audio if self.model_type == "qwen2_audio" else None

    def _audio(self, batch: list[AnnotatorInput]) -> list[np.ndarray | None]:
        if self.model_type != "qwen2_audio":
            return [None] * len(batch)
        return clip_audio(batch, self.config.sampling.audio_sample_rate)

    def generate(self, chunk: list[tuple[str, list, np.ndarray | None]]) -> list[str]:
        prompts = [c[0] for c in chunk]
        kwargs = {"text": prompts, "return_tensors": "pt", "padding": True}
        images = [im for c in chunk for im in c[1]]
        if images:
            kwargs["images"] = images
        audios = [c[2] for c in chunk if c[2] is not None]
        if audios:
            kwargs["audio"] = audios
            kwargs["sampling_rate"] = self.config.sampling.audio_sample_rate
        inputs = self.processor(**kwargs).to(self.device)
        with self._lock, self.torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.spec.max_tokens, do_sample=self.spec.temperature > 0,
                                      **({"temperature": self.spec.temperature} if self.spec.temperature > 0 else {}))
        return self.processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    def annotate(self, batch, run_id):
        prepared = [self._inputs(item, a) for item, a in zip(batch, self._audio(batch))]
        raws: list[str] = []
        size = self.batch_size()
        for i in range(0, len(prepared), size):
            raws.extend(self.generate(prepared[i : i + size]))
        return [to_annotation(raw, clip_id=item.clip.clip_id, annotator_id=self.annotator_id, verbalizer=self.verbalizer,
                              provenance=self.provenance(run_id), multi_label=self.config.multi_label)
                for item, raw in zip(batch, raws)]
