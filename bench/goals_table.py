"""Where the goals of issues 18 and 20 stand, as one Markdown table, from finished label-quality
runs: the README's table is this script's output, so it is never copied by hand.

    .venv/bin/python bench/goals_table.py --tag s16a [--results bench/results]

It reads `label_quality-TAG-NAME.json` (bench/label_quality.py --tag TAG-NAME) for each column below
and leaves out, saying so, the columns whose runs are missing. A gold run's column reads its gold
part (scored on the clips whose labels the run was not given); the others their blind part."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"

from pipeline.export.label_quality import ClipOutcome, ece_if_calibrated  # noqa: E402


@dataclass(frozen=True)
class Column:
    name: str  # the result file's suffix after the tag
    title: str
    part: str  # "blind" or "gold"


COLUMNS = [
    Column("dev", "dev set, blind", "blind"),
    Column("polish", "Polish words, blind", "blind"),
    Column("gold-m1m4", "Polish, speakers m1, m4 gold", "gold"),
    Column("gold-m3m5", "Polish, speakers m3, m5 gold", "gold"),
    Column("emofilm", "EmoFilm, blind (its 5 classes)", "blind"),
    Column("emofilm-gold30", "EmoFilm, a third gold", "gold"),
    Column("cremad", "CREMA-D, blind", "blind"),
    Column("ck", "21 labelled faces, blind", "blind"),
    # a user's folder mixes media: photos, speech and talking faces in one run share one reliability fit
    Column("mixed", "dev set + 21 faces + CREMA-D in one run, blind", "blind"),
]

# the goals; a figure that meets its goal is set in bold
AUROC_FINAL, AUROC_REASON, FLAGGED, ECE = 0.80, 0.65, 0.50, 0.10


class TableError(Exception):
    """No result file for the tag; the message names where it looked."""


def load(results: Path, tag: str) -> tuple[list[tuple[Column, dict, dict]], list[str]]:
    """(column, its part of the results, the run's meta) for each run found, and the files missing."""
    found, missing = [], []
    for col in COLUMNS:
        path = results / f"label_quality-{tag}-{col.name}.json"
        if not path.exists():
            missing.append(path.name)
            continue
        data = json.loads(path.read_text())
        part = data["results"].get(col.part)
        if part is None:
            raise TableError(f"{path}: has no {col.part} run (parts: {', '.join(data['results'])})")
        found.append((col, part, data["meta"]))
    if not found:
        raise TableError(f"{results}: no label_quality-{tag}-*.json for any of {', '.join(c.name for c in COLUMNS)}")
    return found, missing


def _f(x: float | None, goal=None) -> str:
    if x is None:
        return "n/a"
    text = f"{x:.2f}"
    return f"**{text}**" if goal is not None and goal(x) else text


def _span(r: dict, key: str) -> str:
    """The figure's 95% bootstrap interval (bench/label_quality.py), where the run has one."""
    iv = r.get("intervals", {}).get(key)
    return "" if iv is None else f" ({iv[0]:.2f}–{iv[1]:.2f})"


def _flagged(r: dict) -> str:
    share = r["flagged_for_accuracy"]["confidence"].get("0.85")
    return ("not reachable" if share is None else _f(share, lambda v: v <= FLAGGED)) + _span(r, "flagged_0.85")


def _ece(r: dict) -> str:
    """The ECE, its interval, and what a perfectly calibrated confidence would show on the same clips
    (`ece_if_calibrated`, from the clips the result keeps: on a few dozen clips that is itself above
    0.10, so the goal cannot be read from the figure alone) with the p of one at least this large."""
    text = _f(r["ece"]["value"], lambda v: v <= ECE) + _span(r, "ece")
    kept = r.get("outcomes", {}).get("clips")
    if not kept:  # results written before the bench kept its clips
        return text
    clips = [ClipOutcome.from_row(c) for c in kept]
    null = ece_if_calibrated([c.confidence for c in clips], [c.correct for c in clips], r["ece"].get("bins", 10))
    return text if null is None else f"{text}; if calibrated {null['mean']:.2f}, p {null['p']:.2f}"


def _each_annotator(r: dict) -> str:
    """Is the consensus at least as right as every annotator on that annotator's own clips? The worst
    gap when not."""
    gaps = [(v["accuracy"] - v["consensus_accuracy"], k, v) for k, v in r["annotators"].items()
            if v["answered"] and v["accuracy"] is not None and v["consensus_accuracy"] is not None]
    worst = max(gaps, default=None)
    if worst is None or worst[0] <= 1e-9:
        return "**yes**"
    _, name, v = worst
    out = f"no: {name} {v['accuracy']:.2f}, the consensus {v['consensus_accuracy']:.2f} on its {v['answered']}"
    if "mcnemar_p" in v:  # results written before the test was added lack it
        only = v["only_annotator_right"]
        out += (f" ({only} clip{'' if only == 1 else 's'} only it gets right, {v['only_consensus_right']} only the consensus;"
                f" McNemar p {v['mcnemar_p']:.2f})")
    return out


def _routing(r: dict) -> str:
    rt = r["routing"]
    if not rt["accepted"]:
        return "flags every clip"
    return f"{rt['flagged_share']:.0%} flagged, {rt['accepted']} accepted, {rt['accepted_accuracy']:.2f} right"


ROWS = [
    ("clips scored", lambda r: str(r["clips"])),
    ("consensus accuracy / UAR", lambda r: f"{_f(r['consensus']['accuracy'])}{_span(r, 'accuracy')} / {_f(r['consensus']['uar'])}{_span(r, 'uar')}"),
    ("answer-level AUROC of S_final ≥ 0.80", lambda r: _f(r["answer_auroc"]["s_final"], lambda v: v >= AUROC_FINAL) + _span(r, "s_final_auroc")),
    ("AUROC of S_reason ≥ 0.65", lambda r: _f(r["answer_auroc"]["s_reason"], lambda v: v >= AUROC_REASON) + _span(r, "s_reason_auroc")),
    ("review-score AUROC (right vs wrong clips)", lambda r: _f(r["clip_auroc"]["review_score"]) + _span(r, "review_auroc")),
    ("flagged share for 0.85 accepted ≤ 0.50", _flagged),
    ("ECE ≤ 0.10", _ece),
    ("consensus ≥ each annotator on its clips", _each_annotator),
    ("the run's routing (target accuracy 0.9)", _routing),
]


def table(found: list[tuple[Column, dict, dict]]) -> str:
    lines = ["| goal | " + " | ".join(c.title for c, _, _ in found) + " |", "|---|" + "---:|" * len(found)]
    for title, cell in ROWS:
        lines.append(f"| {title} | " + " | ".join(cell(r) for _, r, _ in found) + " |")
    commits = sorted({m.get("commit") or "?" for _, _, m in found})
    lines += ["", f"Commit{'s' if len(commits) > 1 else ''}: {', '.join(commits)}."]
    if any(r.get("intervals") for _, r, _ in found):
        lines += ["In brackets: 95% bootstrap intervals, the scored clips resampled with their answers (1000 draws)."]
    if any(r.get("outcomes") for _, r, _ in found):
        lines += ["After an ECE: the mean ECE a perfectly calibrated confidence shows on the same clips, and p, the share of "
                  "such draws with an ECE at least the run's."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tag", required=True, help="the label-quality runs' tag, without the column's suffix")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    try:
        found, missing = load(args.results, args.tag)
    except TableError as e:
        print(f"goals_table: {e}", file=sys.stderr)
        return 2
    print(table(found))
    if missing:
        print(f"\nnot found, left out: {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
