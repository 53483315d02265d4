"""Typed records that cross every stage line, each with a matching Arrow schema (schemas.arrow)."""

from schemas.annotation import Annotation, AnnotatorInput, Evidence, RationaleStep, SourceAnnotations
from schemas.arrow import SCHEMA_VERSION, arrow_schema, from_table, to_table
from schemas.clip import Clip, Instruction, KeyFrame, Shot, SourceSampling, Span
from schemas.config import ConfigError, EmoforgeConfig, load_config
from schemas.dataset import AnnotatorAnswer, AnswerKeyRow, DatasetRow, Prediction
from schemas.features import ClipFeatures, FaceObservation, Prosody, SourcePreprocessing, Word
from schemas.lock import LockHolder
from schemas.judgement import AnnotatorReliability, ClaimCheck, Consensus, Judgement, JudgeWeights, Routing, SourceJudgements
from schemas.media import SourceMedia
from schemas.provenance import Provenance, stable_hash
from schemas.reject import Reject
from schemas.review import AgreementStat, Review, ReviewerAnswer

__all__ = [
    "SCHEMA_VERSION", "AgreementStat", "AnnotatorReliability", "ClaimCheck", "Annotation", "AnnotatorInput", "AnnotatorAnswer", "AnswerKeyRow", "Prediction", "Clip", "ClipFeatures", "ConfigError",
    "Consensus", "DatasetRow", "EmoforgeConfig", "Evidence", "FaceObservation", "Instruction", "Judgement",
    "JudgeWeights", "KeyFrame", "LockHolder", "Provenance", "Prosody", "RationaleStep", "Reject", "Review", "ReviewerAnswer", "Routing",
    "Shot", "SourceAnnotations", "SourceJudgements", "SourceMedia", "SourcePreprocessing", "SourceSampling", "Span", "Word", "arrow_schema", "from_table", "load_config",
    "stable_hash", "to_table",
]
