"""Stage 4: every score computed by hand on small cases, planted hallucinations caught, aggregation
equal to crowd-kit's on known inputs, review thresholds, and properties checked with hypothesis."""

from __future__ import annotations

import math
import os
import random
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.judge import judge_run
from agents.judge.aggregate import Votes, label_distributions, summarise
from agents.judge.flags import CalibrationError, review_threshold
from agents.judge.gold import GoldError, load_gold
from agents.judge.judge_index import JudgeIndex
from agents.judge.scores import COVERAGE_FLOOR, s_cot_of, s_final, s_rec, s_reason
from evidence.clip_index import Baseline, ClipIndex
from evidence.grounding import verify
from schemas import ConfigError, JudgeWeights, load_config
from schemas.config import ReviewThreshold
from schemas.judgement import ClaimCheck
from tests.fixtures.judge_cases import answer, clip, ev, features

BASE = Baseline(pitch_hz=200.0, intensity_db=60.0, rate_wps=3.0, pause_ratio=0.1)


def check(e, feats=None, base=BASE):
    return verify(e, ClipIndex(clip(), feats if feats is not None else features(), base))


# ---------- the hallucination check, one kind of claim at a time ----------

@pytest.mark.parametrize("e, verdict, why", [
    (ev("e", "face", "AU12 (lip corner puller) active", 10.4, 11.2, "faces[track=0].action_units[AU12]"), "supported", "active in 2/2"),
    (ev("e", "face", "AU04 brow lowerer", 10.4, 13.6, "faces[track=0].action_units[AU04]"), "contradicted", "never active"),
    (ev("e", "face", "AU12 smile", 13.3, 13.7), "contradicted", "never active"),  # the smile is over by 13.5 s
    (ev("e", "face", "AU6 cheek raiser"), "unverifiable", "nothing"),  # not measured here: no verdict either way
    # a stated count is held to the measured one, an absence included (an agent citing a prototype's missing unit)
    (ev("e", "face", "AU04 (brow lowerer) mean intensity 0.13, present in 0/3 frames", 10.4, 13.6, "faces[track=0].action_units[AU04]"),
     "supported", "absent in the 3 cited frames, as stated"),
    (ev("e", "face", "AU04 brow lowerer, present in 2/3 frames", 10.4, 13.6, "faces[track=0].action_units[AU04]"), "contradicted", "measured 0/3"),
    (ev("e", "face", "AU12 mean intensity 0.60, present in 2/3 frames", 10.4, 13.6, "faces[track=0].action_units[AU12]"), "supported", "active in 2/3"),
    (ev("e", "face", "AU12 present in 0/3 frames", 10.4, 13.6, "faces[track=0].action_units[AU12]"), "contradicted", "measured 2/3"),
    (ev("e", "face", "AU12 mean intensity 0.85, present", 10.4, 11.2, "faces[track=0].action_units[AU12]"), "supported", "active"),
    (ev("e", "face", "AU12 mean intensity 0.30, present", 10.4, 11.2, "faces[track=0].action_units[AU12]"), "contradicted", "measured 0.85"),
    (ev("e", "text", "they say 'so happy'", 10.4, 11.2), "supported", "'so happy' was said"),
    (ev("e", "text", "they say 'I am furious'"), "contradicted", "'i am furious' was not said"),
    (ev("e", "text", "'today'", 10.2, 10.6), "contradicted", "not said in the cited span"),
    (ev("e", "text", "SPEAKER_01 says 'happy'"), "contradicted", "not SPEAKER_01"),
    (ev("e", "text", "SPEAKER_00 says 'happy'"), "supported", "was said"),
    (ev("e", "text", "'happy'", 10.7, 11.1, "words[3]"), "supported", "was said"),
    (ev("e", "text", "'happy'", None, None, "words[2]"), "contradicted", "not said at words[2]"),
    (ev("e", "text", "'happy'", None, None, "words[99]"), "contradicted", "words[99] does not exist"),
    (ev("e", "face", "smile", 20.0, 21.0), "contradicted", "outside the clip"),
    (ev("e", "face", "a smile", None, None, "faces[track=7].expression"), "contradicted", "track 7 does not exist"),
    (ev("e", "face", "a smile", None, None, "faces[9]"), "contradicted", "faces[9] does not exist"),
    (ev("e", "face", "expression model: happiness 0.75", 10.4, 11.2, "faces[track=0].expression"), "supported", "ranks 1"),
    (ev("e", "face", "strongest happiness frame: 0.80", 11.0, 11.0, "faces[1].expression"), "supported", "ranks 1"),
    (ev("e", "face", "expression model: happiness 0.95", 10.4, 11.2, "faces[track=0].expression"), "contradicted", "states happiness 0.95"),
    (ev("e", "visual", "the face looks surprised"), "contradicted", "surprise is not among the top"),
    (ev("e", "prosody", "raised pitch"), "supported", "pitch 220.0 vs run median 200.0"),
    (ev("e", "prosody", "pitch 260 Hz on 'happy'", 10.7, 11.1), "supported", "as stated"),
    (ev("e", "audio", "mean pitch 300 Hz"), "contradicted", "measured 220.0"),
    (ev("e", "prosody", "slow speech rate"), "unverifiable", "nothing"),  # 3.0 words/s is the run's median
    (ev("e", "prosody", "a loud voice"), "supported", "loudness 65.0"),
    (ev("e", "prosody", "a quiet, soft voice"), "contradicted", "claims less loudness"),
    (ev("e", "context", "the person seems emotional"), "unverifiable", "nothing"),
])
def test_claims_are_checked_against_the_features(e, verdict, why):
    got = check(e)
    assert got.verdict == verdict, got.reason
    assert why in got.reason


def test_claims_about_absent_modalities_are_contradicted():
    bare = features(pitch=None, faces=False, words=False)
    assert check(ev("e", "prosody", "raised pitch"), bare).verdict == "contradicted"
    assert "no face" in check(ev("e", "face", "AU12 active"), bare).reason
    assert "no transcript" in check(ev("e", "text", "says 'happy'"), bare).reason


def test_a_lower_baseline_turns_a_pitch_claim_around():
    assert check(ev("e", "prosody", "raised pitch"), base=Baseline(pitch_hz=250.0)).verdict == "contradicted"


# ---------- scores by hand ----------

def test_s_reason_weighs_each_fact_by_how_strongly_its_measurement_points_to_the_label():
    claims = [ClaimCheck(evidence_id=x, verdict=v, reason="", support=s)
              for x, v, s in [("a", "supported", 1.0), ("b", "unverifiable", 1.0), ("c", "contradicted", 1.0), ("d", "supported", None)]]
    # fact x support; a claim that bears on no emotion gets half its fact's credit
    assert s_reason(claims, 0.5) == pytest.approx((1 + 0.5 + 0 + 0.5) / 4)
    assert s_reason([], 0.3) == pytest.approx(0.3 * 0.5)  # no evidence at all: one unverifiable claim pointing nowhere


def test_a_true_fact_that_does_not_point_to_the_label_is_not_support():
    """Answers citing the same true facts (a smile, 'so happy' said, raised pitch) for different labels:
    the facts are confirmed for all, but only the label they point to earns full S_reason."""
    cfg = load_config(overrides=["judge.aggregation=majority"])
    answers = [answer(f"w-{label}", label, GOOD) for label in ("happiness", "sadness", "anger")]
    res = judge_run([clip(), clip("c2")], [features(), features("c2", pitch=180.0)], answers, cfg, "r")
    by = {j.label: j for j in res.judgements}
    for j in by.values():
        assert [c.verdict for c in j.claims] == ["supported"] * 3
    support = {label: [c.support for c in j.claims] for label, j in by.items()}
    assert support["happiness"][0] == 1.0 and support["sadness"][0] == 0.0  # AU12 is happiness's prototype, not sadness's
    assert support["happiness"][1] > 0.5 > support["sadness"][1]  # 'so happy' is positive
    assert by["happiness"].s_reason > 0.7 > 0.3 > by["sadness"].s_reason
    assert by["happiness"].s_reason > by["anger"].s_reason


def test_inference_tables_follow_the_literature():
    from agents.judge.inference import au_distribution, support, valence_distribution, vocal_distribution

    taxonomy = load_config().taxonomy
    # AU04 belongs to the anger, sadness and fear prototypes: it cannot tell anger from sadness
    au4 = au_distribution({"AU04": 1.0}, taxonomy)
    assert support(au4, "anger") == pytest.approx(0.5) and support(au4, "happiness") < 0.5
    # a prototype's unit cited as absent speaks against that prototype, and for no other one above the rest
    no_au15 = au_distribution({"AU15": 0.0}, taxonomy)
    assert support(no_au15, "sadness") < 0.5 and support(no_au15, "disgust") < 0.5 and support(no_au15, "anger") == pytest.approx(0.5)
    assert au_distribution({}, taxonomy) is None
    # a raised, variable, loud, fast voice reads as anger or happiness, never sadness (Juslin & Laukka 2003)
    # (the vocal agents' table, agents/vocal_profiles.py, on z-scores against the speaker's baseline)
    aroused = vocal_distribution({"pitch_st": 1.5, "pitch_range_st": 1.2, "loudness": 1.5, "syllable_rate": 1.2}, taxonomy)
    assert max(aroused, key=aroused.get) in ("anger", "happiness") and support(aroused, "sadness") == 0.0
    low = vocal_distribution({"pitch_st": -1.2, "pitch_range_st": -1.0, "loudness": -1.0, "syllable_rate": -1.0}, taxonomy)
    assert max(low, key=low.get) == "sadness" and support(low, "anger") == 0.0
    typical = vocal_distribution({"pitch_st": 0.0, "loudness": 0.1, "syllable_rate": -0.1}, taxonomy)
    assert max(typical, key=typical.get) == "neutral"
    assert vocal_distribution({"unknown_cue": 2.0}, taxonomy) is None
    # flat words say nothing about the speaker; negative words say "negative", not which emotion
    assert support(valence_distribution(0.0, taxonomy), "neutral") == pytest.approx(0.5)
    negative = valence_distribution(-0.7, taxonomy)
    assert support(negative, "anger") == pytest.approx(0.5) and support(negative, "happiness") < 0.5


def test_a_model_readings_support_keeps_its_margin():
    """A model's probabilities are graded over their whole range: a face read as fear
    0.64 over anger 0.20 backs fear less than a face read as surprise 0.97 backs surprise (saturated,
    both got full support, and the model's wrong answers could not rank below its right ones)."""
    from agents.judge.inference import claim_support, leaning

    unsure, sure = leaning({"fear": 0.64, "anger": 0.20, "disgust": 0.16}), leaning({"surprise": 0.97, "fear": 0.03})
    for kind in ("expression", "action_units"):
        assert 0.5 < claim_support(unsure, kind, None, "fear") < claim_support(sure, kind, None, "surprise") < 1.0
        assert claim_support(unsure, kind, None, "anger") < 0.5
    # the run's voice model reads the same way, on a label it was shown
    voice_model = SimpleNamespace(learned_distribution={"fear": 0.64, "anger": 0.20, "disgust": 0.16})
    assert 0.5 < claim_support(unsure, "learned_voice", voice_model, "fear") < 1.0
    # a literature voice profile's margin still counts in full from 0.3 on (linear, it ranked speech answers no better)
    assert claim_support(unsure, "voice", None, "fear") == 1.0


def test_s_rec_is_leave_one_out_soft_agreement_or_gold():
    a1, a2, a3 = answer("a1", "happiness"), answer("a2", "happiness"), answer("a3", "sadness")
    assert s_rec(a1, [a2, a3], None) == (0.5, "peers")
    assert s_rec(a3, [a1, a2], None) == (0.0, "peers")
    soft = answer("a2", "happiness", dist={"happiness": 0.6, "sadness": 0.4})
    assert s_rec(a3, [a1, soft], None)[0] == pytest.approx(0.2)
    assert s_rec(a1, [soft, a3], None)[0] == pytest.approx(0.3)
    assert s_rec(a1, [a2, a3], ["happiness"]) == (1.0, "gold")
    assert s_rec(a3, [a1, a2], ["happiness"]) == (0.0, "gold")
    both = answer("a4", "happiness").model_copy(update={"labels": ["happiness", "sadness"]})
    assert s_rec(both, [], ["happiness"]) == (0.5, "gold")  # Jaccard of the label sets
    assert s_rec(a1, [], None) == (None, "none")


def test_s_cot_is_the_share_of_the_discriminating_signal_the_reasoning_covers_not_correctness():
    e1 = ev("e1", "face", "AU12 (lip corner puller) active")
    e2 = ev("e2", "text", "said 'so happy'")
    from schemas.features import FeatureStat, VoiceBaseline

    # the speaker's normal pitch is 200 Hz (34.3 semitones over 27.5 Hz); this clip's 220 Hz is raised
    voice = VoiceBaseline(scope="corpus", key="run", clips=5, speech_s=10.0,
                          stats=[FeatureStat(name="pitch_st", center=34.34, scale=1.0, n=5)])
    ix = JudgeIndex(clip(), features(), BASE, frozenset(load_config().taxonomy), voice)
    assert ix.modalities == {"text", "audio", "visual"}
    dists = ix.modality_distributions
    assert max(dists["visual"], key=dists["visual"].get) == "happiness"  # the expression model on the main face

    def margin(g, label):
        d = dists[g]
        total = sum(d.values())
        return abs(d.get(label, 0) / total - max(v / total for k, v in d.items() if k != label))

    weight = {g: COVERAGE_FLOOR + margin(g, "happiness") for g in ("visual", "text", "audio")}
    steps = [("AU12 is active.", ["e1"]), ("The words are neutral.", []), ("Therefore the emotion is happiness.", [])]
    a = answer("a", "happiness", [e1, e2], steps)
    # only the face is taken up by a reasoning step: the words are cited but no step uses them
    assert s_cot_of(a, ix.modalities, ix.modality_leanings) == pytest.approx(weight["visual"] / sum(weight.values()))
    # a step that repeats an evidence anchor (the quoted words) covers it without citing an id
    quoting = answer("a", "happiness", [e1, e2], [("AU12 is active.", ["e1"]), ("They said 'so happy'.", []), steps[2]])
    assert s_cot_of(quoting, ix.modalities, ix.modality_leanings) == pytest.approx((weight["visual"] + weight["text"]) / sum(weight.values()))
    # the closing step was added by the normaliser: the answer never concluded
    added = answer("a", "happiness", [e1, e2], steps, origin="normaliser")
    assert s_cot_of(added, ix.modalities, ix.modality_leanings) == pytest.approx(s_cot_of(a, ix.modalities, ix.modality_leanings) / 2)
    # the same reasoning for a wrong label covers the same modalities; their weights are the margins
    # between *its* label and rival, in either direction: correctness is S_rec's job, direction S_reason's
    sad = answer("a", "sadness", [e1, e2], [steps[0], steps[1], ("Therefore the emotion is sadness.", [])])
    sad_weight = {g: COVERAGE_FLOOR + margin(g, "sadness") for g in ("visual", "text", "audio")}
    assert s_cot_of(sad, ix.modalities, ix.modality_leanings) == pytest.approx(sad_weight["visual"] / sum(sad_weight.values()))
    every = answer("a", "happiness", [e1, e2, ev("e3", "prosody", "raised pitch")],
                   [("AU12 is active.", ["e1"]), ("They said 'so happy'.", ["e2"]), ("The pitch is raised.", ["e3"]), steps[2]])
    assert s_cot_of(every, ix.modalities, ix.modality_leanings) == 1.0
    assert s_cot_of(a, frozenset(), {}) == 1.0  # nothing measured: nothing to miss


def test_s_final_weights_and_renormalises_without_s_rec():
    w = JudgeWeights(alpha=0.5, beta=0.3, gamma=0.2)
    assert s_final(0.5, 0.5, 13 / 18, w) == pytest.approx(0.25 + 0.15 + 0.2 * 13 / 18)
    assert s_final(None, 0.5, 13 / 18, w) == pytest.approx((0.15 + 0.2 * 13 / 18) / 0.5)


@pytest.mark.parametrize("bad", ["judge.weights={alpha: 0.5, beta: 0.5, gamma: 0.5}",
                                 "judge.weights={alpha: -0.2, beta: 0.7, gamma: 0.5}",
                                 "judge.task_weights={emotion-cot: {alpha: 1, beta: 1, gamma: 0}}"])
def test_judge_weights_are_validated(bad):
    with pytest.raises(ConfigError, match="judge"):
        load_config(overrides=[bad])


# ---------- a whole clip: scores, planted hallucination, consensus, flags ----------

GOOD = [ev("e1", "face", "AU12 (lip corner puller) active", 10.4, 11.2, "faces[track=0].action_units[AU12]"),
        ev("e2", "text", "said 'so happy'", 10.4, 11.2), ev("e3", "prosody", "raised pitch")]


def three_answers():
    good = answer("good", "happiness", GOOD, [("AU12 is active.", ["e1"]), ("They said 'so happy'.", ["e2"]),
                                              ("The pitch is raised.", ["e3"]), ("Therefore the emotion is happiness.", [])])
    liar = answer("liar", "happiness", [GOOD[0], ev("e2", "text", "the speaker shouts 'I am furious'", 12.0, 13.0)],
                  [("AU12 is active.", ["e1"]), ("They shout 'I am furious'.", ["e2"]), ("Therefore the emotion is happiness.", [])])
    vague = answer("vague", "sadness", [ev("e1", "context", "the mood seems low")])
    return [good, liar, vague]


def test_judge_run_scores_a_clip_and_catches_planted_hallucination():
    cfg = load_config(overrides=["judge.weights={alpha: 0.5, beta: 0.3, gamma: 0.2}", "judge.aggregation=weighted",
                                 "judge.threshold.mode=fixed", "judge.threshold.value=0.5"])
    # a calmer second clip puts the run's median pitch at 200 Hz, so c1's 220 Hz counts as raised
    res = judge_run([clip(), clip("c2")], [features(), features("c2", pitch=180.0)], three_answers(), cfg, "run-j")
    by = {j.annotator_id: j for j in res.judgements}
    good, liar, vague = by["good"], by["liar"], by["vague"]
    assert [c.verdict for c in good.claims] == ["supported"] * 3 and not good.flags
    assert [c.verdict for c in liar.claims] == ["supported", "contradicted"]
    assert "'i am furious' was not said" in liar.claims[1].reason and liar.flags == ["hallucinated_evidence"]
    # the smile is happiness's prototype; two clips are too few to know the speaker's normal voice, so
    # the raised pitch is a checked fact that says nothing about the emotion
    assert good.claims[0].support == 1.0 and good.claims[2].support is None
    credit = {"supported": 1.0, "unverifiable": 0.5, "contradicted": 0.0}
    for j in (good, liar, vague):
        assert j.s_reason == pytest.approx(sum(credit[c.verdict] * (0.5 if c.support is None else c.support) for c in j.claims)
                                           / len(j.claims))
    assert liar.s_reason == pytest.approx(0.5) and vague.s_reason == pytest.approx(0.25)  # (1·1 + 0) / 2; one unverifiable claim
    assert good.s_rec == 0.5 and vague.s_rec == 0.0 and good.s_rec_basis == "peers"
    assert good.s_cot == pytest.approx(1.0)  # every measured modality taken up by a step, and concluded
    assert vague.s_cot == 0.0  # cites only "context": no modality covered
    for j in res.judgements:
        assert j.s_final == pytest.approx(0.5 * j.s_rec + 0.3 * j.s_reason + 0.2 * j.s_cot)
    c, calm = res.consensus
    assert calm.label is None and calm.n_answers == 0 and calm.needs_review  # nobody answered
    assert calm.flags == ["low_score", "no_answer", "missing_modality"]  # no margin or agreement to speak of
    # weighted vote: happiness carries good + liar, sadness only vague
    w = {k: by[k].s_final for k in by}
    assert c.label == "happiness" and c.method == "weighted"
    assert {p.label: p.prob for p in c.distribution}["happiness"] == pytest.approx((w["good"] + w["liar"]) / sum(w.values()))
    assert c.agreement == pytest.approx(2 / 3) and c.n_answers == 3
    assert c.s_final_mean == pytest.approx((w["good"] + w["liar"]) / 2)
    happy = {p.label: p.prob for p in c.distribution}["happiness"]
    # no labelled clips: the stated prior is that the consensus's own probability is right
    assert c.review_score == c.confidence == pytest.approx(happy, abs=1e-6)
    assert res.routing.calibration == "prior" and res.routing.calibrated_on == 0
    assert "hallucinated_evidence" in c.flags and c.needs_review
    assert 0 < c.entropy < 1 and c.uncertainty == pytest.approx(c.entropy / 3)  # 8 labels: log2(8) = 3


def test_gold_labels_drive_s_rec_and_rejected_answers_are_scored_zero_and_flagged(tmp_path):
    gold_file = tmp_path / "gold.csv"
    gold_file.write_text("clip_id,label\nc1,sadness\n")
    cfg = load_config()
    answers = three_answers() + [answer("broken", None, status="rejected"), answer("shy", None, status="abstained")]
    res = judge_run([clip()], [features()], answers, cfg, "run-g", gold=load_gold(gold_file, cfg.taxonomy))
    by = {j.annotator_id: j for j in res.judgements}
    assert "shy" not in by  # an abstention is not an answer
    assert by["vague"].s_rec == 1.0 and by["good"].s_rec == 0.0 and by["good"].s_rec_basis == "gold"
    assert by["broken"].s_final == 0.0 and by["broken"].flags == ["rejected_answer"]
    assert "rejected_answer" in res.consensus[0].flags and res.consensus[0].gold_label == "sadness"
    # the judge builds records without validation (schemas.trusted): each must be complete and valid
    records = [*res.judgements, *res.consensus, *(c for j in res.judgements for c in j.claims),
               *(p for c in res.consensus for p in c.distribution)]
    assert {type(r).__name__ for r in records} == {"Judgement", "Consensus", "ClaimCheck", "LabelProb"}
    for r in records:
        assert type(r).model_validate(r.model_dump()) == r


def test_per_task_weights_apply_to_their_instruction_template():
    cfg = load_config(overrides=["judge.task_weights={quick: {alpha: 1, beta: 0, gamma: 0}}"])
    a = answer("a", "happiness", GOOD, clip_id="q1")
    b = answer("b", "happiness", clip_id="q1")
    res = judge_run([clip("q1", template="quick")], [features("q1")], [a, b], cfg, "r")
    # two answers agreeing, under the reliability model: S_rec is their label's posterior
    assert all(j.s_final == j.s_rec and 0.5 < j.s_rec < 1.0 and j.s_rec_basis == "consensus" for j in res.judgements)


def test_a_clip_nobody_answered_goes_to_review_whatever_the_threshold():
    # a fixed threshold of 0 flags no score as low: the clip with no label must still reach a person
    cfg = load_config(overrides=["judge.threshold.mode=fixed", "judge.threshold.value=0"])
    answers = [answer("a", "happiness", GOOD), answer("shy", None, status="abstained", clip_id="c2"),
               answer("broken", None, status="rejected", clip_id="c2")]
    seen, blank = judge_run([clip(), clip("c2")], [features(), features("c2")], answers, cfg, "r").consensus
    assert blank.label is None and blank.flags == ["no_answer", "missing_modality", "rejected_answer"] and blank.needs_review
    assert "no_answer" not in seen.flags and not seen.needs_review


def test_missing_modality_is_flagged_when_no_answer_looks_at_a_measured_one():
    cfg = load_config()
    face_only = [answer(f"f{i}", "happiness", [GOOD[0]]) for i in range(3)]
    [c] = judge_run([clip()], [features()], face_only, cfg, "r").consensus
    assert "missing_modality" in c.flags and "disagreement" not in c.flags and "thin_margin" not in c.flags
    [c] = judge_run([clip()], [features()], [answer("all", "happiness", GOOD)] * 1, cfg, "r").consensus
    assert "missing_modality" not in c.flags


@pytest.mark.parametrize("content, message", [
    ("clip,label\nc1,happiness\n", "needs columns clip_id and label"),
    ("clip_id,label\nc1,joyish\n", "row 2: label 'joyish' is not in the taxonomy"),
    ("clip_id,label\n,happiness\n", "row 2: empty clip_id"),
])
def test_bad_gold_files_name_the_file_and_row(tmp_path, content, message):
    f = tmp_path / "gold.csv"
    f.write_text(content)
    with pytest.raises(GoldError, match=message) as err:
        load_gold(f, load_config().taxonomy)
    assert str(f) in str(err.value)
    with pytest.raises(GoldError, match="not found"):
        load_gold(tmp_path / "nope.csv", [])


# ---------- aggregation ----------

def votes(rows, labels=("a", "b", "c"), weights=None):
    clips = sorted({r[0] for r in rows})
    workers = sorted({r[1] for r in rows})
    return Votes(clip=np.array([clips.index(r[0]) for r in rows]), annotator=np.array([workers.index(r[1]) for r in rows]),
                 label=np.array([labels.index(r[2]) for r in rows]), weight=np.array(weights or [1.0] * len(rows)),
                 clip_ids=clips, annotator_ids=workers, labels=list(labels))


def test_majority_and_weighted_votes_by_hand():
    v = votes([("t1", "w1", "a"), ("t1", "w2", "a"), ("t1", "w3", "b")], weights=[0.1, 0.1, 0.9])
    assert label_distributions(v, "majority")[0] == pytest.approx([2 / 3, 1 / 3, 0])
    assert label_distributions(v, "weighted")[0] == pytest.approx([0.2 / 1.1, 0.9 / 1.1, 0])
    top, margin, ent, unc = summarise(np.array([[0.5, 0.5, 0.0], [0, 0, 0]]), 3)
    assert list(top) == [0, -1] and margin[0] == 0 and ent[0] == pytest.approx(1.0) and unc[1] == 1.0


def synthetic(seed=0, n_tasks=300, k=4):
    """Two careful workers (90% right) and three spammers (random answers)."""
    rng = random.Random(seed)
    labels = [f"l{i}" for i in range(k)]
    truth = {f"t{i}": rng.choice(labels) for i in range(n_tasks)}
    rows = []
    for t, y in truth.items():
        for w, acc in [("good1", 0.9), ("good2", 0.9), ("spam1", 0.0), ("spam2", 0.0), ("spam3", 0.0)]:
            rows.append((t, w, y if rng.random() < acc else rng.choice(labels)))
    return rows, truth, labels


@pytest.mark.parametrize("method, crowdkit_name", [("majority", "MajorityVote"), ("dawid_skene", "DawidSkene"),
                                                    ("one_coin_dawid_skene", "OneCoinDawidSkene"), ("glad", "GLAD")])
def test_aggregation_matches_crowdkit_on_known_inputs(method, crowdkit_name):
    import pandas as pd
    from crowdkit import aggregation

    rows, truth, labels = synthetic()
    v = votes(rows, labels)
    ours = label_distributions(v, method)
    df = pd.DataFrame(rows, columns=["task", "worker", "label"])
    theirs = getattr(aggregation, crowdkit_name)().fit_predict_proba(df)
    theirs = theirs.reindex(index=v.clip_ids, columns=labels).fillna(0.0).to_numpy()
    assert ours == pytest.approx(theirs, abs=1e-6)


def test_dawid_skene_learns_who_to_trust_where_majority_does_not():
    rows, truth, labels = synthetic(seed=1)
    v = votes(rows, labels)
    acc = {}
    for method in ("majority", "dawid_skene"):
        top, *_ = summarise(label_distributions(v, method), len(labels))
        acc[method] = np.mean([labels[top[i]] == truth[c] for i, c in enumerate(v.clip_ids)])
    # two 90%-accurate workers can reach ~0.91 at best (when they disagree it is a coin toss)
    assert acc["dawid_skene"] > 0.88 and acc["dawid_skene"] > acc["majority"] + 0.05, acc


# ---------- review thresholds ----------

def test_budget_flags_exactly_the_worst_share():
    scores = np.array([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.6])
    t = review_threshold(scores, ReviewThreshold(mode="budget", budget=0.25))
    assert sorted(scores[scores < t]) == [0.1, 0.2]
    assert review_threshold(scores, ReviewThreshold(mode="fixed", value=0.4)) == 0.4


def test_calibrated_threshold_reaches_the_target_accuracy_on_gold():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    correct = np.array([1, 1, 0, 1, 0, np.nan])  # the last clip has no gold label
    assert review_threshold(scores, ReviewThreshold(mode="calibrated", target_accuracy=0.75), correct) == 0.6
    assert review_threshold(scores, ReviewThreshold(mode="calibrated", target_accuracy=0.9), correct) == 0.8
    tied = review_threshold(np.array([0.9, 0.8, 0.8]), ReviewThreshold(mode="calibrated", target_accuracy=0.9), np.array([1, 0, 1.0]))
    assert tied == 0.9  # the two 0.8 clips cannot be split
    assert math.isinf(review_threshold(scores, ReviewThreshold(mode="calibrated", target_accuracy=1.0), np.array([0, 1, 1, 1, 1, np.nan])))
    with pytest.raises(CalibrationError, match="judge.gold"):
        review_threshold(scores, ReviewThreshold(mode="calibrated"), None)


# ---------- properties ----------

CUES = [ev("x1", "face", "AU12 active", 10.4, 11.2), ev("x2", "text", "says 'happy'"), ev("x3", "text", "says 'furious'"),
        ev("x4", "prosody", "raised pitch"), ev("x5", "context", "seems tense"), ev("x6", "face", "AU04 brow lowerer")]
LABELS = ["happiness", "sadness", "anger", "neutral"]


@st.composite
def panels(draw):
    n_clips = draw(st.integers(1, 4))
    out = []
    for c in range(n_clips):
        for w in range(draw(st.integers(1, 4))):
            evs = draw(st.lists(st.sampled_from(CUES), max_size=4, unique_by=lambda e: e.evidence_id))
            status = draw(st.sampled_from(["ok", "ok", "ok", "rejected"]))
            label = draw(st.sampled_from(LABELS)) if status == "ok" else None
            out.append(answer(f"w{w}", label, evs, clip_id=f"c{c}", status=status))
    return n_clips, out


@settings(max_examples=40, deadline=None)
@given(panels(), st.floats(0, 1), st.floats(0, 1), st.sampled_from(["majority", "weighted"]), st.randoms())
def test_properties_bounded_weighted_order_invariant(panel, a, b, method, rnd):
    n_clips, answers = panel
    alpha, beta = a, (1 - a) * b
    cfg = load_config(overrides=[f"judge.weights={{alpha: {alpha}, beta: {beta}, gamma: {1 - alpha - beta}}}", f"judge.aggregation={method}"])
    clips = [clip(f"c{i}") for i in range(n_clips)]
    feats = [features(f"c{i}") for i in range(n_clips)]
    res = judge_run(clips, feats, answers, cfg, "p")
    for j in res.judgements:
        for s in (j.s_rec, j.s_reason, j.s_cot, j.s_final):
            assert s is None and j.s_rec_basis == "none" or 0.0 <= s <= 1.0 + 1e-12
        if j.label is not None and j.s_rec_basis != "none":
            assert j.s_final == pytest.approx(alpha * j.s_rec + beta * j.s_reason + (1 - alpha - beta) * j.s_cot)
    for c in res.consensus:
        assert 0 <= c.margin <= 1 and 0 <= c.uncertainty <= 1 + 1e-9 and 0 <= c.review_score <= 1
        assert sum(p.prob for p in c.distribution) == pytest.approx(1.0 if c.n_answers else 0.0, abs=1e-5)
    shuffled = answers[:]
    rnd.shuffle(shuffled)
    again = judge_run(clips, feats, shuffled, cfg, "p")
    key = lambda r: {j.annotation_id: (j.s_rec, j.s_reason, j.s_cot, j.s_final) for j in r.judgements}  # noqa: E731
    before, after = key(res), key(again)
    assert after.keys() == before.keys() and all(after[k] == pytest.approx(v) for k, v in before.items())
    assert [(c.label, c.flags) for c in again.consensus] == [(c.label, c.flags) for c in res.consensus]


@pytest.mark.slow  # starts worker processes
def test_a_large_run_is_scored_in_worker_processes_with_the_same_result(monkeypatch):
    from agents.judge import processes

    rnd = random.Random(3)
    n = 80
    clips = [clip(f"c{i}") for i in range(n)]
    feats = [features(f"c{i}", pitch=rnd.choice([None, 180.0, 220.0]), faces=i % 3 > 0, words=i % 4 > 0) for i in range(n)]
    answers = [answer(f"w{w}", rnd.choice(LABELS) if w < 3 else None, rnd.sample(CUES, rnd.randint(0, 3)), clip_id=f"c{i}",
                      status="ok" if w < 3 else "rejected") for i in range(n) for w in range(rnd.randint(1, 4))]
    one = judge_run(clips, feats, answers, load_config(overrides=["runtime.judge_processes=1"]), "p")
    monkeypatch.setattr(processes, "PARALLEL_MIN_ANSWERS", 1)  # this run is small; the path is the large runs'
    cfg = load_config(overrides=["runtime.judge_processes=2"])
    assert processes.judge_processes(cfg, len(answers), None) == 2
    assert processes.judge_processes(cfg, len(answers), llm_judge=object()) == 1  # one model, one process
    two = judge_run(clips, feats, answers, cfg, "p")
    drop = {"judgements": {"__all__": {"provenance"}}, "consensus": {"__all__": {"provenance"}}}
    assert two.model_dump(exclude=drop) == one.model_dump(exclude=drop)
    assert any(c.verdict == "contradicted" for j in two.judgements for c in j.claims)  # the comparison covers claims
    # and the scoring really happens in other processes, in job order
    from agents.judge.scored import ClipJob

    jobs = [ClipJob(i, [], None, None) for i in range(40)]
    got = list(processes.score_in_processes(jobs, 0.5, 2, score=lambda ix, answers, w, gold, credit: (ix, os.getpid())))
    assert [i for i, _ in got] == list(range(40))
    assert os.getpid() not in {pid for _, pid in got}


def test_stated_acoustic_functionals_are_checked_and_read_against_the_voice_baseline():
    from schemas.features import NamedValue

    def with_voice(clip_id, jitter, pitch=220.0):
        f = features(clip_id, pitch=pitch)
        f.prosody.functionals = [NamedValue(name="jitterLocal_sma3nz_amean", value=jitter),
                                 NamedValue(name="HNRdBACF_sma3nz_amean", value=10.0),
                                 NamedValue(name="logRelF0-H1-H2_sma3nz_amean", value=0.4417)]
        return f

    from agents.voice_baseline import voice_baselines

    feats = [with_voice("c1", 0.04), *(with_voice(f"c{i}", 0.01 + 0.002 * i, 200.0) for i in range(2, 8))]
    cfg = load_config()
    voice = voice_baselines([clip(f.clip_id) for f in feats], feats, cfg.annotate.baseline)  # the run's: one file per source
    ix = JudgeIndex(clip(), feats[0], Baseline.from_features(feats), frozenset(cfg.taxonomy), voice["c1"])
    ref = "prosody.functionals[jitterLocal_sma3nz_amean]"
    assert verify(ev("e", "prosody", "jitter 4.00% (cycle-to-cycle period perturbation), z +3.1", ref=ref), ix).verdict == "supported"
    wrong = verify(ev("e", "prosody", "jitter 1.50% (cycle-to-cycle period perturbation)", ref=ref), ix)
    assert wrong.verdict == "contradicted" and "measured 0.04" in wrong.reason
    # a small value stated to one decimal, as the vocal agents write it, is the value rounded, not a
    # contradiction; a wrong one is
    h1h2 = "prosody.functionals[logRelF0-H1-H2_sma3nz_amean]"
    assert verify(ev("e", "prosody", "H1-H2 0.4 dB (breathy when high), z -1.0", ref=h1h2), ix).verdict == "supported"
    assert verify(ev("e", "prosody", "H1-H2 0.6 dB (breathy when high)", ref=h1h2), ix).verdict == "contradicted"
    missing = verify(ev("e", "prosody", "shimmer 0.8 dB", ref="prosody.functionals[shimmerLocaldB_sma3nz_amean]"), ix)
    assert missing.verdict == "contradicted" and "not measured" in missing.reason
    # far more jitter than the speaker's normal voice: the voice-quality profiles read it as fear or sadness
    from agents.judge.inference import claim_distribution, support
    from evidence.grounding import parse_cue

    e = ev("e", "prosody", "jitter 4.00%", ref=ref)
    d = claim_distribution(e, parse_cue(e.cue, e.feature_ref), ix)
    assert max(d, key=d.get) in ("fear", "sadness") and support(d, "happiness") < 0.5
