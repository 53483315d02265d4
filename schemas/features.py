"""Stage-2 output: everything measured in a clip, on the clip's timeline (seconds from source start)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from schemas.provenance import Provenance


class NamedValue(BaseModel):
    name: str
    value: float


class LabelProb(BaseModel):
    label: str
    prob: float


class Word(BaseModel):
    text: str
    start: float | None  # None when the aligner could not place the word
    end: float | None
    speaker: str | None = None
    confidence: float | None = None
    overlap: bool = False  # spoken while another speaker talks (most of the word inside an overlap turn)


class ClipTranscript(BaseModel):
    """A clip's words when they were transcribed before its stage-2 task, in windows shared with
    other short sources (pipeline/preprocess/asr_packing.py)."""

    clip_id: str
    language: str | None = None
    words: list[Word] = []
    encoding: list[float] | None = None  # the mean whisper encoder state over the clip (ClipFeatures.speech_encoding)


class SpeakerTurn(BaseModel):
    speaker: str
    start: float
    end: float
    overlap: bool = False  # another speaker talks throughout this turn


class ProsodyWindow(BaseModel):
    start: float
    end: float
    pitch_hz: float | None  # None where unvoiced
    intensity_db: float | None
    word_index: int | None = None  # the word this window belongs to, when computed per word


class Prosody(BaseModel):
    pitch_mean_hz: float | None = None
    pitch_std_hz: float | None = None
    intensity_mean_db: float | None = None
    pause_ratio: float | None = None
    speech_rate_wps: float | None = None
    functionals: list[NamedValue] = []  # e.g. eGeMAPS functionals
    windows: list[ProsodyWindow] = []


class FeatureStat(BaseModel):
    """One prosodic quantity's typical value and spread in a group of clips (robust: median and
    1.4826 x MAD, floored so a near-constant quantity does not blow z-scores up)."""

    name: str
    center: float
    scale: float
    n: int  # clips the statistic was computed from


class VoiceBaseline(BaseModel):
    """What a voice normally sounds like, for annotators that z-score a clip's prosody: the same
    speaker within the source when the source has enough of their speech, else the whole run
    ("corpus": single-utterance corpora give one short source per file)."""

    scope: Literal["speaker", "corpus"]
    key: str  # "<source_id>/<speaker>", "declared:<speaker>" or "run"
    clips: int
    speech_s: float
    stats: list[FeatureStat]
    # the words every clip of the baseline says (the transcript, normalised), when the speaker said
    # them often enough for a baseline of their own; None: all of the speaker's (or run's) clips
    words: str | None = None

    def stat(self, name: str) -> FeatureStat | None:
        return next((s for s in self.stats if s.name == name), None)


class LearnedCue(BaseModel):
    """One eGeMAPS functional as the learned voice model read it for a clip."""

    name: str  # the functional, as in Prosody.functionals
    value: float  # measured
    z: float  # against the clip's voice group (its speaker's clips, or the run's)
    push: float  # its share of the top label's logit over the model's mean logit


class LearnedVoice(BaseModel):
    """A clip's answer from the voice model the run fitted on its own labelled clips
    (agents/learned_voice.py), or, with an empty distribution, why there is none."""

    distribution: list[LabelProb] = []
    note: str = ""  # why there is no answer, when the distribution is empty
    held_out: bool = False  # a labelled clip: predicted by the fold that left it out
    n_labelled: int = 0  # labelled clips the model was fitted on
    labels_from: str = ""  # "gold", "review" or "gold+review"
    cv_accuracy: float | None = None  # out-of-fold accuracy over the labelled clips
    majority_share: float | None = None  # the accuracy of always answering the commonest label
    grouped_by: str = ""  # what the folds left out together: "speaker" (voice groups) or "clip"
    reads: str = ""  # what it read: the functionals, and the ASR encoder states where stage 2 kept them
    cues: list[LearnedCue] = []
    # the run has no voice model yet and this clip is one of those whose labels would teach it most:
    # a person should label it first (agents/teach_set.py)
    teach: bool = False


class ActionUnit(BaseModel):
    au: str  # FACS code, e.g. "AU12"
    intensity: float  # 0..5 scale where the extractor gives one, else a 0..1 proxy
    present: bool
    source: str  # "py-feat", "geometry-proxy", ...


class BoundingBox(BaseModel):
    x: float
    y: float
    width: float
    height: float


class Point(BaseModel):
    x: float
    y: float


class FaceObservation(BaseModel):
    time: float
    frame_index: int
    track_id: int
    bbox: BoundingBox
    detection_score: float
    landmarks: list[Point] = []
    action_units: list[ActionUnit] = []
    geometry: list[NamedValue] = []  # region descriptors: mouth opening, brow raise, eye aperture...
    expression: list[LabelProb] = []


# below even odds that the speech is in the language whisper wrote it in, its words are as likely a
# guess in the wrong language as what was said: whisper base writes Polish single words as English
# hallucinations ("Thank you very much.") well below it, and two seconds of English near certainty
# (docs/label-quality.md, "Words whisper may have guessed")
MIN_LANGUAGE_PROBABILITY = 0.5


class ClipFeatures(BaseModel):
    clip_id: str
    language: str | None = None
    # whisper's probability for the language it detected in the clip's source (None: declared in
    # asr.language, or a backend that does not say, as whisperx); low on a word or two of a language
    # it knows poorly, whose words are then its guess
    language_probability: float | None = None
    words: list[Word] = []
    speakers: list[SpeakerTurn] = []
    prosody: Prosody | None = None
    faces: list[FaceObservation] = []
    main_track_id: int | None = None
    main_track_reason: str | None = None
    notes: list[str] = []  # why a modality is empty ("no face found", "no speech", "single-speaker fallback")
    # the ASR model's acoustic reading of the clip's speech: the mean of whisper's encoder states over
    # its span (faster-whisper; None for other backends and clips without transcribed speech)
    speech_encoding: list[float] | None = None
    provenance: Provenance

    @property
    def words_may_be_guessed(self) -> bool:
        """Whisper detected the language at below even odds (MIN_LANGUAGE_PROBABILITY)."""
        return bool(self.words) and self.language_probability is not None and self.language_probability < MIN_LANGUAGE_PROBABILITY


class SourcePreprocessing(BaseModel):
    """Everything stage 2 produced for one source (the unit that is cached and resumed)."""

    features: list[ClipFeatures]
    rejects: list["Reject"] = []

    def producer_run_id(self) -> str | None:
        return self.features[0].provenance.run_id if self.features else None


from schemas.reject import Reject  # noqa: E402

SourcePreprocessing.model_rebuild()
