"""Turn a model's raw answer into an Annotation: tolerant JSON parsing (json-repair), label mapped
onto the taxonomy, rationale normalised to Step 1..N, evidence typed. What cannot be used becomes a
rejected annotation that keeps the raw answer."""

from __future__ import annotations

import json
from typing import Any

import json_repair

from agents.verbalizer import UnknownLabel, Verbalizer
from schemas import Annotation, Evidence, Provenance
from schemas.features import LabelProb
from schemas.rationale import normalise

MODALITIES = {"text", "audio", "prosody", "visual", "face", "context"}
MODALITY_ALIASES = {"speech": "text", "transcript": "text", "lexical": "text", "voice": "audio", "acoustic": "audio",
                    "video": "visual", "image": "visual", "facial": "face", "au": "face", "action units": "face"}


class AnswerError(ValueError):
    pass


def load_json(raw: str) -> tuple[dict, bool]:
    """(object, repaired?) from an answer that should be JSON, possibly wrapped in prose or fences."""
    try:
        obj = json.loads(raw)
        repaired = False
    except (json.JSONDecodeError, TypeError):
        obj = json_repair.loads(raw or "")
        repaired = True
    if isinstance(obj, list):  # some models wrap the object in a list
        obj = next((o for o in obj if isinstance(o, dict)), None)
    if not isinstance(obj, dict) or not obj:
        raise AnswerError("answer holds no JSON object")
    return obj, repaired


def _evidence(items: Any) -> list[Evidence]:
    out = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, str):
            item = {"modality": "context", "cue": item}
        if not isinstance(item, dict) or not item.get("cue"):
            continue
        mod = str(item.get("modality", "context")).lower().strip()
        mod = MODALITY_ALIASES.get(mod, mod if mod in MODALITIES else "context")

        def num(key):
            try:
                return float(item[key]) if item.get(key) is not None else None
            except (TypeError, ValueError):
                return None

        out.append(Evidence(evidence_id=f"e{i + 1}", modality=mod, cue=str(item["cue"]), start=num("start"), end=num("end"),
                            feature_ref=item.get("feature_ref")))
    return out


def to_annotation(raw: str, *, clip_id: str, annotator_id: str, verbalizer: Verbalizer, provenance: Provenance,
                  multi_label: bool = False) -> Annotation:
    base = dict(annotation_id=f"{annotator_id}:{clip_id}", clip_id=clip_id, annotator_id=annotator_id, raw_answer=raw, provenance=provenance)
    try:
        obj, repaired = load_json(raw)
        said = obj.get("label") or obj.get("emotion") or (obj.get("labels") or [None])[0]
        if not said:
            raise AnswerError("answer has no label")
        label = verbalizer.map(str(said))
        labels = [label]
        if multi_label:
            labels = list(dict.fromkeys(verbalizer.map(str(x)) for x in (obj.get("labels") or [said])))
        intensity = obj.get("intensity")
        try:
            intensity = None if intensity is None else min(1.0, max(0.0, float(intensity)))
        except (TypeError, ValueError):
            intensity = None
        dist = []
        if isinstance(obj.get("distribution"), dict):
            dist = [LabelProb(label=verbalizer.map(k), prob=float(v)) for k, v in obj["distribution"].items()]
        evidence = _evidence(obj.get("evidence"))
        steps = normalise(obj.get("steps") or obj.get("rationale") or "", label)
        return Annotation(**base, label=label, labels=labels, label_distribution=dist, intensity=intensity, steps=steps,
                          evidence=evidence, status="repaired" if repaired else "ok")
    except (AnswerError, UnknownLabel, ValueError) as exc:
        return Annotation(**base, label=None, status="rejected", error=f"{type(exc).__name__}: {exc}")


REPAIR_PROMPT = "That answer could not be used ({error}). Answer again with only the JSON object the schema asks for."


def with_repair(ask, messages: list[dict], parse) -> Annotation:
    """Ask, parse; if the answer is unusable, ask once more with the reason, then accept or reject.
    `ask(messages) -> str` talks to the model; `parse(raw) -> Annotation`. Both raw answers are kept."""
    raw = ask(messages)
    first = parse(raw)
    if first.status != "rejected":
        return first
    retry = messages + [{"role": "assistant", "content": raw}, {"role": "user", "content": REPAIR_PROMPT.format(error=first.error)}]
    raw2 = ask(retry)
    second = parse(raw2)
    joined = f"{raw}\n--- repair attempt ---\n{raw2}"
    if second.status != "rejected":
        return second.model_copy(update={"status": "repaired", "raw_answer": joined})
    return second.model_copy(update={"raw_answer": joined, "error": f"{second.error} (after one repair retry)"})
