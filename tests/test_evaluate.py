"""The benchmark evaluator on a dataset built by hand: metrics checked against values worked out on paper."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pipeline.export.evaluate import (
    DatasetError, EvaluationError, PredictionsError, evaluate, read_predictions, render_markdown, write_outputs,
)
from schemas import AnswerKeyRow, DatasetRow, Prediction, RationaleStep
from schemas.features import LabelProb
from storage import DatasetDir
from tests.fixtures.judge_cases import PROV, clip, ev, features

EMOFORGE = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "emoforge")

# test split: gold labels (in the answer key) and the reference rationale of each clip
GOLD = {"t1": "happiness", "t2": "happiness", "t3": "sadness", "t4": "anger"}
STEPS = {cid: [f"Step 1: The speaker sounds {lab}.", f"Step 2: Therefore the emotion is {lab}."] for cid, lab in GOLD.items()}
REF = {cid: " ".join(s) for cid, s in STEPS.items()}
# predictions: t1 right, t2 happiness->sadness, t3 right, t4 anger->happiness
PRED = {"t1": "happiness", "t2": "sadness", "t3": "sadness", "t4": "happiness"}


def _steps(texts: list[str]) -> list[RationaleStep]:
    return [RationaleStep(index=i + 1, text=t) for i, t in enumerate(texts)]


def _row(cid: str, split: str, label: str | None, steps=(), dist=None) -> DatasetRow:
    return DatasetRow(clip_id=cid, source_id="s1", split=split, start=10.0, end=14.0, label=label, labels=[label] if label else [],
                      label_distribution=[LabelProb(label=k, prob=v) for k, v in (dist or {}).items()], steps=_steps(list(steps)),
                      provenance=PROV)


def build_dataset(root: Path, *, with_features=("t1", "t2", "t3")) -> DatasetDir:
    ds = DatasetDir(root)
    ds.write_split("train", [_row("a1", "train", "happiness", ["Step 1: smiling."]), _row("a2", "train", "neutral", ["Step 1: calm."])])
    ds.write_split("validation", [_row("v1", "validation", "sadness", ["Step 1: tears."], dist={"sadness": 0.9, "neutral": 0.1}),
                                  _row("v2", "validation", "happiness", ["Step 1: laughing."])])
    ds.write_split("test", [_row(cid, "test", None) for cid in GOLD])
    ds.write_answer_key([AnswerKeyRow(clip_id=cid, label=lab, labels=[lab], steps=_steps(STEPS[cid])) for cid, lab in GOLD.items()])
    ds.write_features([features(cid) for cid in with_features], [clip(cid) for cid in GOLD])
    return ds


@pytest.fixture()
def dataset(tmp_path) -> DatasetDir:
    return build_dataset(tmp_path / "ds")


def preds(labels: dict[str, str], rationale: dict[str, str] | None = None, evidence: dict | None = None) -> list[Prediction]:
    return [Prediction(clip_id=c, label=lab, rationale=(rationale or {}).get(c), evidence=(evidence or {}).get(c, [])) for c, lab in labels.items()]


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*")}


# --------------------------------------------------------------------------- label metrics


def test_label_metrics_match_hand_computed_values(dataset):
    r = evaluate(preds(PRED), dataset.root)
    # taxonomy: every label the dataset mentions, in the default taxonomy's order
    assert r.labels == ["anger", "happiness", "sadness", "neutral"]
    assert r.taxonomy_source == "dataset labels"
    assert (r.n_clips, r.n_scored, r.n_missing, r.n_unlabelled) == (4, 4, 0, 0)
    assert r.accuracy == pytest.approx(0.5)
    # F1: anger 0, happiness P=1/2 R=1/2 -> 1/2, sadness P=1/2 R=1 -> 2/3; neutral occurs nowhere (not averaged)
    assert r.macro_f1 == pytest.approx((0 + 1 / 2 + 2 / 3) / 3)
    assert r.weighted_f1 == pytest.approx((1 * 0 + 2 * (1 / 2) + 1 * (2 / 3)) / 4)
    assert r.uar == pytest.approx((0 + 1 / 2 + 1) / 3)
    assert r.war == pytest.approx(0.5)  # support-weighted recall is accuracy
    per = {c.label: c for c in r.per_class}
    assert [c.label for c in r.per_class] == r.labels
    assert (per["happiness"].precision, per["happiness"].recall, per["happiness"].support, per["happiness"].predicted) == (0.5, 0.5, 2, 2)
    assert (per["sadness"].precision, per["sadness"].recall, per["sadness"].f1) == (0.5, 1.0, pytest.approx(2 / 3))
    assert (per["anger"].recall, per["anger"].support, per["neutral"].support) == (0.0, 1, 0)
    assert r.confusion.gold == r.confusion.predicted == r.labels
    assert r.confusion.matrix == [[0, 1, 0, 0],   # anger -> happiness
                                  [0, 1, 1, 0],   # happiness -> happiness, sadness
                                  [0, 0, 1, 0],   # sadness -> sadness
                                  [0, 0, 0, 0]]


def test_perfect_predictions_score_one(dataset):
    r = evaluate(preds(GOLD), dataset.root)
    assert r.accuracy == r.macro_f1 == r.uar == r.war == r.weighted_f1 == 1.0


def test_labels_are_matched_case_insensitively(dataset):
    r = evaluate(preds({c: lab.upper() + " " for c, lab in GOLD.items()}), dataset.root)
    assert r.accuracy == 1.0


def test_other_splits_are_scored_against_their_own_labels(dataset):
    r = evaluate(preds({"v1": "sadness", "v2": "sadness"}), dataset.root, split="validation")
    assert (r.split, r.n_scored, r.accuracy) == ("validation", 2, 0.5)
    assert r.uar == pytest.approx((1 + 0) / 2)


def test_allow_missing_counts_missing_clips_as_wrong(dataset):
    three = {c: lab for c, lab in GOLD.items() if c != "t4"}  # all right, t4 (anger) missing
    r = evaluate(preds(three), dataset.root, allow_missing=True)
    assert (r.n_missing, r.missing_clip_ids) == (1, ["t4"])
    assert r.accuracy == pytest.approx(3 / 4)
    assert r.uar == pytest.approx((0 + 1 + 1) / 3)
    # a missing answer is no false positive of any class: happiness and sadness keep precision 1
    per = {c.label: c for c in r.per_class}
    assert per["happiness"].precision == per["sadness"].precision == 1.0
    assert r.confusion.predicted == r.labels + ["(missing)"]
    assert r.confusion.matrix[0] == [0, 0, 0, 0, 1]


def test_dataset_card_class_names_set_the_taxonomy(dataset):
    (dataset.root / "README.md").write_text(
        "---\ndataset_info:\n  features:\n  - name: clip_id\n    dtype: string\n  - name: label\n    dtype:\n      class_label:\n"
        "        names:\n          '0': sadness\n          '1': anger\n          '2': happiness\n          '3': fear\n---\n# card\n")
    r = evaluate(preds({**PRED, "t4": "fear"}), dataset.root)
    assert r.taxonomy_source == "dataset card"
    assert r.labels == ["sadness", "anger", "happiness", "fear"]
    assert r.confusion.matrix[1] == [0, 0, 0, 1]  # anger -> fear


@pytest.mark.parametrize("front", ["---\ndataset_info: [unclosed\n---\n", "---\n- a list, not a mapping\n---\n", "no front matter\n"])
def test_a_card_without_usable_class_names_leaves_the_taxonomy_to_the_labels(dataset, front):
    (dataset.root / "README.md").write_text(front + "# card\n")
    r = evaluate(preds(PRED), dataset.root)
    assert r.taxonomy_source == "dataset labels"
    assert r.labels == ["anger", "happiness", "sadness", "neutral"]  # every label it mentions, in the default taxonomy's order


# --------------------------------------------------------------------------- rationales and evidence


def test_rouge_l_is_one_for_identical_rationales_and_less_otherwise(dataset):
    same = evaluate(preds(GOLD, rationale=REF), dataset.root).rationale
    assert same.n_pairs == 4
    assert same.rouge_l == pytest.approx(1.0)
    assert same.bleu == pytest.approx(100.0)
    changed = dict(REF, t2="Step 1: The face shows nothing in particular. Step 2: So I guess fear.")
    other = evaluate(preds(GOLD, rationale=changed), dataset.root).rationale
    assert other.rouge_l < 1.0 and other.bleu < 100.0
    partial = evaluate(preds(GOLD, rationale={"t1": REF["t1"]}), dataset.root).rationale
    assert (partial.n_pairs, partial.n_without_prediction, partial.rouge_l) == (1, 3, pytest.approx(1.0))
    none = evaluate(preds(GOLD), dataset.root).rationale
    assert (none.n_pairs, none.rouge_l, none.bleu) == (0, None, None)


def test_evidence_coverage_counts_a_planted_false_quote(dataset):
    evidence = {
        "t1": [ev("e1", "text", 'The speaker says "so happy".', 10.5, 11.1),
               ev("e2", "text", 'The speaker says "I hate this".'),  # planted: never said
               ev("e3", "face", "AU12 lip corner puller active", 10.5, 11.0, ref="faces[track=0].action_units[AU12]")],
        "t2": [ev("e4", "context", "The room looks dim.")],  # nothing checkable
        "t4": [ev("e5", "text", 'The speaker says "so happy".')],  # t4 has no features in the dataset
    }
    r = evaluate(preds(PRED, evidence=evidence), dataset.root)
    e = r.evidence
    assert (e.n_cited, e.supported, e.contradicted, e.unverifiable) == (5, 2, 1, 2)
    assert e.coverage == pytest.approx(2 / 5)
    assert e.n_predictions_citing == 3
    assert [(p.clip_id, p.evidence_id) for p in e.contradictions] == [("t1", "e2")]
    assert "i hate this" in e.contradictions[0].reason
    assert evaluate(preds(PRED), dataset.root).evidence.coverage is None


# --------------------------------------------------------------------------- bad input


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_read_predictions_formats(tmp_path):
    csv_ = _write(tmp_path / "p.csv", "clip_id,label,rationale\nt1,happiness,Step 1: smile.\nt2, sadness ,\n\n")
    got = read_predictions(csv_)
    assert [(p.clip_id, p.label, p.rationale) for p in got] == [("t1", "happiness", "Step 1: smile."), ("t2", "sadness", None)]
    jl = _write(tmp_path / "p.jsonl", json.dumps({"clip_id": "t1", "label": "anger", "evidence": [
        {"evidence_id": "e1", "modality": "text", "cue": "x"}]}) + "\n\n" + json.dumps({"clip_id": "t2", "label": "fear"}) + "\n")
    got = read_predictions(jl)
    assert [p.clip_id for p in got] == ["t1", "t2"] and got[0].evidence[0].evidence_id == "e1"
    from storage import write_records

    pq_ = tmp_path / "p.parquet"
    write_records(pq_, preds(PRED, rationale=REF), Prediction)
    got = read_predictions(pq_)
    assert {p.clip_id: p.label for p in got} == PRED and got[0].rationale == REF[got[0].clip_id]


@pytest.mark.parametrize("name,text,message", [
    ("missing.csv", None, "no such file"),
    ("p.txt", "clip_id,label\n", "unsupported format"),
    ("p.csv", "clip,emotion\nt1,anger\n", "missing clip_id, label"),
    ("p.csv", "clip_id,label\n", "holds no predictions"),
    ("p.csv", "clip_id,label\nt1,\n", "line 2: empty label"),
    ("p.csv", "clip_id,label\nt1,anger\nt1,fear\n", "predicted more than once: t1"),
    ("p.jsonl", '{"clip_id": "t1", "label": "anger"}\n{"clip_id": \n', "line 2: not valid JSON"),
    ("p.jsonl", '["t1", "anger"]\n', "line 1: expected an object"),
    ("p.jsonl", '{"clip_id": "t1", "label": "anger", "evidence": [{"cue": 3}]}\n', "line 1: evidence.0"),
    ("p.parquet", "not parquet at all", "not a readable Parquet file"),
    ("p.csv", b"\xff\xfe\x00bad", "not UTF-8"),
])
def test_unreadable_predictions_name_the_file(tmp_path, name, text, message):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    with pytest.raises(PredictionsError) as exc:
        read_predictions(path)
    assert str(exc.value).startswith(f"{path}: ")
    assert message in str(exc.value)


@pytest.mark.parametrize("labels,kwargs,error,message", [
    ({**PRED, "zz9": "anger"}, {}, PredictionsError, "1 prediction(s) for clip ids not in the test split: zz9"),
    ({c: lab for c, lab in PRED.items() if c != "t3"}, {}, PredictionsError, "1 clip(s) of the test split have no prediction: t3"),
    ({**PRED, "t1": "joy"}, {}, PredictionsError, "label(s) outside the dataset's taxonomy: joy"),
    ({}, {}, PredictionsError, "holds no predictions"),
    (PRED, {"split": "dev"}, DatasetError, "unknown split 'dev'"),
])
def test_predictions_that_do_not_fit_the_dataset_are_errors(dataset, labels, kwargs, error, message):
    before = files_under(dataset.root)
    with pytest.raises(error) as exc:
        evaluate(preds(labels), dataset.root, predictions_path="preds.csv", **kwargs)
    assert message in str(exc.value)
    if error is PredictionsError:
        assert str(exc.value).startswith("preds.csv: ")
    assert files_under(dataset.root) == before


def test_duplicate_clip_ids_in_a_list_are_an_error(dataset):
    with pytest.raises(PredictionsError, match="predicted more than once: t1"):
        evaluate(preds(PRED) + preds({"t1": "anger"}), dataset.root)


def test_empty_or_absent_datasets_are_errors(tmp_path, dataset):
    with pytest.raises(DatasetError, match="no such dataset directory"):
        evaluate(preds(PRED), tmp_path / "nowhere")
    empty = DatasetDir(tmp_path / "empty")
    empty.write_split("test", [])
    with pytest.raises(DatasetError, match="the test split is empty or missing") as exc:
        evaluate(preds(PRED), empty.root)
    assert str(exc.value).startswith(str(empty.split_path("test")))
    dataset.answer_key_path.unlink()
    with pytest.raises(DatasetError, match="answer key is missing or empty"):
        evaluate(preds(PRED), dataset.root)
    unlabelled = DatasetDir(tmp_path / "unlabelled")
    unlabelled.write_split("validation", [_row("v1", "validation", None)])
    with pytest.raises(DatasetError, match="no labels at all"):
        evaluate(preds({"v1": "anger"}), unlabelled.root, split="validation")


def test_write_outputs_is_all_or_nothing(tmp_path, dataset):
    r = evaluate(preds(PRED), dataset.root)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(EvaluationError, match="cannot write"):
        write_outputs(r, tmp_path / "out.json", blocker / "sub" / "report.md")  # the markdown cannot be written
    assert not (tmp_path / "out.json").exists()
    written = write_outputs(r, tmp_path / "out.json", tmp_path / "out.md")
    assert written == [tmp_path / "out.json", tmp_path / "out.md"]
    assert json.loads((tmp_path / "out.json").read_text())["accuracy"] == 0.5
    md = (tmp_path / "out.md").read_text()
    assert md == render_markdown(r) and "| accuracy | 0.500 |" in md and "| anger | 0 | 1 | 0 | 0 |" in md
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- command line


def emoforge(*args):
    env = dict(os.environ, COLUMNS="400")  # rich wraps at the terminal width; one logical line is what is checked
    return subprocess.run([EMOFORGE, *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


def _csv(path: Path, labels: dict[str, str], rationale: dict[str, str] | None = None) -> Path:
    rows = ["clip_id,label,rationale"] + [f'{c},{lab},"{(rationale or {}).get(c, "")}"' for c, lab in labels.items()]
    return _write(path, "\n".join(rows) + "\n")


@pytest.mark.slow  # runs the emoforge command
def test_cli_end_to_end(tmp_path, dataset):
    p = _csv(tmp_path / "preds.csv", PRED, REF)
    proc = emoforge("evaluate", p, "--dataset", dataset.root, "--json", tmp_path / "eval.json", "--report", tmp_path / "eval.md")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["accuracy"] == 0.5 and report["uar"] == pytest.approx(0.5) and report["rationale"]["rouge_l"] == pytest.approx(1.0)
    assert report["predictions"] == str(p)
    assert "accuracy" in proc.stdout and "confusion matrix" in proc.stdout
    assert "# Evaluation: preds.csv on test" in (tmp_path / "eval.md").read_text()


@pytest.mark.slow  # runs the emoforge command
def test_cli_allow_missing(tmp_path, dataset):
    p = _csv(tmp_path / "preds.csv", {"t1": "happiness"})
    proc = emoforge("evaluate", p, "--dataset", dataset.root, "--json", tmp_path / "eval.json")
    assert proc.returncode == 2 and not (tmp_path / "eval.json").exists()
    proc = emoforge("evaluate", p, "--dataset", dataset.root, "--json", tmp_path / "eval.json", "--allow-missing")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "eval.json").read_text())["accuracy"] == 0.25
    assert "3 clip(s) had no prediction" in proc.stderr


@pytest.mark.slow  # runs the emoforge command
@pytest.mark.parametrize("case", ["unknown_ids", "bad_split", "no_dataset"])
def test_cli_user_errors_are_one_line_and_write_nothing(tmp_path, dataset, case):
    p = _csv(tmp_path / "preds.csv", {**PRED, "zz9": "anger"} if case == "unknown_ids" else PRED)
    args = ["evaluate", p, "--dataset", tmp_path / "nowhere" if case == "no_dataset" else dataset.root,
            "--json", tmp_path / "eval.json", "--report", tmp_path / "eval.md"]
    if case == "bad_split":
        args += ["--split", "dev"]
    before = files_under(tmp_path)
    proc = emoforge(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("emoforge: error:"), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    expected = {"unknown_ids": f"{p}: 1 prediction(s) for clip ids not in the test split: zz9", "bad_split": "--split must be one of",
                "no_dataset": "no such dataset directory"}[case]
    assert expected in lines[0]
    assert files_under(tmp_path) == before
