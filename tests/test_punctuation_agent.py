"""The punctuation agent (issue 20: a third view on audio-only clips, in any language): the
sentence-final marks the recogniser wrote, read as arousal; abstentions that say why; and the judge
checking its claims (the mark must be there) and reading what they support."""

from __future__ import annotations

import pytest

from agents import build_panel
from agents.judge.inference import claim_distribution, claim_kind, support
from agents.judge.judge_index import JudgeIndex
from evidence.clip_index import Baseline
from evidence.grounding import check_claim, parse_cue
from evidence.punctuation import AROUSED, CALM, word_mark
from schemas import AnnotatorInput, ClipFeatures, Provenance, Word, load_config
from tests.fixtures.judge_cases import clip, ev

PROV = Provenance(stage="t", stage_config_hash="x", run_id="r")
TAXONOMY = load_config().taxonomy


def said(*words: str) -> ClipFeatures:
    return ClipFeatures(clip_id="c1", words=[Word(text=w, start=10.0 + i * 0.4, end=10.3 + i * 0.4) for i, w in enumerate(words)],
                        provenance=PROV)


def answer_to(features: ClipFeatures, **overrides):
    cfg = load_config(overrides=[f"{k}={v}" for k, v in overrides.items()])
    [agent] = [a for a in build_panel(cfg) if a.annotator_id == "punctuation"]
    [a] = agent.annotate([AnnotatorInput(clip=clip(), features=features)], "r")
    return a


@pytest.mark.parametrize("text, mark", [("Stop!", "!"), ("stop.", "."), ("why?", "?"), ("well...", None), ("Нет.", "."),
                                        ("止まれ！", "!"), ('"Stop!"', "!"), ("and", None), ("", None),
                                        ("U.S.", None), ("3.5", None)])
def test_word_mark(text, mark):
    assert word_mark(text) == mark


def test_an_exclamation_points_to_the_aroused_emotions_alike():
    a = answer_to(said("Der", "Lappen", "liegt", "auf", "dem", "Eisschrank!"))  # no English: the mark still reads
    assert a.status == "ok"
    p = {x.label: x.prob for x in a.label_distribution}
    assert abs(sum(p.values()) - 1) < 1e-3
    aroused = [p[e] for e in AROUSED if e in p]
    assert len(set(aroused)) == 1  # the mark does not say which aroused emotion
    assert min(aroused) > max(v for e, v in p.items() if e not in AROUSED)
    assert a.label in AROUSED and "exclamation mark" in " ".join(s.text for s in a.steps)
    [e] = a.evidence
    assert e.feature_ref == "words[5].punctuation" and "'Eisschrank!'" in e.cue


def test_a_full_stop_leans_weakly_to_the_calm_emotions():
    a = answer_to(said("Stop."))
    assert a.label == "neutral"  # a plain statement's first reading, not sadness by the taxonomy's order
    stop = {x.label: x.prob for x in a.label_distribution}
    bang = {x.label: x.prob for x in answer_to(said("Stop!")).label_distribution}
    assert stop["neutral"] > stop["anger"] and stop["sadness"] > stop["happiness"]
    # whisper writes a full stop by default: its lean is the weaker of the two
    assert max(stop.values()) / min(stop.values()) < max(bang.values()) / min(bang.values())
    mixed = {x.label: x.prob for x in answer_to(said("Go!", "Now!", "Please.")).label_distribution}
    assert mixed["anger"] > mixed["neutral"]  # two exclamations outweigh one full stop


@pytest.mark.parametrize("features, why", [
    (said("Really?"), "only questions"),
    (said("and", "then"), "no sentence-final mark"),
    (said(), "no transcript"),
])
def test_abstains_when_the_marks_say_nothing(features, why):
    a = answer_to(features)
    assert a.status == "abstained" and a.label is None and why in a.error


def test_abstains_when_the_taxonomy_has_none_of_the_emotions_marks_point_to():
    a = answer_to(said("Stop!"), taxonomy='["disgust","contempt"]')
    assert a.status == "abstained" and "taxonomy" in a.error


def test_the_judge_checks_the_mark_and_reads_it_as_arousal():
    feats = said("Stop!", "now.")
    ix = JudgeIndex(clip(), feats, Baseline(), frozenset(TAXONOMY), None)
    right = ev("e1", "text", "the recogniser ended 'Stop!' with an exclamation mark ('!')", 10.0, 10.3, "words[0].punctuation")
    wrong = ev("e1", "text", "the recogniser ended 'now' with an exclamation mark ('!')", 10.4, 10.7, "words[1].punctuation")
    unended = ev("e1", "text", "the recogniser ended 'Stop!' with a full stop", 10.0, 10.3, "words[0].punctuation")
    assert check_claim(right, ix)[1] == "supported"
    assert check_claim(wrong, ix)[1] == "contradicted" and "full stop, not an exclamation mark" in check_claim(wrong, ix)[2]
    assert check_claim(unended, ix)[1] == "contradicted"
    cue = parse_cue(right.cue, right.feature_ref)
    assert claim_kind(right, cue) == "punctuation"
    d = claim_distribution(right, cue, ix)
    # an exclamation cannot tell anger from fear: support is even between them, and against calm labels
    assert support(d, "anger") == pytest.approx(0.5) and support(d, "neutral") < 0.5
    calm = claim_distribution(wrong, parse_cue(wrong.cue, wrong.feature_ref), ix)  # what words[1] really ends with
    assert max(calm, key=calm.get) in CALM
    for ref in ("words[2].punctuation", "words[-1].punctuation"):  # no such word: a contradiction that supports nothing
        missing = ev("e1", "text", "the recogniser ended a word with an exclamation mark ('!')", 10.0, 10.3, ref)
        assert check_claim(missing, ix)[1] == "contradicted"
        assert claim_distribution(missing, parse_cue(missing.cue, missing.feature_ref), ix) is None
