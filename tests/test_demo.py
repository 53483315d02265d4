"""The demo end to end through the real CLI: a dataset that pyarrow, Hugging Face datasets and
mlcroissant read, that `emoforge evaluate` scores, and a run report with its plots."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from storage import SPLITS, DatasetDir

pytestmark = pytest.mark.slow  # runs the demo

ROOT = Path(__file__).resolve().parents[1]


def test_demo_dataset_loads_validates_and_evaluates(tmp_path):
    import mlcroissant as mlc
    from datasets import load_dataset

    out = tmp_path / "demo"
    run = subprocess.run([str(ROOT / ".venv" / "bin" / "emoforge"), "demo", "--out", str(out)], capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "clips flagged for human review" in run.stdout
    ds = DatasetDir(out / "dataset")
    sizes = {s: pq.read_table(ds.split_path(s)).num_rows for s in SPLITS}
    assert all(sizes.values()), sizes
    hf = load_dataset("parquet", data_dir=str(ds.root / "data"), cache_dir=str(tmp_path / "hf"))
    assert {s: len(hf[s]) for s in SPLITS} == sizes
    records = list(mlc.Dataset(jsonld=str(ds.root / "croissant.json")).records("validation"))
    assert len(records) == sizes["validation"]

    # a system that gets every test clip but one right
    key = ds.read_answer_key()
    preds = tmp_path / "preds.jsonl"
    wrong = "neutral" if key[0].label != "neutral" else "anger"
    preds.write_text("\n".join(json.dumps({"clip_id": k.clip_id, "label": wrong if i == 0 else k.label,
                                           "rationale": " ".join(s.text for s in k.steps)}) for i, k in enumerate(key)) + "\n")
    ev = subprocess.run([str(ROOT / ".venv" / "bin" / "emoforge"), "evaluate", str(preds), "--dataset", str(ds.root),
                         "--json", str(tmp_path / "eval.json")], capture_output=True, text=True, timeout=600)
    assert ev.returncode == 0, ev.stdout[-2000:] + ev.stderr[-2000:]
    report = json.loads((tmp_path / "eval.json").read_text())
    assert abs(report["accuracy"] - (len(key) - 1) / len(key)) < 1e-9
    assert report["rationale"]["rouge_l"] is None or report["rationale"]["rouge_l"] > 0.99  # the dataset's own rationale

    # exporting the finished run again (its own configuration) gives the same splits
    again = subprocess.run([str(ROOT / ".venv" / "bin" / "emoforge"), "export", str(out), "--out", str(tmp_path / "ds2")],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    for s in SPLITS:
        assert [r.clip_id for r in DatasetDir(tmp_path / "ds2").read_split(s)] == [r.clip_id for r in ds.read_split(s)]

    pngs = sorted(p.name for p in (out / "report").glob("*.png"))
    assert len(pngs) == 6 and all((out / "report" / p).stat().st_size > 1000 for p in pngs)
    assert all(p in (out / "report" / "report.md").read_text() for p in pngs)
