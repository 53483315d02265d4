"""The voice model a run fits on its labelled clips: it learns what separates this corpus's labels,
answers labelled clips only out of fold, abstains when it does no better than the commonest label,
and its answers cite functionals the judge can check."""

from __future__ import annotations

import numpy as np
import pytest

from agents import build_panel
from agents.judge.stage import judge_run
from agents.learned_voice import fit_learned_voice
from schemas import AnnotatorInput, load_config
from schemas.features import NamedValue, VoiceBaseline
from schemas.config import LearnedVoiceConfig
from tests.fixtures.judge_cases import clip, features

TAX = load_config().taxonomy
NAMES = [f"f{k:02d}_amean" for k in range(20)]  # stand-ins for the 88 eGeMAPS functionals
# what each emotion does to the first three functionals, on top of each speaker's own level
SHIFT = {"anger": (3.0, 2.0, 0.0), "fear": (0.0, 2.0, 3.0), "neutral": (0.0, 0.0, 0.0)}


def corpus(seed: int = 0, speakers: int = 4, per_label: int = 8, noise_labels: bool = False, labels=None):
    """Clips of several speakers, each with their own voice level; labels move three functionals.
    `noise_labels`: the labels are shuffled, so nothing in the voice predicts them. `labels`: other
    names for the three labels."""
    rng = np.random.default_rng(seed)
    clips, feats, truth, voice = [], [], {}, {}
    shifts = dict(zip(labels or SHIFT, SHIFT.values()))
    for s in range(speakers):
        level = rng.normal(0, 3, len(NAMES))  # a speaker's voice differs more than their emotions do
        for label, shift in shifts.items():
            for k in range(per_label):
                cid = f"s{s}-{label}-{k}"
                x = level + rng.normal(0, 0.6, len(NAMES))
                x[:3] += shift
                c = clip(cid).model_copy(update={"source_id": f"src{s}-{label}-{k}", "source_path": f"/corpus/s{s}/{cid}.wav"})
                f = features(cid, faces=False, words=False)
                f = f.model_copy(update={"prosody": f.prosody.model_copy(update={
                    "functionals": [NamedValue(name=n, value=round(float(v), 4)) for n, v in zip(NAMES, x)]})})
                clips.append(c)
                feats.append(f)
                truth[cid] = label
                voice[cid] = VoiceBaseline(scope="speaker", key=f"declared:s{s}", clips=3 * per_label, speech_s=60.0, stats=[])
    if noise_labels:
        shuffled = list(truth.values())
        rng.shuffle(shuffled)
        truth = dict(zip(truth, shuffled))
    return clips, feats, truth, voice


def labelled(truth: dict[str, str], speakers: set[int]) -> dict[str, list[str]]:
    return {cid: [lab] for cid, lab in truth.items() if int(cid.split("-")[0][1:]) in speakers}


def test_learns_from_some_speakers_and_labels_the_others():
    clips, feats, truth, voice = corpus()
    known = labelled(truth, {0, 1})
    out = fit_learned_voice(clips, feats, known, voice, LearnedVoiceConfig(), TAX, "gold")
    unlabelled = [cid for cid in truth if cid not in known]
    right = np.mean([out[c].distribution[0].label == truth[c] for c in unlabelled])
    assert right >= 0.85, right
    some = out[unlabelled[0]]
    assert some.n_labelled == len(known) and some.labels_from == "gold" and some.grouped_by == "speaker"
    assert {p.label for p in some.distribution} == set(SHIFT)  # only the labels it was shown
    assert abs(sum(p.prob for p in some.distribution) - 1) < 1e-3
    assert all(out[c].held_out for c in known) and not any(out[c].held_out for c in unlabelled)
    assert some.cv_accuracy > some.majority_share


def test_a_labelled_clip_is_answered_by_the_fold_that_left_it_out():
    """With labels nothing in the voice predicts, a model fitted on all of them would still recite
    many back (88 functionals, few clips); out of fold it is at chance, so it abstains, saying so."""
    clips, feats, truth, voice = corpus(seed=1, noise_labels=True)
    out = fit_learned_voice(clips, feats, labelled(truth, {0, 1, 2, 3}), voice, LearnedVoiceConfig(c=10.0), TAX, "gold")
    note = next(iter(out.values())).note
    assert all(not v.distribution for v in out.values())
    assert "no better than always answering the commonest label" in note, note

    from sklearn.linear_model import LogisticRegression

    x = np.array([[n.value for n in f.prosody.functionals] for f in feats])
    y = [truth[c.clip_id] for c in clips]
    assert LogisticRegression(C=10.0, max_iter=2000).fit(x, y).score(x, y) > 0.6  # what fitting on its own labels would claim


def test_too_few_labels_is_an_abstention_that_says_how_many():
    clips, feats, truth, voice = corpus()
    few = dict(list(labelled(truth, {0}).items())[:5])
    out = fit_learned_voice(clips, feats, few, voice, LearnedVoiceConfig(), TAX, "review")
    note = next(iter(out.values())).note
    assert "the run has 5 labelled clips with voiced speech in 1 emotions (it needs 20 in at least 2 emotions" in note, note


def test_its_answers_cite_functionals_the_judge_finds_as_stated():
    clips, feats, truth, voice = corpus()
    known = labelled(truth, {0, 1})
    learned = fit_learned_voice(clips, feats, known, voice, LearnedVoiceConfig(), TAX, "gold")
    agent = next(a for a in build_panel(load_config()) if a.annotator_id == "voice-learned")
    by_id = {f.clip_id: f for f in feats}
    items = [AnnotatorInput(clip=c, features=by_id[c.clip_id], learned_voice=learned[c.clip_id]) for c in clips]
    answers = agent.annotate(items, "r")
    assert all(a.status == "ok" and a.label for a in answers)
    assert all(a.steps[-1].text.endswith(f"is {a.label}.") and a.evidence for a in answers)
    held = next(a for a in answers if a.clip_id in known)
    assert "the fold that left it out" in held.steps[0].text
    judged = judge_run(clips, feats, answers, load_config(), "r", voice=voice)
    claims = [c for j in judged.judgements for c in j.claims]
    assert claims and all(c.verdict == "supported" for c in claims), [c for c in claims if c.verdict != "supported"][:2]
    # no learned input: the agent abstains and says why
    bare = agent.annotate([AnnotatorInput(clip=clips[0], features=feats[0])], "r")[0]
    assert bare.status == "abstained" and "eGeMAPS" in bare.error


@pytest.mark.parametrize("speakers", [1, 3])
def test_folds_follow_speakers_when_there_are_several(speakers):
    clips, feats, truth, voice = corpus(speakers=speakers, per_label=10)
    known = labelled(truth, set(range(speakers)))
    out = fit_learned_voice(clips, feats, known, voice, LearnedVoiceConfig(), TAX, "gold")
    assert next(iter(out.values())).grouped_by == ("speaker" if speakers > 1 else "clip")


def test_held_out_answers_name_the_labels_they_were_fitted_for():
    """Labels whose alphabetical order is not the taxonomy's (neutral sorts before sadness and
    surprise): the out-of-fold answers must still put each probability on its own label."""
    labels = ["sadness", "surprise", "neutral"]
    assert sorted(labels) != sorted(labels, key=TAX.index)
    clips, feats, truth, voice = corpus(labels=labels)
    known = labelled(truth, {0, 1, 2, 3})
    out = fit_learned_voice(clips, feats, known, voice, LearnedVoiceConfig(), TAX, "gold")
    right = np.mean([out[c].distribution[0].label == truth[c] for c in known])
    assert all(out[c].held_out for c in known) and right >= 0.85, right
    assert next(iter(out.values())).cv_accuracy == pytest.approx(right, abs=1e-3)


def test_a_fit_that_cannot_be_made_is_an_abstention_not_a_failed_run():
    """Each labelled speaker has one label only: every leave-a-speaker-out fold trains on one class."""
    clips, feats, truth, voice = corpus(speakers=2)
    known = {cid: ["anger" if cid.startswith("s0") else "fear"] for cid in truth}
    out = fit_learned_voice(clips, feats, known, voice, LearnedVoiceConfig(), TAX, "gold")
    note = next(iter(out.values())).note
    assert all(not v.distribution for v in out.values()) and note.startswith("no voice model: fitting on 48 labelled clips failed"), note


def test_it_reads_the_asr_encoder_states_where_stage_2_kept_them():
    """The emotion is in the encoder means only (the functionals are the speaker's level plus noise):
    the model learns it there, and still cites only functionals."""
    clips, feats, truth, voice = corpus(seed=3)
    rng = np.random.default_rng(3)
    moved = []
    for f in feats:
        shift = dict(zip(SHIFT, ((3.0, 0.0), (0.0, 3.0), (0.0, 0.0))))[truth[f.clip_id]]
        enc = rng.normal(0, 0.6, 32)
        enc[:2] += shift
        plain = [NamedValue(name=n.name, value=n.value - (SHIFT[truth[f.clip_id]][k] if k < 3 else 0.0))
                 for k, n in enumerate(f.prosody.functionals)]
        moved.append(f.model_copy(update={"speech_encoding": [round(float(v), 4) for v in enc],
                                          "prosody": f.prosody.model_copy(update={"functionals": plain})}))
    known = labelled(truth, {0, 1})
    out = fit_learned_voice(clips, moved, known, voice, LearnedVoiceConfig(), TAX, "gold")
    unlabelled = [c for c in truth if c not in known]
    assert np.mean([out[c].distribution[0].label == truth[c] for c in unlabelled]) >= 0.7  # chance: 1/3
    assert "encoder states" in out[unlabelled[0]].reads
    assert all(cue.name in NAMES for v in out.values() for cue in v.cues)
    # without the encoder means the same labels are not learnable from these functionals
    bare = [f.model_copy(update={"speech_encoding": None}) for f in moved]
    blind = fit_learned_voice(clips, bare, known, voice, LearnedVoiceConfig(), TAX, "gold")
    assert all(not v.distribution for v in blind.values()) or \
        np.mean([blind[c].distribution[0].label == truth[c] for c in unlabelled]) < 0.6
