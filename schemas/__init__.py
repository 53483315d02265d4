"""Typed records that cross every stage line, each with a matching Arrow schema (schemas.arrow).

    stage 1 -> 2   SourceMedia, Clip (KeyFrame, Instruction)          clip.py, media.py
    stage 2 -> 3   ClipFeatures (Word, Prosody, FaceObservation)      features.py
    stage 3 -> 4   Annotation (RationaleStep, Evidence; FeatureRef)   annotation.py, feature_ref.py
    stage 4 -> 5   Judgement, Consensus, AnnotatorReliability, Routing judgement.py
    stage 5 -> 6   Review (ReviewerAnswer, AgreementStat); ReviewTask review.py
    stage 6 out    DatasetRow, AnswerKeyRow, ExportedDataset          dataset.py
    every stage    Reject; a run: RunManifest (run.json), RunSummary  reject.py, run.py

Configuration is one validated model (config.py). Nothing here imports a stage."""

from schemas.annotation import Annotation, AnnotatorInput, Evidence, RationaleStep, SourceAnnotations
from schemas.arrow import SCHEMA_VERSION, arrow_schema, from_table, to_table
from schemas.clip import Clip, Instruction, KeyFrame, Shot, SourceSampling, Span
from schemas.config import ConfigError, EmoforgeConfig, load_config
from schemas.dataset import AnnotatorAnswer, AnswerKeyRow, DatasetRow, ExportedDataset, Prediction
from schemas.feature_ref import FeatureRef
from schemas.features import ClipFeatures, FaceObservation, Prosody, SourcePreprocessing, Word
from schemas.lock import LockHolder
from schemas.judgement import AnnotatorReliability, ClaimCheck, Consensus, Judgement, JudgeWeights, Routing, SourceJudgements
from schemas.media import SourceMedia
from schemas.provenance import Provenance, stable_hash
from schemas.reject import Reject
from schemas.review import AgreementStat, Review, ReviewerAnswer, ReviewTask
from schemas.run import InputCounts, RunManifest, RunSummary, StageCounts, TableCounts

__all__ = [
    "SCHEMA_VERSION", "AgreementStat", "AnnotatorReliability", "ClaimCheck", "Annotation", "AnnotatorInput", "AnnotatorAnswer", "AnswerKeyRow", "Prediction", "Clip", "ClipFeatures", "ConfigError",
    "Consensus", "DatasetRow", "EmoforgeConfig", "Evidence", "ExportedDataset", "FaceObservation", "FeatureRef", "InputCounts", "Instruction", "Judgement",
    "JudgeWeights", "KeyFrame", "LockHolder", "Provenance", "Prosody", "RationaleStep", "Reject", "Review", "ReviewerAnswer", "ReviewTask", "Routing", "RunManifest", "RunSummary",
    "Shot", "SourceAnnotations", "StageCounts", "TableCounts", "SourceJudgements", "SourceMedia", "SourcePreprocessing", "SourceSampling", "Span", "Word", "arrow_schema", "from_table", "load_config",
    "stable_hash", "to_table",
]
