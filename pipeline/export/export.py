"""Stage 6 end to end: a run directory in, a complete dataset directory out — written beside it and
swapped into place (pipeline/export/destination.py), so a failure or a kill at any point leaves
the old dataset or the new one whole, never a partial one."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.export.card import dataset_card, summary
from pipeline.export.croissant import write_croissant
from pipeline.export.dataset import ExportError, build_rows, hide_labels
from pipeline.export.destination import check_destination, publish, staging_dir
from pipeline.export.hf_media import write_split
from pipeline.export.media import ShippedMedia, ship_media
from pipeline.export.sharegpt import write_instruct
from pipeline.export.splits import assign_splits
from pipeline.export.versions import record_version
from schemas import Clip, EmoforgeConfig, KeyFrame
from schemas.dataset import ExportedDataset
from schemas.run import RunRecords
from storage import SPLITS, DatasetDir, RunDir


def export_run(run: RunDir, out: str | Path, config: EmoforgeConfig, run_id: str, versioned: bool = False,
               records: RunRecords | None = None) -> ExportedDataset:
    """Write the dataset to `out` from the run's records (default: its tables; the flow passes the
    ones it holds). `run` is where its media and versions live. `versioned` (the run's own dataset)
    also records a new version in OUT/versions/ with a change report whenever labels or answers moved."""
    out = Path(out)
    if not (versioned and out.resolve() == run.dataset_dir.resolve()):  # only the flow writes inside its run
        check_destination(out, run.root)
    records = run.records() if records is None else records
    clips, consensus = records.clips, records.consensus
    if not clips:
        raise ExportError(f"{run.root}: the run has no clips to export")
    if not consensus:
        raise ExportError(f"{run.root}: the run has no judge results (tables/consensus.parquet); run stages 1-4 first")
    rows = build_rows(clips, consensus, records.judgements, records.annotations, records.reviews, config, run_id)
    if not rows:
        raise ExportError(f"{run.root}: no clip has a label to export")
    version = None
    if versioned:
        version, _ = record_version(run, rows)
    split_of = assign_splits([r.clip_id for r in rows], [r.source_id for r in rows], [r.label or "" for r in rows], config.export)
    splits = {s: [r.model_copy(update={"split": s}) for r in rows if split_of[r.clip_id] == s] for s in SPLITS}
    key = []
    if config.export.hide_test_labels:
        splits["test"], key = hide_labels(splits["test"])
    tmp = staging_dir(out)
    try:
        ds = DatasetDir(tmp)
        ids = {r.clip_id for r in rows}
        mode = config.export.media
        shipped = ship_media(run, [c for c in clips if c.clip_id in ids], tmp, mode, config.runtime.workers)
        for s in SPLITS:
            splits[s] = [r.model_copy(update={"media_path": m.path, "media_kind": m.kind, "keyframe_paths": m.keyframes})
                         if (m := shipped.get(r.clip_id)) else r for r in splits[s]]
            write_split(ds, s, splits[s], mode)
        if key:
            ds.write_answer_key(key)
        features = [f for f in records.features if f.clip_id in ids]
        if config.export.formats:
            write_instruct(tmp, splits, {c.clip_id: c for c in clips}, {f.clip_id: f for f in features}, config.export.formats,
                           config.export.name)
        # released clips name their source by file name (and source_id): a local path says who made it and where
        # and their key frames where the dataset holds them (a run path would point nowhere)
        released = [c.model_copy(update={"source_path": Path(c.source_path).name, "keyframes": _shipped_keyframes(c, shipped)})
                    for c in clips if c.clip_id in ids]
        ds.write_features(features, released)
        card = dataset_card(splits, key, records.sources, config, run_id, version, rows=rows)
        (tmp / "README.md").write_text(card)
        write_croissant(ds, config, summary(config, run_id))
        publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportedDataset(out=str(out), splits={s: len(splits[s]) for s in SPLITS}, version=version)


def _shipped_keyframes(clip: Clip, shipped: dict[str, ShippedMedia]) -> list[KeyFrame]:
    """The key frames as shipped; none when none were (a path into the run would point nowhere)."""
    paths = shipped[clip.clip_id].keyframes if clip.clip_id in shipped else []
    return [k.model_copy(update={"path": p}) for k, p in zip(clip.keyframes, paths)]
