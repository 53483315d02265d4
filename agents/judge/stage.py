"""Stage 4 for a whole run: score every answer, resolve each clip's label, decide what goes to review.
Runs over the run at once because the aggregators and the review budget look across clips."""

from __future__ import annotations

import gc
from collections import defaultdict
from contextlib import contextmanager

import numpy as np

from agents.judge import calibration, reliability
from agents.judge.aggregate import Votes
from agents.judge.inference import claim_distribution, claim_kind, claim_support, leaning
from agents.judge.judge_index import JudgeIndex
from agents.judge.processes import judge_processes, score_in_processes
from agents.judge.resolve import resolve
from agents.judge.scored import ClaimFact, ClipJob, Scored, ScoredAnswer, ScoreSettings
from agents.judge.scores import MODALITY_GROUP, distribution, s_cot_of, s_final, s_rec_given, s_reason_of
from agents.voice_baseline import voice_baselines
from evidence.clip_index import Baseline
from evidence.grounding import check_claim, claim_record, parse_cue
from schemas import (Annotation, Clip, ClipFeatures, EmoforgeConfig, Judgement, Provenance,
                     SourceJudgements)
from schemas.features import LearnedVoice
from schemas.trusted import trusted

JUDGE_ID = "emoforge-grounded-judge"
USABLE = ("ok", "repaired")


def judge_run(clips: list[Clip], features: list[ClipFeatures], annotations: list[Annotation], config: EmoforgeConfig,
              run_id: str, gold: dict[str, list[str]] | None = None, llm_judge=None,
              known: dict[str, list[str]] | None = None, voice: dict | None = None,
              learned: dict[str, LearnedVoice] | None = None) -> SourceJudgements:
    """`gold`: labels from judge.gold (S_rec against them, and known labels); `known`: further known
    labels that are not gold for S_rec, e.g. reviewers' verdicts from earlier runs, which anchor the
    reliability fit and the calibration. `voice`: clip_id -> the VoiceBaseline its vocal answers
    were made against. `learned`: clip_id -> the LearnedVoice of the voice model the run fitted on its
    labelled clips (agents/learned_voice.py); where it answers, voice claims are read through it."""
    jc = config.judge
    gold = gold or {}
    known = {**(known or {}), **gold}
    if llm_judge is None and jc.llm_judge is not None:
        from agents.judge.llm_judge import LLMJudge

        llm_judge = LLMJudge.shared(config)
    prov = Provenance(stage="judge", stage_config_hash=config.stage_hash("judge"), run_id=run_id, model_id=JUDGE_ID,
                      model_version=getattr(llm_judge, "pinned", None))
    feats = {f.clip_id: f for f in features}
    baseline = Baseline.from_features(features)
    taxonomy = frozenset(config.taxonomy)
    if voice is None:  # the flow passes the baselines it gave the vocal agents; computed here otherwise
        voice = voice_baselines(clips, features, config.annotate.baseline)
    learned = learned or {}
    index = {c.clip_id: JudgeIndex(c, feats.get(c.clip_id), baseline, taxonomy, voice.get(c.clip_id), learned.get(c.clip_id))
             for c in clips}
    by_clip: dict[str, list[Annotation]] = defaultdict(list)
    for a in annotations:
        if a.clip_id in index and a.status != "abstained":
            by_clip[a.clip_id].append(a)

    jobs = [ClipJob(index[clip_id], answers, jc.weights_for(index[clip_id].clip.instruction.template_id), gold.get(clip_id))
            for clip_id, answers in by_clip.items()]
    # under the reliability aggregation S_rec comes from the fitted model, after every clip is scored
    from_model = jc.aggregation == "reliability"
    cue_maps = cue_reliability(index, by_clip, known, jc.reliability.calibration_prior_strength)
    settings = ScoreSettings(jc.unverifiable_credit, from_model, cue_maps)
    tally = Tally(clips, config.taxonomy)
    judgements: list[Judgement] = []
    waiting: list[Judgement] = []  # their S_rec comes from the reliability model, once it is fitted
    with gc_paused():
        processes = judge_processes(config, len(annotations), llm_judge)
        if processes > 1:
            scored = score_in_processes(jobs, settings, processes)
        else:
            scored = (score_answers(ix, answers, w, g, settings, llm_judge) for ix, answers, w, g in jobs)
        for (ix, answers, weights, _), (rows, groups) in zip(jobs, scored):
            tally.add(ix.clip.clip_id, answers, rows, groups)
            # the records are built here, while the worker processes score the next clips, not after the fit
            add_judgements(ix.clip.clip_id, answers, rows, weights, prov, judgements, waiting)
        person = {c: b.key for c, b in voice.items() if b.scope == "speaker"}
        outcome = resolve(clips, index, tally, config, gold, known, prov, person)
        with_model_rec(waiting, outcome.posterior, tally.lpos,
                       jc.llm_judge.weight if llm_judge is not None and jc.llm_judge else 0.0)
    consensus, threshold = outcome.consensus, outcome.threshold
    low = {c.clip_id for c in consensus if "low_score" in c.flags}
    for j in judgements:
        if j.clip_id in low and j.label is not None and j.s_final < threshold and "low_score" not in j.flags:
            j.flags = [*j.flags, "low_score"]
    return SourceJudgements(judgements=judgements, consensus=consensus, threshold=threshold, routing=outcome.routing,
                            reliability=outcome.reliability)


def score_answers(ix: JudgeIndex, answers: list[Annotation], weights, gold: list[str] | None, settings: ScoreSettings | float,
                  llm_judge=None) -> tuple[list[Scored], set[str]]:
    """Score one clip's answers; also returns the modality groups its usable answers cite.
    settings: ScoreSettings, or a bare credit for unverifiable claims."""
    if not isinstance(settings, ScoreSettings):
        settings = ScoreSettings(settings, False, {})
    unverifiable_credit, from_model, cue_maps = settings
    usable = [a for a in answers if a.status in USABLE and a.label]
    dists = {id(a): distribution(a) for a in usable}  # identity: pydantic equality compares every field
    rows: list[Scored] = []
    # answers on one clip often cite the same evidence (agents reading the same features): a claim's
    # verdict and what its measurement says depend on these fields and the clip only, so each
    # distinct one is checked once
    checked: dict[tuple, tuple[ClaimFact, dict | None, str | None]] = {}
    cot_weights: dict = {}
    for a in answers:
        if id(a) not in dists:
            rows.append(None)
            continue
        claims, supports = [], []
        for ev in a.evidence:
            key = (ev.cue, ev.feature_ref, ev.start, ev.end, ev.modality)
            found = checked.get(key)
            if found is None:
                cue = parse_cue(ev.cue, ev.feature_ref)
                found = checked[key] = (ClaimFact(*check_claim(ev, ix)), leaning(claim_distribution(ev, cue, ix)), claim_kind(ev, cue, ix))
            fact, measured, kind = found
            if fact.evidence_id != ev.evidence_id:
                fact = ClaimFact(ev.evidence_id, fact.verdict, fact.reason)
            claims.append(fact)
            backing = claim_support(measured, kind, ix, a.label)
            if backing is not None and kind in cue_maps:  # what this kind of cue's support has been worth
                backing = float(cue_maps[kind](backing))
            supports.append(None if backing is None else round(backing, 4))
        if gold or not from_model:
            rec, basis = s_rec_given(a, [d for k, d in dists.items() if k != id(a)], gold)
        else:
            rec, basis = None, "consensus"
        reason = s_reason_of([c.verdict for c in claims], supports, unverifiable_credit)
        cot = s_cot_of(a, ix.modalities, ix.modality_leanings, cot_weights)
        steps = []
        if llm_judge is not None:
            steps, rec, reason = llm_judge.blend(ix, a, rec, reason)
            basis = "llm" if basis == "none" and rec is not None else basis
        flags = ["hallucinated_evidence"] if any(c.verdict == "contradicted" for c in claims) else []
        final = None if basis == "consensus" and rec is None else s_final(rec, reason, cot, weights)
        rows.append(ScoredAnswer(rec, reason, cot, final, basis, claims, supports, flags, steps))
    return rows, {MODALITY_GROUP[e.modality] for a in usable for e in a.evidence if e.modality in MODALITY_GROUP}


def cue_reliability(index: dict[str, JudgeIndex], by_clip: dict[str, list[Annotation]], known: dict[str, list[str]],
                    prior_strength: float) -> dict[str, calibration.Calibrator]:
    """Where labels are known, what each kind of cue's support has been worth: isotonic maps from
    support to P(the answer citing it is right), per kind (action units, expression, voice, words),
    from the stated prior that support is that probability. Kinds never cited on a known clip keep
    the literature's support as it is."""
    pairs: dict[str, tuple[list[float], list[float]]] = {}
    for clip_id, truth in known.items():
        ix = index.get(clip_id)
        for a in by_clip.get(clip_id, []) if ix is not None else []:
            if a.status not in USABLE or not a.label:
                continue
            for ev in a.evidence:
                cue = parse_cue(ev.cue, ev.feature_ref)
                kind = claim_kind(ev, cue, ix)
                backing = claim_support(leaning(claim_distribution(ev, cue, ix)), kind, ix, a.label)
                if kind is not None and backing is not None:
                    xs, ys = pairs.setdefault(kind, ([], []))
                    xs.append(backing)
                    ys.append(float(a.label in truth))
    return {kind: calibration.fit_calibrator(np.array(xs), np.array(ys), prior_strength) for kind, (xs, ys) in pairs.items()}


def with_model_rec(waiting: list[Judgement], posterior: dict[str, list[float]], lpos: dict[str, int],
                   llm_weight: float = 0.0) -> None:
    """Fill S_rec (the answer's label's posterior under the reliability model) and S_final of the
    judgements that waited for the model; an LLM judge's mark on the last step is blended in with its
    weight. The records are the judge's own, not yet handed on: their fields are written directly."""
    for j in waiting:
        post, k = posterior.get(j.clip_id), lpos.get(j.label)
        rec = post[k] if post is not None and k is not None else 0.0
        if j.step_scores:
            rec = (1 - llm_weight) * rec + llm_weight * j.step_scores[-1].score
        fields = j.__dict__
        fields["s_rec"] = rec
        fields["s_final"] = s_final(rec, j.s_reason, j.s_cot, j.weights)


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
        self.soft: list[tuple[tuple[int, ...], tuple[float, ...]]] = []  # each vote's distribution over the taxonomy
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
            if row.flags:  # only "hallucinated_evidence" is set while scoring
                self.hallucinated.add(clip_id)
            k = lpos.get(a.label)
            if k is None:
                continue  # a label outside the taxonomy casts no vote
            self.clip.append(ci)
            self.annotator.append(apos.setdefault(a.annotator_id, len(apos)))
            self.label.append(k)
            self.weight.append(row.final if row.final is not None else 1.0)
            self.soft.append(self._soft(a, k))

    def _soft(self, a: Annotation, k: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
        if not a.label_distribution and len(a.labels) <= 1:
            return (k,), (1.0,)  # the common case for answers without a distribution: one-hot
        if a.label_distribution:
            pairs = [(self.lpos[p.label], p.prob) for p in a.label_distribution if p.label in self.lpos and p.prob > 0]
            total = sum(p for _, p in pairs)
            if total > 0:
                return tuple(i for i, _ in pairs), tuple(p / total for _, p in pairs)
        labels = [self.lpos[x] for x in (a.labels or [a.label]) if x in self.lpos] or [k]
        return tuple(labels), tuple(1.0 / len(labels) for _ in labels)

    def _renumber(self) -> tuple[list[str], np.ndarray]:
        annotators = sorted(self.apos)
        # numbered in sorted order, not in order of first vote, so the aggregators' input does not
        # depend on which annotator happens to answer first in the run
        renumber = np.empty(len(annotators), dtype=np.int64)
        for new, a in enumerate(annotators):
            renumber[self.apos[a]] = new
        return annotators, renumber[np.array(self.annotator, dtype=np.int64)]

    def votes(self) -> Votes:
        annotators, numbered = self._renumber()
        return Votes(clip=np.array(self.clip, dtype=np.int64), annotator=numbered,
                     label=np.array(self.label, dtype=np.int64), weight=np.array(self.weight, dtype=float),
                     clip_ids=self.clip_ids, annotator_ids=annotators, labels=self.labels)

    def soft_votes(self) -> reliability.SoftVotes:
        annotators, numbered = self._renumber()
        probs = np.zeros((len(self.soft), len(self.labels)))
        rows = np.repeat(np.arange(len(self.soft)), [len(i) for i, _ in self.soft])
        cols = np.fromiter((i for idx, _ in self.soft for i in idx), dtype=np.int64, count=len(rows))
        vals = np.fromiter((p for _, ps in self.soft for p in ps), dtype=float, count=len(rows))
        probs[rows, cols] = vals
        return reliability.SoftVotes(clip=np.array(self.clip, dtype=np.int64), annotator=numbered, probs=probs,
                                     n_clips=len(self.clip_ids), n_annotators=len(annotators))


def add_judgements(clip_id: str, answers: list[Annotation], rows: list[Scored], weights, prov: Provenance,
                   out: list[Judgement], waiting: list[Judgement]) -> None:
    """`waiting`: gets the records whose S_rec and S_final wait for the reliability model (with_model_rec);
    until then they hold None, or the LLM judge's mark alone."""
    # the answers of a clip that cite the same evidence with the same support share one claim record
    records: dict[tuple, object] = {}
    for a, row in zip(answers, rows):
        if row is None:
            out.append(trusted(
                Judgement, annotation_id=a.annotation_id, clip_id=clip_id, annotator_id=a.annotator_id, label=None, s_rec=None,
                s_reason=0.0, s_cot=0.0, s_final=0.0, s_rec_basis="none", weights=weights, claims=[], step_scores=[],
                flags=["rejected_answer"], provenance=prov))
            continue
        out.append(trusted(
            Judgement, annotation_id=a.annotation_id, clip_id=clip_id, annotator_id=a.annotator_id, label=a.label,
            s_rec=row.rec, s_reason=row.reason, s_cot=row.cot, s_final=row.final, s_rec_basis=row.basis, weights=weights,
            claims=[records.get((id(c), s)) or records.setdefault((id(c), s), claim_record(*c, support=s))
                    for c, s in zip(row.claims, row.supports)],
            step_scores=row.steps, flags=row.flags, provenance=prov))
        if row.basis == "consensus":
            waiting.append(out[-1])


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
