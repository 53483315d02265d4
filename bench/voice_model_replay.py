"""Which labels teach the run's voice model most, and is its classifier the right one? A replay on a
finished label-quality run: the voice model is refitted as the run fits it (agents/learned_voice.py:
the same z-scored matrix, the same logistic regression) on labelled sets chosen several ways, and
scored on the clips left unlabelled. Nothing here changes the run; it measures what a change would do.

- first round: `teach` (agents/teach_set.py: what a blind run flags `teach_voice_model`), `random`
  (seeded draws, every drawn emotion labelled twice or more), `least-sure` (the run's least
  confident clips first: the order Label Studio's score column gives);
- second round, after the teach set: as many clips again, by `teach` (the labelled clips count as
  covering their clusters), `least-sure` under the model fitted on the first round, or `random`;
  the share of all clips right counts the labelled ones as right (a person labelled them);
- classifiers on the same labelled sets: the run's logistic regression against label spreading,
  self-training and shrinkage LDA (scikit-learn), which use the unlabelled clips too.

    .venv/bin/python bench/voice_model_replay.py RUN_DIR MANIFEST [--labels 30] [--draws 10] [--out results.json]

RUN_DIR: a blind run of `bench/label_quality.py` on MANIFEST (its `-run` directory, or `--out`)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@dataclass
class Replay:
    """The run's voiced clips with a known emotion, as its voice model reads them."""

    x: np.ndarray  # the voice model's input (agents.learned_voice.voice_matrix)
    y: np.ndarray  # the manifest's emotion
    confidence: np.ndarray  # the run's consensus confidence
    ids: list[str]
    c: float  # annotate.learned_voice.c

    @cached_property
    def reduced(self) -> np.ndarray:
        """x scaled and reduced to 20 dimensions (PCA), for the classifiers that measure distances;
        once per replay, as every labelled set shares it."""
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import StandardScaler

        return PCA(min(20, *self.x.shape), random_state=0).fit_transform(StandardScaler().fit_transform(self.x))


def load(run_dir: Path, manifest: Path) -> Replay:
    from agents.learned_voice import _functionals, voice_matrix
    from agents.voice_baseline import voice_baselines
    from bench.label_quality import clip_items, read_manifest, sha256_file
    from schemas import load_config
    from storage import RunDir

    run = RunDir(run_dir)
    config = load_config(run.tables_dir / "config.yaml")
    items = read_manifest(manifest, list(config.taxonomy))
    for it in items:
        it.sha256 = sha256_file(it.path)
    item_of = clip_items(run, items)
    clips, features = run.read("clips"), run.read("features")
    speech = {c.clip_id for c in clips if c.speech}
    rows = {f.clip_id: m for f in features if f.clip_id in speech and f.clip_id in item_of and (m := _functionals(f))}
    ids = list(rows)  # in the run's order: k-means starts depend on it, and the replay must choose what the run chose
    if len(ids) < 10:
        raise SystemExit(f"{run_dir}: only {len(ids)} voiced clips with a known emotion; a replay needs more")
    voice = voice_baselines(clips, features, config.annotate.baseline)
    matrix = voice_matrix(ids, rows, features, voice)
    if matrix is None:
        raise SystemExit(f"{run_dir}: the voiced clips share no eGeMAPS functional")
    confidence = {c.clip_id: c.confidence or 0.0 for c in run.read("consensus")}  # no answer: the least sure
    return Replay(matrix[0], np.array([item_of[i].emotion for i in ids]), np.array([confidence.get(i, 0.0) for i in ids]),
                  ids, config.annotate.learned_voice.c)


def logistic(r: Replay):
    from agents.learned_voice import voice_classifier

    return voice_classifier(r.c)  # the run's own, so the replay fits what the run fits


def _codes(r: Replay, labelled: np.ndarray) -> tuple[list[str], np.ndarray]:
    classes = sorted(set(r.y[labelled]))
    y = np.full(len(r.y), -1)
    y[labelled] = [classes.index(v) for v in r.y[labelled]]
    return classes, y


def predict(r: Replay, how: str, labelled: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Labels for `rest` from a classifier fitted on `labelled` (and, for the transductive ones, the rest's features)."""
    if how == "logistic regression (the run's)":
        return logistic(r).fit(r.x[labelled], r.y[labelled]).predict(r.x[rest])
    if how.startswith("label spreading"):
        from sklearn.semi_supervised import LabelSpreading

        classes, y = _codes(r, labelled)
        model = LabelSpreading(kernel="knn", n_neighbors=10, alpha=0.2, max_iter=200).fit(r.reduced, y)
        return np.array(classes)[model.transduction_[rest]]
    if how.startswith("self-training"):
        from sklearn.semi_supervised import SelfTrainingClassifier

        classes, y = _codes(r, labelled)
        model = SelfTrainingClassifier(logistic(r), threshold=0.6, max_iter=10).fit(r.x, y)
        return np.array(classes)[model.predict(r.x[rest])]
    if how.startswith("shrinkage LDA"):
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        z = r.reduced
        return LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(z[labelled], r.y[labelled]).predict(z[rest])
    raise ValueError(how)


CLASSIFIERS = ["logistic regression (the run's)", "label spreading (k-NN graph on 20 PCA dims)",
               "self-training (the logistic regression, threshold 0.6)", "shrinkage LDA on 20 PCA dims"]


def accuracy(r: Replay, labelled: np.ndarray, how: str = CLASSIFIERS[0]) -> tuple[float, float]:
    """(accuracy on the unlabelled clips, share of all clips right with the labelled ones counted right);
    NaN for a set with one emotion, which the run would not fit on either."""
    if len(set(r.y[labelled])) < 2:
        return float("nan"), float("nan")
    rest = np.setdiff1d(np.arange(len(r.y)), labelled)
    right = predict(r, how, labelled, rest) == r.y[rest]
    return float(right.mean()), float((len(labelled) + right.sum()) / len(r.y))


def teach(r: Replay, n: int, known: np.ndarray = np.array([], dtype=int)) -> np.ndarray:
    from agents.teach_set import choose_teach_set

    known_ids = {r.ids[i] for i in known}
    chosen = choose_teach_set(r.ids, r.x, n, known_ids)
    return np.array(sorted(r.ids.index(i) for i in chosen))


def random_draws(r: Replay, n: int, draws: int, seed: int, pool: np.ndarray | None = None) -> list[np.ndarray]:
    """`draws` sets of `n` from `pool`, each emotion in a set labelled twice or more (a label seen once
    cannot be held out, so the run would not fit on it either)."""
    pool = np.arange(len(r.y)) if pool is None else pool
    rng, out = np.random.default_rng(seed), []
    for _ in range(1000 * draws):
        if len(out) == draws:
            break
        pick = rng.choice(pool, n, replace=False)
        _, counts = np.unique(r.y[pick], return_counts=True)
        if counts.min() >= 2 and len(counts) >= 2:
            out.append(np.sort(pick))
    return out


def mean(pairs: list[tuple[float, float]]) -> dict[str, float]:
    a = np.array(pairs)
    if np.isnan(a).all():
        return {"unlabelled": None, "unlabelled_min": None, "unlabelled_max": None, "all_clips": None, "sets": len(pairs)}
    return {"unlabelled": float(np.nanmean(a[:, 0])), "unlabelled_min": float(np.nanmin(a[:, 0])), "unlabelled_max": float(np.nanmax(a[:, 0])),
            "all_clips": float(np.nanmean(a[:, 1])), "sets": len(pairs)}


def replay(r: Replay, n: int, draws: int, seed: int) -> dict:
    out: dict = {"clips": len(r.y), "emotions": sorted(set(r.y)), "labels": n, "first_round": {}, "second_round": {}, "classifiers": {}}
    first = teach(r, n)
    randoms = random_draws(r, n, draws, seed)
    least = np.argsort(r.confidence, kind="stable")[:n]
    out["first_round"] = {"teach": mean([accuracy(r, first)]), "random": mean([accuracy(r, s) for s in randoms]),
                          "least-sure": mean([accuracy(r, least)])}
    rest = np.setdiff1d(np.arange(len(r.y)), first)
    model = logistic(r).fit(r.x[first], r.y[first])
    unsure = rest[np.argsort(model.predict_proba(r.x[rest]).max(axis=1), kind="stable")[:n]]
    out["second_round"] = {
        "teach": mean([accuracy(r, np.union1d(first, teach(r, n, first)))]),
        "least-sure": mean([accuracy(r, np.union1d(first, unsure))]),
        "random": mean([accuracy(r, np.union1d(first, s)) for s in random_draws(r, n, draws, seed + 1, rest)]),
        f"one round of teach, {2 * n}": mean([accuracy(r, teach(r, 2 * n))]),
    }
    for how in CLASSIFIERS:
        out["classifiers"][how] = {"teach": mean([accuracy(r, first, how)]), "random": mean([accuracy(r, s, how) for s in randoms])}
    return out


def markdown(res: dict, n: int) -> str:
    lines = [f"{res['clips']} voiced clips ({', '.join(res['emotions'])}); {n} labels a round; accuracy of the voice model on the "
             "unlabelled clips (random: mean over draws, [min, max]); all clips: the labelled ones counted right", ""]
    lines += ["| first round | unlabelled | all clips |", "|---|---|---|"]
    for k, v in res["first_round"].items():
        lines.append(f"| {k} | {_cell(v)} | {_all(v)} |")
    lines += ["", f"| second round, after the teach set ({2 * n} labels) | unlabelled | all clips |", "|---|---|---|"]
    for k, v in res["second_round"].items():
        lines.append(f"| {k} | {_cell(v)} | {_all(v)} |")
    lines += ["", "| classifier | teach set | random sets |", "|---|---|---|"]
    for k, v in res["classifiers"].items():
        lines.append(f"| {k} | {_cell(v['teach'])} | {_cell(v['random'])} |")
    return "\n".join(lines)


def _cell(v: dict) -> str:
    if v["unlabelled"] is None:
        return "n/a (one emotion)"
    if v["sets"] == 1:
        return f"{v['unlabelled']:.3f}"
    return f"{v['unlabelled']:.3f} [{v['unlabelled_min']:.2f}, {v['unlabelled_max']:.2f}]"


def _all(v: dict) -> str:
    return "n/a" if v["all_clips"] is None else f"{v['all_clips']:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("manifest", type=Path)
    ap.add_argument("--labels", type=int, default=30, help="clips labelled in a round (default 30, as annotate.learned_voice.teach)")
    ap.add_argument("--draws", type=int, default=10, help="random sets drawn for each random row")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here too")
    args = ap.parse_args(argv)
    r = load(args.run_dir, args.manifest)
    if 3 * args.labels > len(r.y):
        ap.error(f"--labels {args.labels}: the run has {len(r.y)} voiced clips with a known emotion; two rounds need well under half")
    res = replay(r, args.labels, args.draws, args.seed)
    print(markdown(res, args.labels))
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
