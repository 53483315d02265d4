"""Answer parsing, label verbalizer and rationale normalisation (stage 3 building blocks)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.answer import to_annotation
from agents.verbalizer import UnknownLabel, Verbalizer
from schemas import Provenance
from schemas.config import DEFAULT_TAXONOMY
from schemas.rationale import normalise, split_steps

V = Verbalizer(DEFAULT_TAXONOMY)
PROV = Provenance(stage="annotate", stage_config_hash="x", run_id="r")


@pytest.mark.parametrize("said,label", [("joyful", "happiness"), ("Delighted!", "happiness"), ("ANGRY", "anger"),
                                         ("mostly frightened", "fear"), ("grossed out", "disgust"), ("no emotion", "neutral"),
                                         ("sadness", "sadness")])
def test_synonyms_map_onto_the_taxonomy(said, label):
    assert V.map(said) == label


def test_unknown_labels_are_refused_unless_open_vocabulary():
    with pytest.raises(UnknownLabel, match="'nostalgic' is not in the taxonomy"):
        V.map("nostalgic")
    assert Verbalizer(DEFAULT_TAXONOMY, open_vocabulary=True).map("Nostalgic") == "nostalgic"
    # a narrower taxonomy does not silently map onto labels it lacks
    with pytest.raises(UnknownLabel):
        Verbalizer(["positive", "negative"]).map("joyful")


@pytest.mark.parametrize("text,n", [
    ("Step 1: she smiles. Step 2: her voice rises. Step 3: happiness.", 3),
    ("1. smile\n2. raised pitch\n3. happy", 3),
    ("- smile\n- laughter", 2),
    ("She smiles broadly. Her pitch rises. So she is happy.", 3),
    (["smile", "laugh"], 2),
])
def test_rationales_split_into_steps(text, n):
    assert len(split_steps(text)) == n


def test_final_step_states_the_label():
    steps = normalise("She smiles. Her voice is bright.", "happiness")
    assert [s.index for s in steps] == [1, 2, 3]
    assert steps[-1].text == "Step 3: Therefore the most prominent emotion is happiness."
    assert all(s.text.startswith(f"Step {s.index}: ") for s in steps)
    assert len(normalise("Step 1: smile. Step 2: so, happiness.", "happiness")) == 2


def test_valid_json_answer_becomes_an_annotation():
    raw = ('{"label": "joyful", "intensity": 0.7, "steps": ["AU12 is active at 2.1 s", "pitch rises"], '
           '"evidence": [{"modality": "facial", "cue": "AU12 lip corner puller", "start": 2.1, "end": 2.6}, '
           '{"modality": "voice", "cue": "rising pitch"}]}')
    a = to_annotation(raw, clip_id="c", annotator_id="m", verbalizer=V, provenance=PROV)
    assert a.status == "ok" and a.label == "happiness" and a.intensity == 0.7
    assert [e.modality for e in a.evidence] == ["face", "audio"] and a.evidence[0].start == 2.1
    assert a.steps[-1].text.endswith("happiness.")


def test_almost_json_is_repaired_and_garbage_is_rejected_with_the_raw_answer():
    fenced = 'Sure! ```json\n{"label": "sad", "steps": "Step 1: tears. Step 2: low pitch",}\n``` hope that helps'
    a = to_annotation(fenced, clip_id="c", annotator_id="m", verbalizer=V, provenance=PROV)
    assert a.status == "repaired" and a.label == "sadness" and len(a.steps) == 3
    bad = to_annotation("I cannot determine that.", clip_id="c", annotator_id="m", verbalizer=V, provenance=PROV)
    assert bad.status == "rejected" and bad.label is None and bad.raw_answer == "I cannot determine that." and bad.error
    odd = to_annotation('{"label": "nostalgic"}', clip_id="c", annotator_id="m", verbalizer=V, provenance=PROV)
    assert odd.status == "rejected" and "not in the taxonomy" in odd.error


@given(st.text(max_size=300))
def test_any_text_gives_an_annotation_never_an_exception(raw):
    a = to_annotation(raw, clip_id="c", annotator_id="m", verbalizer=V, provenance=PROV)
    assert a.status in {"ok", "repaired", "rejected"}
    assert (a.label is None) == (a.status == "rejected")
    assert a.label is None or a.label in DEFAULT_TAXONOMY
