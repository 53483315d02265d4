"""What a configuration names outside itself, checked when it is loaded, before any work: plugin
annotators import and are Annotators, the instruction template exists, the gold and speaker files read, the
LLM judge's backend can chat. The schema (schemas/config.py) cannot check these without importing
the stages; a failure here is one line naming the key, as a schema error is."""

from __future__ import annotations

from pathlib import Path

from schemas.config import AnnotatorSpec, ConfigError, EmoforgeConfig, load_config


def _spec_problem(spec: AnnotatorSpec) -> str | None:
    from agents.base import UnknownBackend, backend_class

    try:
        backend_class(spec)
    except UnknownBackend as exc:
        return str(exc).removeprefix(f"annotator {spec.id!r}: ")
    return None


def problems(config: EmoforgeConfig) -> list[str]:
    """Each problem as `key: what is wrong`; empty when the configuration can run."""
    found = []
    for i, spec in enumerate(config.annotate.panel):
        if ":" in spec.backend and (why := _spec_problem(spec)):
            found.append(f"annotate.panel.{i}.backend: {why}")
    llm = config.judge.llm_judge
    if llm is not None:
        why = _spec_problem(llm.annotator) if ":" in llm.annotator.backend else None
        if why is None:
            from agents.base import Annotator, backend_class

            if backend_class(llm.annotator).chat is Annotator.chat:
                why = f"backend {llm.annotator.backend!r} has no language model to judge with"
        if why:
            found.append(f"judge.llm_judge.annotator.backend: {why}")

    from pipeline.sampling.instructions import TEMPLATES, UnknownTemplate, template_text

    instruction = config.sampling.instruction
    try:
        template_text(instruction.template, instruction.version)
    except UnknownTemplate as exc:
        found.append(f"sampling.instruction: {exc.args[0]}")

    known = sorted(TEMPLATES)
    for template in config.judge.task_weights:
        if template not in TEMPLATES:
            found.append(f"judge.task_weights.{template}: no instruction template {template!r} (known: {', '.join(known)})")

    if config.judge.gold:
        from agents.judge.gold import GoldError, load_gold

        try:
            load_gold(config.judge.gold, config.taxonomy)
        except GoldError as exc:
            found.append(f"judge.gold: {exc}")

    if config.annotate.baseline.speakers:
        from agents.voice_baseline import SpeakerFileError, load_speakers

        try:
            load_speakers(config.annotate.baseline.speakers)
        except SpeakerFileError as exc:
            found.append(f"annotate.baseline.speakers: {exc}")
    return found


def check_config(config: EmoforgeConfig, where: str = "configuration") -> None:
    """Raise ConfigError (one line, every problem) when the configuration names something unusable."""
    found = problems(config)
    if found:
        raise ConfigError(f"{where}: invalid configuration: {'; '.join(found)}")


def load_checked_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> EmoforgeConfig:
    """load_config, then check_config: what `emoforge run` and `emoforge config` accept."""
    config = load_config(path, overrides)
    where = str(path) if path is not None else "defaults"
    check_config(config, f"{where} + overrides" if overrides else where)
    return config
