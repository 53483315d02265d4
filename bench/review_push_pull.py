"""Benchmark: stage-5 push and pull against a local Label Studio (scripts/label-studio start).
Push: N built tasks (data + prediction) into a project whose overlap setting asks 2 reviewers for
20% of tasks (one project request), by bulk import in batches; goal <= 60 s for 10k. Pull: N
annotations (imported with their tasks and predictions into a second project, not timed) read back
as the flow does (read_tasks: an export snapshot, through the run's task mirror) and resolved into
Review records; goal <= 10 s for 10k. Timed cold (empty mirror) from the project's answer files
(the server's target storage, as a push attaches it; the import skips the per-save write, so the
storage's own sync writes them first, not timed) and, for reference, by export (the whole project);
unchanged (an empty delta), in rounds (the answers arrive in --rounds parts, a pull after each), and
first after a push into an empty project (which seeds the mirror) once a tenth of it is answered.
Cutting media is not timed (it is ffmpeg's speed, per clip).

    export LABEL_STUDIO_API_KEY=...; .venv/bin/python bench/review_push_pull.py --url http://127.0.0.1:8080 \
        --answers-dir DIR [--n 10000]     (DIR beneath the server's document root)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.review import labeling  # noqa: E402
from pipeline.review.label_studio import LabelStudioClient  # noqa: E402
from pipeline.review.mirror import TaskMirror  # noqa: E402
from pipeline.review.pull import read_tasks, reviews_from_tasks  # noqa: E402
from pipeline.review.push import PushReport, attach_answer_storage, build_task, push_tasks  # noqa: E402
from schemas.review import ReviewTaskPush  # noqa: E402
from schemas import Consensus, Provenance, load_config  # noqa: E402
from schemas.features import LabelProb  # noqa: E402
from tests.fixtures.judge_cases import answer, clip, ev, features  # noqa: E402

PROV = Provenance(stage="judge", stage_config_hash="bench", run_id="bench")
LABELS = ["happiness", "sadness", "anger", "neutral", "surprise"]


def annotated_task(i: int, task: ReviewTaskPush) -> dict:
    result = [{"from_name": labeling.EMOTION, "to_name": "video", "type": "choices", "value": {"choices": [LABELS[(i + 1) % 5]]}},
              {"from_name": labeling.INTENSITY, "to_name": "video", "type": "rating", "value": {"rating": 1 + i % 5}}]
    sent = task.payload()
    return {"data": sent["data"], "predictions": sent.get("predictions", []), "annotations": [{"result": result}]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--token", default=os.environ.get("LABEL_STUDIO_API_KEY"), help="default $LABEL_STUDIO_API_KEY (scripts/label-studio token)")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--overlap", type=float, default=0.2, help="share of tasks Label Studio asks 2 reviewers for")
    ap.add_argument("--rounds", type=int, default=10, help="incremental pull: answers arrive in this many rounds")
    ap.add_argument("--answers-dir", type=Path, required=True,
                    help="where the server writes answer files: beneath its LOCAL_FILES_DOCUMENT_ROOT")
    args = ap.parse_args()
    if not args.token:
        ap.error("no API token: pass --token or export LABEL_STUDIO_API_KEY=$(scripts/label-studio token)")
    tag = uuid.uuid4().hex[:6]
    config = load_config(overrides=[f"review.label_studio.url={args.url}", f"review.overlap={args.overlap}"])
    client = LabelStudioClient(url=args.url, token=args.token, timeout_s=300)
    xml = labeling.label_config(config)

    cons = [Consensus(clip_id=f"b{tag}-{i}", label=LABELS[i % 5], distribution=[LabelProb(label=LABELS[i % 5], prob=0.6)],
                      method="weighted", margin=0.1, entropy=1.0, uncertainty=0.5, review_score=(i % 100) / 100,
                      needs_review=True, provenance=PROV) for i in range(args.n)]
    e = [ev("e1", "face", "AU12 raised", 10.5, 11.0)]
    feat = features("c1")
    tasks = []
    for c in cons:
        a = answer("face-expression", c.label, e, clip_id=c.clip_id)
        tasks.append((c, build_task(clip(c.clip_id), c, "/data/local-files/?d=bench/clip.mp4", 25.0, answers=[a],
                                    features=feat, config=config)))

    pid = client.ensure_project(f"bench push {tag}", xml)
    report = PushReport(project_id=pid)
    t0 = time.perf_counter()
    report.overlap_percent = client.set_overlap(pid, config.review.reviewers_on_overlap, config.review.overlap)
    push_tasks(client, pid, tasks, report)
    push_s = time.perf_counter() - t0
    assert report.pushed == args.n and len(report.task_ids) == args.n, report

    # pull: a second project whose tasks come with their prediction and one annotation each (set up
    # in bulk, not timed), pulled as the flow does it (read_tasks + resolve) into an empty cache:
    # a cold pull exports the whole project
    pid2 = client.ensure_project(f"bench pull {tag}", xml)
    store = attach_answer_storage(client, pid2, args.answers_dir)
    assert store is not None, "the server refused the answer storage (see the log): is --answers-dir beneath its document root?"
    annotated = [annotated_task(i, t) for i, (c, t) in enumerate(tasks)]
    for i in range(0, len(annotated), 2000):
        client.import_tasks(pid2, annotated[i:i + 2000])
    (sid,) = [s["id"] for s in client.answer_storages(pid2) if s["path"] == str(store)]
    t0 = time.perf_counter()
    with httpx.Client(base_url=args.url, headers={"Authorization": f"Token {args.token}"}, timeout=3600) as http:
        http.post(f"/api/storages/export/localfiles/{sid}/sync").raise_for_status()
    sync_s = time.perf_counter() - t0
    assert len(list(store.iterdir())) == args.n
    cache = Path(tempfile.mkdtemp(prefix="bench-pull-"))
    users = client.users()

    def pull(pid: int, consensus: list[Consensus], files: bool = True, where: Path = cache) -> tuple[float, object, int]:
        t = time.perf_counter()
        rows, sync = read_tasks(client, pid, where, answer_files=files)
        pulled = reviews_from_tasks(rows, consensus, config, users, pid)
        return time.perf_counter() - t, sync, sum(len(r.answers) for r in pulled.reviews)

    cold_s, sync, n_ann = pull(pid2, cons)
    assert sync.answer_files == args.n and n_ann == args.n, (sync, n_ann)
    cold_export_s, sync, n_ann = pull(pid2, cons, files=False, where=Path(tempfile.mkdtemp(prefix="bench-pull-")))
    assert sync.full and n_ann == args.n, (sync, n_ann)
    warm_s, sync, n_ann = pull(pid2, cons)  # nothing changed since: the same files
    assert not sync.full and n_ann == args.n, (sync, n_ann)
    t0 = time.perf_counter()  # the one-shot export the pull used before snapshots, for reference
    assert len(json.loads(b"".join(client.sdk.projects.exports.download_sync(
        pid2, export_type="JSON", download_all_tasks=True, download_resources=False)))) == args.n
    oneshot_s = time.perf_counter() - t0

    # incremental: the same number of answers arriving in rounds, a pull after each (as the webhook
    # listener or a schedule runs them); each pull exports what changed since the last one
    pid3 = client.ensure_project(f"bench pull rounds {tag}", xml)
    rounds, step, round_s = [], max(1, args.n // args.rounds), []
    for i in range(0, args.n, step):
        client.import_tasks(pid3, annotated[i:i + step])
        s, sync, n_ann = pull(pid3, cons)
        round_s.append(round(s, 2))
        rounds.append(sync.fetched)
    assert n_ann == args.n and not sync.full, (n_ann, sync)

    # the first pull after a push into an empty project, once reviewers answered a tenth of it: the
    # push seeds the run's mirror (push_review does; here, as it does), so only answered tasks export
    TaskMirror.for_project(cache, client.url, pid).seed(client, report.task_ids)
    answered = list(report.task_ids.values())[::10]
    with httpx.Client(base_url=args.url, headers={"Authorization": f"Token {args.token}"}, timeout=60) as http:
        for i, tid in enumerate(answered):
            r = http.post(f"/api/tasks/{tid}/annotations/", json={"result": annotated_task(i, {"data": {}})["annotations"][0]["result"]})
            assert r.status_code == 201, r.text
    time.sleep(1.1)
    first_s, sync, n_ann = pull(pid, cons)
    assert not sync.full and n_ann == len(answered), (sync, n_ann)

    out = {"n": args.n, "overlap": args.overlap, "push_s": round(push_s, 2), "overlap_percent": report.overlap_percent,
           "overlap_tasks": sum(n > 1 for n in client.task_overlaps(pid).values()),
           "pull_cold_s": round(cold_s, 2), "pull_cold_export_s": round(cold_export_s, 2),
           "answer_storage_sync_s_untimed_setup": round(sync_s, 2), "pull_first_after_push_tenth_answered_s": round(first_s, 2),
           "pull_first_after_push_exported_tasks": sync.fetched, "pull_unchanged_s": round(warm_s, 2),
           "oneshot_export_alone_s": round(oneshot_s, 2),
           "pull_rounds": args.rounds, "pull_round_s": round_s, "pull_round_exported_tasks": rounds,
           "push_goal_s": 60, "pull_goal_s": 10, "push_ok": push_s <= 60, "pull_cold_ok": cold_s <= 10,
           "pull_last_round_ok": round_s[-1] <= 10}
    print(json.dumps(out))
    res = Path(__file__).parent / "results"
    res.mkdir(exist_ok=True)
    (res / "review_push_pull.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
