"""The run report: every plot is written (a "no data" plot for an empty or missing table) and report.md
embeds them."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pipeline.export.report import PLOTS, agreement_matrix, write_run_report
from schemas import Consensus, Judgement, JudgeWeights, Review, ReviewerAnswer
from schemas.run import RunManifest, StageCounts
from storage import RunDir
from tests.fixtures.judge_cases import PROV, answer, clip

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# clip -> annotator -> label
LABELS = {
    "c1": {"a": "happiness", "b": "happiness", "c": "happiness"},
    "c2": {"a": "sadness", "b": "anger", "c": "sadness"},
    "c3": {"a": "anger", "b": "anger"},  # c did not answer
    "c4": {"a": "neutral", "b": "happiness", "c": None},  # c's answer was rejected
}


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _judgement(clip_id: str, annotator: str, label: str | None, s_final: float) -> Judgement:
    return Judgement(annotation_id=f"{annotator}:{clip_id}", clip_id=clip_id, annotator_id=annotator, label=label, s_rec=s_final,
                     s_reason=s_final, s_cot=s_final, s_final=s_final, s_rec_basis="peers", weights=JudgeWeights(), provenance=PROV)


def build_run(root: Path) -> RunDir:
    run = RunDir.create(root)
    run.write("clips", [clip(c) for c in LABELS])
    answers, judgements = [], []
    for i, (cid, by) in enumerate(LABELS.items()):
        for j, (who, label) in enumerate(by.items()):
            answers.append(answer(who, label, clip_id=cid, status="ok" if label else "rejected"))
            judgements.append(_judgement(cid, who, label, 0.2 + 0.15 * i + 0.05 * j))
    run.write("annotations", answers)
    run.write("judgements", judgements)
    consensus = {"c1": ("happiness", False), "c2": ("sadness", True), "c3": ("anger", True), "c4": (None, True)}
    run.write("consensus", [Consensus(clip_id=c, label=lab, method="weighted", margin=0.2, entropy=1.0, uncertainty=0.5,
                                      needs_review=flag, provenance=PROV) for c, (lab, flag) in consensus.items()])
    run.write("reviews", [
        Review(clip_id="c2", answers=[ReviewerAnswer(reviewer="r1", labels=["sadness"])], final_label="sadness", final_source="human",
               decision="accepted", provenance=PROV),
        Review(clip_id="c3", answers=[ReviewerAnswer(reviewer="r1", labels=["fear"])], decision="escalated", provenance=PROV),
        Review(clip_id="c4", decision="pending", provenance=PROV),
    ])
    run.write_manifest(RunManifest(run_id="run-42", stages=[StageCounts(stage=s, seconds=t) for s, t in
                                                          (("sampling", 1.5), ("preprocess", 12.25), ("annotate", 30.0), ("judge", 4.0))]))
    return run


def check_written(out: Path, report: Path) -> str:
    assert report == out / "report.md" and report.exists()
    md = report.read_text()
    for name in PLOTS:
        png = out / f"{name}.png"
        assert png.exists() and png.stat().st_size > 1000, name
        w, h = png_size(png)
        assert w > 100 and h > 100
        assert f"]({name}.png)" in md
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    return md


def test_report_of_a_run(tmp_path):
    run = build_run(tmp_path / "run")
    out = tmp_path / "run" / "dataset" / "report"
    md = check_written(out, write_run_report(run, out))
    assert "# Run report: run-42" in md
    assert "| clips | 4 |" in md
    assert "| flagged for review | 3 |" in md
    assert "| reviewed by people | 2 |" in md
    assert "| accepted by reviewers | 1 |" in md
    assert "| annotators | 3 |" in md
    assert "| total stage seconds | 47.8 |" in md
    assert "## Notes" not in md


def test_agreement_matrix_by_hand():
    rows = [(c, who, lab) for c, by in LABELS.items() for who, lab in by.items() if lab is not None]
    names, share, _ = agreement_matrix(rows)
    assert names == ["a", "b", "c"]
    # a-b: c1 same, c2 differ, c3 same, c4 differ -> 2/4; a-c: c1, c2 same -> 2/2; b-c: c1 same, c2 differ -> 1/2
    assert share[0][1] == share[1][0] == pytest.approx(0.5)
    assert share[0][2] == pytest.approx(1.0)
    assert share[1][2] == pytest.approx(0.5)
    assert share[0][0] == share[1][1] == share[2][2] == 1.0
    names, share, _ = agreement_matrix([("c1", "a", "x"), ("c2", "b", "y")])
    assert share[0][1] is None  # no clip in common


def test_empty_run_still_gets_every_plot(tmp_path):
    run = RunDir.create(tmp_path / "empty")  # no tables, no run.json
    out = tmp_path / "report"
    md = check_written(out, write_run_report(run, out))
    assert "| clips | 0 |" in md and "| annotators | 0 |" in md and "no data" in md


def test_empty_tables_and_a_damaged_one(tmp_path):
    run = RunDir.create(tmp_path / "run")
    for name in ("clips", "consensus", "judgements", "annotations", "reviews"):
        run.write(name, [])
    run.table_path("reviews").write_bytes(b"not parquet")
    run.write_manifest(RunManifest(run_id="r"))
    out = tmp_path / "report"
    md = check_written(out, write_run_report(run, out))
    assert "## Notes" in md and "table reviews could not be read" in md


def test_rerun_overwrites_in_place(tmp_path):
    run = build_run(tmp_path / "run")
    out = tmp_path / "report"
    write_run_report(run, out)
    first = {p.name for p in out.iterdir()}
    write_run_report(run, out)
    assert {p.name for p in out.iterdir()} == first == {"report.md", *(f"{n}.png" for n in PLOTS)}
