"""Stage-5 review against a real Label Studio server (scripts/label-studio, session fixture): push
flagged clips with real cut media, two reviewer accounts answer through the API, pull resolves
human over model; errors for a wrong token, a server that is down, a deleted task and a label
outside the taxonomy."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import time
import uuid

import httpx
import pytest

from pipeline.review import labeling
from pipeline.review.label_studio import LabelStudioAuthError, LabelStudioClient, LabelStudioUnavailable
from pipeline.review.media import MediaError
from pipeline.review.pull import pull_review
from pipeline.review.push import push_review
from pipeline.review.webhook import WebhookListener, register_webhook
from schemas import Consensus, Provenance, load_config
from schemas.features import LabelProb
from storage import RunDir
from tests.fixtures.judge_cases import answer, clip, ev, features

pytestmark = pytest.mark.slow  # starts Label Studio

PROV = Provenance(stage="judge", stage_config_hash="jh1", run_id="run-1")


def _consensus(clip_id: str, label: str, score: float, flagged: bool) -> Consensus:
    return Consensus(clip_id=clip_id, label=label, distribution=[LabelProb(label=label, prob=0.6)], method="weighted",
                     margin=0.1, entropy=1.0, uncertainty=0.5, agreement=0.5, n_answers=2, review_score=score,
                     flags=["thin_margin"] if flagged else [], needs_review=flagged, provenance=PROV)


def _config(ls, **over):
    items = [f"review.label_studio.url={ls.url}", f"review.label_studio.document_root={ls.docroot}",
             f"review.label_studio.project_title=test {uuid.uuid4().hex[:8]}", "review.label_studio.max_retries=1"]
    return load_config(overrides=items + [f"{k}={v}" for k, v in over.items()])


@pytest.fixture()
def review_run(label_studio, feat_data, speech_dir, tmp_path_factory):
    """A run directory beneath the server's document root: two flagged clips (one video, one
    audio-only) cut from real media, and one clip the judge did not flag."""
    rd = RunDir.create(label_studio.docroot / f"run-{uuid.uuid4().hex[:6]}")
    video = str(feat_data / "WolfgangLanger_Pexels.mp4")
    clips = [clip("v1", 2.0, 5.0).model_copy(update={"source_path": video, "source_id": "wolf"}),
             clip("a1", 1.0, 3.5).model_copy(update={"source_path": str(speech_dir / "beckett.wav"), "source_id": "beck",
                                                     "has_video": False}),
             clip("ok", 6.0, 8.0).model_copy(update={"source_path": video, "source_id": "wolf"})]
    e = [ev("e1", "face", "AU12 raised (lip corner puller)", 2.5, 3.0, "faces[0].action_units[AU12]")]
    anns = [answer("face-expression", "happiness", e, clip_id=cid) for cid in ("v1", "a1", "ok")]
    rd.write("clips", clips)
    rd.write("annotations", anns)
    rd.write("features", [features(cid) for cid in ("v1", "a1", "ok")])
    rd.write("consensus", [_consensus("v1", "happiness", 0.31, True), _consensus("a1", "happiness", 0.42, True),
                           _consensus("ok", "happiness", 0.9, False)])
    return rd


def _client(ls, config, token=None) -> LabelStudioClient:
    return LabelStudioClient.from_config(config, token=token or ls.token)


def _reviewer(ls, email: str) -> str:
    """A second reviewer account: an invite link, the signup form, then that user's own token."""
    admin = {"Authorization": f"Token {ls.token}"}
    invite = httpx.get(ls.url + "/api/invite", headers=admin).json()["invite_url"]
    with httpx.Client(base_url=ls.url) as s:
        s.get(invite)
        r = s.post(invite, data={"csrfmiddlewaretoken": s.cookies.get("csrftoken"), "email": email,
                                 "password": "reviewer-pass-1", "allow_newsletters": "false"},
                   headers={"Referer": ls.url + invite})
        if r.status_code != 302:  # already signed up in an earlier session: log in instead
            s.get("/user/login/")
            s.post("/user/login/", data={"csrfmiddlewaretoken": s.cookies.get("csrftoken"), "email": email,
                                         "password": "reviewer-pass-1"}, headers={"Referer": ls.url + "/user/login/"})
        return s.get("/api/current-user/token").json()["token"]


def _annotate(ls, token: str, task_id: int, label: str, rating: int = 3, evidence: str = "no", text: str | None = None):
    result = [{"from_name": labeling.EMOTION, "to_name": "video", "type": "choices", "value": {"choices": [label]}},
              {"from_name": labeling.INTENSITY, "to_name": "video", "type": "rating", "value": {"rating": rating}},
              {"from_name": labeling.EVIDENCE_OK, "to_name": "evidence", "type": "choices", "value": {"choices": [evidence]}}]
    if text:
        result.append({"from_name": labeling.CORRECTION, "to_name": "video", "type": "textarea", "value": {"text": [text]}})
    r = httpx.post(f"{ls.url}/api/tasks/{task_id}/annotations/", json={"result": result},
                   headers={"Authorization": f"Token {token}"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _task(ls, task_id: int) -> dict:
    return httpx.get(f"{ls.url}/api/tasks/{task_id}", headers={"Authorization": f"Token {ls.token}"}).json()


def test_label_config_is_accepted_by_the_server(label_studio):
    config = _config(label_studio, multi_label="true")
    xml = labeling.label_config(config)
    assert 'frameRate="$fps"' in xml and 'choice="multiple"' in xml and "<Paragraphs" in xml
    assert all(f'value="{t}"' in xml for t in config.taxonomy)
    client = _client(label_studio, config)
    pid = client.ensure_project(config.review.label_studio.project_title, xml)
    client._call("validate", client.sdk.projects.validate_label_config, pid, label_config=xml)
    # the same title finds the same project
    assert client.ensure_project(config.review.label_studio.project_title, xml) == pid


def test_push_pull_two_reviewers_human_wins(label_studio, review_run):
    ls = label_studio
    config = _config(ls, **{"review.overlap": 1.0})
    client = _client(ls, config)
    report = push_review(review_run, config, client)
    assert (report.pushed, report.already_there, report.skipped, report.problems) == (2, 0, 1, [])
    assert set(report.task_ids) == {"v1", "a1"} and report.overlap_percent == 100

    # media really cut: browser-playable H.264 + AAC, served by the server; an audio-only clip's
    # picture is its waveform (not an empty video area), at the frame rate the task gives the player
    for source, cid, seconds in (("wolf", "v1", 3.0), ("beck", "a1", 2.5)):
        mp4 = review_run.media_dir / source / cid / "clip.mp4"
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "json",
                                str(mp4)], capture_output=True, text=True, check=True)
        info = json.loads(probe.stdout)
        assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
        assert seconds - 0.2 < float(info["format"]["duration"]) < seconds + 0.3
    frame = subprocess.run(["ffmpeg", "-v", "error", "-ss", "1.0", "-i", str(mp4), "-frames:v", "1", "-f", "rawvideo",
                            "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    assert len(frame) == 640 * 200 and sum(b > 60 for b in frame) > 2000  # the waveform is drawn
    assert _task(ls, report.task_ids["a1"])["data"]["fps"] == 25

    task = _task(ls, report.task_ids["v1"])
    assert task["data"]["video"].startswith("/data/local-files/?d=") and task["data"]["clip_id"] == "v1"
    assert task["data"]["transcript"][0]["author"] == "SPEAKER_00" and "happy" in task["data"]["transcript"][0]["text"]
    assert "Step 1" in task["data"]["rationale"] and "AU12" in task["data"]["evidence"]
    assert task["overlap"] == 2
    (pred,) = task["predictions"]
    assert pred["model_version"] == "emoforge-judge:weighted:jh1" and pred["score"] == pytest.approx(0.31)
    assert pred["result"][0]["value"]["choices"] == ["happiness"]
    with httpx.Client(base_url=ls.url) as s:  # the media URL is served (a logged-in browser session)
        s.get("/user/login/")
        s.post("/user/login/", data={"csrfmiddlewaretoken": s.cookies.get("csrftoken"), "email": "admin@emoforge.local",
                                     "password": ls.password}, headers={"Referer": ls.url + "/user/login/"})
        media = s.get(task["data"]["video"])
        assert media.status_code == 200 and media.content[4:8] == b"ftyp"

    # re-push: nothing new
    again = push_review(review_run, config, client)
    assert (again.pushed, again.already_there, again.skipped) == (0, 2, 1)
    assert len(client.task_index(report.project_id)) == 2

    # two reviewers: they agree on v1 (against the model), disagree on a1
    second = _reviewer(ls, "reviewer2@emoforge.local")
    _annotate(ls, ls.token, report.task_ids["v1"], "sadness", rating=4, evidence="no", text="she is not smiling")
    _annotate(ls, second, report.task_ids["v1"], "sadness", rating=5, evidence="partly")
    _annotate(ls, ls.token, report.task_ids["a1"], "anger")
    _annotate(ls, second, report.task_ids["a1"], "fear")

    pulled = pull_review(review_run, config, client)
    by = {r.clip_id: r for r in pulled.reviews}
    assert set(by) == {"v1", "a1"} and pulled.problems == [] and pulled.missing == []
    v1 = by["v1"]
    assert (v1.final_label, v1.final_source, v1.decision) == ("sadness", "human", "accepted")
    assert {a.reviewer for a in v1.answers} == {"admin@emoforge.local", "reviewer2@emoforge.local"}
    assert sorted(a.intensity for a in v1.answers) == [0.8, 1.0]
    assert [a.evidence_correct for a in v1.answers] == [False, False]
    assert v1.answers[0].correction == "she is not smiling" and v1.task_id == report.task_ids["v1"]
    assert v1.agreement == [] and v1.provenance.stage == "review"
    a1 = by["a1"]
    assert (a1.final_label, a1.final_source, a1.decision) == ("happiness", "model", "escalated")
    assert review_run.read("reviews") == pulled.reviews
    # resumable: a second pull gives the same records
    assert pull_review(review_run, config, client).reviews == pulled.reviews


def test_clips_that_teach_the_voice_model_are_handed_out_first(label_studio, review_run):
    """The push imports them first, and the server's labeling stream gives tasks in import order."""
    ls = label_studio
    # a1, listed after v1, is one of the clips whose label would teach the run's voice model most
    review_run.write("consensus", [c.model_copy(update={"flags": [*c.flags, "teach_voice_model"]}) if c.clip_id == "a1" else c
                                   for c in review_run.read("consensus")])
    config = _config(ls)
    report = push_review(review_run, config, _client(ls, config))
    assert report.task_ids["a1"] < report.task_ids["v1"]
    first = httpx.get(f"{ls.url}/api/projects/{report.project_id}/next", headers={"Authorization": f"Token {ls.token}"})
    assert first.status_code == 200 and first.json()["data"]["clip_id"] == "a1", first.text[:300]


def test_deleted_task_and_label_outside_taxonomy_are_reported(label_studio, review_run):
    ls = label_studio
    config = _config(ls, **{"review.overlap": 0.0})
    client = _client(ls, config)
    report = push_review(review_run, config, client)
    assert report.overlap_percent == 0 and _task(ls, report.task_ids["v1"])["overlap"] == 1
    _annotate(ls, ls.token, report.task_ids["v1"], "joyish")  # the UI allows only the taxonomy; the API does not check
    r = httpx.delete(f"{ls.url}/api/tasks/{report.task_ids['a1']}", headers={"Authorization": f"Token {ls.token}"})
    assert r.status_code == 204
    pulled = pull_review(review_run, config, client)
    by = {r.clip_id: r for r in pulled.reviews}
    assert pulled.missing == ["a1"] and by["a1"].decision == "pending" and by["a1"].task_id is None
    assert by["v1"].answers == [] and (by["v1"].final_label, by["v1"].decision) == ("happiness", "pending")
    bad = [p for p in pulled.problems if p.clip_id == "v1"]
    assert len(bad) == 1 and bad[0].task_id == report.task_ids["v1"] and "joyish" in bad[0].problem
    assert pulled.pending == 2


def test_overlap_share_is_the_servers_and_an_overlap_task_waits_for_its_second_reviewer(label_studio, review_run):
    ls = label_studio
    config = _config(ls, **{"review.overlap": 0.5})
    client = _client(ls, config)
    report = push_review(review_run, config, client)
    assert report.overlap_percent == 50
    overlap = {cid: _task(ls, tid)["overlap"] for cid, tid in report.task_ids.items()}
    assert sorted(overlap.values()) == [1, 2]  # half of the two tasks asks for two reviewers
    for tid in report.task_ids.values():
        _annotate(ls, ls.token, tid, "sadness")
    by = {r.clip_id: r for r in pull_review(review_run, config, client).reviews}
    assert {cid: by[cid].decision for cid in overlap} == {cid: "pending" if n == 2 else "accepted" for cid, n in overlap.items()}
    # the setting is the project's: pushing again with another share changes it, in one request
    same = {"review.overlap": 0.0, "review.label_studio.project_title": config.review.label_studio.project_title}
    again = push_review(review_run, _config(ls, **same), client)
    assert again.overlap_percent == 0 and {_task(ls, tid)["overlap"] for tid in report.task_ids.values()} == {1}


def test_wrong_token_is_a_clear_error(label_studio):
    config = _config(label_studio)
    with pytest.raises(LabelStudioAuthError, match=re.escape(label_studio.url) + ".*refused the API token"):
        LabelStudioClient.from_config(config, token="not-a-token").check()


def test_server_down_retries_then_clear_error(label_studio, caplog):
    from tests.conftest import _free_port

    url = f"http://127.0.0.1:{_free_port()}"
    client = LabelStudioClient(url=url, token="x", max_retries=2, backoff_s=0.05, timeout_s=2)
    t0 = time.monotonic()
    with pytest.raises(LabelStudioUnavailable, match=re.escape(url) + r".*after 3 attempts.*scripts/label-studio start"):
        client.check()
    assert time.monotonic() - t0 < 5
    assert len([r for r in caplog.records if "retry" in r.getMessage()]) == 2


def test_run_dir_outside_document_root_is_refused(label_studio, tmp_path):
    config = _config(label_studio)
    outside = RunDir.create(tmp_path / "elsewhere")
    with pytest.raises(MediaError, match="outside Label Studio's document root"):
        push_review(outside, config, _client(label_studio, config))


def test_webhook_triggers_a_pull(label_studio, review_run):
    ls = label_studio
    config = _config(ls, **{"review.overlap": 0.0})
    client = _client(ls, config)
    report = push_review(review_run, config, client)
    pulls = []
    with WebhookListener(lambda: pulls.append(pull_review(review_run, config, client))) as hook:
        register_webhook(client, report.project_id, hook.url)
        assert register_webhook(client, report.project_id, hook.url) == register_webhook(client, report.project_id, hook.url)
        _annotate(ls, ls.token, report.task_ids["v1"], "surprise")
        deadline = time.monotonic() + 20
        while not pulls and time.monotonic() < deadline:
            time.sleep(0.2)
        assert hook.wait_idle(20)
    assert hook.events and hook.events[0]["action"] == "ANNOTATION_CREATED"
    v1 = {r.clip_id: r for r in pulls[-1].reviews}["v1"]
    assert (v1.final_label, v1.final_source) == ("surprise", "human")


def test_pull_exports_only_what_changed_and_falls_back_when_the_counts_do_not_add_up(label_studio, review_run,
                                                                                     monkeypatch, caplog):
    from pipeline.review import mirror
    from pipeline.review.label_studio import PULL_VIEW

    monkeypatch.setattr(mirror, "MARGIN", mirror.timedelta(0))  # else every change of this quick test is "recent"
    ls = label_studio
    # the export path: without answer files (they have a test of their own)
    config = _config(ls, **{"review.overlap": 0.0, "review.label_studio.answer_files": "false"})
    client = _client(ls, config)
    report = push_review(review_run, config, client)
    pid = report.project_id
    _annotate(ls, ls.token, report.task_ids["v1"], "sadness")
    time.sleep(1.1)  # the pull reads the server's clock from its Date header, in whole seconds
    # the push into an empty project seeded the run's mirror: even the first pull is a delta (v1's
    # task, and a1's too if the push read the clock in the second it imported)
    first = pull_review(review_run, config, client)
    assert not first.full_export and first.exported_tasks in (1, 2)
    assert {r.clip_id: (r.final_label, r.decision) for r in first.reviews} == {
        "v1": ("sadness", "accepted"), "a1": ("happiness", "pending")}
    nothing = pull_review(review_run, config, client)
    assert (nothing.full_export, nothing.exported_tasks) == (False, 0) and nothing.reviews == first.reviews

    _annotate(ls, ls.token, report.task_ids["a1"], "anger")
    time.sleep(1.1)
    delta = pull_review(review_run, config, client)
    assert (delta.full_export, delta.exported_tasks) == (False, 1)  # only a1's task
    by = {r.clip_id: r for r in delta.reviews}
    assert (by["v1"].final_label, by["a1"].final_label) == ("sadness", "anger")
    assert {r.clip_id: r.final_label for r in delta.reviews} == {
        r.clip_id: r.final_label for r in pull_review(RunDir.create(review_run.root / "fresh"), config, client,
                                                      consensus=review_run.read("consensus")).reviews}

    # a deletion moves no timestamp the delta could see; the counts catch it and the pull exports everything
    headers = {"Authorization": f"Token {ls.token}"}
    assert httpx.delete(f"{ls.url}/api/tasks/{report.task_ids['a1']}", headers=headers).status_code == 204
    after = pull_review(review_run, config, client)
    assert after.full_export and after.exported_tasks == 1 and after.missing == ["a1"]

    # nothing of the pull's is left on the server: its filtered view and export snapshots are deleted,
    # a view left by a crashed pull included
    httpx.post(f"{ls.url}/api/dm/views", headers=headers, json={"project": pid, "data": {"title": PULL_VIEW}})
    assert pull_review(review_run, config, client).full_export is False
    views = httpx.get(f"{ls.url}/api/dm/views", headers=headers, params={"project": pid}).json()
    assert [v for v in views if v["data"].get("title") == PULL_VIEW] == []
    assert httpx.get(f"{ls.url}/api/projects/{pid}/exports", headers=headers).json() == []

    # a mirror that cannot be read costs one full export, with a warning naming the file
    (cached,) = review_run.cache_dir.glob(f"label-studio-{pid}-*.json")
    cached.write_text("{not json")
    with caplog.at_level("WARNING"):
        again = pull_review(review_run, config, client)
    assert again.full_export and again.reviews == after.reviews
    assert any(str(cached) in r.getMessage() for r in caplog.records)


def test_pull_reads_the_answer_files_the_server_writes_and_exports_when_they_do_not_add_up(label_studio, review_run,
                                                                                           caplog, monkeypatch):
    from pipeline.review.answer_files import answers_dir
    from pipeline.review.label_studio import ANSWER_STORAGE

    ls = label_studio
    config = _config(ls, **{"review.overlap": 0.0})
    client = _client(ls, config)
    report = push_review(review_run, config, client)
    pid = report.project_id
    # the push attached a target storage: the server itself writes each answer there as it is saved
    store = answers_dir(ls.docroot / ".emoforge-answers", client.url, pid).resolve()
    assert report.answer_dir == str(store) and store.is_dir() and list(store.iterdir()) == []
    assert [s["title"] for s in client.answer_storages(pid)] == [ANSWER_STORAGE]
    first_id = _annotate(ls, ls.token, report.task_ids["v1"], "sadness", text="she looks down")
    assert sorted(p.name for p in store.iterdir()) == [str(first_id)]

    pulled = pull_review(review_run, config, client)
    assert (pulled.full_export, pulled.exported_tasks, pulled.answer_files) == (False, 0, 1)
    by = {r.clip_id: r for r in pulled.reviews}
    assert (by["v1"].final_label, by["v1"].decision, by["a1"].decision) == ("sadness", "accepted", "pending")
    assert by["v1"].answers[0].correction == "she looks down" and by["v1"].answers[0].reviewer == "admin@emoforge.local"

    # the same records an export gives: a pull into a fresh run directory with answer files off
    export_config = config.model_copy(deep=True)
    export_config.review.label_studio.answer_files = False
    exported = pull_review(RunDir.create(review_run.root / "fresh"), export_config, client,
                           consensus=review_run.read("consensus"))
    assert exported.answer_files == 0 and exported.full_export
    strip = lambda rs: [r.model_dump(exclude={"provenance"}) for r in rs]  # noqa: E731
    assert strip(exported.reviews) == strip(pulled.reviews)

    # an edited answer rewrites its file; a second answer adds one
    headers = {"Authorization": f"Token {ls.token}"}
    edit = _task(ls, report.task_ids["v1"])["annotations"][0]["result"]
    edit[0]["value"]["choices"] = ["fear"]
    assert httpx.patch(f"{ls.url}/api/annotations/{first_id}", headers=headers, json={"result": edit}).status_code == 200
    _annotate(ls, ls.token, report.task_ids["a1"], "anger")
    again = pull_review(review_run, config, client)
    assert (again.full_export, again.exported_tasks, again.answer_files) == (False, 0, 2)
    assert {r.clip_id: r.final_label for r in again.reviews} == {"v1": "fear", "a1": "anger"}

    # deleting an answer removes its file (the storage deletes objects), so the files still add up
    assert httpx.delete(f"{ls.url}/api/annotations/{first_id}", headers=headers).status_code == 204
    assert not (store / str(first_id)).exists()
    gone = pull_review(review_run, config, client)
    assert (gone.full_export, gone.exported_tasks, gone.answer_files) == (False, 0, 1)
    assert {r.clip_id: (r.final_label, r.decision) for r in gone.reviews} == {
        "v1": ("happiness", "pending"), "a1": ("anger", "accepted")}

    # a task deleted in the UI takes its answer file with it, but the mirror still lists the task:
    # the files do not add up to the server's task count, so the pull exports and reports it missing
    r = httpx.post(f"{ls.url}/api/dm/actions", headers=headers, params={"id": "delete_tasks", "project": pid},
                   json={"selectedItems": {"all": False, "included": [report.task_ids["a1"]]}, "project": pid})
    assert r.status_code == 200, r.text
    with caplog.at_level("INFO"):
        after = pull_review(review_run, config, client)
    assert after.answer_files == 0 and after.missing == ["a1"] and after.reviews[0].decision == "pending"
    assert any("do not add up" in r.getMessage() for r in caplog.records)
    assert pull_review(review_run, config, client).answer_files == 0  # nothing answered: an empty read adds up

    # an answer imported with its task never passes through a save, so it has no file: one export
    # brings it into the mirror, after which the files and the mirror add up together
    c3 = _consensus("v3", "happiness", 0.2, True)
    imported = {"data": dict(_task(ls, report.task_ids["v1"])["data"], clip_id="v3"), "annotations": [{"result": [
        {"from_name": labeling.EMOTION, "to_name": "video", "type": "choices", "value": {"choices": ["anger"]}}]}]}
    client.import_tasks(pid, [imported])
    cons = review_run.read("consensus") + [c3]
    assert pull_review(review_run, config, client, consensus=cons).answer_files == 0
    second = _annotate(ls, ls.token, report.task_ids["v1"], "surprise")
    last = pull_review(review_run, config, client, consensus=cons)
    assert (last.full_export, last.answer_files) == (False, 1)
    assert {r.clip_id: r.final_label for r in last.reviews} == {"v1": "surprise", "a1": "happiness", "v3": "anger"}

    # the server counts an answer a moment before it writes the file (or a reviewer saves between
    # the pull's count and its read): the pull counts and reads once more instead of exporting
    calls = []

    def counted_early(project_id):
        calls.append(LabelStudioClient.counts(client, project_id))
        c = calls[-1]
        return dataclasses.replace(c, answers=c.answers + 1) if len(calls) == 1 else c

    monkeypatch.setattr(client, "counts", counted_early)
    recount = pull_review(review_run, config, client, consensus=cons)
    monkeypatch.undo()
    assert len(calls) == 2 and (recount.full_export, recount.answer_files) == (False, 1)
    assert recount.reviews == last.reviews

    # a file the pull cannot read (the server half-way through writing it) means an export this time
    good = (store / str(second)).read_bytes()
    (store / str(second)).write_text('{"id": 1, "res')
    with caplog.at_level("WARNING"):
        broken = pull_review(review_run, config, client, consensus=cons)
    assert broken.answer_files == 0 and broken.reviews == last.reviews
    assert any(str(store / str(second)) in r.getMessage() for r in caplog.records)
    (store / str(second)).write_bytes(good)

    # a file left for an answer the server no longer has (a storage that kept deleted objects)
    # does not add up: the pull exports, then removes the stale file so the next pull reads files
    stale = json.loads(good)
    stale["id"] = first_id
    (store / str(first_id)).write_text(json.dumps(stale))
    os.utime(store / str(first_id), (time.time() - 3600,) * 2)
    assert pull_review(review_run, config, client, consensus=cons).answer_files == 0
    assert sorted(p.name for p in store.iterdir()) == [str(second)]
    assert pull_review(review_run, config, client, consensus=cons).answer_files == 1

    # deleting every task of the project: Label Studio removes their files too
    r = httpx.post(f"{ls.url}/api/dm/actions", headers=headers, params={"id": "delete_tasks", "project": pid},
                   json={"selectedItems": {"all": True, "excluded": []}, "project": pid})
    assert r.status_code == 200, r.text
    assert list(store.iterdir()) == []
    emptied = pull_review(review_run, config, client, consensus=cons)
    assert emptied.full_export and sorted(emptied.missing) == ["a1", "v1", "v3"]


def test_answer_files_outside_the_document_root_are_refused_and_pulls_export(label_studio, review_run, tmp_path,
                                                                             caplog):
    from pipeline.review.label_studio import ANSWER_STORAGE

    ls = label_studio
    config = _config(ls, **{"review.overlap": 0.0, "review.label_studio.answers_dir": str(tmp_path / "answers")})
    client = _client(ls, config)
    with caplog.at_level("WARNING"):
        report = push_review(review_run, config, client)
    assert report.answer_dir is None and client.answer_storages(report.project_id) == []
    assert any("no answer files at" in r.getMessage() and str(tmp_path) in r.getMessage() for r in caplog.records)
    _annotate(ls, ls.token, report.task_ids["v1"], "fear")
    pulled = pull_review(review_run, config, client)
    assert pulled.answer_files == 0 and {r.clip_id: r.final_label for r in pulled.reviews}["v1"] == "fear"

    # one of ours whose directory is gone would fail every save on the server: the next push drops it
    gone = ls.docroot / f"gone-{uuid.uuid4().hex[:6]}"
    client.ensure_answer_storage(report.project_id, gone)
    assert [(s["title"], s["path"]) for s in client.answer_storages(report.project_id)] == [(ANSWER_STORAGE, str(gone))]
    shutil.rmtree(gone)
    config = _config(ls, **{"review.overlap": 0.0, "review.label_studio.project_title": config.review.label_studio.project_title})
    again = push_review(review_run, config, client)
    # dropped; and none attached in its place, as the project already holds an answer
    assert client.answer_storages(report.project_id) == [] and again.answer_dir is None


def test_a_task_sends_only_what_it_has():
    """The pushed JSON leaves out what a clip lacks (no consensus label: no prediction; no words: a
    placeholder line without times), and a multi-label project pre-selects every likely label."""
    from pipeline.review.push import build_task

    bare = build_task(clip("n1"), _consensus("n1", "happiness", 0.3, True).model_copy(update={"label": None}), "/data/x.mp4", None)
    sent = bare.payload()
    assert "predictions" not in sent and sent["data"]["fps"] == 25 and sent["data"]["model_label"] == "-"
    assert sent["data"]["transcript"] == [{"author": "-", "text": "(no speech transcribed)"}]
    c = _consensus("m1", "happiness", 0.3, True).model_copy(update={"distribution": [
        LabelProb(label="happiness", prob=0.6), LabelProb(label="surprise", prob=0.5), LabelProb(label="fear", prob=0.1)]})
    spoken = build_task(clip("m1"), c, "/data/x.mp4", 29.97, features=features("m1"), config=load_config(overrides=["multi_label=true"]))
    sent = spoken.payload()
    (pred,) = sent["predictions"]
    assert pred["result"][0]["value"]["choices"] == ["happiness", "surprise"] and sent["data"]["fps"] == 29.97
    assert set(sent["data"]["transcript"][0]) == {"author", "text", "start", "end"}
    assert all(line["author"] != "ASR" for line in sent["data"]["transcript"])
    # words whisper wrote in a language it was unsure of: the reviewer reads that under them
    guessed = features("m1").model_copy(update={"language": "en", "language_probability": 0.42})
    lines = build_task(clip("m1"), c, "/data/x.mp4", 29.97, features=guessed).payload()["data"]["transcript"]
    assert lines[:-1] == sent["data"]["transcript"] and lines[-1]["author"] == "ASR" and "unsure of the language: en at 0.42" in lines[-1]["text"]
