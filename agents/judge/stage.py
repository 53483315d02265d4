"""Stage 4 for a whole run: score every answer, resolve each clip's label, decide what goes to review.
Runs over the run at once because the aggregators and the review budget look across clips."""

from __future__ import annotations

import gc
import math
from contextlib import contextmanager
from collections import defaultdict

import numpy as np

from agents.judge.aggregate import Votes, label_distributions, summarise
from agents.judge.clip_index import Baseline, ClipIndex
from agents.judge.flags import review_threshold
from agents.judge.grounding import check_claim, claim_record
from agents.judge.processes import judge_processes, score_in_processes
from agents.judge.scores import MODALITY_GROUP, distribution, s_cot_parts, s_final, s_rec_given, s_reason_of
from schemas import Annotation, Clip, ClipFeatures, Consensus, EmoforgeConfig, Judgement, Provenance, SourceJudgements
from schemas.features import LabelProb
from schemas.trusted import trusted

JUDGE_ID = "emoforge-grounded-judge"
USABLE = ("ok", "repaired")


def judge_run(clips: list[Clip], features: list[ClipFeatures], annotations: list[Annotation], config: EmoforgeConfig,
              run_id: str, gold: dict[str, list[str]] | None = None, llm_judge=None) -> SourceJudgements:
    jc = config.judge
    gold = gold or {}
    if llm_judge is None and jc.llm_judge is not None:
        from agents.judge.llm_judge import LLMJudge

        llm_judge = LLMJudge.shared(config)
    prov = Provenance(stage="judge", stage_config_hash=config.stage_hash("judge"), run_id=run_id, model_id=JUDGE_ID,
                      model_version=getattr(llm_judge, "pinned", None))
    feats = {f.clip_id: f for f in features}
    baseline = Baseline.from_features(features)
    index = {c.clip_id: ClipIndex(c, feats.get(c.clip_id), baseline) for c in clips}
    by_clip: dict[str, list[Annotation]] = defaultdict(list)
    for a in annotations:
        if a.clip_id in index and a.status != "abstained":
            by_clip[a.clip_id].append(a)

    jobs = [(index[clip_id], answers, jc.weights_for(index[clip_id].clip.instruction.template_id), gold.get(clip_id))
            for clip_id, answers in by_clip.items()]
    judgements: list[Judgement] = []
    tally = Tally(clips, config.taxonomy)
    with gc_paused():
        processes = judge_processes(config, len(annotations), llm_judge)
        if processes > 1:
            scored = score_in_processes(jobs, jc.unverifiable_credit, processes)
        else:
            scored = (score_answers(ix, answers, w, g, jc.unverifiable_credit, llm_judge) for ix, answers, w, g in jobs)
        for (ix, answers, weights, _), (rows, groups) in zip(jobs, scored):
            add_judgements(ix.clip.clip_id, answers, rows, weights, prov, judgements)
            tally.add(ix.clip.clip_id, answers, rows, groups)
        consensus, threshold = resolve(clips, index, tally, config, gold, prov)
    low = {c.clip_id for c in consensus if "low_score" in c.flags}
    for j in judgements:
        if j.clip_id in low and j.label is not None and j.s_final < threshold and "low_score" not in j.flags:
            j.flags = [*j.flags, "low_score"]
    return SourceJudgements(judgements=judgements, consensus=consensus, threshold=threshold)


# One scored answer: S_rec, S_reason, S_cot, S_final, S_rec basis, claims as (evidence_id, verdict,
# reason), flags, LLM step scores; None for an answer that was not usable. Plain tuples, so worker
# processes can send them back cheaply; records are built once, in add_judgements.
Scored = tuple[float, float, float, float, str, list[tuple[str, str, str]], list[str], list] | None


def score_answers(ix: ClipIndex, answers: list[Annotation], weights, gold: list[str] | None, unverifiable_credit: float,
                  llm_judge=None) -> tuple[list[Scored], set[str]]:
    """Score one clip's answers; also returns the modality groups its usable answers cite."""
    usable = [a for a in answers if a.status in USABLE and a.label]
    dists = {id(a): distribution(a) for a in usable}  # identity: pydantic equality compares every field
    rows: list[Scored] = []
    # answers on one clip often cite the same evidence (agents reading the same features): a claim's
    # verdict depends on these fields and the clip only, so each distinct one is checked once
    checked: dict[tuple, tuple[str, str, str]] = {}
    for a in answers:
        if id(a) not in dists:
            rows.append(None)
            continue
        claims = []
        for ev in a.evidence:
            key = (ev.cue, ev.feature_ref, ev.start, ev.end, ev.modality)
            found = checked.get(key)
            if found is None:
                found = checked[key] = check_claim(ev, ix)
            elif found[0] != ev.evidence_id:
                found = (ev.evidence_id, found[1], found[2])
            claims.append(found)
        rec, basis = s_rec_given(a, [d for k, d in dists.items() if k != id(a)], gold)
        reason = s_reason_of([c[1] for c in claims], unverifiable_credit)
        cot = sum(s_cot_parts(a, ix.modalities)) / 3.0
        steps = []
        if llm_judge is not None:
            steps, rec, reason = llm_judge.blend(ix, a, rec, reason)
            basis = "llm" if basis == "none" and rec is not None else basis
        flags = ["hallucinated_evidence"] if any(c[1] == "contradicted" for c in claims) else []
        rows.append((0.0 if rec is None else rec, reason, cot, s_final(rec, reason, cot, weights), basis, claims, flags, steps))
    return rows, {MODALITY_GROUP[e.modality] for a in usable for e in a.evidence if e.modality in MODALITY_GROUP}


class Tally:
    """What resolving needs of the scored answers (votes, and per clip: cited modalities, any
    hallucinated or rejected answer), gathered clip by clip as scores arrive, while worker processes
    are still scoring, instead of in passes over a million records afterwards."""

    def __init__(self, clips: list[Clip], labels: list[str]):
        self.clip_ids = [c.clip_id for c in clips]
        self.cpos = {c: i for i, c in enumerate(self.clip_ids)}
        self.labels = list(labels)
        self.lpos = {lab: i for i, lab in enumerate(self.labels)}
        self.apos: dict[str, int] = {}  # annotator -> index in order of first vote
        self.clip: list[int] = []
        self.annotator: list[int] = []
        self.label: list[int] = []
        self.weight: list[float] = []
        self.cited: dict[str, set[str]] = {}  # modality groups the clip's usable answers cite
        self.hallucinated: set[str] = set()
        self.rejected: set[str] = set()

    def add(self, clip_id: str, answers: list[Annotation], rows: list[Scored], groups: set[str]) -> None:
        self.cited[clip_id] = groups
        ci, lpos, apos = self.cpos[clip_id], self.lpos, self.apos
        for a, row in zip(answers, rows):
            if row is None:
                self.rejected.add(clip_id)
                continue
            if row[6]:  # flags: only "hallucinated_evidence" is set while scoring
                self.hallucinated.add(clip_id)
            k = lpos.get(a.label)
            if k is None:
                continue  # a label outside the taxonomy casts no vote
            self.clip.append(ci)
            self.annotator.append(apos.setdefault(a.annotator_id, len(apos)))
            self.label.append(k)
            self.weight.append(row[3])

    def votes(self) -> Votes:
        annotators = sorted(self.apos)
        # numbered in sorted order, not in order of first vote, so the aggregators' input does not
        # depend on which annotator happens to answer first in the run
        renumber = np.empty(len(annotators), dtype=np.int64)
        for new, a in enumerate(annotators):
            renumber[self.apos[a]] = new
        return Votes(clip=np.array(self.clip, dtype=np.int64), annotator=renumber[np.array(self.annotator, dtype=np.int64)],
                     label=np.array(self.label, dtype=np.int64), weight=np.array(self.weight, dtype=float),
                     clip_ids=self.clip_ids, annotator_ids=annotators, labels=self.labels)


def add_judgements(clip_id: str, answers: list[Annotation], rows: list[Scored], weights, prov: Provenance,
                   out: list[Judgement]) -> None:
    # the answers of a clip that cite the same evidence share one verdict tuple (stage.score_answers,
    # kept shared through pickling); one record each
    records: dict[int, object] = {}
    for a, row in zip(answers, rows):
        if row is None:
            out.append(trusted(
                Judgement, annotation_id=a.annotation_id, clip_id=clip_id, annotator_id=a.annotator_id, label=None, s_rec=0.0,
                s_reason=0.0, s_cot=0.0, s_final=0.0, s_rec_basis="none", weights=weights, claims=[], step_scores=[],
                flags=["rejected_answer"], provenance=prov))
            continue
        rec, reason, cot, final, basis, claims, flags, steps = row
        out.append(trusted(
            Judgement, annotation_id=a.annotation_id, clip_id=clip_id, annotator_id=a.annotator_id, label=a.label,
            s_rec=rec, s_reason=reason, s_cot=cot, s_final=final, s_rec_basis=basis, weights=weights,
            claims=[records.get(id(c)) or records.setdefault(id(c), claim_record(*c)) for c in claims],
            step_scores=steps, flags=flags, provenance=prov))


@contextmanager
def gc_paused():
    """Judging a large run allocates millions of small records and frees almost none: the cyclic
    collector would rescan them all again and again for nothing."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # the records made meanwhile are long-lived (the run's output): file them straight in the
        # oldest generation, or the first young collection after this would scan all of them
        gc.freeze()
        gc.unfreeze()
        if was:
            gc.enable()


def resolve(clips: list[Clip], index: dict[str, ClipIndex], tally: Tally, config: EmoforgeConfig,
            gold: dict[str, list[str]], prov: Provenance) -> tuple[list[Consensus], float]:
    jc = config.judge
    labels = tally.labels
    clip_ids = tally.clip_ids
    votes = tally.votes()
    dist = label_distributions(votes, jc.aggregation)
    top, margin, entropy, uncertainty = summarise(dist, len(labels))

    n_answers = np.bincount(votes.clip, minlength=len(clip_ids))
    agree = votes.label == top[votes.clip]
    n_agree = np.bincount(votes.clip, weights=agree, minlength=len(clip_ids))
    s_agree = np.bincount(votes.clip, weights=votes.weight * agree, minlength=len(clip_ids))
    agreement = np.divide(n_agree, n_answers, out=np.zeros(len(clip_ids)), where=n_answers > 0)
    s_mean = np.divide(s_agree, n_agree, out=np.full(len(clip_ids), np.nan), where=n_agree > 0)
    top_p = np.where(top >= 0, dist[np.arange(len(clip_ids)), np.maximum(top, 0)], 0.0)
    # the review score: how strongly the panel backs the label, times how good the backing answers are
    review = np.nan_to_num(top_p * s_mean, nan=0.0)

    gold_correct = None
    if gold:
        gold_correct = np.array([np.nan if c not in gold else float(top[i] >= 0 and labels[top[i]] in gold[c])
                                 for i, c in enumerate(clip_ids)])
    threshold = review_threshold(review, jc.threshold, gold_correct)

    hallucinated, rejected, cited = tally.hallucinated, tally.rejected, tally.cited
    # plain Python values: indexing numpy arrays one element at a time costs more than the rest of the loop
    top_, margin_, entropy_, uncertainty_, agreement_, n_answers_, s_mean_, review_, dist_ = (
        x.tolist() for x in (top, margin, entropy, uncertainty, agreement, n_answers, s_mean, review, dist))
    flag_on = set(jc.flag_on)
    out = []
    for i, clip in enumerate(clips):
        cid = clip.clip_id
        flags = []
        if review_[i] < threshold:
            flags.append("low_score")
        if margin_[i] < jc.min_margin:
            flags.append("thin_margin")
        if agreement_[i] < jc.min_agreement:
            flags.append("disagreement")
        if cid in hallucinated:
            flags.append("hallucinated_evidence")
        if index[cid].modalities - cited.get(cid, set()):  # measured, but no answer looked at it
            flags.append("missing_modality")
        if cid in rejected:
            flags.append("rejected_answer")
        out.append(trusted(
            Consensus, clip_id=cid, label=labels[top_[i]] if top_[i] >= 0 else None,
            distribution=[trusted(LabelProb, label=labels[k], prob=round(p, 6)) for k, p in enumerate(dist_[i]) if p != 0],
            method=jc.aggregation, margin=margin_[i], entropy=entropy_[i], uncertainty=uncertainty_[i],
            agreement=agreement_[i], n_answers=n_answers_[i],
            s_final_mean=None if math.isnan(s_mean_[i]) else s_mean_[i], review_score=review_[i],
            gold_label=(gold.get(cid) or [None])[0], flags=flags, needs_review=not flag_on.isdisjoint(flags), provenance=prov))
    return out, threshold
