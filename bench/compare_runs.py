"""Did a change move the labels, or did the run draw different close calls? Pairs two label-quality
results (bench/label_quality.py's JSON) clip by clip and reports each headline figure before and
after, the paired 95% bootstrap interval of the difference, and McNemar's exact test on the
consensus being right (`pipeline.export.label_quality.paired_difference`).

    .venv/bin/python bench/compare_runs.py bench/results/label_quality-s20b-dev.json \
        bench/results/label_quality-s21-dev.json [--part blind]

Clips are matched by the item they came from (a file with one clip) or, for a file cut into several
clips, by clip id; clips found in one run only are counted and left out. Results written before the
bench kept its clips (no "outcomes") cannot be paired: the error says which file."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.export.label_quality import HEADLINE, HEADLINE_NAMES, AnswerOutcome, ClipOutcome, paired_difference  # noqa: E402


class CompareError(Exception):
    """A results file that cannot be paired; the message names it."""


def load(path: Path, part: str) -> tuple[list[ClipOutcome], list[AnswerOutcome]]:
    """The part's scored clips and answers, each clip keyed by its item (or item and clip id where the
    item has several clips), so that two runs of the same files pair up."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CompareError(f"{path}: not a readable label-quality result ({exc})") from exc
    r = data.get("results", {}).get(part)
    if r is None:
        raise CompareError(f"{path}: has no {part} run (parts: {', '.join(data.get('results', {})) or 'none'})")
    if "outcomes" not in r:
        raise CompareError(f"{path}: written before the bench kept its clips (no outcomes); rerun it with --reuse to pair it")
    per_item = Counter(c["item"] for c in r["outcomes"]["clips"])
    key = {c["clip_id"]: c["item"] if per_item[c["item"]] == 1 else f"{c['item']}#{c['clip_id']}" for c in r["outcomes"]["clips"]}
    clips = [replace(ClipOutcome.from_row(c), clip_id=key[c["clip_id"]]) for c in r["outcomes"]["clips"]]
    answers = [AnswerOutcome(**{**a, "clip_id": key[a["clip_id"]]}) for a in r["outcomes"]["answers"] if a["clip_id"] in key]
    return clips, answers


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _signed(iv) -> str:
    return "n/a" if iv is None else f"{iv[0]:+.2f} to {iv[1]:+.2f}"


def report(before: Path, after: Path, d: dict) -> str:
    lines = [f"# {after.name} against {before.name}", "",
             f"{d['clips']} clips in both runs (only before: {d['only_before']}, only after: {d['only_after']}).", "",
             "| figure | before | after | after − before, 95% interval (paired, clips resampled) |", "|---|---:|---:|---:|"]
    for k in HEADLINE:
        b, a = d["before"][k], d["after"][k]
        change = None if a is None or b is None else a - b
        lines.append(f"| {HEADLINE_NAMES[k]} | {_f(b)} | {_f(a)} | {'n/a' if change is None else f'{change:+.2f}'} ({_signed(d['difference'][k])}) |")
    after_only, before_only = d["only_after_right"], d["only_before_right"]
    lines += ["", f"The consensus is right on {after_only} clip{'' if after_only == 1 else 's'} only after the change and on "
                  f"{before_only} only before it; McNemar's exact p = {d['mcnemar_p']:.2f}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--part", default="blind", help="which run of each result: blind (default) or gold")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        d = paired_difference(load(args.before, args.part), load(args.after, args.part), resamples=args.resamples, seed=args.seed)
    except CompareError as exc:
        print(f"compare_runs: {exc}", file=sys.stderr)
        return 2
    if not d["clips"]:
        print(f"compare_runs: {args.before} and {args.after} share no clip", file=sys.stderr)
        return 2
    print(report(args.before, args.after, d))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
