"""Benchmark: stage-5 push and pull against a local Label Studio (scripts/label-studio start).
Push: N built tasks (data + prediction) into a project whose overlap setting asks 2 reviewers for
20% of tasks (one project request), by bulk import in batches; goal <= 60 s for 10k. Pull: N
annotations (imported with their tasks into a second project, not timed) read back (JSON export
plus the task list for each task's overlap) and resolved into Review records; goal <= 10 s for 10k.
Cutting media is not timed (it is ffmpeg's speed, per clip).

    export LABEL_STUDIO_API_KEY=...; .venv/bin/python bench/review_push_pull.py --url http://127.0.0.1:8080 [--n 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.review import labeling  # noqa: E402
from pipeline.review.label_studio import LabelStudioClient  # noqa: E402
from pipeline.review.pull import reviews_from_tasks  # noqa: E402
from pipeline.review.push import PushReport, build_task, push_tasks  # noqa: E402
from schemas import Consensus, Provenance, load_config  # noqa: E402
from schemas.features import LabelProb  # noqa: E402
from tests.fixtures.judge_cases import answer, clip, ev, features  # noqa: E402

PROV = Provenance(stage="judge", stage_config_hash="bench", run_id="bench")
LABELS = ["happiness", "sadness", "anger", "neutral", "surprise"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--token", default=os.environ.get("LABEL_STUDIO_API_KEY", "emoforge-dev-token-0123456789abcdef"))
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--overlap", type=float, default=0.2, help="share of tasks Label Studio asks 2 reviewers for")
    args = ap.parse_args()
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

    # pull: a second project whose tasks come with one annotation each (set up in bulk, not timed)
    pid2 = client.ensure_project(f"bench pull {tag}", xml)
    annotated = []
    for i, (c, t) in enumerate(tasks):
        result = [{"from_name": labeling.EMOTION, "to_name": "video", "type": "choices", "value": {"choices": [LABELS[(i + 1) % 5]]}},
                  {"from_name": labeling.INTENSITY, "to_name": "video", "type": "rating", "value": {"rating": 1 + i % 5}}]
        annotated.append({"data": t["data"], "annotations": [{"result": result}]})
    for i in range(0, len(annotated), 2000):
        client.import_tasks(pid2, annotated[i:i + 2000])
    t0 = time.perf_counter()
    exported = client.export_tasks(pid2)
    export_s = time.perf_counter() - t0  # the server's export alone, for reference
    assert len(exported) == args.n
    tasks2 = client.review_tasks(pid2)  # the export again, plus each task's overlap from the task list
    read_s = time.perf_counter() - t0 - export_s
    pulled = reviews_from_tasks(tasks2, cons, config, client.users(), pid2)
    pull_s = time.perf_counter() - t0 - export_s  # the pull as the flow does it: review_tasks + resolve
    n_ann = sum(len(r.answers) for r in pulled.reviews)
    assert n_ann == args.n and pulled.accepted == args.n, (n_ann, pulled.accepted, pulled.problems[:3])

    out = {"n": args.n, "overlap": args.overlap, "push_s": round(push_s, 2), "overlap_percent": report.overlap_percent,
           "overlap_tasks": sum(n > 1 for n in client.task_overlaps(pid).values()),
           "pull_s": round(pull_s, 2), "pull_export_alone_s": round(export_s, 2), "pull_read_s": round(read_s, 2), "push_goal_s": 60, "pull_goal_s": 10,
           "push_ok": push_s <= 60, "pull_ok": pull_s <= 10}
    print(json.dumps(out))
    res = Path(__file__).parent / "results"
    res.mkdir(exist_ok=True)
    (res / "review_push_pull.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
