"""Bootstrap intervals of the label-quality figures and the paired comparison of two runs
(pipeline/export/label_quality.py, bench/compare_runs.py), on hand-built outcomes."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import numpy as np
import pytest

from bench import compare_runs
from pipeline.export.label_quality import (HEADLINE, AnswerOutcome, ClipOutcome, _ece_of_draws, ece_if_calibrated, evaluate,
                                          expected_calibration_error, headline, intervals, paired_difference)

LABELS = ["anger", "fear", "neutral"]


def outcomes(n=60, seed=0, right_share=0.6):
    """n clips, each with two answers; the confidence and the scores rise with being right, noisily, so
    every figure is defined and none is perfect."""
    rng = np.random.default_rng(seed)
    clips, answers = [], []
    for i in range(n):
        gold = LABELS[i % 3]
        right = rng.random() < right_share
        pred = gold if right else LABELS[(i + 1) % 3]
        conf = float(np.clip(0.5 + (0.2 if right else -0.1) + rng.normal(0, 0.15), 0.01, 0.99))
        clips.append(ClipOutcome(f"c{i}", gold, pred, conf, conf, conf < 0.5))
        for who in ("x", "y"):
            ok = rng.random() < 0.5
            s = float(np.clip(0.5 + (0.15 if ok else -0.05) + rng.normal(0, 0.2), 0, 1))
            answers.append(AnswerOutcome(f"c{i}", who, gold if ok else pred if pred != gold else LABELS[(i + 2) % 3], gold, s, s, s, s))
    return clips, answers


def test_headline_gives_the_same_figures_as_evaluate():
    clips, answers = outcomes()
    full, h = evaluate(clips, answers, LABELS), headline(clips, answers)
    assert h["accuracy"] == pytest.approx(full["consensus"]["accuracy"])
    assert h["uar"] == pytest.approx(full["consensus"]["uar"])
    assert h["s_final_auroc"] == pytest.approx(full["answer_auroc"]["s_final"])
    assert h["s_reason_auroc"] == pytest.approx(full["answer_auroc"]["s_reason"])
    assert h["review_auroc"] == pytest.approx(full["clip_auroc"]["review_score"])
    assert h["flagged_0.85"] == pytest.approx(full["flagged_for_accuracy"]["confidence"]["0.85"])
    assert h["ece"] == pytest.approx(full["ece"]["value"])


def test_intervals_hold_the_figure_narrow_with_more_clips_and_repeat_with_the_seed():
    small, large = outcomes(30), outcomes(600)
    iv_small, iv_large = intervals(*small, resamples=300), intervals(*large, resamples=300)
    for (clips, answers), iv in ((small, iv_small), (large, iv_large)):
        h = headline(clips, answers)
        for k in ("accuracy", "uar", "s_final_auroc", "review_auroc"):
            assert iv[k][0] <= h[k] <= iv[k][1], k
    # the accuracy's interval shrinks about as 1/sqrt(n): twenty times the clips, about 4.5 times narrower
    widths = [iv["accuracy"][1] - iv["accuracy"][0] for iv in (iv_small, iv_large)]
    assert 3 < widths[0] / widths[1] < 7, widths
    assert intervals(*small, resamples=300) == iv_small  # seeded: a rerun reports the same interval
    assert intervals(*small, resamples=300, seed=1) != iv_small


def test_a_figure_undefined_on_many_resamples_gets_no_interval():
    # three clips, one wrong: a third of the draws hold no wrong clip, and the AUROC is undefined there
    clips = [ClipOutcome("a", "anger", "anger", 0.9, 0.9, False), ClipOutcome("b", "fear", "fear", 0.8, 0.8, False),
             ClipOutcome("c", "neutral", "anger", 0.3, 0.3, True)]
    iv = intervals(clips, [], resamples=200)
    assert iv["review_auroc"] is None and iv["s_final_auroc"] is None  # no answers at all: never defined
    assert iv["accuracy"] is not None
    assert intervals(clips[:1], []) == {k: None for k in HEADLINE}


def test_paired_difference_of_a_run_with_itself_is_zero_and_counts_the_clips_that_changed():
    clips, answers = outcomes(90)
    same = paired_difference((clips, answers), (clips, answers), resamples=200)
    assert same["clips"] == 90 and same["mcnemar_p"] == 1.0
    assert all(v == [0.0, 0.0] for k, v in same["difference"].items() if v is not None)
    # after: twelve wrong clips made right, two right ones made wrong, and one clip only one run has
    wrong = [i for i, c in enumerate(clips) if not c.correct][:12]
    right = [i for i, c in enumerate(clips) if c.correct][:2]
    after = list(clips)
    for i in wrong:
        after[i] = replace(after[i], predicted=after[i].gold)
    for i in right:
        after[i] = replace(after[i], predicted="surprise")
    after.append(ClipOutcome("new", "anger", "anger", 0.9, 0.9, False))
    d = paired_difference((clips, answers), (after, answers), resamples=500)
    assert (d["clips"], d["only_before"], d["only_after"]) == (90, 0, 1)
    assert (d["only_after_right"], d["only_before_right"]) == (12, 2)
    assert d["mcnemar_p"] == pytest.approx(0.0129, abs=1e-3)  # two-sided binomial, 2 of 14 at 1/2
    assert d["after"]["accuracy"] - d["before"]["accuracy"] == pytest.approx(10 / 90)
    lo, hi = d["difference"]["accuracy"]
    assert 0 < lo < 10 / 90 < hi  # a paired interval: ten clips net on ninety is clear of zero


def write_result(path, clips, answers, items=None, part="blind"):
    items = items or {c.clip_id: f"file-{c.clip_id}.wav" for c in clips}
    path.write_text(json.dumps({"meta": {}, "results": {part: {"outcomes": {
        "clips": [{**asdict(c), "item": items[c.clip_id]} for c in clips], "answers": [asdict(a) for a in answers]}}}}))


def test_compare_runs_pairs_two_result_files_by_item(tmp_path, capsys):
    clips, answers = outcomes(45)
    write_result(tmp_path / "before.json", clips, answers)
    # the after run's clips got other ids (another machine's stage 1, say) but come from the same files
    renamed = {c.clip_id: f"z{c.clip_id}" for c in clips}
    moved = [replace(c, clip_id=renamed[c.clip_id], predicted=c.gold) for c in clips]
    write_result(tmp_path / "after.json", moved, [replace(a, clip_id=renamed[a.clip_id]) for a in answers],
                 items={renamed[c.clip_id]: f"file-{c.clip_id}.wav" for c in clips})
    assert compare_runs.main([str(tmp_path / "before.json"), str(tmp_path / "after.json"), "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert "45 clips in both runs" in out
    wrong = sum(not c.correct for c in clips)
    assert f"right on {wrong} clips only after the change and on 0 only before it" in out
    assert "| consensus accuracy |" in out and "| 1.00 |" in out


def test_compare_runs_names_a_file_it_cannot_pair(tmp_path, capsys):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"meta": {}, "results": {"blind": {"clips": 3}}}))
    clips, answers = outcomes(6)
    write_result(tmp_path / "new.json", clips, answers)
    assert compare_runs.main([str(old), str(tmp_path / "new.json")]) == 2
    assert f"{old}: written before the bench kept its clips" in capsys.readouterr().err
    assert compare_runs.main([str(tmp_path / "new.json"), str(tmp_path / "new.json"), "--part", "gold"]) == 2
    assert "has no gold run (parts: blind)" in capsys.readouterr().err


def test_the_ece_interval_is_of_the_same_binning_as_the_figure():
    clips, answers = outcomes(120)
    full = evaluate(clips, answers, LABELS, ece_bins=4)
    assert headline(clips, answers, ece_bins=4)["ece"] == pytest.approx(full["ece"]["value"])
    assert headline(clips, answers, ece_bins=4)["ece"] != pytest.approx(headline(clips, answers)["ece"])
    assert intervals(clips, answers, resamples=100, ece_bins=4)["ece"] != intervals(clips, answers, resamples=100)["ece"]


def test_the_ece_of_a_calibrated_confidence_on_few_clips_is_large_and_not_called_miscalibrated():
    """On 29 clips a confidence that is right exactly as often as it says still shows an ECE above the
    0.10 goal: each of 10 bins holds a handful. The null says so; an overconfident one is told apart."""
    rng = np.random.default_rng(7)
    conf = rng.uniform(0.3, 0.95, 29)
    calibrated = (rng.random(29) < conf).tolist()
    null = ece_if_calibrated(conf.tolist(), calibrated)
    assert null["mean"] > 0.10 and null["upper"] > null["mean"]
    assert null["p"] > 0.05  # drawn calibrated, so seen as such (seeded: this is one fixed draw, not a flaky one)
    assert ece_if_calibrated(conf.tolist(), calibrated) == null  # seeded: the same figures again
    # the same null shrinks with the clips' number: on 2000 clips perfect calibration shows a few hundredths
    many = rng.uniform(0.3, 0.95, 2000)
    assert ece_if_calibrated(many.tolist(), (rng.random(2000) < many).tolist())["mean"] < 0.03
    # overconfident: says 0.9, right half the time
    sure = [0.9] * 60
    half = [i % 2 == 0 for i in range(60)]
    assert expected_calibration_error(sure, half) == pytest.approx(0.4)
    assert ece_if_calibrated(sure, half)["p"] < 0.01
    assert ece_if_calibrated([0.8], [True]) is None


def test_the_null_draws_are_scored_by_the_same_ece_as_the_figure():
    rng = np.random.default_rng(3)
    conf = rng.uniform(0, 1, 40)
    draws = (rng.random((5, 40)) < 0.5).astype(float)
    for bins in (4, 10):
        assert _ece_of_draws(conf, draws, bins) == pytest.approx([expected_calibration_error(conf.tolist(), d.astype(bool).tolist(), bins) for d in draws])


def test_evaluate_reports_the_calibrated_null_beside_the_ece():
    clips, answers = outcomes(40)
    full = evaluate(clips, answers, LABELS, ece_bins=5)
    assert full["ece"]["if_calibrated"] == ece_if_calibrated([c.confidence for c in clips], [c.correct for c in clips], 5)
    from bench.label_quality import markdown

    md = markdown({"manifest": "m.csv"}, {"blind": {**full, "by_corpus": {}}})
    null = full["ece"]["if_calibrated"]
    assert (f"a perfectly calibrated confidence would show {null['mean']:.3f} on these clips (95% of draws up to {null['upper']:.3f};"
            f" the share of them at least this large, p {null['p']:.2f})") in md


def test_each_annotators_stated_probability_gets_the_same_calibrated_null():
    """An annotator with seven answers shows a large ECE even when it is calibrated: the report says
    what a calibrated one would show on as many answers."""
    from bench.label_quality import markdown

    clips, answers = outcomes(40)
    answers = [replace(a, stated=0.8) for a in answers]
    full = evaluate(clips, answers, LABELS)
    for who in ("x", "y"):
        mine = [a for a in answers if a.annotator_id == who]
        null = ece_if_calibrated([a.stated for a in mine], [a.correct for a in mine])
        assert full["annotators"][who]["stated_ece_if_calibrated"] == null
        assert null["p"] < 0.01  # says 0.8, right about half the time
    md = markdown({"manifest": "m.csv"}, {"blind": {**full, "by_corpus": {}}})
    v = full["annotators"]["x"]
    assert f"| 0.80 ({v['stated_ece']:.2f}; if calibrated {v['stated_ece_if_calibrated']['mean']:.2f}, p " in md


def test_the_calibrated_null_is_the_same_drawn_in_small_batches(monkeypatch):
    """Its memory is bounded by drawing the outcomes in batches; the draws come from one seeded stream,
    so the batches change nothing."""
    from pipeline.export import label_quality

    rng = np.random.default_rng(5)
    conf = rng.uniform(0.2, 0.9, 50)
    right = (rng.random(50) < conf).tolist()
    whole = ece_if_calibrated(conf.tolist(), right)
    monkeypatch.setattr(label_quality, "NULL_BATCH_VALUES", 50 * 7)  # seven draws a batch
    assert ece_if_calibrated(conf.tolist(), right) == whole
