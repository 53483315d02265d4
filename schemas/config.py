"""The one place for configuration. Defaults are the offline default; a YAML file and `key=value`
overrides change them, and everything is validated before any work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, NonNegativeFloat, ValidationError, field_validator, model_validator

from schemas.config_annotate import (  # noqa: F401  (re-exported: `from schemas.config import X` keeps working)
    KNOWN_BACKENDS, AnnotateConfig, AnnotatorContext, AnnotatorSpec, GGUFSpec, OpenAISpec, PluginSpec, RuleAgentSpec,
    LearnedVoiceConfig, TransformersSpec, VoiceBaselineConfig)
from schemas.config_base import ConfigError
from schemas.config_base import Strict as _Strict
from schemas.config_legacy import drop_retired_keys
from schemas.judgement import Flag, JudgeWeights
from schemas.provenance import stable_hash

DEFAULT_TAXONOMY = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "contempt", "neutral"]


class VADConfig(_Strict):
    backend: Literal["silero", "silero-jit", "pyannote"] = "silero"
    threshold: float = Field(0.5, gt=0, lt=1)
    min_speech_s: float = Field(0.25, ge=0)
    min_silence_s: float = Field(0.1, ge=0)
    speech_pad_s: float = Field(0.03, ge=0)


class ShotConfig(_Strict):
    detector: Literal["content", "adaptive", "hash", "histogram", "threshold"] = "content"
    threshold: float | None = None  # None: the detector's own default
    min_shot_s: float = Field(0.6, ge=0)


class KeyframeConfig(_Strict):
    method: Literal["frame_diff", "optical_flow", "orb"] = "frame_diff"
    analysis_width: int = Field(160, ge=32, le=1920)  # frames are analysed at this width; written at full size
    change_threshold: float | None = Field(None, gt=0)  # method-specific; None: the method's default
    max_interval_s: float = Field(2.0, gt=0)  # a candidate at least this often, so every clip has frames
    max_per_clip: int = Field(6, ge=1)
    dedup_threshold: float = Field(0.04, ge=0)  # mean abs difference (0..1) below which two frames are the same
    max_width: int | None = Field(None, ge=32)  # downscale written key frames; None keeps the source size
    jpeg_quality: int = Field(90, ge=10, le=100)


class ClipRules(_Strict):
    min_clip_s: float = Field(1.0, gt=0)
    max_clip_s: float = Field(15.0, gt=0)
    merge_gap_s: float = Field(0.8, ge=0)  # speech regions closer than this join, unless a cut lies between
    context_pad_s: float = Field(0.2, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> "ClipRules":
        if self.min_clip_s > self.max_clip_s:
            raise ValueError(f"min_clip_s ({self.min_clip_s}) exceeds max_clip_s ({self.max_clip_s})")
        return self


class InstructionConfig(_Strict):
    template: str = "emotion-cot"
    version: str = "v2"


class SamplingConfig(_Strict):
    audio_sample_rate: int = 16000
    vad: VADConfig = VADConfig()
    shots: ShotConfig = ShotConfig()
    keyframes: KeyframeConfig = KeyframeConfig()
    clips: ClipRules = ClipRules()
    instruction: InstructionConfig = InstructionConfig()


class ASRConfig(_Strict):
    backend: Literal["faster-whisper", "whisperx"] = "faster-whisper"
    # "packaged:whisper-base" = whisper base from PyPI packages (offline default); else a local
    # CTranslate2 directory or a hub id such as "large-v3" (the GPU configuration)
    model: str = "packaged:whisper-base"
    align_model: str | None = None  # local wav2vec2 directory for whisperx forced alignment
    device: str = "cpu"
    compute_type: str = "int8"
    language: str | None = None  # None: detect (once per source)
    # speech clips of a source are transcribed together in windows of up to this many seconds of the
    # source (whisper's own window is 30 s); 0: each clip alone
    window_s: float = Field(30.0, ge=0, le=30)
    # with `language` set, short sources (a corpus of 2 s files) share windows too (asr_packing.py)
    pack_sources: bool = True
    beam_size: int = Field(5, ge=1)
    # whisper's decoding temperatures, tried in turn while a window's decode looks unsure. Only 0 is
    # repeatable: from 0.2 up whisper samples, so a rerun of the same file gives other words
    # (whisper's own default, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], trades that for breaking the beam's
    # repetition loops on unsure windows)
    temperatures: list[NonNegativeFloat] = Field(default_factory=lambda: [0.0], min_length=1)
    batch_size: int = Field(8, ge=1)
    # CTranslate2 threads per model; None: one per core (set explicitly, never taken from OMP_NUM_THREADS)
    cpu_threads: int | None = Field(None, ge=1)
    denoise: bool = False  # spectral-gate clean-up before ASR


class DiarizationConfig(_Strict):
    # a local pyannote pipeline config.yaml whose checkpoints are local paths (pyannote's offline
    # recipe); None: the offline diarizer (segmentation-3.0 + d-vectors + clustering, registry weights)
    pipeline: str | None = None
    device: str = "cpu"  # the pyannote pipeline's
    # the number of speakers per source when known (1 skips diarization: every word is SPEAKER_00),
    # else bounds on the estimated number
    num_speakers: int | None = Field(None, ge=1)
    min_speakers: int | None = Field(None, ge=1)
    max_speakers: int | None = Field(None, ge=1)
    # offline diarizer: segmentation windows (10 s) start every step_s seconds
    step_s: float = Field(2.5, ge=1.0, le=10.0)
    # offline diarizer: a source is one speaker when even its two most distant clusters of turns
    # are closer than this (cosine distance, average linkage); else the number of speakers is the
    # one whose clustering has the best silhouette
    threshold: float = Field(0.7, gt=0, lt=2)
    min_turn_s: float = Field(0.1, ge=0)  # shorter speech of a speaker in a window is ignored
    min_embedding_s: float = Field(0.5, ge=0)  # less speech alone gives a d-vector too noisy to shape clusters

    @model_validator(mode="after")
    def _bounds(self):
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise ValueError(f"min_speakers {self.min_speakers} > max_speakers {self.max_speakers}")
        if self.num_speakers and (self.min_speakers or self.max_speakers):
            raise ValueError("give num_speakers or min_speakers/max_speakers, not both")
        return self


class ProsodyConfig(_Strict):
    pitch_floor_hz: float = Field(75.0, gt=0)
    pitch_ceiling_hz: float = Field(600.0, gt=0)
    window_s: float = Field(0.5, gt=0)  # windows when a clip has no words
    min_pause_s: float = Field(0.2, ge=0)
    egemaps: bool = True


class FaceConfig(_Strict):
    backend: Literal["offline", "py-feat"] = "offline"
    sample_fps: float = Field(2.0, gt=0)  # frames analysed per second, besides the key frames
    max_frames_per_clip: int = Field(24, ge=1)
    # a short clip gets at least this many (denser than sample_fps): the expression model's reading of
    # one frame is noisy, the person's own neutral needs `neutral_min_frames` of them, and the change
    # from calm to apex needs a calm quarter besides the apex
    min_frames_per_clip: int = Field(12, ge=1)
    detect_width: int = Field(640, ge=64)  # frames are searched for faces at this width
    min_face_px: int = Field(40, ge=8)
    # a frame whose shorter side is below this is enlarged to it (Lanczos) before faces are sought:
    # small photos and face crops (48 px FER-style images) are too small for the detector as they are
    upscale_below_px: int = Field(256, ge=0)
    feat_model_dir: str | None = None  # py-feat weights directory (backend py-feat)
    # AUs of the main face against the person's own neutral: the median of their least expressive
    # `neutral_calm_share` of frames in the source, when it has `neutral_min_frames` main-face frames
    neutral_calm_share: float = Field(0.3, gt=0, le=1)
    neutral_min_frames: int = Field(8, ge=3)
    # ... seen over at least this many seconds: a shorter source holds one expression throughout
    neutral_min_span_s: float = Field(4.0, ge=0)

    @model_validator(mode="after")
    def _frame_bounds(self) -> "FaceConfig":
        if self.min_frames_per_clip > self.max_frames_per_clip:
            raise ValueError(f"min_frames_per_clip ({self.min_frames_per_clip}) exceeds max_frames_per_clip ({self.max_frames_per_clip})")
        return self


class PreprocessConfig(_Strict):
    asr: ASRConfig = ASRConfig()
    diarization: DiarizationConfig = DiarizationConfig()
    prosody: ProsodyConfig = ProsodyConfig()
    faces: FaceConfig = FaceConfig()


class LLMJudgeConfig(_Strict):
    """An optional LLM judge (MME-Emotion style: 0/1 per rationale step with the clip's cues in view)
    run through any annotator backend that can chat (llm-gguf, openai, transformers)."""

    annotator: AnnotatorSpec  # which model; its id and version are pinned in each judgement's provenance
    weight: float = Field(0.5, ge=0, le=1)  # share of S_rec and S_reason that comes from the LLM's step scores


class ReviewThreshold(_Strict):
    # target: flag the fewest clips such that the accepted ones' calibrated confidence averages at
    # least `target_accuracy`; fixed: flag clips whose review score is below `value`; budget: flag the
    # worst `budget` share; calibrated: the lowest threshold at which the accepted gold clips reach
    # `target_accuracy`
    mode: Literal["target", "fixed", "budget", "calibrated"] = "target"
    value: float = Field(0.5, ge=0, le=1)
    budget: float = Field(0.1, ge=0, le=1)
    target_accuracy: float = Field(0.9, gt=0, le=1)


class ReliabilityConfig(_Strict):
    """The Dawid-Skene fit behind the `reliability` aggregation (agents/judge/reliability.py)."""

    @field_validator("annotator_priors")
    @classmethod
    def _probabilities(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: x for k, x in v.items() if not 0 < x < 1}
        if bad:
            raise ValueError(f"annotator prior accuracies must lie strictly between 0 and 1: {bad}")
        return v

    prior_strength: float = Field(2.0, ge=0)  # pseudo-answers per confusion-matrix row
    prior_accuracy: float = Field(0.6, gt=0, lt=1)  # share of them on the diagonal, for an annotator not listed below
    # what is known of an annotator before the run: its accuracy measured on labelled media (the
    # label-quality benchmark), by annotator id. A small run leans on it; a large one learns past it
    annotator_priors: dict[str, float] = {"face-expression": 0.7, "facs-rules": 0.4, "lexical": 0.35, "prosody": 0.45,
                                          "voice-quality": 0.3, "punctuation": 0.4}
    # pseudo-answers per row for an annotator listed there: a measured accuracy is worth more than the
    # guess `prior_strength` makes for one that is not (a plugin must still earn or lose its weight in
    # the run, so that one stays weak)
    measured_prior_strength: float = Field(8.0, ge=0)
    # the class prior is held toward uniform by this many run-lengths of pseudo-clips: without it an
    # annotator that gives one label to everything explains the run as all that label
    class_prior_weight: float = Field(1.0, ge=0)
    # the run's unlabelled clips teach the confusion matrices as much as this many labelled clips at
    # most (agents/judge/reliability.py says why); null: no cap
    blind_evidence: float | None = Field(25.0, ge=0)
    calibration_prior_strength: float = Field(10.0, ge=0)  # pseudo-clips for "the model's probability is right"
    use_reviews: bool = True  # reviewers' accepted verdicts from earlier runs count as known labels


class JudgeConfig(_Strict):
    weights: JudgeWeights = JudgeWeights()
    task_weights: dict[str, JudgeWeights] = {}  # per instruction template id; others use `weights`
    unverifiable_credit: float = Field(0.5, ge=0, le=1)  # S_reason credit for a claim the features cannot check
    # reliability: Dawid-Skene on the answers' full distributions, anchored by known labels (default);
    # the others vote on top labels: majority, S_final-weighted, or crowd-kit's aggregators
    aggregation: Literal["reliability", "majority", "weighted", "dawid_skene", "one_coin_dawid_skene", "glad", "mace", "wawa"] = "reliability"
    reliability: ReliabilityConfig = ReliabilityConfig()
    gold: str | None = None  # CSV or Parquet with clip_id,label: S_rec against gold and threshold calibration
    threshold: ReviewThreshold = ReviewThreshold()
    min_margin: float = Field(0.2, ge=0, le=1)  # consensus top-1 minus top-2 below this: thin margin
    min_agreement: float = Field(0.5, ge=0, le=1)  # share of answers with the consensus label below this: disagreement
    # which flags send a clip to review. The calibrated confidence already weighs margin, agreement and
    # who agreed, so thin_margin, disagreement, missing_modality and rejected_answer are recorded to
    # explain a clip, not to route it; a contradicted fact always routes; so does a clip chosen to
    # teach the run's voice model (annotate.learned_voice.teach), which a person should label first
    flag_on: list[Flag] = ["low_score", "hallucinated_evidence", "teach_voice_model", "no_answer"]
    llm_judge: LLMJudgeConfig | None = None

    def weights_for(self, task: str | None) -> JudgeWeights:
        return self.task_weights.get(task or "", self.weights)


class LabelStudioConfig(_Strict):
    url: str = "http://127.0.0.1:8080"
    token_env: str = "LABEL_STUDIO_API_KEY"  # environment variable holding the API token
    project_title: str = "emoforge review"
    timeout_s: float = Field(30.0, gt=0)
    max_retries: int = Field(3, ge=0)
    # the server's LOCAL_FILES_DOCUMENT_ROOT; media are served from the run directory beneath it
    document_root: str | None = None
    # Label Studio writes each answer to a file here as it is saved (its local-files target
    # storage), so a pull reads files instead of asking the server to export every task; a
    # directory per project, beneath the document root. null: <document_root>/.emoforge-answers
    answer_files: bool = True
    answers_dir: str | None = None


class AgreementGates(_Strict):
    kappa: float = Field(0.8, ge=-1, le=1)  # Cohen's / Fleiss' kappa must exceed this
    icc: float = Field(0.9, ge=-1, le=1)  # intensity ICC must exceed this
    alpha: float | None = Field(None, ge=-1, le=1)  # Krippendorff's alpha, when set


class ReviewConfig(_Strict):
    enabled: bool = False  # stage 5 in the flow: push flagged clips to Label Studio and pull verdicts back
    label_studio: LabelStudioConfig = LabelStudioConfig()
    overlap: float = Field(0.2, ge=0, le=1)  # share of pushed clips that need several reviewers (for agreement)
    reviewers_on_overlap: int = Field(2, ge=2)
    gates: AgreementGates = AgreementGates()


class ExportConfig(_Strict):
    seed: int = 0  # splits are a pure function of the clips, their labels and this seed
    train: float = Field(0.8, gt=0, le=1)
    validation: float = Field(0.1, ge=0, le=1)
    test: float = Field(0.1, ge=0, le=1)
    hide_test_labels: bool = True  # test rows ship without labels; the answer key is a separate file
    include_unlabelled: bool = False  # clips the panel could not label (no usable answer)
    name: str = "emoforge-emotion"
    licence: str = "CC-BY-4.0"  # of the annotations; each source keeps its own (listed in the card)
    # what the dataset ships of each clip: its span (H.264/AAC MP4, or FLAC when there is no picture)
    # and key frames, the key frames only, or nothing (rows then point at no media)
    media: Literal["clips", "keyframes", "none"] = "clips"
    # instruction-tuning files written beside the Parquet (instruct/): sharegpt (LLaMA-Factory, with
    # its dataset_info.json), swift (ms-swift's messages JSONL), merr (Emotion-LLaMA's MERR-style JSON)
    formats: list[Literal["sharegpt", "swift", "merr"]] = []

    @model_validator(mode="after")
    def _ratios(self) -> "ExportConfig":
        if abs(self.train + self.validation + self.test - 1.0) > 1e-6:
            raise ValueError(f"split ratios must sum to 1, got {self.train + self.validation + self.test:g}")
        if self.formats and self.media == "none":
            raise ValueError(f"formats {self.formats} need media (clips or keyframes): an instruction-tuning record "
                             "is the clip's media with its instruction and answer")
        return self


class DaskConfig(_Strict):
    """Where CPU stages run when `runtime.task_runner` is dask. Run directories must sit on storage
    every Dask worker sees at the same path (tasks write key frames and cached results there)."""

    address: str | None = None  # a running scheduler, e.g. tcp://scheduler:8786; None: a LocalCluster here
    n_workers: int | None = Field(None, ge=1)  # LocalCluster worker processes; None: runtime.workers
    threads_per_worker: int = Field(1, ge=1)
    connect_timeout_s: float = Field(10.0, gt=0)  # an unreachable scheduler fails the run before any work


class GPUPoolConfig(_Strict):
    """GPU annotators run as flow runs on their own Prefect work pool, so GPU machines take only GPU
    work (`emoforge worker --pool NAME` on each GPU machine). Inputs and answers travel through the run
    directory, which GPU workers must see at the same path."""

    pool: str | None = None  # None: every annotator runs where its stage-3 task runs
    annotators: list[str] | None = None  # annotator ids sent to the pool; None: every transformers-backend one
    timeout_s: float = Field(6 * 3600.0, gt=0)  # one source's answers from one annotator
    crash_retries: int = Field(1, ge=0)  # a flow run whose worker died is submitted again this many times


class RuntimeConfig(_Strict):
    workers: int = Field(2, ge=1)  # sources processed at once
    # torch's intra-op threads (and llama.cpp's) in every process that runs a stage task; None: one per core
    torch_threads: int | None = Field(None, ge=1)
    task_runner: Literal["threads", "dask"] = "threads"  # where stages 1-3 run their per-source tasks
    judge_processes: int | None = Field(None, ge=1)  # processes scoring a large run in stage 4; None: one per core
    dask: DaskConfig = DaskConfig()
    gpu: GPUPoolConfig = GPUPoolConfig()


class EmoforgeConfig(_Strict):
    taxonomy: list[str] = Field(default_factory=lambda: list(DEFAULT_TAXONOMY), min_length=2)
    multi_label: bool = False
    sampling: SamplingConfig = SamplingConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    annotate: AnnotateConfig = AnnotateConfig()
    judge: JudgeConfig = JudgeConfig()
    review: ReviewConfig = ReviewConfig()
    export: ExportConfig = ExportConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    @model_validator(mode="after")
    def _taxonomy_unique(self) -> "EmoforgeConfig":
        lowered = [t.strip().lower() for t in self.taxonomy]
        if len(set(lowered)) != len(lowered) or any(not t for t in lowered):
            raise ValueError("taxonomy labels must be non-empty and unique (case-insensitive)")
        self.taxonomy = lowered
        return self

    def annotator_context(self) -> AnnotatorContext:
        return AnnotatorContext(taxonomy=self.taxonomy, multi_label=self.multi_label,
                                open_vocabulary=self.annotate.open_vocabulary,
                                audio_sample_rate=self.sampling.audio_sample_rate, threads=self.runtime.torch_threads)

    def stage_hash(self, stage: str) -> str:
        """Hash of the settings a stage's output depends on (part of its cache key)."""
        parts: dict[str, Any] = {
            "sampling": {"sampling": self.sampling, "taxonomy": self.taxonomy},
            "preprocess": {"preprocess": self.preprocess},
            "annotate": {"annotate": self.annotate, "taxonomy": self.taxonomy, "multi_label": self.multi_label},
            "judge": {"judge": self.judge, "taxonomy": self.taxonomy, "multi_label": self.multi_label},
        }
        return stable_hash(parts[stage])


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not KEY=VALUE (e.g. sampling.clips.max_clip_s=10)")
    key, raw = item.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"override {item!r} has an empty key")
    return path, yaml.safe_load(raw)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> EmoforgeConfig:
    """Defaults, then the YAML file, then `a.b.c=value` overrides; errors name the file and the key."""
    data: dict[str, Any] = {}
    where = "defaults"
    if path is not None:
        path = Path(path)
        where = str(path)
        try:
            loaded = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
        data = loaded or {}
    for item in overrides:
        keys, value = _parse_override(item)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {k} is not a section")
        node[keys[-1]] = value
        where = f"{where} + overrides"
    drop_retired_keys(data, where)
    try:
        return EmoforgeConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors())
        raise ConfigError(f"{where}: invalid configuration: {problems}") from None


def _problem(error: Any) -> str:
    """One validation error as `key: problem`, the key as a user writes it (no union tags)."""
    loc = [str(p) for p in error["loc"]]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        key = ".".join(loc + ["backend"])
        if error["type"] == "union_tag_not_found":
            return f"{key}: missing (one of {', '.join(KNOWN_BACKENDS)}, or a plugin as package.module:Class)"
        return (f"{key}: unknown backend {error['ctx']['tag']!r} (known: {', '.join(KNOWN_BACKENDS)}; "
                "or a plugin as package.module:Class)")
    # a spec's errors carry its backend as a path element (annotate.panel.0.openai.endpoint): drop it
    msg = error["msg"]
    for i in range(len(loc) - 1):
        if (loc[i].isdigit() or loc[i] == "annotator") and (loc[i + 1] in KNOWN_BACKENDS or loc[i + 1] == "plugin"):
            backend = loc.pop(i + 1)
            if error["type"] == "extra_forbidden":
                msg = f"not a setting of backend {backend!r}" if backend != "plugin" else "not a plugin setting (put it under options)"
            break
    return f"{'.'.join(loc) or '(top)'}: {msg}"
