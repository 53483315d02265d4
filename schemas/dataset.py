"""Stage-6 output: one row of the exported benchmark."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from schemas.annotation import Evidence, RationaleStep
from schemas.features import LabelProb
from schemas.provenance import Provenance
from schemas.review import AgreementStat


class AnnotatorAnswer(BaseModel):
    annotator_id: str
    label: str | None
    s_rec: float | None = None
    s_reason: float | None = None
    s_cot: float | None = None
    s_final: float | None = None


class DatasetRow(BaseModel):
    clip_id: str
    source_id: str
    split: Literal["train", "validation", "test"]
    start: float
    end: float
    # the clip as shipped in the dataset folder, relative to it (export.media): an MP4 (a FLAC for
    # audio-only clips) with `clips`, the first key frame with `keyframes`, none with `none`
    media_path: str | None = None
    media_kind: Literal["video", "audio", "image"] | None = None
    keyframe_paths: list[str] = []  # the clip's key frames in the dataset folder, relative to it
    label: str | None  # None in the released test split (labels live in the answer key)
    labels: list[str] = []
    label_distribution: list[LabelProb] = []
    intensity: float | None = None
    uncertainty: float | None = None
    steps: list[RationaleStep] = []
    evidence: list[Evidence] = []
    answers: list[AnnotatorAnswer] = []
    s_final: float | None = None
    # P(label is right): the judge's calibrated confidence for a model label, 1 for a reviewer's
    confidence: float | None = None
    label_source: Literal["human", "model"] | None = None  # who decided the label (None in the released test split)
    flags: list[str] = []  # the judge's QC flags
    needs_review: bool = False
    review_decision: str | None = None
    agreement: list[AgreementStat] = []
    provenance: Provenance


class AnswerKeyRow(BaseModel):
    """The hidden labels of a released test split, kept in a separate file."""

    clip_id: str
    label: str | None
    labels: list[str] = []
    intensity: float | None = None
    steps: list[RationaleStep] = []
    evidence: list[Evidence] = []


class Prediction(BaseModel):
    """What `emoforge evaluate` reads: one model's answer for one clip (CSV, JSONL or Parquet)."""

    clip_id: str
    label: str
    labels: list[str] = []
    rationale: str | None = None  # free text or "Step 1: ... Step 2: ..."
    evidence: list[Evidence] = []


class ExportedDataset(BaseModel):
    """What stage 6 wrote: where, how many rows each split holds, and the dataset version (the run's
    own export records one in OUT/versions/; an export elsewhere does not)."""

    out: str
    splits: dict[str, int]
    version: int | None = None

    @property
    def rows(self) -> int:
        return sum(self.splits.values())
