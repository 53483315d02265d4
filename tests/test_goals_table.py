"""bench/goals_table.py: the README's goals table from label-quality result files."""

from __future__ import annotations

import json

from bench import goals_table


def result(accuracy=0.5, s_final=0.81, s_reason=0.6, ece=0.2, flagged=None, annotators=None, accepted=0):
    return {
        "clips": 10, "consensus": {"accuracy": accuracy, "uar": accuracy - 0.1},
        "answer_auroc": {"s_final": s_final, "s_reason": s_reason}, "clip_auroc": {"review_score": 0.7},
        "flagged_for_accuracy": {"confidence": {"0.85": flagged, "0.90": None}},
        "ece": {"value": ece},
        "annotators": annotators or {},
        "routing": {"flagged_share": 1 - accepted / 10, "accepted": accepted, "accepted_accuracy": 0.9 if accepted else None},
    }


def write(tmp_path, name, parts, commit="abc1234"):
    (tmp_path / f"label_quality-t-{name}.json").write_text(json.dumps({"meta": {"commit": commit}, "results": parts}))


def test_table_marks_met_goals_and_names_the_annotator_the_consensus_trails(tmp_path, capsys):
    write(tmp_path, "dev", {"blind": result(flagged=0.4, annotators={
        "prosody": {"answered": 18, "accuracy": 0.61, "consensus_accuracy": 0.56},
        "punctuation": {"answered": 22, "accuracy": 0.41, "consensus_accuracy": 0.55}})})
    # a gold run's column reads its gold part, not the blind one run before it
    write(tmp_path, "gold-m1m4", {"blind": result(accuracy=0.3), "gold": result(accuracy=0.71, s_reason=0.77, ece=0.05, accepted=4, annotators={
        "voice-learned": {"answered": 20, "accuracy": 0.70, "consensus_accuracy": 0.70}})})
    assert goals_table.main(["--tag", "t", "--results", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| ")]
    rows = {c[0]: c[1:] for c in cells}
    assert rows["goal"] == ["dev set, blind", "Polish, speakers m1, m4 gold"]
    assert rows["consensus accuracy / UAR"] == ["0.50 / 0.40", "0.71 / 0.61"]
    assert rows["AUROC of S_reason ≥ 0.65"] == ["0.60", "**0.77**"]
    assert rows["flagged share for 0.85 accepted ≤ 0.50"] == ["**0.40**", "not reachable"]
    assert rows["consensus ≥ each annotator on its clips"] == ["no: prosody 0.61, the consensus 0.56 on its 18", "**yes**"]
    assert rows["the run's routing (target accuracy 0.9)"] == ["flags every clip", "60% flagged, 4 accepted, 0.90 right"]
    assert "Commit: abc1234." in out
    assert "label_quality-t-polish.json" in err  # a missing run is named, its column left out


def test_no_runs_for_the_tag_is_a_clear_error(tmp_path, capsys):
    assert goals_table.main(["--tag", "nothing", "--results", str(tmp_path)]) == 2
    assert f"{tmp_path}: no label_quality-nothing-*.json" in capsys.readouterr().err


def test_a_gold_column_without_a_gold_run_names_the_file(tmp_path, capsys):
    write(tmp_path, "gold-m3m5", {"blind": result()})
    assert goals_table.main(["--tag", "t", "--results", str(tmp_path)]) == 2
    assert "label_quality-t-gold-m3m5.json: has no gold run (parts: blind)" in capsys.readouterr().err


def test_a_figure_with_a_bootstrap_interval_shows_it_beside_the_figure(tmp_path, capsys):
    with_intervals = {**result(flagged=0.4), "intervals": {"level": 0.95, "resamples": 1000, "accuracy": [0.31, 0.66], "uar": [0.22, 0.63],
                                                           "s_final_auroc": [0.71, 0.93], "s_reason_auroc": None,
                                                           "review_auroc": [0.72, 0.98], "flagged_0.85": [0.28, 0.86], "ece": [0.12, 0.3]}}
    write(tmp_path, "dev", {"blind": with_intervals})
    assert goals_table.main(["--tag", "t", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = {c[0]: c[1:] for c in ([x.strip() for x in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| "))}
    assert rows["consensus accuracy / UAR"] == ["0.50 (0.31–0.66) / 0.40 (0.22–0.63)"]
    assert rows["answer-level AUROC of S_final ≥ 0.80"] == ["**0.81** (0.71–0.93)"]
    assert rows["AUROC of S_reason ≥ 0.65"] == ["0.60"]  # no interval where the resamples leave the figure undefined
    assert rows["flagged share for 0.85 accepted ≤ 0.50"] == ["**0.40** (0.28–0.86)"]
    assert rows["ECE ≤ 0.10"] == ["0.20 (0.12–0.30)"]
    assert "95% bootstrap intervals" in out


def test_the_ece_cell_says_what_a_calibrated_confidence_would_show_on_the_same_clips(tmp_path, capsys):
    """From the clips the result keeps (bench/label_quality.py's `outcomes`), with the same function
    and seed as the bench's own report, so the two agree."""
    from pipeline.export.label_quality import ece_if_calibrated

    kept = [{"clip_id": f"c{i}", "gold": "anger", "predicted": "anger" if i % 3 else "fear", "confidence": 0.5 + i / 100,
             "review_score": 0.5, "needs_review": True, "item": f"f{i}.wav"} for i in range(20)]
    r = {**result(), "ece": {"value": 0.2, "bins": 10}, "outcomes": {"clips": kept, "answers": []}}
    write(tmp_path, "dev", {"blind": r})
    assert goals_table.main(["--tag", "t", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = {c[0]: c[1:] for c in ([x.strip() for x in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| "))}
    assert "After an ECE: the mean ECE a perfectly calibrated confidence shows on the same clips" in out
    null = ece_if_calibrated([c["confidence"] for c in kept], [c["gold"] == c["predicted"] for c in kept], 10)
    assert rows["ECE ≤ 0.10"] == [f"0.20; if calibrated {null['mean']:.2f}, p {null['p']:.2f}"]
