"""Agreement statistics against published values, missing cells, failure cases, gates and the CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.review.agreement import (
    AgreementResult,
    agreement_stats,
    assess,
    cohen_kappas,
    fleiss_kappa,
    iccs,
    krippendorff_alpha,
    model_kappas,
    spearman_correlations,
)
from pipeline.review.gates import apply_gates
from pipeline.review.ratings import RatingsError, read_ratings
from schemas.config import AgreementGates
from schemas.review import AgreementStat

EMOFORGE = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "emoforge")
nan = np.nan


def by_name(stats):
    return {s.name: s for s in stats}


# Fleiss (1971) as worked on Wikipedia "Fleiss' kappa": 10 subjects, 14 raters, 5 categories -> 0.210
FLEISS_COUNTS = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]


def fleiss_table() -> pd.DataFrame:
    rows = [[f"cat{k + 1}" for k, n in enumerate(counts) for _ in range(n)] for counts in FLEISS_COUNTS]
    return pd.DataFrame(rows, columns=[f"r{i + 1}" for i in range(14)], index=[f"s{i + 1}" for i in range(10)])


# krippendorff package docstring (Krippendorff's reliability data with missing values): 3 coders x 15 units
KRIPP = [
    [nan, nan, nan, nan, nan, 3, 4, 1, 2, 1, 1, 3, 3, nan, 3],
    [1, nan, 2, 1, 3, 3, 4, 3, nan, nan, nan, nan, nan, nan, nan],
    [nan, nan, 2, 1, 3, 4, 4, nan, 2, 1, 1, 3, 3, nan, 4],
]


def kripp_table() -> pd.DataFrame:
    return pd.DataFrame(np.array(KRIPP).T, columns=["A", "B", "C"], index=[f"u{i + 1}" for i in range(15)])


# Shrout & Fleiss (1979), table 2: 6 targets x 4 judges
SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
SHROUT_FLEISS_ICC = {"icc1": 0.17, "icc2": 0.29, "icc3": 0.71, "icc1k": 0.44, "icc2k": 0.62, "icc3k": 0.91}


def sf_table() -> pd.DataFrame:
    return pd.DataFrame(SHROUT_FLEISS, columns=["j1", "j2", "j3", "j4"], index=[f"t{i + 1}" for i in range(6)])


def two_by_two() -> pd.DataFrame:
    """50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15. po = 0.7, pe = 0.5*0.6 + 0.5*0.4 = 0.5, kappa = 0.4."""
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    return pd.DataFrame(pairs, columns=["ann", "bob"], index=[f"i{k}" for k in range(50)])


# ------------------------------------------------------------------------------------ published values


def test_fleiss_kappa_matches_fleiss_1971_example():
    k = fleiss_kappa(fleiss_table())
    assert k.value is not None and round(k.value, 3) == 0.210
    assert k.n_items == 10 and k.reason is None


def test_krippendorff_alpha_matches_package_example_with_missing_values():
    assert round(krippendorff_alpha(kripp_table(), "nominal").value, 6) == 0.691358
    assert round(krippendorff_alpha(kripp_table(), "interval").value, 6) == 0.810845
    assert krippendorff_alpha(kripp_table(), "nominal").n_items == 12  # units with 2+ ratings


def test_krippendorff_alpha_ordinal_text_labels_need_their_order():
    # krippendorff docstring, from Hayes & Krippendorff: ordinal 0.815 (ordered labels), nominal on the text 0.743
    words = {1: "very low", 2: "low", 3: "mid", 4: "high", 5: "very high"}
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
    text = pd.DataFrame([[None if np.isnan(v) else words[int(v)] for v in row] for row in np.array(data).T], columns=list("abcd"))
    order = ["very low", "low", "mid", "high", "very high"]
    assert round(krippendorff_alpha(text, "ordinal", order).value, 3) == 0.815
    assert round(krippendorff_alpha(text, "nominal").value, 3) == 0.743
    numbers = pd.DataFrame(np.array(data).T, columns=list("abcd"))
    assert round(krippendorff_alpha(numbers, "ratio").value, 3) == 0.797
    with pytest.raises(RatingsError, match="ordered category list"):
        krippendorff_alpha(text, "ordinal")


def test_icc_matches_shrout_fleiss_1979_table_2():
    stats = by_name(iccs(sf_table(), "interval"))
    assert {k: round(stats[k].value, 2) for k in SHROUT_FLEISS_ICC} == SHROUT_FLEISS_ICC
    assert all(s.n_items == 6 for s in stats.values())


def test_cohen_kappa_hand_computed_2x2():
    stats = by_name(cohen_kappas(two_by_two()))
    assert stats["cohen_kappa[ann,bob]"].value == pytest.approx(0.4)
    assert stats["cohen_kappa[ann,bob]"].n_items == 50
    assert stats["cohen_kappa_mean"].value == pytest.approx(0.4)


@pytest.mark.parametrize(
    "level,expected",
    [
        # A = 1 2 3 1 2 3, B = 1 2 2 1 3 3: uniform marginals, E_ij = 1/9; two off-by-one disagreements
        ("nominal", 0.5),  # (4/6 - 1/3) / (1 - 1/3)
        ("ordinal", 0.625),  # linear: 1 - (2/6) / (8/9)
        ("interval", 0.75),  # quadratic: 1 - (2/6) / (12/9)
    ],
)
def test_cohen_kappa_weights_follow_the_level(level, expected):
    t = pd.DataFrame({"a": [1, 2, 3, 1, 2, 3], "b": [1, 2, 2, 1, 3, 3]})
    assert by_name(cohen_kappas(t, level))["cohen_kappa[a,b]"].value == pytest.approx(expected)


def test_quadratic_kappa_uses_real_distances_at_interval_level():
    # on a 0.1 grid the same table as above gives the same 0.75
    t = pd.DataFrame({"a": [0.1, 0.2, 0.3, 0.1, 0.2, 0.3], "b": [0.1, 0.2, 0.2, 0.1, 0.3, 0.3]})
    assert by_name(cohen_kappas(t, "interval"))["cohen_kappa[a,b]"].value == pytest.approx(0.75)
    # values 1 2 5: disagreements (5,2),(2,5) weigh 9 each: 1 - (18/6) / (52/9) = 25/52 (ranks would give 0.75)
    t = pd.DataFrame({"a": [1, 2, 5, 1, 2, 5], "b": [1, 2, 2, 1, 5, 5]})
    assert by_name(cohen_kappas(t, "interval"))["cohen_kappa[a,b]"].value == pytest.approx(25 / 52)


def test_spearman_hand_computed():
    # x = 1..5, y = 2 1 4 3 5: sum d^2 = 4, rho = 1 - 6*4 / (5*24) = 0.8
    t = pd.DataFrame({"x": [1, 2, 3, 4, 5], "y": [2, 1, 4, 3, 5], "z": [5, 4, 3, 2, 1]})
    stats = by_name(spearman_correlations(t, "ordinal"))
    assert stats["spearman[x,y]"].value == pytest.approx(0.8)
    assert stats["spearman[x,z]"].value == pytest.approx(-1.0)
    assert stats["spearman[y,z]"].value == pytest.approx(-0.8)
    assert stats["spearman_mean"].value == pytest.approx((0.8 - 1.0 - 0.8) / 3)
    assert spearman_correlations(t, "nominal") == []


def test_human_vs_model_kappa():
    t = two_by_two()
    model = dict(zip(t.index, t["ann"]))  # the model agrees with ann everywhere
    stats = by_name(model_kappas(t, model))
    assert stats["model_kappa[ann]"].value == pytest.approx(1.0)
    assert stats["model_kappa[bob]"].value == pytest.approx(0.4)
    # three raters: the majority is the model on every item, each rater differs somewhere
    t3 = pd.DataFrame({
        "a": ["joy", "joy", "anger", "sad", "sad", "joy"],
        "b": ["joy", "anger", "anger", "sad", "joy", "joy"],
        "c": ["sad", "joy", "anger", "anger", "sad", "joy"],
    })
    majority = ["joy", "joy", "anger", "sad", "sad", "joy"]
    stats = by_name(model_kappas(t3, dict(enumerate(majority))))
    assert stats["model_kappa[majority]"].value == pytest.approx(1.0)
    assert stats["model_kappa[majority]"].n_items == 6
    assert stats["model_kappa[b]"].value < 1.0
    # a label the model used and no human did counts as disagreement, not an error
    stats = by_name(model_kappas(t3, {0: "surprise", 1: "joy", 2: "anger", 3: "sad", 4: "sad", 5: "joy"}))
    assert stats["model_kappa[majority]"].value < 1.0 and stats["model_kappa[majority]"].n_items == 6


# ------------------------------------------------------------------------------------- missing cells


def test_missing_cells_pairwise_complete_cases_and_equal_counts():
    t = sf_table()
    t.loc["t7"] = [5, nan, 7, 8]  # a seventh target one judge did not rate
    icc = by_name(iccs(t, "interval"))
    assert icc["icc2"].n_items == 6 and "1 item not rated by every rater left out" in icc["icc2"].note
    assert round(icc["icc2"].value, 2) == 0.29  # unchanged: complete cases only
    kappas = by_name(cohen_kappas(t, "interval"))
    assert kappas["cohen_kappa[j1,j2]"].n_items == 6 and kappas["cohen_kappa[j1,j3]"].n_items == 7
    # Fleiss: items with the most common number of ratings; here the 6 with 4 ratings
    assert fleiss_kappa(t, "interval").n_items == 6
    # sparse design: every item has 2 of 4 reviewers -> Fleiss over all items, ICC has no complete case
    sparse = pd.DataFrame(
        [["joy", "joy", None, None], [None, "sad", "sad", None], [None, None, "joy", "sad"], ["sad", None, None, "sad"]],
        columns=list("abcd"),
    )
    fk = fleiss_kappa(sparse)
    assert fk.n_items == 4 and fk.value is not None
    numeric = pd.DataFrame([[1, 2, nan], [nan, 3, 3], [2, nan, 1]], columns=list("abc"))
    assert all(s.value is None and "rated by every rater" in s.reason for s in iccs(numeric, "interval"))


def test_read_ratings_csv_with_empty_cells(tmp_path):
    csv = tmp_path / "r.csv"
    rows = ["unit,A,B,C"] + [
        f"u{j + 1}," + ",".join("" if np.isnan(KRIPP[i][j]) else str(int(KRIPP[i][j])) for i in range(3)) for j in range(15)
    ]
    csv.write_text("\n".join(rows) + "\n")
    t = read_ratings(csv, "interval")
    assert list(t.columns) == ["A", "B", "C"] and len(t) == 15 and int(t.isna().sum().sum()) == 18  # 6 + 8 + 4 empty cells
    assert round(krippendorff_alpha(t, "interval").value, 6) == 0.810845
    t.reset_index().to_parquet(tmp_path / "r.parquet")
    assert read_ratings(tmp_path / "r.parquet", "interval").equals(t)


def test_read_ratings_item_column_anywhere(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("ann,item,bob\njoy,c1,joy\nsad,c2,\n")
    t = read_ratings(f)
    assert list(t.index) == ["c1", "c2"] and list(t.columns) == ["ann", "bob"]
    assert t.loc["c2", "ann"] == "sad" and pd.isna(t.loc["c2", "bob"])


@pytest.mark.parametrize(
    "content,level,message",
    [
        (None, "nominal", "no such file"),
        ("item\nc1\n", "nominal", "no rater columns"),
        ("item,ann\nc1,joy\n", "nominal", "at least 2 rater columns, found 1 (ann)"),
        ("item,ann,bob\n", "nominal", "no items"),
        ("item,ann,bob\nc1,1,2\nc2,3,happy\n", "interval", "row 2 (item 'c2'), column 'bob': 'happy' is not a number"),
        ("item,ann,bob\nc1,1,-2\n", "ratio", "row 1 (item 'c1'), column 'bob': -2 is negative"),
        ("item,ann,bob\nc1,1,2\nc1,3,4\n", "interval", "item 'c1' appears twice (rows 1 and 2)"),
        ("", "nominal", "empty file"),
    ],
)
def test_read_ratings_errors_name_the_file(tmp_path, content, level, message):
    f = tmp_path / "ratings.csv"
    if content is not None:
        f.write_text(content)
    with pytest.raises(RatingsError) as info:
        read_ratings(f, level)
    assert str(info.value).startswith(str(f))
    assert message in str(info.value)


# ------------------------------------------------------------------------------------- failure cases


def test_one_rater_gives_none_with_reasons():
    t = pd.DataFrame({"ann": [1, 2, 3, 4]})
    stats = agreement_stats(t, "interval")
    assert stats and all(s.value is None and s.reason for s in stats)
    names = by_name(stats)
    assert "one rater" in names["cohen_kappa_mean"].reason
    assert "one rater" in names["fleiss_kappa"].reason
    assert "one rater" in names["krippendorff_alpha"].reason
    assert "one rater" in names["icc2"].reason


def test_fewer_than_two_items_and_constant_ratings_give_none():
    one = pd.DataFrame({"a": [1.0], "b": [2.0]})
    stats = by_name(agreement_stats(one, "interval"))
    for name in ("cohen_kappa[a,b]", "fleiss_kappa", "krippendorff_alpha", "icc2", "spearman[a,b]"):
        assert stats[name].value is None and "need" in stats[name].reason, name
    const = pd.DataFrame({"a": ["joy"] * 5, "b": ["joy"] * 5, "c": ["joy"] * 5})
    stats = by_name(agreement_stats(const))
    for name in ("cohen_kappa[a,b]", "fleiss_kappa", "krippendorff_alpha"):
        assert stats[name].value is None and "constant" in stats[name].reason, name
    assert stats["cohen_kappa_mean"].value is None
    flat = pd.DataFrame({"a": [3, 3, 3, 3], "b": [1, 2, 3, 4]})
    assert "constant ratings by a" in by_name(spearman_correlations(flat))["spearman[a,b]"].reason
    assert by_name(cohen_kappas(flat, "ordinal"))["cohen_kappa[a,b]"].value == pytest.approx(0.0)  # defined: one varies
    none = by_name(model_kappas(two_by_two(), {"elsewhere": "yes"}))
    assert none["model_kappa[majority]"].value is None and "no model label" in none["model_kappa[majority]"].reason


# --------------------------------------------------------------------------------------------- gates


def test_gates_accept_and_escalate():
    good = pd.DataFrame({"a": [1, 2, 3, 4, 5, 6, 7, 8], "b": [1, 2, 3, 4, 5, 6, 7, 8], "c": [1, 2, 3, 4, 5, 6, 7, 7]})
    report = assess(good, "interval", AgreementGates(kappa=0.8, icc=0.9, alpha=0.9))
    assert report.decision == "accepted" and report.reasons == []
    gated = {s.name: (s.gate, s.passed) for s in report.stats if s.gate is not None}
    assert gated == {"cohen_kappa_mean": (0.8, True), "icc2": (0.9, True), "krippendorff_alpha": (0.9, True)}

    report = assess(sf_table(), "interval", AgreementGates(kappa=0.2, icc=0.9))
    assert report.decision == "escalated"
    assert any(r.startswith("icc2 0.290 is not above the icc gate 0.9") for r in report.reasons)
    assert by_name(report.stats)["icc2"].passed is False
    assert by_name(report.stats)["cohen_kappa_mean"].passed is True  # 0.335 > 0.2
    assert by_name(report.stats)["krippendorff_alpha"].gate is None  # alpha gate off by default

    # nominal level: Fleiss and mean Cohen are both held to the kappa gate; Fleiss 0.210 fails 0.3
    report = assess(fleiss_table(), "nominal", AgreementGates(kappa=0.3))
    assert by_name(report.stats)["fleiss_kappa"].passed is False
    assert report.decision == "escalated" and any("fleiss_kappa 0.210" in r for r in report.reasons)
    assert all(s.gate is None for s in report.stats if s.name.startswith("icc"))


def test_gate_without_a_value_escalates():
    one = pd.DataFrame({"a": [1.0], "b": [2.0]})
    decision = apply_gates(agreement_stats(one, "interval"), AgreementGates())
    assert decision.decision == "escalated"
    assert any(r.startswith("kappa gate: no statistic could be computed") for r in decision.reasons)
    assert any(r.startswith("icc gate: no statistic could be computed") for r in decision.reasons)
    # plain schema records work too, and an empty list is not accepted
    plain = [AgreementStat(name="fleiss_kappa", value=0.85, n_items=10)]
    gated = apply_gates(plain, AgreementGates())
    assert gated.decision == "accepted" and gated.stats[0].passed is True
    assert apply_gates([], AgreementGates()).decision == "escalated"


def test_apply_gates_leaves_its_input_as_it_was():
    stats = agreement_stats(pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.0, 2.0, 4.0, 3.0], "c": [2.0, 2.0, 3.0, 4.0]}),
                            "interval")
    before = [s.model_dump() for s in stats]
    decision = apply_gates(stats, AgreementGates(icc=0.99, alpha=0.5))
    assert [s.model_dump() for s in stats] == before and all(s.gate is None and s.passed is None for s in stats)
    # the decision carries the marked copies, in the same order
    assert [s.name for s in decision.stats] == [s.name for s in stats]
    marked = {s.name: (s.gate, s.passed) for s in decision.stats if s.gate is not None}
    assert set(marked) == {"cohen_kappa_mean", "icc2", "krippendorff_alpha"}  # fleiss_kappa is gated at nominal level only
    assert marked["icc2"] == (0.99, False) and decision.decision == "escalated"


def test_results_are_schema_records():
    stats = agreement_stats(fleiss_table())
    assert all(isinstance(s, AgreementResult) and isinstance(s, AgreementStat) for s in stats)
    json.dumps([s.model_dump(mode="json") for s in stats])  # no NaN, no numpy types


# ----------------------------------------------------------------------------------------------- CLI


def emoforge(*args, cwd=None):
    return subprocess.run([EMOFORGE, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.mark.slow  # runs the emoforge command
def test_cli_prints_table_and_writes_json(tmp_path):
    f = tmp_path / "judges.csv"
    sf_table().rename_axis("item").to_csv(f)
    out = tmp_path / "agreement.json"
    proc = emoforge("agreement", str(f), "--level", "interval", "--json", str(out), "--kappa-gate", "0.2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for text in ("cohen_kappa[j1,j2]", "icc2", "0.290", "fleiss_kappa", "krippendorff_alpha", "spearman_mean", "fail", "pass", "decision: escalated"):
        assert text in proc.stdout, text
    report = json.loads(out.read_text())
    assert report["decision"] == "escalated" and report["level"] == "interval" and report["n_items"] == 6
    stats = {s["name"]: s for s in report["stats"]}
    assert round(stats["icc3k"]["value"], 2) == 0.91
    assert stats["icc2"]["gate"] == 0.9 and stats["icc2"]["passed"] is False
    assert stats["cohen_kappa_mean"]["gate"] == 0.2 and stats["cohen_kappa_mean"]["passed"] is True


@pytest.mark.slow  # runs the emoforge command
@pytest.mark.parametrize(
    "content,args,message",
    [
        (None, [], "ratings.csv: no such file"),
        ("item,ann\nc1,1\n", [], "ratings.csv: agreement needs at least 2 rater columns"),
        ("item,ann,bob\nc1,1,2\nc2,3,happy\n", ["--level", "interval"], "row 2 (item 'c2'), column 'bob': 'happy' is not a number"),
        ("item,ann,bob\nc1,1,2\n", ["--level", "cardinal"], "--level must be one of"),
    ],
)
def test_cli_user_mistakes_are_one_line(tmp_path, content, args, message):
    f = tmp_path / "ratings.csv"
    if content is not None:
        f.write_text(content)
    proc = emoforge("agreement", "ratings.csv", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("emoforge: error:")
    assert message in proc.stderr.replace("\n", "")  # rich wraps long lines at the terminal width
