"""Keys earlier versions accepted but never acted on, read from old config files (a run's saved
config.yaml, a dump of `emoforge config`): dropped before validation. At their old default they
said nothing and go silently; set to anything else, the user expected an effect they never got,
so a warning names the key and what to use instead (README, "Retired keys")."""

from __future__ import annotations

import warnings
from typing import Any

from schemas.config_annotate import RULE_BACKENDS, GGUFSpec, OpenAISpec, PluginSpec, RuleAgentSpec, TransformersSpec


class ConfigDeprecationWarning(FutureWarning):  # FutureWarning: shown to users by default
    pass


# every key the single AnnotatorSpec of earlier versions had, with its default there
_OLD_SPEC_DEFAULTS: dict[str, Any] = {
    "model": None, "prompt_template": "emotion-cot", "prompt_version": "v1", "endpoint": None, "api_key_env": None,
    "concurrency": 4, "timeout_s": 60.0, "max_retries": 3, "rate_limit_rpm": None, "images": True, "audio": False,
    "json_schema": True, "max_tokens": 400, "temperature": 0.0, "max_images": 4, "device": None, "batch_size": None,
    "max_batch_tokens": None, "min_pixels": 256 * 28 * 28, "max_pixels": 1280 * 28 * 28, "video_max_pixels": 768 * 28 * 28,
}
_NEVER_READ = {
    "prompt_template": "the instruction every model answers is sampling.instruction (template, version)",
    "prompt_version": "the instruction every model answers is sampling.instruction (template, version)",
}


def _spec_keys(backend: Any) -> set[str] | None:
    if not isinstance(backend, str):
        return None
    model = (PluginSpec if ":" in backend else RuleAgentSpec if backend in RULE_BACKENDS else
             {"llm-gguf": GGUFSpec, "openai": OpenAISpec, "transformers": TransformersSpec}.get(backend))
    return set(model.model_fields) if model else None


def _warn(where: str, key: str, why: str) -> None:
    warnings.warn(f"{where}: {key} is retired and ignored: {why}", ConfigDeprecationWarning, stacklevel=4)


def _spec(spec: Any, key_path: str, where: str) -> None:
    if not isinstance(spec, dict):
        return
    accepted = _spec_keys(spec.get("backend"))
    for key in list(spec):
        if key in _NEVER_READ:
            value = spec.pop(key)
            if value != _OLD_SPEC_DEFAULTS[key]:
                _warn(where, f"{key_path}.{key}", f"it never changed a prompt; {_NEVER_READ[key]}")
        elif accepted is not None and key not in accepted and key in _OLD_SPEC_DEFAULTS and spec[key] == _OLD_SPEC_DEFAULTS[key]:
            del spec[key]  # another backend's setting at its old default: said nothing; any other value is an error


def drop_retired_keys(data: dict[str, Any], where: str) -> None:
    """Remove retired keys from a raw config mapping in place (warning where they were set)."""
    annotate = data.get("annotate")
    panel = annotate.get("panel") if isinstance(annotate, dict) else None
    for i, spec in enumerate(panel if isinstance(panel, list) else []):
        _spec(spec, f"annotate.panel.{i}", where)
    judge = data.get("judge")
    llm = judge.get("llm_judge") if isinstance(judge, dict) else None
    if isinstance(llm, dict):
        _spec(llm.get("annotator"), "judge.llm_judge.annotator", where)
    review = data.get("review")
    ls = review.get("label_studio") if isinstance(review, dict) else None
    if isinstance(ls, dict) and ls.pop("webhook_port", None) is not None:
        _warn(where, "review.label_studio.webhook_port",
              "nothing ever listened on it; answers are read from Label Studio's answer files (review.label_studio.answer_files)")
