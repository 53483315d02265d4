"""Dataset versions of a run. Every export whose labels or answers differ from the last version
becomes version N+1: its full rows (test labels included, so never released) are kept in
OUT/versions/vN/rows.parquet with CHANGES.md and changes.json saying which labels changed and why
(which annotators' answers moved, whether the judge settings or a reviewer decided it)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas import DatasetRow
from storage import RunDir, atomic_write_bytes, read_records, write_records


class LabelChange(BaseModel):
    clip_id: str
    old: str | None  # None: the clip is new in this version
    new: str | None  # None: the clip left the dataset
    why: list[str]


class VersionChanges(BaseModel):
    version: int
    previous: int | None
    clips: int
    changed: list[LabelChange] = []
    annotators_added: list[str] = []
    annotators_removed: list[str] = []
    judge_settings_changed: bool = False


def _why(old: DatasetRow, new: DatasetRow) -> list[str]:
    why = []
    before = {a.annotator_id: a.label for a in old.answers}
    after = {a.annotator_id: a.label for a in new.answers}
    for a in sorted(set(after) - set(before)):
        why.append(f"new annotator {a} answered {after[a]}")
    for a in sorted(set(before) - set(after)):
        why.append(f"annotator {a} ({before[a]}) left the panel")
    for a in sorted(set(before) & set(after)):
        if before[a] != after[a]:
            why.append(f"{a} changed its answer {before[a]} -> {after[a]}")
    if old.provenance.stage_config_hash != new.provenance.stage_config_hash:
        why.append("judge settings changed (weights, aggregation or thresholds)")
    if old.label_source != new.label_source:
        why.append(f"label now decided by {new.label_source}")
    return why or ["the panel's scores moved the consensus"]


def diff(old: list[DatasetRow], new: list[DatasetRow], version: int, previous: int | None) -> VersionChanges:
    o, n = {r.clip_id: r for r in old}, {r.clip_id: r for r in new}
    ids_old = {a.annotator_id for r in old for a in r.answers}
    ids_new = {a.annotator_id for r in new for a in r.answers}
    out = VersionChanges(version=version, previous=previous, clips=len(new), annotators_added=sorted(ids_new - ids_old),
                         annotators_removed=sorted(ids_old - ids_new),
                         judge_settings_changed=bool(old and new and old[0].provenance.stage_config_hash != new[0].provenance.stage_config_hash))
    for cid in sorted(set(o) | set(n)):
        a, b = o.get(cid), n.get(cid)
        if a is None:
            out.changed.append(LabelChange(clip_id=cid, old=None, new=b.label, why=["clip new in this version"]))
        elif b is None:
            out.changed.append(LabelChange(clip_id=cid, old=a.label, new=None, why=["clip no longer labelled"]))
        elif a.label != b.label:
            out.changed.append(LabelChange(clip_id=cid, old=a.label, new=b.label, why=_why(a, b)))
    return out


def _fingerprint(rows: list[DatasetRow]) -> list:
    return sorted((r.clip_id, r.label, r.label_source, tuple(sorted((a.annotator_id, a.label) for a in r.answers))) for r in rows)


def record_version(run: RunDir, rows: list[DatasetRow]) -> tuple[int, VersionChanges | None]:
    """The version these rows are (a new one when they differ from the last) and its changes."""
    root = run.root / "versions"
    versions = sorted(int(p.name[1:]) for p in root.glob("v*") if p.name[1:].isdigit() and (p / "rows.parquet").exists())
    last = versions[-1] if versions else None
    old = read_records(root / f"v{last}" / "rows.parquet", DatasetRow) if last else []
    if last and _fingerprint(old) == _fingerprint(rows):
        return last, None
    version = (last or 0) + 1
    changes = diff(old, rows, version, last)
    where = root / f"v{version}"
    write_records(where / "rows.parquet", rows, DatasetRow)
    atomic_write_bytes(where / "changes.json", changes.model_dump_json(indent=2).encode())
    atomic_write_bytes(where / "CHANGES.md", render(changes).encode())
    return version, changes


def render(c: VersionChanges) -> str:
    lines = [f"# Dataset version {c.version}", ""]
    if c.previous is None:
        lines.append(f"First version: {c.clips} clips.")
    else:
        lines.append(f"Against version {c.previous}: {len(c.changed)} of {c.clips} clips changed label.")
    if c.annotators_added:
        lines.append(f"Annotators added: {', '.join(c.annotators_added)}.")
    if c.annotators_removed:
        lines.append(f"Annotators removed: {', '.join(c.annotators_removed)}.")
    if c.judge_settings_changed:
        lines.append("The judge settings changed.")
    if c.previous is not None and c.changed:
        lines += ["", "| clip | was | now | why |", "|---|---|---|---|"]
        lines += [f"| {x.clip_id} | {x.old or '-'} | {x.new or '-'} | {'; '.join(x.why)} |" for x in c.changed]
    return "\n".join(lines) + "\n"


def version_summary(path: Path) -> dict:
    return json.loads((path / "changes.json").read_text())
