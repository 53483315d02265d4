"""Stage-3 output: one annotator's answer for one clip."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from schemas.clip import Clip
from schemas.features import ClipFeatures, LabelProb, LearnedVoice, VoiceBaseline
from schemas.provenance import Provenance

Modality = Literal["text", "audio", "prosody", "visual", "face", "context"]


class Evidence(BaseModel):
    evidence_id: str
    modality: Modality
    cue: str  # what was observed, in words
    start: float | None = None
    end: float | None = None
    feature_ref: str | None = None  # path into ClipFeatures, e.g. "faces[3].action_units[AU12]" or "words[5]": a FeatureRef as text


class RationaleStep(BaseModel):
    index: int  # 1..N; the last step states the label
    text: str
    evidence_ids: list[str] = []
    # "normaliser" marks a closing step emoforge added because the answer never stated its label
    origin: Literal["annotator", "normaliser"] = "annotator"


class Annotation(BaseModel):
    annotation_id: str
    clip_id: str
    annotator_id: str
    label: str | None  # None when the answer was rejected
    labels: list[str] = []  # multi-label answers
    label_distribution: list[LabelProb] = []
    intensity: float | None = None
    steps: list[RationaleStep] = []
    evidence: list[Evidence] = []
    # abstained: the annotator had nothing to go on (e.g. a face agent on a clip without a face)
    status: Literal["ok", "repaired", "rejected", "abstained"] = "ok"
    raw_answer: str | None = None
    error: str | None = None
    provenance: Provenance


class AnnotatorInput(BaseModel):
    """What an annotator sees of one clip: the clip (span, key frames, instruction) and its features."""

    clip: Clip
    features: ClipFeatures | None = None
    media_root: str | None = None  # run directory that key-frame paths are relative to
    # the clip's voice baseline (agents.voice_baseline), set before stage 3 for annotators that read it
    baseline: VoiceBaseline | None = None
    # the run's learned voice model's answer for the clip (agents.learned_voice), for annotators that read it
    learned_voice: LearnedVoice | None = None


class SourceAnnotations(BaseModel):
    """Every annotator's answers for one source's clips (the unit that is cached and resumed)."""

    annotations: list[Annotation]
    rejects: list["Reject"] = []

    def producer_run_id(self) -> str | None:
        return self.annotations[0].provenance.run_id if self.annotations else None


class AnnotateJob(BaseModel):
    """One annotator on one source's clips, sent to a GPU work pool: written into the run directory,
    which the pool's workers see at the same path; the answers come back beside it."""

    spec: "AnnotatorSpec"
    config: "EmoforgeConfig"
    items: list[AnnotatorInput]
    run_id: str
    answers_file: str


from schemas.reject import Reject  # noqa: E402
from schemas.config import AnnotatorSpec, EmoforgeConfig  # noqa: E402

SourceAnnotations.model_rebuild()
AnnotateJob.model_rebuild()
