"""While a run has no voice model, it asks a person to label first the clips that would teach one
most: the typical clip of each region of its voices (agents/teach_set.py). Labelled, they let the
run fit its voice model; the judge flags them and the review push hands them out first."""

from __future__ import annotations

import numpy as np

from agents.judge.stage import judge_run
from agents.learned_voice import fit_learned_voice
from agents.teach_set import choose_teach_set
from pipeline.export.report import _routing_lines
from pipeline.review.push import review_order
from schemas import Consensus, load_config
from schemas.config import LearnedVoiceConfig
from tests.fixtures.judge_cases import PROV
from tests.test_learned_voice import TAX, corpus


def three_groups(seed: int) -> tuple[list[str], np.ndarray]:
    """Three far-apart groups of 17 points; point k=0 of group g ("g{g}-0") sits at its group's mean,
    the others symmetric around it, so it is the one nearest the group's centre in any view of the data."""
    rng = np.random.default_rng(seed)
    ids, rows = [], []
    for g, mean in enumerate(([0.0] * 6, [12.0] * 6, [0.0, 12.0] * 3)):
        spread = rng.normal(0, 1, (8, 6))
        rows.append(np.vstack([np.zeros(6), spread, -spread]) + mean)
        ids += [f"g{g}-{k}" for k in range(17)]
    return ids, np.vstack(rows)


def test_one_clip_from_each_region_the_one_at_its_centre():
    ids, x = three_groups(0)
    assert choose_teach_set(ids, x, 3) == {"g0-0", "g1-0", "g2-0"}


def test_regions_a_labelled_clip_already_covers_are_not_asked_for_again():
    ids, x = three_groups(2)
    assert choose_teach_set(ids, x, 2, {"g0-0"}) == {"g1-0", "g2-0"}
    assert choose_teach_set(ids, x, 5, set(ids[2:])) == {"g0-0", "g0-1"}  # fewer unlabelled than the budget


def test_a_budget_as_large_as_the_clips_takes_them_all_and_none_takes_none():
    x = np.random.default_rng(1).normal(size=(5, 4))
    ids = list("abcde")
    assert choose_teach_set(ids, x, 5) == set(ids) == choose_teach_set(ids, x, 9)
    assert choose_teach_set(ids, x, 0) == set()


def test_without_a_model_the_run_marks_clips_whose_labels_then_teach_it():
    clips, feats, truth, voice = corpus()
    config = LearnedVoiceConfig(teach=24)
    few = {cid: [truth[cid]] for cid in list(truth)[:3]}  # too few for a model
    blind = fit_learned_voice(clips, feats, few, voice, config, TAX, "gold")
    teach = {c for c, v in blind.items() if v.teach}
    assert len(teach) == 24 and not teach & set(few)
    assert all("teach_voice_model" in v.note for v in blind.values())
    assert {truth[c] for c in teach} == set(truth.values())  # every emotion's voices are among them
    # a person labels them: the run fits its voice model, and asks for nothing more
    taught = fit_learned_voice(clips, feats, {c: [truth[c]] for c in teach}, voice, config, TAX, "review")
    rest = [c for c in truth if c not in teach]
    assert np.mean([taught[c].distribution[0].label == truth[c] for c in rest]) >= 0.85
    assert not any(v.teach for v in taught.values())
    # no budget: no clip is marked
    assert not any(v.teach for v in fit_learned_voice(clips, feats, {}, voice, LearnedVoiceConfig(teach=0), TAX, "none").values())


def test_a_run_with_fewer_voices_than_a_model_needs_asks_for_none():
    """Labelling all 18 voiced clips would still leave the run short of min_labelled (20): flagging
    them in the voice model's name would send people to label clips for a model that cannot fit."""
    clips, feats, _, voice = corpus(speakers=2, per_label=3)
    short = fit_learned_voice(clips, feats, {}, voice, LearnedVoiceConfig(teach=30), TAX, "none")
    assert len(short) == 18 and not any(v.teach for v in short.values())
    assert all("only 18 clips with voiced speech, so none is flagged to teach it" in v.note for v in short.values())
    # at min_labelled voiced clips a model can fit once they are labelled, and the run asks for them
    enough = fit_learned_voice(clips, feats, {}, voice, LearnedVoiceConfig(teach=30, min_labelled=18), TAX, "none")
    assert all(v.teach for v in enough.values())


def test_the_judge_routes_them_and_the_push_hands_them_out_first():
    clips, feats, _, voice = corpus(speakers=2, per_label=4)
    learned = fit_learned_voice(clips, feats, {}, voice, LearnedVoiceConfig(teach=5), TAX, "none")
    judged = judge_run(clips, feats, [], load_config(), "r", voice=voice, learned=learned)
    flagged = {c.clip_id for c in judged.consensus if "teach_voice_model" in c.flags}
    assert flagged == {c for c, v in learned.items() if v.teach} and len(flagged) == 5
    assert all(c.needs_review for c in judged.consensus if c.clip_id in flagged)
    assert judged.routing.n_teach == 5
    assert any("5 clips are flagged `teach_voice_model`" in line for line in _routing_lines(judged.routing, []))
    # off the routing flags, they are still marked but route no more than any other clip would
    quiet = judge_run(clips, feats, [], load_config(overrides=["judge.flag_on=[hallucinated_evidence]"]), "r", voice=voice, learned=learned)
    assert not any(c.needs_review for c in quiet.consensus) and sum("teach_voice_model" in c.flags for c in quiet.consensus) == 5

    def cons(cid, flags):
        return Consensus(clip_id=cid, label="anger", distribution=[], method="reliability", margin=0.0, entropy=0.0, uncertainty=1.0,
                         agreement=0.0, n_answers=1, s_final_mean=None, review_score=0.5, flags=flags, needs_review=bool(flags),
                         provenance=PROV)
    order = review_order([cons("a", ["low_score"]), cons("b", []), cons("c", ["low_score", "teach_voice_model"]), cons("d", ["low_score"])])
    assert [c.clip_id for c in order] == ["c", "a", "d"]
