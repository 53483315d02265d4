"""The judge's three scores and their combination; each is in [0, 1].

S_rec (recognition): with a gold label, 1 if the answer's label is the gold label else 0 (multi-label:
  Jaccard of the label sets). Without gold, leave-one-out soft agreement with the *other* usable
  answers on the clip: the mean over peers b of p_b(label), where p_b is b's label distribution (or
  one-hot on b's label). With neither, S_rec does not exist and S_final renormalises over β and γ.
S_reason (soundness, the hallucination check): over the answer's evidence claims,
  (n_supported + λ·n_unverifiable) / n_claims, λ = unverifiable_credit; an answer citing no
  evidence counts as one unverifiable claim (λ). A contradicted claim earns 0.
S_cot (completeness of the multimodal reasoning), the mean of three structural parts that say
  nothing about whether the label or the evidence is right (those are S_rec and S_reason):
  coverage   |modalities cited ∩ modalities the clip has| / |modalities the clip has| (1 if none);
  grounding  share of the reasoning steps (all but the last) that cite evidence;
  conclusion 1 if the annotator's own last step states the label and some grounded step precedes it.
S_final = α·S_rec + β·S_reason + γ·S_cot (α+β+γ = 1, per task from config)."""

from __future__ import annotations

import re
from functools import lru_cache

from agents.rationale import states_label
from schemas import Annotation
from schemas.judgement import ClaimCheck, JudgeWeights

MODALITY_GROUP = {"text": "text", "audio": "audio", "prosody": "audio", "face": "visual", "visual": "visual"}
_ANCHOR = re.compile(r"\bAU\s?\d+|\d+(?:\.\d+)?\s*(?:hz|db|s)\b|'[^']+'|\"[^\"]+\"", re.IGNORECASE)


def distribution(a: Annotation) -> dict[str, float]:
    """An answer's belief over labels: its own distribution if it gave one, else one-hot."""
    if a.label_distribution:
        total = sum(max(0.0, p.prob) for p in a.label_distribution) or 1.0
        return {p.label: max(0.0, p.prob) / total for p in a.label_distribution}
    labels = a.labels or ([a.label] if a.label else [])
    return {lab: 1.0 / len(labels) for lab in labels}


def s_rec(a: Annotation, peers: list[Annotation], gold: list[str] | None) -> tuple[float | None, str]:
    return s_rec_given(a, [distribution(b) for b in peers], gold)


def s_rec_given(a: Annotation, peer_distributions: list[dict[str, float]], gold: list[str] | None) -> tuple[float | None, str]:
    """S_rec with the peers' distributions already computed (the judge computes each answer's once per clip)."""
    if gold:
        mine = set(a.labels or [a.label])
        return len(mine & set(gold)) / len(mine | set(gold)), "gold"
    if not peer_distributions:
        return None, "none"
    return sum(d.get(a.label, 0.0) for d in peer_distributions) / len(peer_distributions), "peers"


def s_reason(claims: list[ClaimCheck], unverifiable_credit: float) -> float:
    return s_reason_of([c.verdict for c in claims], unverifiable_credit)


def s_reason_of(verdicts: list[str], unverifiable_credit: float) -> float:
    if not verdicts:
        return unverifiable_credit
    credit = {"supported": 1.0, "unverifiable": unverifiable_credit, "contradicted": 0.0}
    return sum(credit[v] for v in verdicts) / len(verdicts)


def step_grounded(step_text: str, evidence_ids: list[str], known_ids: set[str], cues: list[str]) -> bool:
    """A step is grounded when it cites an evidence id the answer has, or repeats one of the evidence's
    concrete anchors (an AU code, a quoted word, a measured value) — models that write steps as
    plain strings ground them that way."""
    if any(e in known_ids for e in evidence_ids):
        return True
    text = step_text.lower()
    return any(x in text for c in cues for x in anchors(c))


@lru_cache(maxsize=65536)
def anchors(cue: str) -> frozenset[str]:
    return frozenset(m.group(0).lower() for m in _ANCHOR.finditer(cue))


def s_cot_parts(a: Annotation, available: frozenset[str]) -> tuple[float, float, float]:
    cited = {MODALITY_GROUP[e.modality] for e in a.evidence if e.modality in MODALITY_GROUP}
    coverage = len(cited & available) / len(available) if available else 1.0
    reasoning = a.steps[:-1]
    ids = {e.evidence_id for e in a.evidence}
    cues = [e.cue for e in a.evidence]
    grounded = [step_grounded(s.text, s.evidence_ids, ids, cues) for s in reasoning]
    grounding = sum(grounded) / len(grounded) if grounded else 0.0
    last = a.steps[-1] if a.steps else None
    conclusion = float(bool(last and a.label and last.origin == "annotator" and states_label(last.text, a.label) and any(grounded)))
    return coverage, grounding, conclusion


def s_cot(a: Annotation, available: frozenset[str]) -> float:
    return sum(s_cot_parts(a, available)) / 3.0


def s_final(rec: float | None, reason: float, cot: float, w: JudgeWeights) -> float:
    if rec is None:
        rest = w.beta + w.gamma
        return (w.beta * reason + w.gamma * cot) / rest if rest > 0 else 0.0
    return w.alpha * rec + w.beta * reason + w.gamma * cot
