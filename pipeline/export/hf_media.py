"""Split Parquet files whose media Hugging Face `datasets` decodes: the DatasetRow columns plus
`video` (Video), `audio` (Audio), `image` (Image, photos) and `keyframes` (list of Image), typed in the schema metadata the
way `datasets` writes it, so `load_dataset(DATASET_DIR)` hands back decoders.

The media bytes are embedded as well as shipped as files: `datasets` resolves a bare relative path
against the working directory, not the dataset folder, so only embedded bytes decode wherever the
folder is (and after an upload to the Hub, which stores media the same way). The `path` of each
value is the file's place in the folder. Rows are written a few at a time to bound memory."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.export.media import MediaMode
from schemas import DatasetRow
from schemas.arrow import arrow_schema, to_table
from storage import DatasetDir

ROWS_PER_GROUP = 16


def media_features(mode: MediaMode):
    import datasets

    if mode == "none":
        return datasets.Features()
    feats = {"keyframes": datasets.List(datasets.Image())}
    if mode == "clips":
        feats = {"video": datasets.Video(), "audio": datasets.Audio(), "image": datasets.Image(), **feats}
    return datasets.Features(feats)


def split_schema(mode: MediaMode) -> pa.Schema:
    base = arrow_schema(DatasetRow)
    feats = media_features(mode)
    if not feats:
        return base
    hf = json.dumps({"info": {"features": feats.to_dict()}}).encode()
    return pa.schema([*base, *feats.arrow_schema], metadata={**base.metadata, b"huggingface": hf})


def write_split(ds: DatasetDir, split: str, rows: list[DatasetRow], mode: MediaMode) -> int:
    if mode == "none":
        return ds.write_split(split, rows)
    schema = split_schema(mode)
    path = ds.split_path(split)
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:  # the dataset is staged: no atomic write needed
        if not rows:
            writer.write_table(schema.empty_table())
        for start in range(0, len(rows), ROWS_PER_GROUP):
            chunk = rows[start:start + ROWS_PER_GROUP]
            table = to_table(chunk, DatasetRow)
            media = {"keyframes": [[_embed(ds.root, p) for p in r.keyframe_paths] for r in chunk]}
            if mode == "clips":
                media["video"] = [_embed(ds.root, r.media_path) if r.media_kind == "video" else None for r in chunk]
                media["audio"] = [_embed(ds.root, r.media_path) if r.media_kind == "audio" else None for r in chunk]
                media["image"] = [_embed(ds.root, r.media_path) if r.media_kind == "image" else None for r in chunk]
            columns = [*table.columns, *(pa.array(media[f.name], f.type) for f in schema if f.name in media)]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
    return len(rows)


def _embed(root: Path, rel: str | None) -> dict | None:
    return {"bytes": (root / rel).read_bytes(), "path": rel} if rel else None
