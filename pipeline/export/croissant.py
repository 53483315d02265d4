"""Croissant (MLCommons) metadata for an exported dataset, built with mlcroissant and validated by
loading it back with mlcroissant. One FileObject (with sha256) and one RecordSet per split; the
record sets expose the flat columns (nested rationale and evidence stay in the Parquet schema).
Every shipped media file and instruction-tuning file is a FileObject of its own, with its sha256."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipeline.export.media import MIME, media_files
from pipeline.export.sharegpt import INSTRUCT_DIR
from schemas import EmoforgeConfig
from storage.dataset_dir import SPLITS, DatasetDir

# (column, Croissant data type, description) for the flat DatasetRow columns
COLUMNS = [
    ("clip_id", "TEXT", "clip identifier (source hash prefix + span in ms)"),
    ("source_id", "TEXT", "source media identifier; no source appears in two splits"),
    ("start", "FLOAT", "clip start on the source timeline, seconds"),
    ("end", "FLOAT", "clip end on the source timeline, seconds"),
    ("label", "TEXT", "final emotion label (empty in the released test split)"),
    ("intensity", "FLOAT", "emotion intensity in [0, 1]"),
    ("uncertainty", "FLOAT", "normalised entropy of the panel's label distribution"),
    ("s_final", "FLOAT", "judge score of the rationale shipped with the row"),
    ("media_path", "TEXT", "the clip's media in this folder (MP4, FLAC, or its first key frame; see export.media)"),
]


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _mime(path: Path) -> str:
    return MIME.get(path.suffix.lower()) or {".json": "application/json", ".jsonl": "application/jsonlines"}.get(path.suffix, "application/octet-stream")


def shipped_files(root: Path) -> list[Path]:
    instruct = root / INSTRUCT_DIR
    return media_files(root) + (sorted(p for p in instruct.iterdir() if p.is_file()) if instruct.is_dir() else [])


def build_croissant(ds: DatasetDir, config: EmoforgeConfig, description: str) -> dict:
    import mlcroissant as mlc

    files, record_sets = [], []
    for split in SPLITS:
        path = ds.split_path(split)
        if not path.exists():
            continue
        fid = f"{split}-parquet"
        files.append(mlc.FileObject(id=fid, name=fid, content_url=str(path.relative_to(ds.root)), encoding_formats=["application/x-parquet"],
                                    sha256=_sha256(path), content_size=f"{path.stat().st_size} B"))
        fields = [mlc.Field(id=f"{split}/{col}", name=col, description=desc, data_types=[getattr(mlc.DataType, dtype)],
                            source=mlc.Source(file_object=fid, extract=mlc.Extract(column=col)))
                  for col, dtype, desc in COLUMNS]
        record_sets.append(mlc.RecordSet(id=split, name=split, description=f"{split} split", fields=fields))
    for path in shipped_files(ds.root):  # the clips, key frames and instruction-tuning files the rows point at
        rel = path.relative_to(ds.root).as_posix()
        files.append(mlc.FileObject(id=rel, name=rel, content_url=rel, encoding_formats=[_mime(path)], sha256=_sha256(path),
                                    content_size=f"{path.stat().st_size} B"))
    from datetime import UTC, datetime

    meta = mlc.Metadata(name=config.export.name, description=description, date_published=datetime.now(UTC),
                        cite_as=f"{config.export.name}, made with emoforge", license=[config.export.licence], url="https://example.invalid/emoforge",
                        version="1.0.0", distribution=files, record_sets=record_sets,
                        data_annotation_protocol=["multimodal LLM and feature-agent panel, grounded judge, human review of flagged clips"],
                        machine_annotation_tools=[a.id for a in config.annotate.panel])
    return meta.to_json()


def write_croissant(ds: DatasetDir, config: EmoforgeConfig, description: str) -> Path:
    import mlcroissant as mlc

    path = ds.root / "croissant.json"
    path.write_text(json.dumps(build_croissant(ds, config, description), indent=2, default=str))
    dataset = mlc.Dataset(jsonld=str(path))  # raises ValidationError when the metadata is not valid Croissant
    if dataset.metadata.ctx.issues.errors:
        raise ValueError(f"{path}: Croissant validation errors: {sorted(dataset.metadata.ctx.issues.errors)}")
    return path
