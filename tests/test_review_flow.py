"""The whole flow with human review on, against the real Label Studio server: the first run pushes
the flagged clips; two reviewers answer through the API; the rerun pulls their verdicts, measures
their agreement against the gates, and the exported dataset carries the human labels."""

from __future__ import annotations

import uuid

import pytest

from flows.pipeline_flow import run_pipeline
from schemas import load_config
from storage import SPLITS, DatasetDir, RunDir
from tests.test_review_labelstudio import _annotate, _reviewer

pytestmark = pytest.mark.slow  # runs the pipeline against Label Studio

LABELS = ["surprise", "fear", "anger", "disgust"]


def test_flow_with_review_pushes_pulls_gates_and_exports_human_labels(label_studio, feat_data, speech_dir, monkeypatch):
    ls = label_studio
    out = ls.docroot / f"flow-{uuid.uuid4().hex[:6]}"
    config = load_config(overrides=[
        "review.enabled=true", f"review.label_studio.url={ls.url}", f"review.label_studio.document_root={ls.docroot}",
        f"review.label_studio.project_title=flow {uuid.uuid4().hex[:8]}", "review.overlap=1.0",
        "judge.threshold.mode=budget", "judge.threshold.budget=1.0", "judge.flag_on=[low_score]"])
    monkeypatch.setenv(config.review.label_studio.token_env, ls.token)
    inputs = [str(feat_data / "face_noface.mov"), str(speech_dir / "beckett.wav")]
    first = run_pipeline(inputs, str(out), config)
    stages = {s.stage: s for s in first.stages}
    clips = RunDir(out).read("clips")
    assert stages["review"].computed == len(clips) and stages["review"].rejects == 0, first.rejects
    assert all(r.decision == "pending" and not r.answers for r in RunDir(out).read("reviews"))

    # two reviewers agree on every clip (a different label per clip, intensity by clip)
    reviewers = [ls.token, _reviewer(ls, "second@emoforge.test")]
    tasks = {r.clip_id: r.task_id for r in RunDir(out).read("reviews")}
    assert len(tasks) == len(clips) and all(tasks.values())
    wanted = {cid: LABELS[i % len(LABELS)] for i, cid in enumerate(sorted(tasks))}
    for i, cid in enumerate(sorted(tasks)):
        for token in reviewers:
            _annotate(ls, token, tasks[cid], wanted[cid], rating=1 + i % 5)

    second = run_pipeline(inputs, str(out), config)
    stages = {s.stage: s for s in second.stages}
    assert stages["review"].computed == 0 and stages["review"].reused == len(clips)  # nothing pushed twice
    reviews = {r.clip_id: r for r in RunDir(out).read("reviews")}
    assert all(r.decision == "accepted" and r.final_source == "human" and r.final_label == wanted[c] for c, r in reviews.items())
    stats = {s.name: s for s in next(iter(reviews.values())).agreement}
    assert stats["cohen_kappa_mean"].value == 1.0 and stats["cohen_kappa_mean"].passed
    assert stats["icc2"].value > 0.99 and stats["icc2"].passed
    # the dataset carries the reviewers' labels (the test split's in its answer key)
    ds = DatasetDir(RunDir(out).dataset_dir)
    labels = {r.clip_id: r.label for s in ("train", "validation") for r in ds.read_split(s)}
    labels.update({k.clip_id: k.label for k in ds.read_answer_key()})
    assert labels == wanted and sum(len(ds.read_split(s)) for s in SPLITS) == len(clips)
    manifest = RunDir(out).read_manifest()
    assert manifest.tables.reviews == len(clips)
    # the reviewers' tokens are nowhere in what the runs wrote (tables, config, run.json, media, dataset)
    for f in (p for p in out.rglob("*") if p.is_file()):
        data = f.read_bytes()
        assert not any(t.encode() in data for t in reviewers), f


def test_reviewers_verdicts_teach_the_judge_and_a_rerun_flags_fewer_clips(label_studio, feat_data, speech_dir, monkeypatch):
    """Routing to a target accuracy flags the clips the judge is unsure of; reviewers confirm the
    model's label on some of them; the rerun pulls those verdicts, refits reliability and calibration
    on them, and flags fewer clips at the same target."""
    ls = label_studio
    out = ls.docroot / f"teach-{uuid.uuid4().hex[:6]}"
    config = load_config(overrides=[
        "review.enabled=true", f"review.label_studio.url={ls.url}", f"review.label_studio.document_root={ls.docroot}",
        f"review.label_studio.project_title=teach {uuid.uuid4().hex[:8]}", "review.overlap=0.0",
        "judge.threshold.mode=target", "judge.threshold.target_accuracy=0.9"])
    monkeypatch.setenv(config.review.label_studio.token_env, ls.token)
    inputs = [str(feat_data / "WolfgangLanger_Pexels.mp4"), str(speech_dir / "beckett.wav"), str(speech_dir / "two_cities.wav")]
    run_pipeline(inputs, str(out), config)
    run = RunDir(out)
    before = {c.clip_id: c for c in run.read("consensus")}
    flagged = sorted(c for c, x in before.items() if x.needs_review and x.label)
    first_routing = run.read_manifest().routing
    assert len(flagged) >= 2 and first_routing.calibrated_on == 0 and first_routing.calibration == "prior"

    # one reviewer confirms the model's label on half of the flagged clips
    tasks = {r.clip_id: r.task_id for r in run.read("reviews")}
    feats = {f.clip_id: f for f in run.read("features")}
    voiced = {c for c, f in feats.items() if (p := f.prosody) and p.functionals and p.pitch_mean_hz is not None}
    confirmed = flagged[: max(1, len(flagged) // 2)]
    confirmed += [c for c in flagged if c in voiced and c not in confirmed][:1]  # one with a voice, for the voice model
    for cid in confirmed:
        _annotate(ls, ls.token, tasks[cid], before[cid].label)

    second = run_pipeline(inputs, str(out), config)
    run = RunDir(out)  # a RunDir reads the table set that was current when it was made
    after = {c.clip_id: c for c in run.read("consensus")}
    routing = run.read_manifest().routing
    assert routing.calibrated_on == len(confirmed) and routing.calibration == "centred-isotonic"
    for cid in confirmed:
        assert after[cid].label == before[cid].label and after[cid].confidence == 1.0 and not after[cid].needs_review
    assert sum(c.needs_review for c in after.values()) < sum(c.needs_review for c in before.values())
    assert {s.stage: s for s in second.stages}["judge"].outputs == sum(c.needs_review for c in after.values())
    # every annotator that answered a confirmed clip is now measured against the verdicts
    answered = {j.annotator_id for j in run.read("judgements") if j.clip_id in confirmed and j.label}
    measured = {r.annotator_id: r for r in run.read("reliability")}
    assert answered and all(measured[a].n_gold > 0 and measured[a].gold_accuracy is not None for a in answered)
    # the verdicts reach the run's voice model too: its abstention counts them (too few to fit one here)
    heard = [c for c in confirmed if c in voiced]
    notes = {a.error for a in run.read("annotations") if a.annotator_id == "voice-learned"}
    assert heard and any(f"the run has {len(heard)} labelled clips with voiced speech" in (n or "") for n in notes), notes
