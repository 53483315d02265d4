"""Instruction-tuning files (export.formats), written in DATASET/instruct/ beside the Parquet:

    instruct/sharegpt-{split}.json   LLaMA-Factory's ShareGPT format (`conversations` of from/value turns)
    instruct/dataset_info.json       LLaMA-Factory's description of those files (`dataset_dir: DATASET/instruct`)
    instruct/swift-{split}.jsonl     ms-swift's standard format (`messages` of role/content turns)
    instruct/merr-{split}.json       MERR-style JSON (Emotion-LLaMA; pipeline/export/merr.py)
    instruct/skipped.json            clips left out of these files, and why

One record per clip: the user turn is the clip's media placeholders (<video>, <audio>, or one
<image> for the photo or per key frame: as many as the record lists media) then the clip's
instruction; the assistant turn is the rationale as `Step 1..N`, the last step stating the label.
Media paths are relative to these files, which is also where LLaMA-Factory looks (its media_dir
defaults to its dataset_dir). Test records of a dataset with hidden test labels carry an empty
answer: prompts to predict, no labels."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.export.dataset import ExportError
from pipeline.export.media import MEDIA_DIR
from pipeline.export.merr import merr_entry
from schemas import Clip, ClipFeatures, DatasetRow
from schemas.rationale import normalise
from storage import SPLITS

INSTRUCT_DIR = "instruct"
PLACEHOLDER = {"images": "<image>", "videos": "<video>", "audios": "<audio>"}


def record_media(row: DatasetRow) -> dict[str, list[str]]:
    """The record's media lists, relative to instruct/: the clip itself when shipped, else its key frames."""
    up = f"../{MEDIA_DIR}/"
    itself = row.media_path is not None and row.media_path not in row.keyframe_paths  # a clip or photo, not a key frame
    rel = [f"../{p}" for p in ([row.media_path] if itself else row.keyframe_paths)]
    if not all(p.startswith(up) for p in rel):  # shipped media only, never a path into a run
        raise ExportError(f"clip {row.clip_id}: instruction record would point outside the dataset's media ({rel})")
    key = {"video": "videos", "audio": "audios"}.get(row.media_kind or "", "images")
    return {k: (rel if k == key else []) for k in PLACEHOLDER}


def answer(row: DatasetRow) -> str:
    """`Step 1..N`, the last step stating the label; empty for a row whose label is hidden."""
    if row.label is None:
        return ""
    return "\n".join(s.text for s in normalise([s.text for s in row.steps], row.label))


def prompt(row: DatasetRow, clip: Clip, media: dict[str, list[str]]) -> str:
    return "".join(PLACEHOLDER[k] * len(v) for k, v in media.items()) + clip.instruction.text


def write_instruct(root: Path, splits: dict[str, list[DatasetRow]], clips: dict[str, Clip], features: dict[str, ClipFeatures],
                   formats: list[str], name: str) -> dict[str, int]:
    """Write the chosen formats; returns the records written per split."""
    out = root / INSTRUCT_DIR
    out.mkdir(parents=True, exist_ok=True)
    info, skipped, counts = {}, [], {}
    for split in SPLITS:
        records = []
        for row in splits.get(split, []):
            media = record_media(row)
            if not any(media.values()):
                skipped.append({"clip_id": row.clip_id, "split": split, "reason": "no media shipped: the clip has no key frames "
                                "(audio-only) and --media keyframes ships no clips; export with --media clips"})
                continue
            records.append((row, prompt(row, clips[row.clip_id], media), answer(row), media))
        counts[split] = len(records)
        if "sharegpt" in formats:
            file = f"sharegpt-{split}.json"
            _write_json(out / file, [{"id": r.clip_id, "conversations": [{"from": "human", "value": p}, {"from": "gpt", "value": a}], **m}
                                     for r, p, a, m in records])
            # a hidden-label test split is prompts to predict (empty replies), named so nobody trains on it
            hidden = split == "test" and any(r.label is None for r, *_ in records)
            info[f"{name}_{split}" + ("_prompts" if hidden else "")] = {
                "file_name": file, "formatting": "sharegpt",
                "columns": {"messages": "conversations", "images": "images", "videos": "videos", "audios": "audios"},
                "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}}
        if "merr" in formats:
            _write_json(out / f"merr-{split}.json", {
                r.clip_id: merr_entry(r, features.get(r.clip_id), (m["videos"] or m["audios"] or m["images"])[0], a)
                for r, _, a, m in records})
        if "swift" in formats:
            lines = []
            for r, p, a, m in records:
                # a hidden label leaves the user turn alone: what `swift infer` answers
                turns = [{"role": "user", "content": p}] + ([{"role": "assistant", "content": a}] if a else [])
                lines.append(json.dumps({"id": r.clip_id, "messages": turns, **{k: v for k, v in m.items() if v}}, ensure_ascii=False))
            (out / f"swift-{split}.jsonl").write_text("".join(line + "\n" for line in lines))
    if info:
        _write_json(out / "dataset_info.json", info)
    _write_json(out / "skipped.json", skipped)
    return counts


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
