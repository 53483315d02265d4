"""Label-quality benchmark: run `emoforge run` (the real CLI, in a subprocess) on media with known
emotions and report how right the consensus is and whether the judge's scores know it.

Input: a manifest, either our labels.json format (an object of name -> {emotion, file?, group?,
speaker?}; `file` relative to the manifest, default the name) or a CSV with columns
file,emotion[,group][,speaker]. An emotion is a taxonomy label or a word the verbalizer's synonym
table maps to one (`angry`, `fearful`, `calm`); the report lists each word read that way. Speakers, where given, go to the run as its speakers file
(`annotate.baseline.speakers`, as a user with a corpus that names its speakers would; `--no-speakers`
leaves them out); they are not labels.
`--fetch` first materialises the development set (bench/label_dev.py) and uses its manifest;
`--dev-manifest` names another to fetch, and given twice or more runs their items as one mixed run
(photos beside speech beside video, as a user's folder may be; `label_dev.merge_manifests`).

The run gets no gold labels unless `--gold-fraction F`: then whole groups (speakers / persons) are
drawn (seeded) until F of the items are gold (or `--gold-groups A,B` names them: a group's full
name, or what follows its last colon, e.g. m2 for "Polish emotional speech (GUT 2020):m2"), the
run is repeated on the same run directory with `judge.gold` naming their clips (stages 1-3 come
from the cache; clip ids exist only after stage 1), and every figure is computed on the remaining
items only, for the blind run and the gold run. `--gold-teach` gives gold to the items the blind
run asked a person to label first (flag teach_voice_model: agents/teach_set.py), as a reviewer who
labels them would; `--gold-random N` to N items drawn at random (seeded), the same effort spent
without the choice.

Photos are given to `emoforge run` as they are: it takes them as one-frame sources.

Every headline figure comes with a 95% bootstrap interval over the scored clips (each drawn with its
answers; `pipeline.export.label_quality.intervals`): on a few dozen clips a figure moves by a clip's
worth between two machines, and the interval says how much of a difference that is. The JSON keeps
every scored clip and answer, so `bench/compare_runs.py` can pair two runs clip by clip.

Writes RESULTS/label_quality[-TAG].json, .md and _risk_coverage.png (RESULTS: bench/results).

    .venv/bin/python bench/label_quality.py --fetch                       # the 29-item dev set
    .venv/bin/python bench/label_quality.py --fetch --dev-manifest bench/manifests/emopy-faces.json   # 21 labelled faces
    .venv/bin/python bench/label_quality.py MANIFEST --out runs/lq [--config c.yaml] [--set k=v ...]
    .venv/bin/python bench/label_quality.py MANIFEST --reuse runs/lq      # re-score a finished run
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from label_dev import FetchError, default_dest, fetch, manifest_path_for, merge_manifests  # noqa: E402
from label_dev import DEFAULT_MANIFEST as DEV_MANIFEST  # noqa: E402
from agents.verbalizer import Verbalizer  # noqa: E402
from pipeline.export.label_quality import HEADLINE, HEADLINE_NAMES, AnswerOutcome, ClipOutcome, evaluate, intervals  # noqa: E402

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
RESULTS = ROOT / "bench" / "results"
# each headline figure gets a 95% interval from 1000 bootstrap draws of the scored clips
INTERVAL_LEVEL, RESAMPLES = 0.95, 1000


class BenchError(RuntimeError):
    """Bad manifest or a failed run; the message names the file and the problem."""


@dataclass
class Item:
    name: str
    path: Path
    emotion: str
    group: str
    sha256: str = ""
    speaker: str | None = None
    given: str = ""  # the emotion as the manifest wrote it, where that was a synonym (`angry` for anger)


# label codes corpora write in their metadata, for manifests made from it; gold labels only, never
# looked for in what a model or a speaker says (a transcript's "dis" is not disgust). Boredom is
# neutral as the dev set maps EmoDB's L (../shared/label-dev/labels.json)
CORPUS_CODES = {
    # CREMA-D (Cao et al. 2014) file codes, IEMOCAP (Busso et al. 2008) categorical labels; IEMOCAP's
    # "exc" joins happiness as its four-class setups do; frustration has no agreed home and is refused
    "ang": "anger", "dis": "disgust", "fea": "fear", "hap": "happiness", "sad": "sadness", "neu": "neutral",
    "sur": "surprise", "exc": "happiness",
    "ps": "surprise",  # TESS "pleasant surprise"
    "boredom": "neutral", "bored": "neutral",
}


def read_manifest(path: Path, taxonomy: list[str]) -> list[Item]:
    path = Path(path)
    if not path.exists():
        raise BenchError(f"{path}: manifest not found")
    base = path.parent
    items: list[Item] = []
    # exact words only: no phrase search for a gold label
    synonyms = {**{k: v for k, v in CORPUS_CODES.items() if v in taxonomy}, **Verbalizer(taxonomy).lookup}
    if path.suffix.lower() == ".csv":
        # utf-8-sig: a spreadsheet's CSV starts with a byte-order mark, which would hide the first column's name
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            reader.fieldnames = [f.strip().lower() for f in (reader.fieldnames or [])]
            missing = {"file", "emotion"} - set(reader.fieldnames)
            if missing:
                raise BenchError(f"{path}: a CSV manifest needs columns file and emotion (missing {', '.join(sorted(missing))}; "
                                 f"header: {','.join(reader.fieldnames) or 'none'})")
            rows = [(i, r["file"].strip(), r["emotion"], (r.get("group") or "").strip() or r["file"].strip(),
                     (r.get("speaker") or "").strip() or None) for i, r in enumerate(reader, start=2)]
        entries = [(f"row {i}", f, e, g, f, sp) for i, f, e, g, sp in rows]
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise BenchError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise BenchError(f"{path}: expected an object of name -> {{emotion, file?, group?}}")
        entries = []
        for name, v in data.items():
            if not isinstance(v, dict) or "emotion" not in v:
                raise BenchError(f"{path}: item {name!r} has no 'emotion'")
            entries.append((f"item {name!r}", v.get("file", name), v["emotion"], v.get("group") or name, name, v.get("speaker") or None))
    for where, file, emotion, group, name, speaker in entries:
        given = str(emotion or "").strip().lower()
        # a corpus's own word for a taxonomy label (RAVDESS's "angry", "fearful"), by the same synonym
        # table that maps what the models say; the report lists each word it read this way
        emotion = synonyms.get(given)
        if emotion is None:
            raise BenchError(f"{path}: {where}: emotion {given!r} is not in the taxonomy ({', '.join(taxonomy)}) nor a synonym of one")
        media = (base / file) if not Path(file).is_absolute() else Path(file)
        if not media.is_file():
            raise BenchError(f"{path}: {where}: media file {media} not found (fetch the dev set with --fetch)")
        items.append(Item(name=name, path=media, emotion=emotion, group=str(group), speaker=str(speaker) if speaker else None,
                          given=given if given != emotion else ""))
    if not items:
        raise BenchError(f"{path}: manifest lists no items")
    return items


def subset(items: list[Item], n: int, seed: int) -> list[Item]:
    """n items, spread evenly over (group, emotion) cells, seeded."""
    rng = random.Random(seed)
    cells: dict[tuple[str, str], list[Item]] = {}
    for it in sorted(items, key=lambda i: i.name):
        cells.setdefault((it.group, it.emotion), []).append(it)
    for v in cells.values():
        rng.shuffle(v)
    order = sorted(cells)
    out: list[Item] = []
    while len(out) < min(n, len(items)):
        for key in order:
            if cells[key] and len(out) < n:
                out.append(cells[key].pop())
    return sorted(out, key=lambda i: i.name)


def sha256_file(path: Path) -> str:
    from pipeline.sampling.media import file_sha256

    return file_sha256(path)


def run_emoforge(files: list[Path], out: Path, config: Path | None, sets: list[str], log: Path) -> float:
    cmd = [sys.executable, "-m", "flows.cli", "run", *map(str, files), "--out", str(out)]
    if config:
        cmd += ["--config", str(config)]
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n".encode())
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    seconds = time.perf_counter() - t0
    # the known ctranslate2 crash at interpreter exit (134/139) comes after the run has written everything
    if proc.returncode not in (0, 134, 139, -6, -11) or not (out / "tables" / "consensus.parquet").exists():
        raise BenchError(f"emoforge run failed (exit {proc.returncode}); see {log}")
    return seconds


def clip_items(run, items: list[Item]) -> dict[str, Item]:
    """A run's clips joined to the manifest's items: clip -> source -> input file, by content (each
    item's sha256 filled in). `run`: a storage.RunDir."""
    by_hash: dict[str, Item] = {}
    for it in items:
        other = by_hash.get(it.sha256)
        if other is not None and other.emotion != it.emotion:
            raise BenchError(f"{it.path} and {other.path} are the same bytes with different emotions ({it.emotion}, {other.emotion})")
        by_hash.setdefault(it.sha256, it)  # the run samples the first of identical files (in the order given)
    source_item = {s.source_id: by_hash[s.sha256] for s in run.read("sources") if s.sha256 in by_hash}
    return {c.clip_id: source_item[c.source_id] for c in run.read("clips") if c.source_id in source_item}


def teach_items(run_dir: Path, items: list[Item]) -> set[str]:
    """The items whose clips the run asked a person to label first (flag teach_voice_model)."""
    from storage import RunDir

    run = RunDir(run_dir)
    teach = {c.clip_id for c in run.read("consensus") if "teach_voice_model" in c.flags}
    return {it.name for clip_id, it in clip_items(run, items).items() if clip_id in teach}


def outcomes(run_dir: Path, items: list[Item]) -> tuple[list[ClipOutcome], list[AnswerOutcome], dict[str, list[str]], dict]:
    """The run's clips and answers joined to the manifest: clip -> source -> input file (by content)."""
    from storage import RunDir

    run = RunDir(run_dir)
    clip_item = clip_items(run, items)
    consensus = {c.clip_id: c for c in run.read("consensus")}
    clips = []
    for clip_id, it in sorted(clip_item.items()):
        c = consensus.get(clip_id)
        if c is None:
            clips.append(ClipOutcome(clip_id, it.emotion, None, 0.0, 0.0, True))
            continue
        conf = getattr(c, "confidence", None)
        if conf is None:  # before the calibrated confidence exists: the distribution's top probability
            conf = max((p.prob for p in c.distribution), default=0.0)
        clips.append(ClipOutcome(clip_id, it.emotion, c.label, float(conf), float(c.review_score), bool(c.needs_review)))
    stated = {a.annotation_id: next((p.prob for p in a.label_distribution if p.label == a.label), None)
              for a in run.read("annotations") if a.label is not None}
    answers = [
        AnswerOutcome(j.clip_id, j.annotator_id, j.label, clip_item[j.clip_id].emotion, j.s_final, j.s_rec, j.s_reason, j.s_cot,
                      stated.get(j.annotation_id))
        for j in run.read("judgements") if j.label is not None and j.clip_id in clip_item
    ]
    item_clips: dict[str, list[str]] = {}
    for clip_id, it in clip_item.items():
        item_clips.setdefault(it.name, []).append(clip_id)
    rejects = {}
    for r in run.read("rejects"):
        rejects.setdefault(Path(r.path).name if r.path else "?", []).append(f"{r.severity}: {r.reason}")
    return clips, answers, item_clips, rejects


def speaker_sets(items: list[Item], out: Path, use: bool) -> list[str]:
    """The manifest's speakers, as the run's speakers file (annotate.baseline.speakers): corpora name
    their speakers, and the vocal agents judge a voice against its own speaker's clips."""
    named = [it for it in items if it.speaker]
    if not use or not named:
        return []
    path = out / "bench-speakers.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "speaker"])
        w.writerows((str(it.path.resolve()), it.speaker) for it in named)
    return [f"annotate.baseline.speakers={path}"]


def choose_gold(items: list[Item], fraction: float, seed: int) -> set[str]:
    """Whole groups, drawn in a seeded order, until at least `fraction` of the items are gold."""
    groups = sorted({it.group for it in items})
    random.Random(seed).shuffle(groups)
    size = {g: sum(it.group == g for it in items) for g in groups}
    chosen: set[str] = set()
    count = 0
    for g in groups:
        if count >= fraction * len(items):
            break
        chosen.add(g)
        count += size[g]
    return chosen


def named_groups(items: list[Item], names: str, manifest: Path) -> set[str]:
    """The groups `--gold-groups` names, each by its full name or by what follows its last colon."""
    groups = {it.group for it in items}
    chosen = set()
    for name in (n.strip() for n in names.split(",") if n.strip()):
        found = {g for g in groups if g == name or g.rsplit(":", 1)[-1] == name}
        if not found:
            raise BenchError(f"{manifest}: no group is named {name!r} (groups: {', '.join(sorted(groups))})")
        chosen |= found
    return chosen


def by_corpus(clips: list[ClipOutcome], clip_group: dict[str, str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for c in clips:
        corpus = clip_group[c.clip_id].split(":")[0]
        d = out.setdefault(corpus, {"clips": 0, "correct": 0})
        d["clips"] += 1
        d["correct"] += int(c.correct)
    for d in out.values():
        d["accuracy"] = d["correct"] / d["clips"]
    return out


def plot(results: dict[str, dict], path: Path) -> None:
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    colours = {"blind": "#1f77b4", "gold": "#d62728"}
    for run_name, r in results.items():
        for key, style in (("confidence", "-"), ("review_score", "--")):
            pts = r["risk_coverage"][key]
            xs = [p["flagged"] for p in pts]
            ys = [p["accuracy"] for p in pts]
            # one point per threshold: between two points no threshold exists (tied clips move together)
            ax.plot(xs, ys, style, marker=".", color=colours.get(run_name, "k"), label=f"{run_name}: sorted by {key}")
        routing = r["routing"]
        if routing["accepted_accuracy"] is not None:
            ax.plot([routing["flagged_share"]], [routing["accepted_accuracy"]], "o", color=colours.get(run_name, "k"),
                    label=f"{run_name}: the run's own routing")
    for t in (0.85, 0.90):
        ax.axhline(t, color="#888888", lw=0.8, ls=":")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("fraction of clips flagged for review")
    ax.set_ylabel("accuracy of the accepted clips")
    ax.set_title("risk-coverage of the consensus")
    ax.legend(fontsize=8, loc="best")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    path.write_bytes(buf.getvalue())


def _f(x, digits: int = 2) -> str:
    return "n/a" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


def _interval_line(iv: dict) -> str:
    def span(k):
        return "n/a" if iv.get(k) is None else f"{iv[k][0]:.2f}–{iv[k][1]:.2f}"

    return (f"- {iv['level']:.0%} intervals (clips resampled with their answers, {iv['resamples']} draws): "
            + ", ".join(f"{HEADLINE_NAMES[k]} {span(k)}" for k in HEADLINE))


def _if_calibrated(ece: dict) -> str:
    null = ece.get("if_calibrated")
    if not null:
        return ""
    return (f"; a perfectly calibrated confidence would show {_f(null['mean'], 3)} on these clips (95% of draws up to "
            f"{_f(null['upper'], 3)}; the share of them at least this large, p {_f(null['p'])})")


def _stated_null(v: dict) -> str:
    null = v.get("stated_ece_if_calibrated")
    return "" if not null else f"; if calibrated {_f(null['mean'])}, p {_f(null['p'])}"


def markdown(meta: dict, results: dict[str, dict]) -> str:
    lines = [f"# Label quality: {meta['manifest']}", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items() if k not in ("unscored", "items_by_corpus")]
    if meta.get("unscored"):
        lines += ["- items without a clip (not scored):"] + [f"  - {k}: {'; '.join(v) or 'no reject row'}" for k, v in meta["unscored"].items()]
    for run_name, r in results.items():
        c = r["consensus"]
        lines += ["", f"## {run_name} run ({r['clips']} clips, {r['answers']} answers)", ""]
        if not c.get("n"):
            lines.append("no clips to score")
            continue
        lines += [
            f"- consensus accuracy {_f(c['accuracy'])}, UAR {_f(c['uar'])}, WAR {_f(c['war'])}; answers right: {_f(r['answer_accuracy'])}",
            "- answer-level AUROC (right vs wrong, all annotators): " + ", ".join(f"{k} {_f(v)}" for k, v in r["answer_auroc"].items()),
            "- clip-level AUROC: " + ", ".join(f"{k} {_f(v)}" for k, v in r["clip_auroc"].items()),
            f"- the run's routing: {_f(r['routing']['flagged_share'])} flagged; the {r['routing']['accepted']} accepted clips are {_f(r['routing']['accepted_accuracy'])} right",
            "- flagged share needed for accepted accuracy >= target: "
            + "; ".join(f"by {k}: " + ", ".join(f"{t} -> {_f(v)}" for t, v in d.items()) for k, d in r["flagged_for_accuracy"].items()),
            f"- ECE of the confidence ({r['ece']['bins']} equal-width bins): {_f(r['ece']['value'], 3)}" + _if_calibrated(r["ece"]),
            *([_interval_line(r["intervals"])] if r.get("intervals") else []),
            "", "| by corpus | clips | accuracy |", "|---|---|---|",
        ]
        lines += [f"| {k} | {v['clips']} | {_f(v['accuracy'])} |" for k, v in r["by_corpus"].items()]
        lines += ["", "| class | support | recall |", "|---|---|---|"]
        lines += [f"| {k} | {c['support'][k]} | {_f(v)} |" for k, v in c["recall"].items()]
        labels = c["confusion"]["labels"]
        lines += ["", "confusion (rows gold, columns consensus):", "", "| gold \\ pred | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        lines += [f"| {g} | " + " | ".join(str(x) for x in row) + " |" for g, row in zip(labels, c["confusion"]["matrix"]) if any(row)]
        lines += ["", "| annotator | answered | its accuracy | its κ | its stated probability (ECE; a calibrated one's, p) | consensus on its items | mean S_final | right | wrong |",
                  "|---|---|---|---|---|---|---|---|---|"]
        lines += [
            f"| {k} | {v['answered']} | {_f(v['accuracy'])} | {_f(v.get('kappa'))} | {_f(v.get('mean_stated'))} ({_f(v.get('stated_ece'))}{_stated_null(v)}) | {_f(v['consensus_accuracy'])} | {_f(v['mean_s_final'])} | {_f(v['mean_s_final_right'])} | {_f(v['mean_s_final_wrong'])} |"
            for k, v in r["annotators"].items()
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Label-quality benchmark on media with known emotions (see the module docstring).")
    ap.add_argument("manifest", nargs="?", type=Path, help="labels.json-style or CSV file,emotion[,group]; default: the fetched dev set")
    ap.add_argument("--fetch", action="store_true", help="fetch the dev set first (bench/label_dev.py) and use its manifest")
    ap.add_argument("--dev-manifest", type=Path, action="append", default=None,
                    help="with --fetch: the labels to fetch (default the dev set); repeat it to run several corpora as one mixed run")
    ap.add_argument("--dest", type=Path, default=None, help="with --fetch: where the dev set goes (default $EMOFORGE_HOME/label-dev)")
    ap.add_argument("--polish-all", action="store_true", help="with --fetch: all 450 Polish recordings")
    ap.add_argument("--only", default=None, help="only items whose group contains this text (e.g. Polish)")
    ap.add_argument("--subset", type=int, default=None, help="only N items, spread over (group, emotion), seeded")
    ap.add_argument("--out", type=Path, default=None, help="run directory (default bench/results/label_quality[-TAG]-run)")
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="override passed to emoforge run (repeatable)")
    ap.add_argument("--reuse", type=Path, default=None, help="score this finished run directory; run nothing")
    ap.add_argument("--gold-fraction", type=float, default=0.0, help="give the judge gold labels for this share of the items (whole groups)")
    ap.add_argument("--gold-groups", default=None,
                    help="give the judge gold labels for these groups (comma-separated; a group's name or what follows its last colon)")
    ap.add_argument("--gold-teach", action="store_true",
                    help="give the judge gold labels for the items the blind run flagged teach_voice_model")
    ap.add_argument("--gold-random", type=int, default=0, help="give the judge gold labels for N items drawn at random (seeded)")
    ap.add_argument("--no-speakers", dest="speakers", action="store_false",
                    help="do not give the run the manifest's speakers (annotate.baseline.speakers)")
    ap.add_argument("--labels-from-manifest", action="store_true",
                    help="run with the manifest's labels as the taxonomy, as a user declares a corpus's classes "
                         "(a corpus with no neutral gets no neutral answers); default: the configured taxonomy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ece-bins", type=int, default=10)
    ap.add_argument("--tag", default="", help="suffix of the result files")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if not 0 <= args.gold_fraction < 1:
        ap.error("--gold-fraction must be in [0, 1)")
    if args.reuse and (args.gold_fraction or args.gold_groups or args.gold_teach or args.gold_random):
        ap.error("--reuse re-scores one run; gold labels need runs")
    if sum(map(bool, (args.gold_fraction, args.gold_groups, args.gold_teach, args.gold_random))) > 1:
        ap.error("give one of --gold-fraction, --gold-groups, --gold-teach, --gold-random")

    from schemas.config import ConfigError, load_config

    try:
        config = load_config(args.config, args.sets)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        manifest = args.manifest
        if args.fetch:
            dest = args.dest or default_dest()
            sources = args.dev_manifest or [DEV_MANIFEST]
            written = []
            for i, source in enumerate(sources):
                polish_all = args.polish_all and i == 0  # the 450 words join the first manifest's items
                fetched = fetch(source, dest, polish_all)
                print(f"fetched {len(fetched)} items of {source} into {dest}", file=sys.stderr)
                written.append(manifest_path_for(dest, polish_all, source))
            manifest = manifest or (written[0] if len(written) == 1 else merge_manifests(written, dest))
        manifest = manifest or default_dest() / "labels.json"
        items = read_manifest(manifest, config.taxonomy)
        if args.only:
            items = [it for it in items if args.only.lower() in it.group.lower()]
            if not items:
                raise BenchError(f"{manifest}: no item's group contains {args.only!r}")
        if args.subset:
            items = subset(items, args.subset, args.seed)
        if args.labels_from_manifest:
            present = {it.emotion for it in items}
            labels = [t for t in config.taxonomy if t in present]
            args.sets = [*args.sets, f"taxonomy=[{','.join(labels)}]"]
            config = load_config(args.config, args.sets)
        return _bench(args, config, manifest, items)
    except (BenchError, FetchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _bench(args, config, manifest: Path, items: list[Item]) -> int:
    tag = f"-{args.tag}" if args.tag else ""
    out = (args.reuse or args.out or args.results / f"label_quality{tag}-run").resolve()
    for it in items:
        it.sha256 = sha256_file(it.path)
    log = out.with_name(out.name + ".log")
    seconds: dict[str, float] = {}
    gold_groups = (named_groups(items, args.gold_groups, manifest) if args.gold_groups
                   else choose_gold(items, args.gold_fraction, args.seed) if args.gold_fraction else set())
    gold_items = {it.name for it in items if it.group in gold_groups}
    gold_how = "the gold groups' items"
    if args.gold_random:
        gold_how = f"drawn at random (seed {args.seed})"
        gold_items = set(random.Random(args.seed).sample(sorted(it.name for it in items), min(args.gold_random, len(items))))
    runs = {"blind": out}
    sets = [*args.sets, *speaker_sets(items, out, args.speakers)]
    if not args.reuse:
        seconds["blind"] = run_emoforge([it.path for it in items], out, args.config, sets, log)
    if args.gold_teach:
        gold_items, gold_how = teach_items(out, items), "those the blind run flagged teach_voice_model"
        if not gold_items:
            raise BenchError(f"{out}: the blind run flagged no clip teach_voice_model (it has a voice model already, or fewer "
                             "clips with voiced speech than annotate.learned_voice.min_labelled)")
    if gold_items:
        # keep the blind run's tables, then rerun on the same directory with gold (stages 1-3 cached)
        blind = out / "bench-blind"
        shutil.rmtree(blind, ignore_errors=True)
        shutil.copytree(out / "tables", blind / "tables")
        runs = {"blind": blind, "gold": out}
        _, _, item_clips, _ = outcomes(blind, items)
        gold_csv = out / "bench-gold.csv"
        with open(gold_csv, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["clip_id", "label"])
            for it in items:
                if it.name in gold_items:
                    for clip_id in item_clips.get(it.name, []):
                        w.writerow([clip_id, it.emotion])
        seconds["gold"] = run_emoforge([it.path for it in items], out, args.config, [*sets, f"judge.gold={gold_csv}"], log)

    eval_names = {it.name for it in items if it.name not in gold_items}
    results: dict[str, dict] = {}
    unscored: dict[str, list[str]] = {}
    for run_name, run_dir in runs.items():
        clips, answers, item_clips, rejects = outcomes(run_dir, items)
        clip_group = {cid: it.group for it in items for cid in item_clips.get(it.name, [])}
        keep = {cid for name, cids in item_clips.items() if name in eval_names for cid in cids}
        clips = [c for c in clips if c.clip_id in keep]
        answers = [a for a in answers if a.clip_id in keep]
        r = evaluate(clips, answers, config.taxonomy, args.ece_bins)
        r["by_corpus"] = by_corpus(clips, clip_group)
        r["intervals"] = {"level": INTERVAL_LEVEL, "resamples": RESAMPLES,
                          **intervals(clips, answers, INTERVAL_LEVEL, RESAMPLES, args.seed, args.ece_bins)}
        # every scored clip and answer, so that bench/compare_runs.py can pair two runs clip by clip
        clip_item = {cid: name for name, cids in item_clips.items() for cid in cids}
        r["outcomes"] = {"clips": [{**asdict(c), "item": clip_item[c.clip_id]} for c in clips],
                         "answers": [asdict(a) for a in answers]}
        results[run_name] = r
        first = {}
        for it in items:
            first.setdefault(it.sha256, it)
        unscored = {it.path.name: rejects.get(it.path.name, []) or
                    ([f"same bytes as {first[it.sha256].path.name}: the run samples them once, scored as that item"]
                     if first[it.sha256] is not it else [])
                    for it in items if it.name not in item_clips}

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = "?", False
    meta = {
        "manifest": str(manifest),
        "measured": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "run_dir": str(out),
        "items": len(items),
        "selection": ", ".join(x for x in (args.only and f"groups containing {args.only!r}", args.subset and f"subset of {args.subset} (seed {args.seed})") if x) or "all",
        "evaluated_items": len(eval_names),
        "gold_groups": sorted(gold_groups) or ("none" if gold_items else "none (blind: the run got no gold labels)"),
        "gold_items": f"{len(gold_items)}: {gold_how}" if gold_items else "none",
        "photos": sum(it.path.suffix.lower() in IMAGE_EXTENSIONS for it in items),
        "labels_read_as": {g: e for g, e in sorted({(it.given, it.emotion) for it in items if it.given})} or "as written",
        "overrides": sets or "none (offline default)",
        "config": str(args.config) if args.config else "default",
        "run_seconds": {k: round(v, 1) for k, v in seconds.items()} or "reused",
        "confidence": _confidence_source(runs["blind"]),
    }
    meta["unscored"] = unscored
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"label_quality{tag}"
    Path(f"{stem}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str))
    Path(f"{stem}.md").write_text(markdown(meta, results) + f"\n![risk-coverage]({stem.name}_risk_coverage.png)\n")
    plot(results, Path(f"{stem}_risk_coverage.png"))
    print(markdown(meta, results))
    print(f"wrote {stem}.md, {stem}.json, {stem}_risk_coverage.png", file=sys.stderr)
    return 0


def _confidence_source(run_dir: Path) -> str:
    from storage import RunDir

    cons = RunDir(run_dir).read("consensus")
    if cons and getattr(cons[0], "confidence", None) is not None:
        return "the consensus's calibrated confidence (Consensus.confidence)"
    return "the consensus distribution's top probability (the run states no calibrated confidence)"


if __name__ == "__main__":
    sys.exit(main())
