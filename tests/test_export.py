"""Stage 6: leakage-safe deterministic splits, hidden test labels with a separate answer key, a card,
Croissant that mlcroissant validates and reads, and a dataset pyarrow and Hugging Face both load."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from agents.judge import judge_run
from pipeline.export.dataset import ExportError
from pipeline.export.export import export_run
from pipeline.export.splits import assign_splits
from schemas import Provenance, Review, ReviewerAnswer, load_config
from storage import SPLITS, DatasetDir, RunDir
from tests.fixtures.judge_cases import GOOD_EVIDENCE, answer, clip, features

LABELS = ["happiness", "sadness", "anger"]


def build_run(root, n_sources=8, per_source=3):
    clips, feats, answers = [], [], []
    for s in range(n_sources):
        for k in range(per_source):
            cid = f"s{s}-c{k}"
            c = clip(cid).model_copy(update={"source_id": f"src{s}"})
            clips.append(c)
            feats.append(features(cid))
            label = LABELS[(s + k) % 3]
            answers += [answer(f"w{w}", label, GOOD_EVIDENCE, clip_id=cid) for w in range(3)]
    config = load_config(overrides=["export.media=none"])  # the fixture clips' sources do not exist
    judged = judge_run(clips, feats, answers, config, "run-x")
    run = RunDir.create(root)
    run.write("clips", clips)
    run.write("features", feats)
    run.write("annotations", answers)
    run.write("judgements", judged.judgements)
    run.write("consensus", judged.consensus)
    return run, config


def test_export_writes_a_leak_free_dataset_with_hidden_test_labels(tmp_path):
    run, config = build_run(tmp_path / "run")
    prov = Provenance(stage="review", stage_config_hash="h", run_id="r")
    run.write("reviews", [Review(clip_id="s0-c0", answers=[ReviewerAnswer(reviewer="a@x", labels=["fear"])], final_label="fear",
                                 final_labels=["fear"], final_source="human", decision="accepted", provenance=prov)])
    # two clips the judge flagged: one lands in the test split (source 6), one in another
    run.write("consensus", [c.model_copy(update={"needs_review": True, "flags": ["low_score"]}) if c.clip_id in ("s6-c0", "s1-c1") else c
                            for c in run.read("consensus")])
    exported = export_run(run, tmp_path / "ds", config, "run-x")
    sizes = exported.splits
    ds = DatasetDir(tmp_path / "ds")
    rows = {s: ds.read_split(s) for s in SPLITS}
    assert sizes == {s: len(rows[s]) for s in SPLITS} and exported.rows == 24 and all(sizes.values())
    assert exported.out == str(tmp_path / "ds") and exported.version is None  # an export that records no version
    sources = {s: {r.source_id for r in rows[s]} for s in SPLITS}
    assert not (sources["train"] & sources["test"]) and not (sources["train"] & sources["validation"])
    assert not (sources["validation"] & sources["test"])
    # the test split is released without anything that gives its labels away
    assert all(r.label is None and not r.steps and not r.answers and not r.label_distribution for r in rows["test"])
    key = {k.clip_id: k for k in ds.read_answer_key()}
    assert set(key) == {r.clip_id for r in rows["test"]} and all(k.label in LABELS + ["fear"] and k.steps for k in key.values())
    labelled = {r.clip_id: r for s in ("train", "validation") for r in rows[s]}
    for r in labelled.values():
        if r.clip_id == "s0-c0":
            continue  # relabelled by a reviewer: no panel rationale argues for "fear"
        assert r.steps and r.evidence and len(r.answers) == 3 and r.s_final is not None and r.split in ("train", "validation")
    human = labelled.get("s0-c0") or key["s0-c0"]
    assert human.label == "fear"  # the reviewer's label wins over the panel's
    assert pq.read_table(ds.split_path("train")).schema.metadata[b"emoforge.record"] == b"DatasetRow"
    card = (tmp_path / "ds" / "README.md").read_text()
    assert "| train | " in card and "answer_key/test.parquet" in card and "`w0`" not in card
    # the card counts every clip alike, the test split's too, although its rows ship without flags
    assert "s6-c0" in key  # the flagged test clip, whose released row carries no flag
    assert "Clips flagged by the judge: 2 of 24" in card and "5. Human review: 1 of 24 " in card


def test_dataset_loads_with_hugging_face_and_croissant_validates(tmp_path, monkeypatch):
    import mlcroissant as mlc
    from datasets import load_dataset

    run, config = build_run(tmp_path / "run")
    export_run(run, tmp_path / "ds", config, "run-x")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    hf = load_dataset("parquet", data_dir=str(tmp_path / "ds" / "data"), cache_dir=str(tmp_path / "hf-cache"))
    assert set(hf) == set(SPLITS) and sum(len(hf[s]) for s in SPLITS) == 24
    assert hf["test"][0]["label"] is None and hf["train"][0]["steps"][0]["text"].startswith("Step 1:")
    meta = json.loads((tmp_path / "ds" / "croissant.json").read_text())
    assert {d["@id"] for d in meta["distribution"]} == {f"{s}-parquet" for s in SPLITS}
    records = list(mlc.Dataset(jsonld=str(tmp_path / "ds" / "croissant.json")).records("train"))
    assert len(records) == len(hf["train"]) and records[0]["train/label"].decode() in LABELS + ["fear"]


def test_splits_are_deterministic_and_grouped():
    ids = [f"c{i}" for i in range(60)]
    groups = [f"g{i // 3}" for i in range(60)]
    labels = [LABELS[i % 3] for i in range(60)]
    cfg = load_config().export
    a, b = assign_splits(ids, groups, labels, cfg), assign_splits(ids, groups, labels, cfg)
    assert a == b
    other = assign_splits(ids, groups, labels, cfg.model_copy(update={"seed": 7}))
    assert other != a
    for split in SPLITS:
        members = {g for c, g in zip(ids, groups) if a[c] == split}
        assert members and all(a[c] == split for c, g in zip(ids, groups) if g in members)
    assert sum(v == "test" for v in a.values()) == pytest.approx(6, abs=3)
    assert set(assign_splits(["x", "y"], ["one", "one"], ["a", "b"], cfg).values()) == {"train"}  # a single source cannot be split
    # every label unique: nothing to stratify, sources are still dealt whole
    few = assign_splits(["a", "b", "c", "d"], ["g1", "g1", "g2", "g3"], ["w", "x", "y", "z"], cfg)
    assert few["a"] == few["b"] and len(set(few.values())) == 3


def test_an_empty_run_is_a_clear_error_and_leaves_nothing(tmp_path):
    run = RunDir.create(tmp_path / "run")
    with pytest.raises(ExportError, match="no clips"):
        export_run(run, tmp_path / "ds", load_config(), "r")
    run2, config = build_run(tmp_path / "run2")
    run2.write("consensus", [])
    with pytest.raises(ExportError, match="no judge results"):
        export_run(run2, tmp_path / "ds", config, "r")
    assert not (tmp_path / "ds").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".ds")]


def test_split_ratios_must_sum_to_one():
    from schemas import ConfigError

    with pytest.raises(ConfigError, match="split ratios must sum to 1"):
        load_config(overrides=["export.train=0.9"])


def test_versions_record_what_changed_and_why(tmp_path):
    from pipeline.export.versions import record_version
    from schemas import AnnotatorAnswer, DatasetRow
    from storage import read_records

    run, config = build_run(tmp_path / "run")
    assert export_run(run, tmp_path / "ds", config, "r", versioned=True).version == 1
    rows = {r.clip_id: r for r in read_records(run.root / "versions" / "v1" / "rows.parquet", DatasetRow)}
    assert len(rows) == 24
    assert record_version(run, list(rows.values())) == (1, None)  # nothing moved: no new version
    moved = rows["s1-c0"].model_copy(update={"label": "fear", "answers": [AnnotatorAnswer(annotator_id="w0", label="fear"),
                                                                          *rows["s1-c0"].answers[1:], AnnotatorAnswer(annotator_id="w9", label="fear")]})
    version, changes = record_version(run, [moved if k == "s1-c0" else r for k, r in rows.items()])
    assert version == 2 and changes.previous == 1 and changes.annotators_added == ["w9"]
    [c] = changes.changed
    assert (c.clip_id, c.old, c.new) == ("s1-c0", rows["s1-c0"].label, "fear")
    assert f"w0 changed its answer {rows['s1-c0'].label} -> fear" in c.why and "new annotator w9 answered fear" in c.why
    assert "| s1-c0 |" in (run.root / "versions" / "v2" / "CHANGES.md").read_text()
