"""Stage 3's settings: the panel of annotators, one settings model per backend (a union on
`backend`, so each backend accepts only its own keys), and the few run-wide facts an annotator
reads (`AnnotatorContext`) instead of the whole configuration."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from schemas.config_base import Strict

# the offline agents (agents/feature_agents.py, agents/prosody_agent.py, agents/punctuation.py, agents/learned_voice.py): no settings beyond id and backend
RULE_BACKENDS = ("face-expression", "facs-rules", "lexical", "prosody", "voice-quality", "punctuation", "face-dynamics",
                 "voice-learned")
MODEL_BACKENDS = ("llm-gguf", "openai", "transformers")
PLUGIN_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"


class RuleAgentSpec(Strict):
    id: str  # stable name in tables and provenance, e.g. "facs-rules"
    backend: Literal[RULE_BACKENDS]  # type: ignore[valid-type]

    @property
    def model(self) -> None:
        return None  # rule agents have no model (read by the dataset card)


class GGUFSpec(Strict):
    """A text LLM run by llama.cpp in this process (agents/llm_text.py)."""

    id: str
    backend: Literal["llm-gguf"]
    model: str | None = None  # a .gguf file; None: the packaged SmolLM2-135M ("packaged:smollm2-135m")


class _ChatSpec(Strict):
    id: str
    max_tokens: int = Field(400, ge=16)
    temperature: float = Field(0.0, ge=0)
    json_schema: bool = True  # ask for schema-constrained JSON
    max_images: int = Field(4, ge=0)  # key frames per clip, spread over the clip (both backends send the same ones)


class OpenAISpec(_ChatSpec):
    """An OpenAI-compatible HTTP endpoint (vLLM, SGLang, hosted gateways; agents/openai_http.py)."""

    backend: Literal["openai"]
    endpoint: str  # base URL, e.g. http://gpu-box:8000/v1
    model: str | None = None  # the endpoint's model name; None: its default
    api_key_env: str | None = None  # name of the environment variable holding the key
    concurrency: int = Field(4, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0)
    rate_limit_rpm: float | None = Field(None, gt=0)
    images: bool = True  # send key frames as image parts
    audio: bool = False  # send the clip's audio as an input_audio part


class TransformersSpec(_ChatSpec):
    """A local transformers model (Qwen2.5-VL, Qwen2-Audio, Qwen2.5-Omni; agents/transformers_mllm.py)."""

    backend: Literal["transformers"]
    model: str  # hub id or local directory
    device: str | None = None  # None: cuda when available, else cpu
    batch_size: int | None = Field(None, ge=1)  # most clips in one batch; None: as many as max_batch_tokens allows
    # prompt + answer tokens in one batch, counted with left padding (rows x longest row); None: from
    # free GPU memory and the model's shape (8192 on CPU). A batch that still runs out of memory is halved.
    max_batch_tokens: int | None = Field(None, ge=256)
    # every image is resized into [min_pixels, max_pixels] (Qwen's processor settings; a visual token is 28x28
    # pixels), each frame of Omni's video into [min_pixels, video_max_pixels]
    min_pixels: int = Field(256 * 28 * 28, ge=28 * 28)
    max_pixels: int = Field(1280 * 28 * 28, ge=28 * 28)
    video_max_pixels: int = Field(768 * 28 * 28, ge=28 * 28)

    @model_validator(mode="after")
    def _pixel_range(self) -> TransformersSpec:
        for name in ("max_pixels", "video_max_pixels"):
            if getattr(self, name) < self.min_pixels:
                raise ValueError(f"annotator {self.id!r}: {name} ({getattr(self, name)}) is below min_pixels ({self.min_pixels})")
        return self


class PluginSpec(Strict):
    """An Annotator subclass outside emoforge, named `package.module:Class` (agents/base.py plugin_class);
    whether it imports is checked when a run's configuration is loaded (flows/config_check.py)."""

    id: str
    backend: str = Field(pattern=PLUGIN_PATTERN)
    model: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)  # the plugin's own settings, as it documents them (part of its cache key)


def _backend_tag(value: Any) -> str | None:
    backend = value.get("backend") if isinstance(value, dict) else getattr(value, "backend", None)
    if isinstance(backend, str) and ":" in backend:
        return "plugin"
    return backend


AnnotatorSpec = Annotated[
    Union[tuple(Annotated[RuleAgentSpec, Tag(name)] for name in RULE_BACKENDS)  # type: ignore[misc]  # noqa: UP007
          + (Annotated[GGUFSpec, Tag("llm-gguf")], Annotated[OpenAISpec, Tag("openai")],
             Annotated[TransformersSpec, Tag("transformers")], Annotated[PluginSpec, Tag("plugin")])],
    Discriminator(_backend_tag),
]
KNOWN_BACKENDS = RULE_BACKENDS + MODEL_BACKENDS


def _default_panel() -> list[RuleAgentSpec]:
    return [
        RuleAgentSpec(id="face-expression", backend="face-expression"),
        RuleAgentSpec(id="facs-rules", backend="facs-rules"),
        RuleAgentSpec(id="lexical", backend="lexical"),
        RuleAgentSpec(id="prosody", backend="prosody"),
        # a third view on audio-only clips, from cues the prosody agent does not read
        RuleAgentSpec(id="voice-quality", backend="voice-quality"),
        # and one more on any clip with speech, in any language: the recogniser's own reading of the
        # delivery, from the sentence-final marks it wrote (an exclamation for a raised voice)
        RuleAgentSpec(id="punctuation", backend="punctuation"),
        # a third view on silent video: the expression's change from calm to apex frames
        RuleAgentSpec(id="face-dynamics", backend="face-dynamics"),
        # the run's own voice model, fitted on its labelled clips (judge.gold, review verdicts);
        # abstains, saying why, in a run without enough of them
        RuleAgentSpec(id="voice-learned", backend="voice-learned"),
        # a text LLM joins with {id: ..., backend: llm-gguf, model: PATH.gguf}; the packaged
        # SmolLM2-135M ("packaged:smollm2-135m") runs but answers the same label for every clip
    ]


class VoiceBaselineConfig(Strict):
    """When a speaker's own clips in a source are enough to know their normal voice; below this the
    vocal agents compare with the whole run (agents/voice_baseline.py)."""

    min_clips: int = Field(5, ge=3)
    min_speech_s: float = Field(20.0, ge=0)  # a speaker found in a source; a declared speaker needs declared_min_clips only
    # a declared speaker (the speakers file) is known to be one person: from this many clips their own
    # voice is a nearer reference than a run of other people's, whose voices differ more from each
    # other than one voice does across emotions; 3 is the fewest a spread is read from
    declared_min_clips: int = Field(3, ge=3)
    # centre: the median of the calmest `calm_share` of the clips, at least three (the speaker's
    # neutral voice), or the median of all of them. 0.3, as for the face's own neutral
    # (faces.neutral_calm_share): in a corpus a third neutral the calmer half reaches into the
    # aroused clips, and against it angry words read as the speaker's normal voice (docs/label-quality.md)
    reference: Literal["calm", "median"] = "calm"
    calm_share: float = Field(0.3, gt=0, le=1)
    # CSV with columns file,speaker: the files of one speaker share one baseline across sources, as
    # speech-emotion work normalises per speaker. Corpora of one utterance per file (EmoDB, RAVDESS)
    # name their speakers; without this only a long source knows its speaker's normal voice.
    # `file` matches a source by its path or the end of it (a file name, or folder/name).
    speakers: str | None = None
    # a speaker's clips that say the same words (acted corpora: one sentence in every emotion) get a
    # baseline of their own when they reach min_clips: the words' own length, stress and sounds
    # then drop out of the comparison, and only how they were said is left
    same_words: bool = True


class LearnedVoiceConfig(Strict):
    """The voice model a run fits on its own labelled clips (agents/learned_voice.py): multinomial
    logistic regression on the eGeMAPS functionals and the ASR encoder means, z-scored within each
    voice group."""

    min_labelled: int = Field(20, ge=4)  # labelled clips with voiced speech before it fits anything
    c: float = Field(0.01, gt=0)  # inverse L2 strength: ~600 columns, often few labelled clips
    folds: int = Field(5, ge=2)  # out-of-fold answers for the labelled clips, and its accuracy
    # while the run has no voice model: how many voiced clips to ask a person to label first, chosen to
    # cover the run's voices (agents/teach_set.py); 0: none
    teach: int = Field(30, ge=0)


class AnnotateConfig(Strict):
    panel: list[AnnotatorSpec] = Field(default_factory=_default_panel, min_length=1)
    open_vocabulary: bool = False
    baseline: VoiceBaselineConfig = VoiceBaselineConfig()
    learned_voice: LearnedVoiceConfig = LearnedVoiceConfig()

    @model_validator(mode="after")
    def _unique_ids(self) -> AnnotateConfig:
        ids = [a.id for a in self.panel]
        if len(set(ids)) != len(ids):
            raise ValueError(f"annotator ids must be unique, got {ids}")
        return self


class AnnotatorContext(BaseModel):
    """What an annotator reads besides its own spec: the label set and how answers are shaped, the
    audio rate clips are decoded at, and the torch/llama.cpp thread count (results can depend on it)."""

    model_config = ConfigDict(frozen=True)

    taxonomy: list[str]
    multi_label: bool
    open_vocabulary: bool
    audio_sample_rate: int
    threads: int | None  # runtime.torch_threads
