"""The judge's three scores and their combination; each is in [0, 1].

S_rec (recognition): with a gold label, 1 if the answer's label is the gold label else 0 (multi-label:
  Jaccard of the label sets). Without gold, under the default `reliability` aggregation, the
  posterior probability of the answer's label in the reliability-weighted consensus of the clip's
  answers, this one included (agents/judge/reliability.py): what the run's evidence says about
  whether the label is right, each answer counting as much as its annotator has earned. Under the
  other aggregations, leave-one-out soft agreement with the other answers (mean of their probability
  for this label). With neither, S_rec does not exist and S_final renormalises over β and γ.
S_reason (soundness of the inference): the mean over the answer's claims of fact × support. fact is
  1 for a claim the features confirm, λ = unverifiable_credit for one they cannot check, 0 for one
  they contradict; support (agents/judge/inference.py) is how strongly what was measured for the
  cited cue favours the answer's label over its strongest rival, from published cue-emotion
  knowledge (1 clearly, 0.5 cannot tell, 0 points elsewhere; 0.5 for a claim that says nothing about
  emotion). A true fact that does not point to the label earns half, not full credit. Where labels
  are known, support is replaced by what that kind of cue's support has been worth on them
  (stage.cue_reliability). An answer citing no evidence counts as one unverifiable claim that
  points nowhere.
S_cot (completeness of the multimodal reasoning): of what the clip's measured modalities say to tell
  the answer's label from its strongest rival, the share its reasoning steps take into account.
  Each modality the clip has weighs COVERAGE_FLOOR plus |its margin between the label and the
  rival|; it is covered when a reasoning step cites evidence of it. Halved when the annotator's own
  last step does not state the label. It asks whether the answer looked where the discriminating
  signal is, in either direction; whether that signal agrees with the label is S_reason's question,
  and whether the label is right S_rec's, so nothing counts twice.
S_final = α·S_rec + β·S_reason + γ·S_cot (α+β+γ = 1, per task from config)."""

from __future__ import annotations

import re
from functools import lru_cache

from schemas import Annotation
from schemas.judgement import ClaimCheck, JudgeWeights
from schemas.rationale import states_label

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
    return s_reason_of([c.verdict for c in claims], [c.support for c in claims], unverifiable_credit)


def s_reason_of(verdicts: list[str], supports: list[float | None], unverifiable_credit: float) -> float:
    if not verdicts:
        return unverifiable_credit * NO_SUPPORT
    total = 0.0
    for v, s in zip(verdicts, supports):
        fact = 1.0 if v == "supported" else unverifiable_credit if v == "unverifiable" else 0.0
        total += fact * (NO_SUPPORT if s is None else s)
    return total / len(verdicts)


NO_SUPPORT = 0.5  # a claim that bears on no emotion neither supports the label nor speaks against it
COVERAGE_FLOOR = 0.1  # a measured modality counts a little even where it cannot tell the label from its rival


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


def covered_groups(a: Annotation) -> set[str]:
    """Modality groups of the evidence that some reasoning step (every step but the conclusion) takes up,
    by evidence id or by repeating the evidence's concrete anchors."""
    reasoning = a.steps[:-1]
    out = set()
    for e in a.evidence:
        group = MODALITY_GROUP.get(e.modality)
        if group is None or group in out:
            continue
        marks = anchors(e.cue)
        if any(e.evidence_id in s.evidence_ids or any(x in s.text.lower() for x in marks) for s in reasoning):
            out.add(group)
    return out


def s_cot_of(a: Annotation, available: frozenset[str], leanings: dict, weights_of: dict | None = None) -> float:
    """`leanings`: what each measured modality says on its own (JudgeIndex.modality_leanings);
    `weights_of`: a per-clip memo of the modality weights by label (answers on a clip share labels)."""
    if not available:
        return 1.0
    weight = weights_of.get(a.label) if weights_of is not None else None
    if weight is None:
        weight = {}
        for g in sorted(available):  # a set's order follows the hash seed; the float sums below must not
            lean = leanings.get(g)
            weight[g] = COVERAGE_FLOOR + (abs(lean.margin(a.label)) if lean is not None else 0.0)
        if weights_of is not None:
            weights_of[a.label] = weight
    covered = covered_groups(a)
    score = sum(w for g, w in weight.items() if g in covered) / sum(weight.values())
    last = a.steps[-1] if a.steps else None
    concluded = bool(last and a.label and last.origin == "annotator" and states_label(last.text, a.label))
    return score if concluded else score / 2


def s_final(rec: float | None, reason: float, cot: float, w: JudgeWeights) -> float:
    """With no S_rec (nothing measured it), α's share is spread over β and γ in proportion."""
    if rec is None:
        rest = w.beta + w.gamma
        return (w.beta * reason + w.gamma * cot) / rest if rest > 0 else 0.0
    return w.alpha * rec + w.beta * reason + w.gamma * cot
