"""Turn a finished run into benchmark rows: per clip the final label (a reviewer's over the panel's),
distribution, intensity, uncertainty, the best agreeing answer's rationale and evidence, every
annotator's answer with its judge scores, QC flags, review outcome and agreement, provenance."""

from __future__ import annotations

from collections import defaultdict

from schemas import (Annotation, AnnotatorAnswer, AnswerKeyRow, Clip, Consensus, DatasetRow, EmoforgeConfig, Judgement, Provenance,
                     Review)


class ExportError(ValueError):
    pass


def build_rows(clips: list[Clip], consensus: list[Consensus], judgements: list[Judgement], annotations: list[Annotation],
               reviews: list[Review], config: EmoforgeConfig, run_id: str) -> list[DatasetRow]:
    prov = Provenance(stage="export", stage_config_hash=config.stage_hash("judge"), run_id=run_id)
    cons = {c.clip_id: c for c in consensus}
    rev = {r.clip_id: r for r in reviews}
    judged = {j.annotation_id: j for j in judgements}
    answers: dict[str, list[Annotation]] = defaultdict(list)
    for a in annotations:
        answers[a.clip_id].append(a)
    rows = []
    for clip in clips:
        c = cons.get(clip.clip_id)
        r = rev.get(clip.clip_id)
        human = r is not None and r.final_source == "human" and r.final_label is not None
        label = r.final_label if human else (c.label if c else None)
        if label is None and not config.export.include_unlabelled:
            continue
        usable = [a for a in answers[clip.clip_id] if a.label is not None]
        agreeing = [a for a in usable if a.label == label]
        best = max(agreeing, key=lambda a: (judged[a.annotation_id].s_final if a.annotation_id in judged else 0.0, a.annotator_id),
                   default=None)
        intens = [x for x in ([a.intensity for a in agreeing] if not human else [x.intensity for x in r.answers]) if x is not None]
        rows.append(DatasetRow(
            clip_id=clip.clip_id, source_id=clip.source_id, split="train", start=clip.start, end=clip.end,
            label=label, labels=(r.final_labels or [label]) if human else ([label] if label else []),
            label_distribution=c.distribution if c else [], intensity=round(sum(intens) / len(intens), 4) if intens else None,
            uncertainty=c.uncertainty if c else None, steps=best.steps if best else [], evidence=best.evidence if best else [],
            answers=[AnnotatorAnswer(annotator_id=a.annotator_id, label=a.label,
                                     **({k: getattr(judged[a.annotation_id], k) for k in ("s_rec", "s_reason", "s_cot", "s_final")}
                                        if a.annotation_id in judged else {}))
                     for a in answers[clip.clip_id] if a.status != "abstained"],
            s_final=judged[best.annotation_id].s_final if best and best.annotation_id in judged else None,
            confidence=1.0 if human else (c.confidence if c else None),
            label_source=("human" if human else "model") if label else None, flags=list(c.flags) if c else [],
            needs_review=bool(c and c.needs_review), review_decision=r.decision if r else None,
            agreement=r.agreement if r else [], provenance=prov))
    return rows


HIDDEN = {"label": None, "labels": [], "label_distribution": [], "intensity": None, "uncertainty": None, "steps": [], "evidence": [],
          "answers": [], "s_final": None, "confidence": None, "label_source": None, "flags": [], "needs_review": False, "review_decision": None,
          "agreement": []}


def hide_labels(rows: list[DatasetRow]) -> tuple[list[DatasetRow], list[AnswerKeyRow]]:
    """The released test rows (everything that reveals the label removed) and their answer key."""
    key = [AnswerKeyRow(clip_id=r.clip_id, label=r.label, labels=r.labels, intensity=r.intensity, steps=r.steps, evidence=r.evidence)
           for r in rows]
    return [r.model_copy(update=HIDDEN) for r in rows], key
