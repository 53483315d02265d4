"""The benchmark evaluator: one model's predictions held against an exported dataset (stage 6).

    preds = read_predictions("preds.csv")               # CSV (clip_id,label[,rationale]), JSONL or Parquet
    report = evaluate(preds, "run/dataset", split="test")
    write_outputs(report, json_path=Path("eval.json"), markdown_path=Path("eval.md"))

What is measured, and against what
  gold labels  the answer key (DIR/answer_key/test.parquet) for the test split, the split's own rows
               otherwise. Rows whose gold label is empty (no consensus) are not scored: predictions for
               them are accepted and ignored, and they are not "missing".
  taxonomy     the label set the metrics are reported over, in this order of preference: the class
               names in the dataset card (README.md front matter, Hugging Face `class_label.names` of the
               `label` feature); otherwise every label the dataset mentions (labels, multi-labels,
               label distributions and annotator answers of every split, plus the answer key), ordered
               as in emoforge's default taxonomy with any other labels after it alphabetically. Labels
               are compared lower-cased and stripped. A predicted label outside the taxonomy is an error.
  labels       accuracy; macro and weighted F1; UAR (unweighted average recall: the mean recall over the
               classes that occur in the gold labels); WAR (weighted average recall: recall weighted by
               support, which equals accuracy); per-class precision/recall/F1/support over the whole
               taxonomy; the confusion matrix (rows gold, columns predicted, taxonomy order). Macro F1
               averages over the classes present in gold or predictions (scikit-learn's default), so
               predicting a class that never occurs costs macro F1. All via scikit-learn, zero_division=0.
  missing      a scored clip of the split without a prediction is an error, unless allow_missing: then it
               counts as wrong (a "(missing)" prediction: it lowers accuracy and that class's recall, it is
               no false positive of any class) and is listed in the report.
  rationale    ROUGE-L F-measure (rouge-score, stemmed; mean over clips that have both a predicted
               rationale and reference steps) and corpus BLEU (sacrebleu, 0-100) of the predicted rationale
               against the clip's reference rationale steps joined with spaces.
  evidence     every piece of evidence a prediction cites is checked against the clip's measured features
               with the judge's hallucination check (evidence.grounding.verify); coverage is the share
               that is "supported". Evidence on a clip the dataset has no features for is "unverifiable".

Errors: EvaluationError (PredictionsError for the predictions file, DatasetError for the dataset), whose
message starts with the file it is about. evaluate() writes nothing; write_outputs() writes only after
everything is computed, each file atomically, and removes what it wrote if a later write fails.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Iterable

from pydantic import BaseModel, ValidationError

from schemas import AnswerKeyRow, DatasetRow, Prediction, RationaleStep
from storage.dataset_dir import SPLITS, DatasetDir
from storage.parquet import TableError, atomic_write_bytes

MISSING = "(missing)"


class EvaluationError(Exception):
    """Bad input to the evaluator; the message starts with the file it is about."""

    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        super().__init__(f"{path}: {message}")


class PredictionsError(EvaluationError):
    """The predictions file cannot be read, or does not fit the dataset."""


class DatasetError(EvaluationError):
    """The dataset directory cannot be evaluated against (missing, empty split, no answer key)."""


class ClassMetrics(BaseModel):
    label: str
    precision: float
    recall: float
    f1: float
    support: int  # gold clips of this class
    predicted: int  # clips predicted as this class


class ConfusionMatrix(BaseModel):
    gold: list[str]  # rows
    predicted: list[str]  # columns: the taxonomy, plus "(missing)" when predictions were missing
    matrix: list[list[int]]


class RationaleMetrics(BaseModel):
    n_pairs: int  # clips with both a predicted rationale and reference steps
    n_without_prediction: int  # scored clips whose prediction has no rationale
    n_without_reference: int  # predicted rationales on clips without reference steps
    rouge_l: float | None  # mean ROUGE-L F-measure, 0-1
    bleu: float | None  # sacrebleu corpus BLEU, 0-100


class EvidenceProblem(BaseModel):
    clip_id: str
    evidence_id: str
    verdict: str
    reason: str


class EvidenceCoverage(BaseModel):
    n_cited: int
    supported: int
    contradicted: int
    unverifiable: int
    coverage: float | None  # supported / cited
    n_predictions_citing: int
    contradictions: list[EvidenceProblem] = []


class EvaluationReport(BaseModel):
    dataset: str
    predictions: str | None
    split: str
    labels: list[str]  # the taxonomy, in order
    taxonomy_source: str  # "dataset card" or "dataset labels"
    n_clips: int  # clips of the split
    n_scored: int  # clips with a gold label
    n_unlabelled: int  # clips of the split without a gold label (not scored)
    n_predictions: int
    n_missing: int
    missing_clip_ids: list[str] = []
    accuracy: float
    macro_f1: float
    weighted_f1: float
    macro_precision: float
    uar: float
    war: float
    per_class: list[ClassMetrics]
    confusion: ConfusionMatrix
    rationale: RationaleMetrics
    evidence: EvidenceCoverage


# --------------------------------------------------------------------------- reading predictions


def read_predictions(path: str | Path) -> list[Prediction]:
    """Predictions from CSV (columns clip_id,label[,rationale]), JSONL (one Prediction object a line)
    or Parquet (columns as Prediction's fields). Raises PredictionsError naming the file."""
    path = Path(path)
    if not path.exists():
        raise PredictionsError(path, "no such file")
    if not path.is_file():
        raise PredictionsError(path, "not a file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            raw = _read_csv(path)
        elif suffix in (".jsonl", ".ndjson"):
            raw = _read_jsonl(path)
        elif suffix in (".parquet", ".pq"):
            raw = _read_parquet(path)
        else:
            raise PredictionsError(path, f"unsupported format {suffix or '(no extension)'!r}; use .csv, .jsonl or .parquet")
    except UnicodeDecodeError as exc:
        raise PredictionsError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise PredictionsError(path, f"cannot read: {exc.strerror or exc}") from None
    if not raw:
        raise PredictionsError(path, "holds no predictions")
    preds: list[Prediction] = []
    for where, rec in raw:
        if not isinstance(rec, dict):
            raise PredictionsError(path, f"{where}: expected an object with clip_id and label, got {type(rec).__name__}")
        rec = {k: v for k, v in rec.items() if v is not None}
        for key in ("clip_id", "label"):
            if isinstance(rec.get(key), str):
                rec[key] = rec[key].strip()
            if rec.get(key) in ("", None):
                raise PredictionsError(path, f"{where}: empty {key}")
        if isinstance(rec.get("rationale"), str) and not rec["rationale"].strip():
            rec.pop("rationale")
        try:
            preds.append(Prediction.model_validate(rec))
        except ValidationError as exc:
            e = exc.errors()[0]
            loc = ".".join(str(p) for p in e["loc"]) or "record"
            raise PredictionsError(path, f"{where}: {loc}: {e['msg']}") from None
    dupes = [c for c, n in Counter(p.clip_id for p in preds).items() if n > 1]
    if dupes:
        raise PredictionsError(path, f"{len(dupes)} clip id(s) predicted more than once: {_some(dupes)}")
    return preds


def _read_csv(path: Path) -> list[tuple[str, dict]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        try:
            reader = csv.DictReader(fh)
            fields = [f.strip() for f in (reader.fieldnames or [])]
            missing = [c for c in ("clip_id", "label") if c not in fields]
            if missing:
                raise PredictionsError(path, f"CSV needs columns clip_id,label[,rationale]; missing {', '.join(missing)} "
                                             f"(header: {','.join(fields) or 'none'})")
            reader.fieldnames = fields
            out = []
            for i, row in enumerate(reader, start=2):
                if None in row:
                    raise PredictionsError(path, f"line {i}: more fields than the header has")
                if not any((v or "").strip() for v in row.values()):
                    continue  # a blank line
                rec = {k: row.get(k) for k in ("clip_id", "label", "rationale") if k in row}
                out.append((f"line {i}", rec))
            return out
        except csv.Error as exc:
            raise PredictionsError(path, f"not valid CSV: {exc}") from None


def _read_jsonl(path: Path) -> list[tuple[str, dict]]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.append((f"line {i}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise PredictionsError(path, f"line {i}: not valid JSON ({exc.msg})") from None
    return out


def _read_parquet(path: Path) -> list[tuple[str, dict]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise PredictionsError(path, f"not a readable Parquet file ({exc})") from None
    missing = [c for c in ("clip_id", "label") if c not in table.column_names]
    if missing:
        raise PredictionsError(path, f"Parquet file needs columns clip_id and label; missing {', '.join(missing)}")
    keep = [c for c in table.column_names if c in Prediction.model_fields]
    return [(f"row {i + 1}", rec) for i, rec in enumerate(table.select(keep).to_pylist())]


# --------------------------------------------------------------------------- the dataset side


def _norm(label: str | None) -> str | None:
    if label is None:
        return None
    s = label.strip().lower()
    return s or None


def _some(items: Iterable[str], n: int = 5) -> str:
    items = list(items)
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def _read(ds: DatasetDir, what: str, fn):
    try:
        return fn()
    except TableError as exc:
        raise DatasetError(ds.root, f"{what}: {exc}") from None


def card_taxonomy(root: Path) -> list[str] | None:
    """Class names of the `label` feature in the dataset card's YAML front matter, if it has them."""
    card = root / "README.md"
    if not card.is_file():
        return None
    text = card.read_text(encoding="utf-8", errors="replace")
    m = re.match(r"---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
    if not m:
        return None
    try:
        import yaml

        meta = yaml.safe_load(m.group(1))
    except Exception:
        return None
    own = (meta.get("emoforge") or {}).get("taxonomy") if isinstance(meta, dict) else None
    if isinstance(own, list) and own and all(isinstance(n, str) for n in own):  # written by emoforge's exporter
        return list(dict.fromkeys(_norm(n) for n in own if _norm(n)))
    infos = meta.get("dataset_info") if isinstance(meta, dict) else None
    for info in infos if isinstance(infos, list) else [infos]:
        feats = info.get("features") if isinstance(info, dict) else None
        for f in feats if isinstance(feats, list) else []:
            if isinstance(f, dict) and f.get("name") == "label":
                names = ((f.get("dtype") or {}).get("class_label") or {}).get("names") if isinstance(f.get("dtype"), dict) else None
                if isinstance(names, dict):  # HF also writes {"0": "anger", ...}
                    names = [names[k] for k in sorted(names, key=lambda k: int(k))]
                if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
                    return list(dict.fromkeys(_norm(n) for n in names if _norm(n)))
    return None


def dataset_taxonomy(ds: DatasetDir, key: list[AnswerKeyRow]) -> tuple[list[str], str]:
    """The dataset's label set (see the module docstring) and where it came from."""
    from_card = card_taxonomy(ds.root)
    if from_card:
        return from_card, "dataset card"
    from schemas.config import DEFAULT_TAXONOMY

    seen: set[str] = set()
    for split in SPLITS:
        for r in _read(ds, f"{split} split", lambda s=split: ds.read_split(s)):
            seen.update(filter(None, [_norm(r.label), *map(_norm, r.labels), *(_norm(p.label) for p in r.label_distribution),
                                      *(_norm(a.label) for a in r.answers)]))
    for k in key:
        seen.update(filter(None, [_norm(k.label), *map(_norm, k.labels)]))
    order = [t for t in DEFAULT_TAXONOMY if t in seen] + sorted(seen - set(DEFAULT_TAXONOMY))
    return order, "dataset labels"


class _Gold(BaseModel):
    clip_id: str
    label: str | None
    steps: list[RationaleStep] = []
    start: float
    end: float


def _gold(ds: DatasetDir, split: str) -> tuple[list[_Gold], list[AnswerKeyRow]]:
    if not ds.root.is_dir():
        raise DatasetError(ds.root, "no such dataset directory")
    rows: list[DatasetRow] = _read(ds, f"{split} split", lambda: ds.read_split(split))
    if not rows:
        raise DatasetError(ds.split_path(split), f"the {split} split is empty or missing")
    dupes = [c for c, n in Counter(r.clip_id for r in rows).items() if n > 1]
    if dupes:
        raise DatasetError(ds.split_path(split), f"clip id(s) listed more than once: {_some(dupes)}")
    key = _read(ds, "answer key", ds.read_answer_key) if ds.answer_key_path.exists() else []
    if split != "test":
        return [_Gold(clip_id=r.clip_id, label=_norm(r.label), steps=r.steps, start=r.start, end=r.end) for r in rows], key
    if not key:
        raise DatasetError(ds.answer_key_path, "the test split's answer key is missing or empty")
    by_id = {k.clip_id: k for k in key}
    lacking = [r.clip_id for r in rows if r.clip_id not in by_id]
    if lacking:
        raise DatasetError(ds.answer_key_path, f"{len(lacking)} test clip(s) have no answer: {_some(lacking)}")
    return [_Gold(clip_id=r.clip_id, label=_norm(by_id[r.clip_id].label), steps=by_id[r.clip_id].steps, start=r.start, end=r.end)
            for r in rows], key


# --------------------------------------------------------------------------- evaluation


def evaluate(predictions: list[Prediction], dataset_dir: str | Path, split: str = "test", *, allow_missing: bool = False,
             predictions_path: str | Path | None = None) -> EvaluationReport:
    """Score predictions against a split of an exported dataset. Writes nothing.

    Raises DatasetError for an unusable dataset or split, PredictionsError (naming predictions_path, or
    "predictions") for unknown clip ids, duplicate clip ids, labels outside the taxonomy, or clips of the
    split without a prediction (unless allow_missing)."""
    if split not in SPLITS:
        raise DatasetError(dataset_dir, f"unknown split {split!r} (splits: {', '.join(SPLITS)})")
    ds = DatasetDir(dataset_dir)
    where = predictions_path if predictions_path is not None else "predictions"
    gold, key = _gold(ds, split)
    taxonomy, tax_source = dataset_taxonomy(ds, key)
    if not taxonomy:
        raise DatasetError(ds.root, "the dataset has no labels at all, so there is nothing to score against")

    if not predictions:
        raise PredictionsError(where, "holds no predictions")
    dupes = [c for c, n in Counter(p.clip_id for p in predictions).items() if n > 1]
    if dupes:
        raise PredictionsError(where, f"{len(dupes)} clip id(s) predicted more than once: {_some(dupes)}")
    gold_by_id = {g.clip_id: g for g in gold}
    unknown = [p.clip_id for p in predictions if p.clip_id not in gold_by_id]
    if unknown:
        raise PredictionsError(where, f"{len(unknown)} prediction(s) for clip ids not in the {split} split: {_some(unknown)}")
    tax = set(taxonomy)
    outside = sorted({p.label for p in predictions if _norm(p.label) not in tax})
    if outside:
        raise PredictionsError(where, f"label(s) outside the dataset's taxonomy: {_some(outside)} (taxonomy: {', '.join(taxonomy)})")
    pred_by_id = {p.clip_id: p for p in predictions}
    scored = [g for g in gold if g.label is not None]
    if not scored:
        raise DatasetError(ds.root, f"no clip of the {split} split has a gold label")
    bad_gold = sorted({g.label for g in scored if g.label not in tax})
    if bad_gold:  # only possible when the card's class list disagrees with the data
        raise DatasetError(ds.root, f"gold label(s) outside the dataset card's class names: {_some(bad_gold)}")
    missing = [g.clip_id for g in scored if g.clip_id not in pred_by_id]
    if missing and not allow_missing:
        raise PredictionsError(where, f"{len(missing)} clip(s) of the {split} split have no prediction: {_some(missing)} "
                                      f"(--allow-missing counts them as wrong)")

    y_true = [g.label for g in scored]
    y_pred = [_norm(pred_by_id[g.clip_id].label) if g.clip_id in pred_by_id else MISSING for g in scored]
    metrics = _label_metrics(y_true, y_pred, taxonomy)
    return EvaluationReport(
        dataset=str(ds.root), predictions=None if predictions_path is None else str(predictions_path), split=split,
        labels=taxonomy, taxonomy_source=tax_source, n_clips=len(gold), n_scored=len(scored), n_unlabelled=len(gold) - len(scored),
        n_predictions=len(predictions), n_missing=len(missing), missing_clip_ids=missing, **metrics,
        rationale=_rationale_metrics(scored, pred_by_id),
        evidence=_evidence_coverage(ds, gold_by_id, [pred_by_id[g.clip_id] for g in gold if g.clip_id in pred_by_id]),
    )


def _label_metrics(y_true: list[str], y_pred: list[str], taxonomy: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support, precision_score, recall_score

    present = [t for t in taxonomy if t in set(y_true) | set(y_pred)]  # scikit-learn's default label set, in taxonomy order
    in_gold = [t for t in taxonomy if t in set(y_true)]
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=taxonomy, zero_division=0)
    predicted = Counter(y_pred)
    columns = taxonomy + ([MISSING] if MISSING in predicted else [])
    cm = confusion_matrix(y_true, y_pred, labels=columns)[: len(taxonomy)]
    return dict(
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        weighted_f1=float(f1_score(y_true, y_pred, labels=in_gold, average="weighted", zero_division=0)),
        macro_precision=float(precision_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        uar=float(recall_score(y_true, y_pred, labels=in_gold, average="macro", zero_division=0)),
        war=float(recall_score(y_true, y_pred, labels=in_gold, average="weighted", zero_division=0)),
        per_class=[ClassMetrics(label=t, precision=float(p[i]), recall=float(r[i]), f1=float(f[i]), support=int(s[i]),
                                predicted=predicted.get(t, 0)) for i, t in enumerate(taxonomy)],
        confusion=ConfusionMatrix(gold=taxonomy, predicted=columns, matrix=cm.astype(int).tolist()),
    )


def reference_rationale(steps: list[RationaleStep]) -> str:
    return " ".join(s.text.strip() for s in sorted(steps, key=lambda s: s.index) if s.text.strip())


def _rationale_metrics(scored: list[_Gold], pred_by_id: dict[str, Prediction]) -> RationaleMetrics:
    hyps, refs = [], []
    no_pred = no_ref = 0
    for g in scored:
        p = pred_by_id.get(g.clip_id)
        if p is None:
            continue
        hyp, ref = (p.rationale or "").strip(), reference_rationale(g.steps)
        if not hyp:
            no_pred += 1
        elif not ref:
            no_ref += 1
        else:
            hyps.append(hyp)
            refs.append(ref)
    if not hyps:
        return RationaleMetrics(n_pairs=0, n_without_prediction=no_pred, n_without_reference=no_ref, rouge_l=None, bleu=None)
    import sacrebleu
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge = [scorer.score(ref, hyp)["rougeL"].fmeasure for hyp, ref in zip(hyps, refs)]
    bleu = sacrebleu.corpus_bleu(hyps, [refs]).score
    return RationaleMetrics(n_pairs=len(hyps), n_without_prediction=no_pred, n_without_reference=no_ref,
                            rouge_l=float(sum(rouge) / len(rouge)), bleu=float(bleu))


def _evidence_coverage(ds: DatasetDir, gold_by_id: dict[str, _Gold], preds: list[Prediction]) -> EvidenceCoverage:
    citing = [p for p in preds if p.evidence]
    counts = Counter()
    problems: list[EvidenceProblem] = []
    if citing:
        from evidence.clip_index import Baseline, ClipIndex
        from evidence.grounding import verify
        from schemas import Clip

        features = _read(ds, "features", ds.read_features)
        clips = {c.clip_id: c for c in _read(ds, "clips", ds.read_clips)}
        feats = {f.clip_id: f for f in features}
        baseline = Baseline.from_features(features)
        for p in citing:
            f = feats.get(p.clip_id)
            if f is None:
                counts["unverifiable"] += len(p.evidence)
                continue
            g = gold_by_id[p.clip_id]
            # ClipIndex needs only the clip's span; the dataset row has it when clips.parquet lacks the clip
            c = clips.get(p.clip_id) or Clip.model_construct(clip_id=p.clip_id, start=g.start, end=g.end)
            ix = ClipIndex(c, f, baseline)
            for ev in p.evidence:
                check = verify(ev, ix)
                counts[check.verdict] += 1
                if check.verdict == "contradicted":
                    problems.append(EvidenceProblem(clip_id=p.clip_id, evidence_id=ev.evidence_id, verdict=check.verdict, reason=check.reason))
    n = sum(counts.values())
    return EvidenceCoverage(n_cited=n, supported=counts["supported"], contradicted=counts["contradicted"],
                            unverifiable=counts["unverifiable"], coverage=counts["supported"] / n if n else None,
                            n_predictions_citing=len(citing), contradictions=problems)


# --------------------------------------------------------------------------- output


def _fmt(x: float | None, digits: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def render_markdown(report: EvaluationReport) -> str:
    r = report
    lines = [
        f"# Evaluation: {Path(r.predictions).name if r.predictions else 'predictions'} on {r.split}",
        "",
        f"- dataset: `{r.dataset}`",
        f"- clips scored: {r.n_scored} of {r.n_clips} ({r.n_unlabelled} without a gold label)",
        f"- predictions: {r.n_predictions}; missing (counted as wrong): {r.n_missing}",
        f"- taxonomy ({r.taxonomy_source}): {', '.join(r.labels)}",
        "",
        "| metric | value |",
        "|---|---:|",
        f"| accuracy | {_fmt(r.accuracy)} |",
        f"| macro F1 | {_fmt(r.macro_f1)} |",
        f"| weighted F1 | {_fmt(r.weighted_f1)} |",
        f"| UAR (macro recall) | {_fmt(r.uar)} |",
        f"| WAR (weighted recall) | {_fmt(r.war)} |",
        f"| ROUGE-L F ({r.rationale.n_pairs} rationales) | {_fmt(r.rationale.rouge_l)} |",
        f"| BLEU ({r.rationale.n_pairs} rationales) | {_fmt(r.rationale.bleu, 1)} |",
        f"| evidence coverage ({r.evidence.supported}/{r.evidence.n_cited} supported) | {_fmt(r.evidence.coverage)} |",
        "",
        "## Per class",
        "",
        "| label | precision | recall | F1 | support | predicted |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {c.label} | {_fmt(c.precision)} | {_fmt(c.recall)} | {_fmt(c.f1)} | {c.support} | {c.predicted} |" for c in r.per_class),
        "",
        "## Confusion matrix (rows gold, columns predicted)",
        "",
        "| gold \\ predicted | " + " | ".join(r.confusion.predicted) + " |",
        "|---|" + "---:|" * len(r.confusion.predicted),
        *(f"| {g} | " + " | ".join(str(v) for v in row) + " |" for g, row in zip(r.confusion.gold, r.confusion.matrix)),
        "",
        "## Evidence",
        "",
        f"{r.evidence.n_cited} pieces of evidence cited by {r.evidence.n_predictions_citing} predictions: "
        f"{r.evidence.supported} supported, {r.evidence.contradicted} contradicted, {r.evidence.unverifiable} unverifiable.",
    ]
    if r.evidence.contradictions:
        lines += ["", "| clip | evidence | why contradicted |", "|---|---|---|"]
        lines += [f"| {p.clip_id} | {p.evidence_id} | {p.reason.replace('|', '/')} |" for p in r.evidence.contradictions]
    if r.missing_clip_ids:
        lines += ["", "## Missing predictions", "", ", ".join(r.missing_clip_ids)]
    return "\n".join(lines) + "\n"


def write_outputs(report: EvaluationReport, json_path: Path | None = None, markdown_path: Path | None = None) -> list[Path]:
    """Write the JSON and/or markdown report, each atomically; if one fails, remove what was written."""
    payloads = []
    if json_path is not None:
        payloads.append((Path(json_path), (json.dumps(report.model_dump(mode="json"), indent=2) + "\n").encode()))
    if markdown_path is not None:
        payloads.append((Path(markdown_path), render_markdown(report).encode()))
    written: list[Path] = []
    for path, data in payloads:
        try:
            existed = path.exists()
            atomic_write_bytes(path, data)
        except OSError as exc:
            for w, was in written:
                if not was:
                    w.unlink(missing_ok=True)
            raise EvaluationError(path, f"cannot write: {exc.strerror or exc}") from None
        written.append((path, existed))
    return [w for w, _ in written]


def rich_tables(report: EvaluationReport) -> list:
    """The report for the terminal: a heading line, then rich tables (summary, per class, confusion matrix)."""
    from rich.table import Table

    r = report
    from rich.text import Text

    heading = Text(f"evaluation: {Path(r.predictions).name if r.predictions else 'predictions'} on {r.split} of {r.dataset} "
                   f"({r.n_scored} clips scored, {r.n_missing} missing)", style="bold")
    summary = Table()
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    for name, value in (("accuracy", _fmt(r.accuracy)), ("macro F1", _fmt(r.macro_f1)), ("weighted F1", _fmt(r.weighted_f1)),
                        ("UAR", _fmt(r.uar)), ("WAR", _fmt(r.war)),
                        (f"ROUGE-L ({r.rationale.n_pairs})", _fmt(r.rationale.rouge_l)), (f"BLEU ({r.rationale.n_pairs})", _fmt(r.rationale.bleu, 1)),
                        (f"evidence coverage ({r.evidence.supported}/{r.evidence.n_cited})", _fmt(r.evidence.coverage)),
                        ("contradicted evidence", str(r.evidence.contradicted))):
        summary.add_row(name, value)
    per = Table(title="per class", title_justify="left")
    for col in ("label", "precision", "recall", "F1", "support", "predicted"):
        per.add_column(col, justify="left" if col == "label" else "right")
    for c in r.per_class:
        per.add_row(c.label, _fmt(c.precision), _fmt(c.recall), _fmt(c.f1), str(c.support), str(c.predicted))
    cm = Table(title="confusion matrix (rows gold, columns predicted)", title_justify="left")
    cm.add_column("gold")
    for col in r.confusion.predicted:
        cm.add_column(col, justify="right")
    for g, row in zip(r.confusion.gold, r.confusion.matrix):
        cm.add_row(g, *(str(v) if v else "[dim]0[/dim]" for v in row))
    return [heading, summary, per, cm]
