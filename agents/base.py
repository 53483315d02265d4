"""The one narrow interface every annotator implements, and the registry a config names them from."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from agents.verbalizer import Verbalizer
from schemas import Annotation, AnnotatorInput, EmoforgeConfig, Provenance
from schemas.config import AnnotatorContext, AnnotatorSpec


class Annotator(ABC):
    backend: ClassVar[str]
    # True for annotators that read `AnnotatorInput.baseline` (a run-level statistic): only their
    # cached answers depend on the rest of the run
    reads_baseline: ClassVar[bool] = False
    # True for annotators that read `AnnotatorInput.learned_voice` (fitted on the run's labelled clips)
    reads_learned_voice: ClassVar[bool] = False
    # True for annotators whose distribution is a calibrated estimate of P(truth | what they read)
    # under equal class rates (a model fitted with balanced class weights and checked out of fold on
    # the run's labelled clips): the judge multiplies it into the consensus as a likelihood instead
    # of learning a confusion matrix for it
    calibrated: ClassVar[bool] = False
    # backends whose whole input this annotator reads and learns from: on a clip it answers, their
    # answers are still scored but do not vote again (the consensus takes votes as independent
    # given the truth, and these would count the same measurements twice)
    subsumes: ClassVar[frozenset[str]] = frozenset()
    model_id: str = ""
    model_version: str = ""

    def __init__(self, spec: AnnotatorSpec, context: AnnotatorContext):
        # its own settings and the few run-wide facts it reads, not the whole configuration: what
        # an annotator can read is what its cache key hashes (annotator_hash)
        self.spec = spec
        self.context = context
        self.verbalizer = Verbalizer(context.taxonomy, open_vocabulary=context.open_vocabulary)

    @property
    def annotator_id(self) -> str:
        return self.spec.id

    @property
    def prompt_hash(self) -> str | None:
        return None  # annotators without a prompt (rule agents) have none

    def provenance(self, run_id: str) -> Provenance:
        return Provenance(stage="annotate", stage_config_hash=spec_hash(self.spec, self.context), run_id=run_id,
                          model_id=self.model_id or self.backend, model_version=self.model_version or None, prompt_hash=self.prompt_hash)

    def base(self, item: AnnotatorInput, run_id: str) -> dict:
        return dict(annotation_id=f"{self.annotator_id}:{item.clip.clip_id}", clip_id=item.clip.clip_id,
                    annotator_id=self.annotator_id, provenance=self.provenance(run_id))

    def abstain(self, item: AnnotatorInput, run_id: str, why: str) -> Annotation:
        return Annotation(**self.base(item, run_id), label=None, status="abstained", error=why)

    @abstractmethod
    def annotate(self, batch: list[AnnotatorInput], run_id: str) -> list[Annotation]:
        """One annotation per input, in order; never raises for a bad clip (rejects or abstains)."""

    def chat(self, messages: list[dict], schema: dict | None = None, max_tokens: int = 400) -> str:
        """A plain chat completion (the LLM judge talks to models through this); JSON-schema
        constrained where the backend can. Backends without a language model cannot chat."""
        raise NotImplementedError(f"backend {self.backend!r} has no language model to chat with")


class PerClipAnnotator(Annotator):
    """An annotator that looks at one clip at a time."""

    def annotate(self, batch: list[AnnotatorInput], run_id: str) -> list[Annotation]:
        return [self.annotate_one(item, run_id) for item in batch]

    @abstractmethod
    def annotate_one(self, item: AnnotatorInput, run_id: str) -> Annotation: ...


def clip_audio(batch: list[AnnotatorInput], sample_rate: int):
    """Each clip's audio span (None without audio), decoding each source once for the batch."""
    from pathlib import Path

    from pipeline.sampling.decode import decode_once

    cache: dict = {}
    out = []
    for item in batch:
        src = item.clip.source_path
        if src not in cache:
            cache[src] = decode_once(Path(src), [], sample_rate=sample_rate, want_video=False).audio
        a = cache[src]
        out.append(None if a is None else a[int(item.clip.start * sample_rate):int(item.clip.end * sample_rate)])
    return out


REGISTRY: dict[str, type[Annotator]] = {}


def register(cls: type[Annotator]) -> type[Annotator]:
    REGISTRY[cls.backend] = cls
    return cls


class UnknownBackend(ValueError):
    pass


def spec_hash(spec: AnnotatorSpec, context: AnnotatorContext) -> str:
    """Hash of everything one annotator's answers depend on: its own spec and the run-wide facts it
    reads. Adding or changing another annotator leaves it alone (so its cached answers stay valid)."""
    from schemas.provenance import stable_hash

    return stable_hash({"spec": spec, "context": context})


def annotator_hash(spec: AnnotatorSpec, config: EmoforgeConfig) -> str:
    return spec_hash(spec, config.annotator_context())


def shared_annotator(spec: AnnotatorSpec, config: EmoforgeConfig) -> Annotator:
    """One annotator built once per process (LLM servers and model weights load once)."""
    from pipeline.models import shared

    return shared("annotator", annotator_hash(spec, config), lambda: build_one(spec, config))


def shared_panel(config: EmoforgeConfig) -> list[Annotator]:
    return [shared_annotator(spec, config) for spec in config.annotate.panel]


def register_backends() -> None:
    import agents.feature_agents  # noqa: F401  (registers the offline agents)
    import agents.learned_voice  # noqa: F401
    import agents.llm_text  # noqa: F401
    import agents.openai_http  # noqa: F401
    import agents.prosody_agent  # noqa: F401
    import agents.punctuation  # noqa: F401
    import agents.transformers_mllm  # noqa: F401  (registers the model-backed agents too)


def plugin_class(spec: AnnotatorSpec) -> type[Annotator]:
    """A backend named `package.module:Class`: an Annotator subclass outside emoforge, imported by
    path, so a lab's own agent joins the panel without editing the registry (it must be importable
    wherever stage 3 runs: Dask workers and GPU pool workers too)."""
    import importlib

    module_name, _, attr = spec.backend.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # ImportError, a missing attribute, or whatever the module raised on import
        raise UnknownBackend(f"annotator {spec.id!r}: cannot import backend {spec.backend!r}: {type(exc).__name__}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Annotator)):
        raise UnknownBackend(f"annotator {spec.id!r}: backend {spec.backend!r} is not an agents.Annotator subclass")
    return cls


def backend_class(spec: AnnotatorSpec) -> type[Annotator]:
    if ":" in spec.backend:
        return plugin_class(spec)
    register_backends()
    if spec.backend not in REGISTRY:
        raise UnknownBackend(f"annotator {spec.id!r}: unknown backend {spec.backend!r} (known: {', '.join(sorted(REGISTRY))}; "
                             "or a plugin as package.module:Class)")
    return REGISTRY[spec.backend]


def build_one(spec: AnnotatorSpec, config: EmoforgeConfig) -> Annotator:
    return backend_class(spec)(spec, config.annotator_context())


def build_panel(config: EmoforgeConfig) -> list[Annotator]:
    return [build_one(spec, config) for spec in config.annotate.panel]
