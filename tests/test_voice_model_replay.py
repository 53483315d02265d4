"""bench/voice_model_replay.py refits the run's voice model on labelled sets chosen several ways and
scores it on the rest. Its figures are only worth reading if each choice picks what it says it picks
and the scoring counts the right clips; the join to a real run is checked in
tests/test_label_quality.py's bench test."""

from __future__ import annotations

import sys

import numpy as np

from tests.conftest import ROOT
from tests.test_teach_set import three_groups

sys.path.insert(0, str(ROOT / "bench"))

import voice_model_replay as replay_bench  # noqa: E402


def separable(seed: int = 0, confidence=None) -> replay_bench.Replay:
    """Three far-apart groups of 17 clips, one emotion each."""
    ids, x = three_groups(seed)
    y = np.array([("anger", "fear", "neutral")[int(i[1])] for i in ids])
    conf = np.linspace(0.1, 0.9, len(ids)) if confidence is None else confidence
    return replay_bench.Replay(x=x, y=y, confidence=conf, ids=ids, c=0.01)


def test_each_choice_labels_what_it_says_and_is_scored_on_the_rest():
    r = separable()
    res = replay_bench.replay(r, n=6, draws=4, seed=0)
    first = res["first_round"]
    # the teach set covers the three voices, so the model learns all three and gets the rest right
    assert first["teach"]["unlabelled"] == 1.0 and first["teach"]["all_clips"] == 1.0
    assert first["random"]["sets"] == 4
    # least-sure: the six least confident clips are all in the first group, one emotion: nothing to fit on
    assert first["least-sure"]["unlabelled"] is None
    # the second round adds six more clips to the teach set's six; the rest are scored
    second = res["second_round"]
    assert set(second) == {"teach", "least-sure", "random", "one round of teach, 12"}
    assert second["teach"]["unlabelled"] == 1.0
    assert set(res["classifiers"]) == set(replay_bench.CLASSIFIERS)
    text = replay_bench.markdown(res, 6)
    assert "| least-sure | n/a (one emotion) | n/a |" in text and "| teach | 1.000 | 1.000 |" in text


def test_random_sets_label_every_drawn_emotion_twice_and_stay_in_their_pool():
    r = separable(1)
    pool = np.arange(17, 51)  # the second and third groups only
    for s in replay_bench.random_draws(r, 6, 20, seed=3, pool=pool):
        assert len(s) == 6 and set(s) <= set(pool)
        _, counts = np.unique(r.y[s], return_counts=True)
        assert counts.min() >= 2


def test_a_planted_wrong_confidence_makes_least_sure_the_worst_first_round():
    """Confidence that is low exactly on one voice's clips: labelling the least sure first teaches one
    emotion, and the accuracy the bench reports for it must say so."""
    r = separable(2)
    conf = np.where(r.y == "anger", 0.05, 0.9)  # every anger clip least sure
    conf[np.nonzero(r.y == "fear")[0][-3:]] = 0.1  # then three fear clips; neutral the surest
    r.confidence = conf
    res = replay_bench.replay(r, n=20, draws=3, seed=0)
    least = res["first_round"]["least-sure"]
    # 17 anger and 3 fear labelled: neutral is never shown, so its 17 clips are all wrong
    assert least["unlabelled"] <= 14 / 31 + 1e-9
    assert res["first_round"]["teach"]["unlabelled"] > least["unlabelled"]
