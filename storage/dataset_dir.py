"""Layout of an exported benchmark (stage 6). Readable by pyarrow and by Hugging Face
`datasets.load_dataset(DIR)` (Hugging Face's file naming: the split is the file-name prefix).

    DIR/data/train-00000-of-00001.parquet       DatasetRow (labels, rationale, evidence, scores, review), and the
                                               media as HF Video/Audio/Image columns (pipeline/export/hf_media.py)
    DIR/data/validation-00000-of-00001.parquet
    DIR/data/test-00000-of-00001.parquet        DatasetRow with label, steps and evidence removed
    DIR/answer_key/test.parquet                AnswerKeyRow: the test split's labels (kept apart)
    DIR/features.parquet                       ClipFeatures of every clip (evidence coverage checks)
    DIR/clips.parquet                          Clip of every clip (spans, key frames, instruction)
    DIR/README.md, DIR/croissant.json          dataset card, Croissant metadata
    DIR/media/clips/, DIR/media/keyframes/     the clips and key frames (export.media; pipeline/export/media.py)
    DIR/instruct/                              instruction-tuning files (export.formats; pipeline/export/sharegpt.py)
    DIR/report/                                run report (report.md + PNG plots)
"""

from __future__ import annotations

from pathlib import Path

from schemas import AnswerKeyRow, Clip, ClipFeatures, DatasetRow
from storage.parquet import read_records, write_records

SPLITS = ("train", "validation", "test")


class DatasetDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def split_path(self, split: str) -> Path:
        return self.root / "data" / f"{split}-00000-of-00001.parquet"

    @property
    def answer_key_path(self) -> Path:
        return self.root / "answer_key" / "test.parquet"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    def write_split(self, split: str, rows: list[DatasetRow]) -> int:
        return write_records(self.split_path(split), rows, DatasetRow)

    def read_split(self, split: str) -> list[DatasetRow]:
        return read_records(self.split_path(split), DatasetRow)

    def write_answer_key(self, rows: list[AnswerKeyRow]) -> int:
        return write_records(self.answer_key_path, rows, AnswerKeyRow)

    def read_answer_key(self) -> list[AnswerKeyRow]:
        return read_records(self.answer_key_path, AnswerKeyRow)

    def write_features(self, features: list[ClipFeatures], clips: list[Clip]) -> None:
        write_records(self.root / "features.parquet", features, ClipFeatures)
        write_records(self.root / "clips.parquet", clips, Clip)

    def read_features(self) -> list[ClipFeatures]:
        return read_records(self.root / "features.parquet", ClipFeatures)

    def read_clips(self) -> list[Clip]:
        return read_records(self.root / "clips.parquet", Clip)
