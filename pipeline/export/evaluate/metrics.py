"""The numbers of an evaluation: label metrics (scikit-learn), rationale overlap (ROUGE-L, BLEU) and
evidence coverage (each cited piece of evidence through the judge's check, evidence.grounding)."""

from __future__ import annotations

from collections import Counter

from pipeline.export.evaluate.gold import Gold, read_dataset_table
from schemas import Prediction, RationaleStep
from schemas.evaluation import ClassMetrics, ConfusionMatrix, EvidenceCoverage, EvidenceProblem, RationaleMetrics
from storage.dataset_dir import DatasetDir

MISSING = "(missing)"


def label_metrics(y_true: list[str], y_pred: list[str], taxonomy: list[str]) -> dict:
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


def rationale_metrics(scored: list[Gold], pred_by_id: dict[str, Prediction]) -> RationaleMetrics:
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


def evidence_coverage(ds: DatasetDir, gold_by_id: dict[str, Gold], preds: list[Prediction]) -> EvidenceCoverage:
    citing = [p for p in preds if p.evidence]
    counts = Counter()
    problems: list[EvidenceProblem] = []
    if citing:
        from evidence.clip_index import Baseline, ClipIndex
        from evidence.grounding import verify
        from schemas import Clip

        features = read_dataset_table(ds, "features", ds.read_features)
        clips = {c.clip_id: c for c in read_dataset_table(ds, "clips", ds.read_clips)}
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
