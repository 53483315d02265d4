"""Run report: a handful of plots of one run, and report.md that embeds them with the numbers behind them.

    write_run_report(RunDir(Path("run")), Path("run/dataset/report"))  ->  .../report.md

Plots (PNG, matplotlib's Agg renderer through the object API: no pyplot, no global backend switch):
  label_distribution.png   consensus labels per clip (stage 4)
  s_final.png              S_final histograms, one per annotator, overlaid (stage 4 judgements)
  annotator_agreement.png  pairwise share of clips on which two annotators chose the same label, over
                           the clips both labelled (stage 3 annotations; the judgements when there are none)
  review_funnel.png        clips -> flagged (consensus needs_review) -> reviewed (reviews with at least
                           one human answer) -> accepted (review decision "accepted")
  stage_timings.png        seconds per stage from run.json
  risk_coverage.png        expected accuracy of the accepted clips (mean calibrated confidence) against
                           the share flagged, with the run's routing point and its target

A table that is missing, empty or unreadable gives a plot that says "no data" (and a note in
report.md), never an exception. Every file is written atomically.
"""

from __future__ import annotations

import io
import itertools
from collections import Counter, defaultdict
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from schemas.judgement import Routing
from schemas.run import RunManifest
from storage.parquet import TableError, atomic_write_bytes
from storage.run_dir import RunDir

PLOTS = ("label_distribution", "s_final", "annotator_agreement", "review_funnel", "stage_timings", "risk_coverage")
_COLOURS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD"]


def _figure(width: float = 7.0, height: float = 4.0) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return path


def _no_data(ax, title: str, why: str = "no data") -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, why, ha="center", va="center", fontsize=16, color="#888888", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


class _Tables:
    """The run's tables, read once; a table that cannot be read is empty, with a note saying why."""

    def __init__(self, run: RunDir):
        self.run = run
        self.notes: list[str] = []
        self._cache: dict[str, list] = {}

    def __getitem__(self, name: str) -> list:
        if name not in self._cache:
            try:
                self._cache[name] = self.run.read(name)
            except (TableError, OSError, ValueError) as exc:
                self.notes.append(f"table {name} could not be read: {exc}")
                self._cache[name] = []
        return self._cache[name]


def plot_label_distribution(t: _Tables, path: Path) -> dict:
    fig, ax = _figure()
    counts = Counter(c.label or "(none)" for c in t["consensus"])
    title = "Consensus labels"
    if not counts:
        _no_data(ax, title)
    else:
        labels = sorted(counts, key=lambda k: (-counts[k], k))
        bars = ax.bar(labels, [counts[k] for k in labels], color=_COLOURS[0])
        ax.bar_label(bars)
        ax.set_title(f"{title} ({sum(counts.values())} clips)")
        ax.set_ylabel("clips")
        ax.margins(y=0.12)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(axis="x", labelrotation=30)
    _save(fig, path)
    return dict(counts)


def plot_s_final(t: _Tables, path: Path) -> dict[str, float]:
    fig, ax = _figure()
    by_annotator: dict[str, list[float]] = defaultdict(list)
    for j in t["judgements"]:
        if j.s_final is not None:
            by_annotator[j.annotator_id].append(float(j.s_final))
    title = "S_final per annotator"
    if not by_annotator:
        _no_data(ax, title)
    else:
        bins = [i / 20 for i in range(21)]
        for i, (name, values) in enumerate(sorted(by_annotator.items())):
            colour = _COLOURS[i % len(_COLOURS)]
            ax.hist(values, bins=bins, alpha=0.35, color=colour, label=f"{name} (n={len(values)})")
            ax.hist(values, bins=bins, histtype="step", color=colour, linewidth=1.5)
        ax.set_xlim(0, 1)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("S_final")
        ax.set_ylabel("answers")
        ax.set_title(title)
        ax.legend(fontsize="small")
    _save(fig, path)
    return {k: sum(v) / len(v) for k, v in by_annotator.items()}


def agreement_matrix(answers: list[tuple[str, str, str]]) -> tuple[list[str], list[list[float | None]], list[list[int]]]:
    """Pairwise share of common clips on which two annotators chose the same label. answers are
    (clip_id, annotator_id, label). Returns annotators, shares (None: no clip in common), and counts."""
    by_annotator: dict[str, dict[str, str]] = defaultdict(dict)
    for clip_id, annotator, label in answers:
        by_annotator[annotator][clip_id] = label
    names = sorted(by_annotator)
    share: list[list[float | None]] = [[None] * len(names) for _ in names]
    common: list[list[int]] = [[0] * len(names) for _ in names]
    for (i, a), (j, b) in itertools.product(enumerate(names), repeat=2):
        clips = by_annotator[a].keys() & by_annotator[b].keys()
        common[i][j] = len(clips)
        if clips:
            share[i][j] = sum(by_annotator[a][c] == by_annotator[b][c] for c in clips) / len(clips)
    return names, share, common


def plot_agreement(t: _Tables, path: Path) -> tuple[list[str], list[list[float | None]]]:
    rows = [(a.clip_id, a.annotator_id, a.label) for a in t["annotations"] if a.label is not None]
    if not rows:
        rows = [(j.clip_id, j.annotator_id, j.label) for j in t["judgements"] if j.label is not None]
    names, share, common = agreement_matrix(rows)
    title = "Annotator agreement (share of common clips with the same label)"
    size = max(4.5, 1.0 + 0.9 * len(names))
    fig, ax = _figure(size + 1.5, size)
    if not names:
        _no_data(ax, title)
    else:
        import numpy as np

        grid = np.array([[np.nan if v is None else v for v in row] for row in share], dtype=float)
        im = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis")
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_yticks(range(len(names)), names)
        for i, j in itertools.product(range(len(names)), repeat=2):
            v = share[i][j]
            text = "—" if v is None else f"{v:.2f}\nn={common[i][j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color="black" if v is not None and v > 0.6 else "white")
        ax.set_title(title, fontsize=10)
    _save(fig, path)
    return names, share


def plot_funnel(t: _Tables, path: Path) -> dict[str, int]:
    consensus, reviews = t["consensus"], t["reviews"]
    n_clips = len({c.clip_id for c in t["clips"]}) or len({c.clip_id for c in consensus})
    stages = {
        "clips": n_clips,
        "flagged": sum(c.needs_review for c in consensus),
        "reviewed": sum(bool(r.answers) for r in reviews),
        "accepted": sum(r.decision == "accepted" for r in reviews),
    }
    fig, ax = _figure()
    title = "Review funnel"
    if not any(stages.values()):
        _no_data(ax, title)
    else:
        names = list(stages)[::-1]
        bars = ax.barh(names, [stages[n] for n in names], color=[_COLOURS[i] for i in range(len(names))][::-1])
        labels = [f"{stages[n]}" + (f"  ({stages[n] / n_clips:.0%} of clips)" if n_clips and n != "clips" else "") for n in names]
        ax.bar_label(bars, labels=labels, padding=3)
        ax.set_xlim(0, max(stages.values()) * 1.35)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("clips")
        ax.set_title(title)
    _save(fig, path)
    return stages


def plot_timings(manifest: RunManifest | None, path: Path) -> dict[str, float]:
    seconds = {s.stage: s.seconds for s in (manifest.stages if manifest else []) if s.stage}
    fig, ax = _figure()
    title = "Seconds per stage"
    if not seconds:
        _no_data(ax, title, "no data (no run.json stages)")
    else:
        names = list(seconds)[::-1]
        bars = ax.barh(names, [seconds[n] for n in names], color=_COLOURS[4])
        ax.bar_label(bars, labels=[f"{seconds[n]:.1f} s" for n in names], padding=3)
        ax.set_xlim(0, max(max(seconds.values()) * 1.25, 1e-3))
        ax.set_xlabel("seconds")
        ax.set_title(f"{title} (total {sum(seconds.values()):.1f} s)")
    _save(fig, path)
    return seconds


def plot_risk_coverage(t: _Tables, routing: Routing | None, path: Path) -> list[tuple[float, float]]:
    """Accept clips in order of calibrated confidence: (share flagged, expected accuracy of the rest)."""
    conf = sorted((c.confidence for c in t["consensus"] if getattr(c, "confidence", None) is not None), reverse=True)
    n = len(conf)
    curve, total = [], 0.0
    for k, c in enumerate(conf, start=1):
        total += c
        curve.append((1 - k / n, total / k))
    fig, ax = _figure()
    title = "Expected accuracy of the accepted clips"
    if not curve:
        _no_data(ax, title, "no data (no calibrated confidence)")
    else:
        ax.plot([x for x, _ in curve], [y for _, y in curve], color=_COLOURS[0], label="accept the most confident first")
        if routing and routing.target_accuracy is not None:
            ax.axhline(routing.target_accuracy, color=_COLOURS[3], linestyle="--", linewidth=1, label="target")
        if routing and routing.estimated_accuracy is not None and routing.n_clips:
            x = 1 - routing.n_accepted / routing.n_clips
            ax.errorbar([x], [routing.estimated_accuracy], fmt="o", color=_COLOURS[2], capsize=4, label="this run's routing",
                        yerr=[[routing.estimated_accuracy - routing.ci_low], [routing.ci_high - routing.estimated_accuracy]])
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("share of clips flagged for review")
        ax.set_ylabel("expected accuracy of the accepted")
        ax.set_title(title, fontsize=10)
        ax.legend(loc="lower right", fontsize=8)
    _save(fig, path)
    return curve


def _routing_lines(routing: Routing | None, reliability: list) -> list[str]:
    if not routing:
        return ["No routing figures (run.json has none)."]
    lines = [f"Routing `{routing.mode}`"
             + (f" to a target accuracy of {routing.target_accuracy:.2f}" if routing.target_accuracy else "")
             + f": {routing.n_clips - routing.n_accepted} of {routing.n_clips} clips flagged"
             + (f" ({routing.n_known} more have known labels and are not routed)." if routing.n_known else ".")]
    if routing.estimated_accuracy is not None:
        lines.append(f"Expected accuracy of the {routing.n_accepted} accepted clips: {routing.estimated_accuracy:.3f} "
                     f"(95% interval {routing.ci_low:.3f}-{routing.ci_high:.3f}).")
    lines.append(f"Confidence calibrated on {routing.calibrated_on} clips with known labels (gold or reviewed)"
                 if routing.calibrated_on else
                 "No clip has a known label yet: the confidence is the consensus's own probability (the stated prior); "
                 "gold labels or reviewers' verdicts calibrate it.")
    if routing.n_teach:
        lines.append(f"The run has no voice model yet: {routing.n_teach} clips are flagged `teach_voice_model`, those whose labels "
                     "would teach it most; label them first (the review push hands them out first).")
    if reliability:
        lines += ["", "| annotator | answers | estimated accuracy | on known labels |", "|---|---:|---:|---:|"]
        lines += [f"| {r.annotator_id} | {r.n_answers} | {r.estimated_accuracy:.2f} | "
                  + ("—" if r.gold_accuracy is None else f"{r.gold_accuracy:.2f} (n={r.n_gold})") + " |" for r in reliability]
    return lines


def write_run_report(run_dir: RunDir, out_dir: Path) -> Path:
    """Write the five plots and report.md into out_dir; returns the path of report.md."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = _Tables(run_dir)
    try:
        manifest = run_dir.read_manifest()
    except (OSError, ValueError) as exc:
        t.notes.append(f"run.json could not be read: {exc}")
        manifest = None
    png = {name: out_dir / f"{name}.png" for name in PLOTS}
    labels = plot_label_distribution(t, png["label_distribution"])
    s_final = plot_s_final(t, png["s_final"])
    names, share = plot_agreement(t, png["annotator_agreement"])
    funnel = plot_funnel(t, png["review_funnel"])
    seconds = plot_timings(manifest, png["stage_timings"])
    routing = manifest.routing if manifest else None
    plot_risk_coverage(t, routing, png["risk_coverage"])

    run_id = manifest.run_id if manifest else None
    pairs = [share[i][j] for i, j in itertools.combinations(range(len(names)), 2) if share[i][j] is not None]
    top = max(labels, key=labels.get) if labels else None
    lines = [
        f"# Run report{f': {run_id}' if run_id else ''}",
        "",
        f"Run directory: `{run_dir.root}`",
        "",
        "| | |",
        "|---|---:|",
        f"| clips | {funnel['clips']} |",
        f"| flagged for review | {funnel['flagged']} |",
        f"| reviewed by people | {funnel['reviewed']} |",
        f"| accepted by reviewers | {funnel['accepted']} |",
        f"| annotators | {len(names)} |",
        f"| mean pairwise agreement | {'—' if not pairs else f'{sum(pairs) / len(pairs):.2f}'} |",
        f"| most common consensus label | {'—' if top is None else f'{top} ({labels[top]})'} |",
        f"| total stage seconds | {'—' if not seconds else f'{sum(seconds.values()):.1f}'} |",
        "",
        "## Labels",
        "",
        "![consensus label distribution](label_distribution.png)",
        "",
        "## Scores",
        "",
        "Mean S_final per annotator: " + (", ".join(f"{k} {v:.2f}" for k, v in sorted(s_final.items())) or "no data") + ".",
        "",
        "![S_final per annotator](s_final.png)",
        "",
        "## Agreement between annotators",
        "",
        "![annotator agreement](annotator_agreement.png)",
        "",
        "## Routing",
        "",
        *_routing_lines(routing, t["reliability"]),
        "",
        "![expected accuracy against share flagged](risk_coverage.png)",
        "",
        "## Review",
        "",
        "![review funnel](review_funnel.png)",
        "",
        "## Timings",
        "",
        "![seconds per stage](stage_timings.png)",
        "",
    ]
    if t.notes:
        lines += ["## Notes", "", *(f"- {n}" for n in t.notes), ""]
    report = out_dir / "report.md"
    atomic_write_bytes(report, "\n".join(lines).encode())
    return report
