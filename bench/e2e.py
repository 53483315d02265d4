"""Benchmark: the whole pipeline over the demo media, one process, reported as ratios.

- stage 1 vs the decode floor (PyAV decoding every frame of the same files; goal <= 1.5),
- stage 2 real-time factor (stage-2 seconds per second of media),
- judge rows/s, Label Studio push tasks/s and pull annotations/s (every clip flagged for review,
  one reviewer answer per task posted through the API before the pull),
- peak RSS per stage (sampled every 50 ms) and of the whole process,
- cache hit rates on a rerun (everything reused) and after adding one annotator (only its answers
  computed).

Label Studio: started with scripts/label-studio on a free port when its environment is installed
(scripts/label-studio install), otherwise the review figures are skipped and the summary says so.
Writes bench/results/e2e.json and e2e.md.

    .venv/bin/python bench/e2e.py [--workers 2] [--no-review]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from flows.prefect_env import configure_prefect  # noqa: E402

configure_prefect()

import av  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402

from flows import progress  # noqa: E402
from flows.demo import build_demo_media  # noqa: E402
from flows.pipeline_flow import run_pipeline  # noqa: E402
from pipeline.review import labeling  # noqa: E402
from pipeline.review.label_studio import LabelStudioClient  # noqa: E402
from pipeline.review.pull import pull_review  # noqa: E402
from pipeline.review.push import push_review  # noqa: E402
from schemas import load_config  # noqa: E402
from stage1_vs_decode import pure_decode  # noqa: E402
from storage import RunDir  # noqa: E402

MB = 1024 * 1024


class StageMemory:
    """Progress hook that records each stage's peak RSS (a sampling thread; stages run in this process)."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.current: str | None = None
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            if self.current:
                rss = self.proc.memory_info().rss / MB
                self.peak[self.current] = max(self.peak.get(self.current, 0.0), rss)

    def start(self, stage: str, total: int) -> None:
        self.current = stage

    def advance(self, stage: str, item: str, reused: bool) -> None:
        pass

    def finish(self, stage: str) -> None:
        rss = self.proc.memory_info().rss / MB
        self.peak[stage] = max(self.peak.get(stage, 0.0), rss)

    def close(self) -> None:
        self._stop.set()


def media_seconds(path: Path) -> float:
    with av.open(str(path)) as c:
        return float(c.duration or 0) / av.time_base


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_label_studio(docroot: Path):
    if not (ROOT / ".venv-label-studio" / "bin" / "label-studio").exists():
        return None, "Label Studio not installed (scripts/label-studio install); review rates skipped"
    port, token = free_port(), "emoforge-bench-token-0123456789abcdef"
    env = dict(os.environ, EMOFORGE_LS_DOCUMENT_ROOT=str(docroot), EMOFORGE_LS_TOKEN=token,
               EMOFORGE_LS_HOME=os.environ.get("EMOFORGE_LS_BENCH_HOME", str(Path.home() / ".cache" / "emoforge" / "label-studio-bench")))
    proc = subprocess.run([str(ROOT / "scripts" / "label-studio"), "start", str(port)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return None, f"Label Studio did not start: {proc.stderr.strip()[-300:]}"
    return (proc.stdout.strip().splitlines()[-1], token, port, env), None


def stage_table(summary) -> dict[str, dict]:
    return {s.stage: s.model_dump() for s in summary.stages}


def hit_rate(stage: dict) -> float | None:
    total = stage["computed"] + stage["reused"]
    return round(stage["reused"] / total, 3) if total else None


def review_rates(run: RunDir, url: str, token: str, docroot: Path) -> dict:
    config = load_config(overrides=["review.enabled=true", f"review.label_studio.url={url}", f"review.label_studio.document_root={docroot}",
                                    f"review.label_studio.project_title=bench e2e {run.root.name}-{time.time_ns()}"])
    client = LabelStudioClient(url=url, token=token, timeout_s=120)
    t0 = time.perf_counter()
    pushed = push_review(run, config, client)
    push_s = time.perf_counter() - t0
    # one reviewer answer per task, through the same API the UI uses (not timed)
    for i, (clip_id, task_id) in enumerate(sorted(pushed.task_ids.items())):
        result = [{"from_name": labeling.EMOTION, "to_name": "video", "type": "choices", "value": {"choices": [config.taxonomy[i % 3]]}},
                  {"from_name": labeling.INTENSITY, "to_name": "video", "type": "rating", "value": {"rating": 3}}]
        r = httpx.post(f"{url}/api/tasks/{task_id}/annotations/", json={"result": result}, headers={"Authorization": f"Token {token}"}, timeout=60)
        r.raise_for_status()
    t0 = time.perf_counter()
    pulled = pull_review(run, config, client, write=False)
    pull_s = time.perf_counter() - t0
    answers = sum(len(r.answers) for r in pulled.reviews)
    return {"tasks": pushed.pushed, "push_s": round(push_s, 3), "push_tasks_per_s": round(pushed.pushed / push_s, 2) if push_s else None,
            "answers": answers, "pull_s": round(pull_s, 3), "pull_answers_per_s": round(answers / pull_s, 2) if pull_s else None,
            "note": "push includes cutting each clip's H.264/AAC media with ffmpeg"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-review", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="emoforge-e2e-"))
    media = build_demo_media(work / "media")
    duration = sum(media_seconds(m) for m in media)

    t0 = time.perf_counter()
    for m in media:
        pure_decode(m)
    decode_s = time.perf_counter() - t0

    base = [f"runtime.workers={args.workers}", "judge.threshold.mode=budget", "judge.threshold.budget=1.0"]  # every clip to review
    config = load_config(overrides=base)
    out = work / "run"
    memory = StageMemory()
    progress.set_hook(memory)
    try:
        t0 = time.perf_counter()
        cold = run_pipeline([str(m) for m in media], str(out), config)
        cold_s = time.perf_counter() - t0
        cold_peak = dict(memory.peak)
        t0 = time.perf_counter()
        warm = run_pipeline([str(m) for m in media], str(out), config)
        warm_s = time.perf_counter() - t0
        panel = [s.model_dump() for s in config.annotate.panel] + [{"id": "lexical-2", "backend": "lexical"}]
        t0 = time.perf_counter()
        grown = run_pipeline([str(m) for m in media], str(out), load_config(overrides=[*base, f"annotate.panel={json.dumps(panel)}"]))
        grown_s = time.perf_counter() - t0
    finally:
        progress.set_hook(None)
        memory.close()

    stages = stage_table(cold)
    run = RunDir(out)
    n_annotations = len(run.read("annotations"))
    result = {
        "media_files": len(media), "media_seconds": round(duration, 2), "clips": stages["sampling"]["outputs"], "annotations": n_annotations,
        "cold_run_s": round(cold_s, 2), "decode_floor_s": round(decode_s, 3),
        "stage_seconds": {k: v["seconds"] for k, v in stages.items()},
        "ratios": {
            "stage1_vs_decode": round(stages["sampling"]["seconds"] / decode_s, 2),
            "stage2_real_time_factor": round(stages["preprocess"]["seconds"] / duration, 3),
            "stage3_real_time_factor": round(stages["annotate"]["seconds"] / duration, 3),
            "judge_rows_per_s": round(n_annotations / stages["judge"]["seconds"], 1) if stages["judge"]["seconds"] else None,
        },
        "peak_rss_mb": {k: round(v) for k, v in cold_peak.items()},
        "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rerun": {"seconds": round(warm_s, 2), "speedup": round(cold_s / warm_s, 1),
                  "hit_rate": {k: hit_rate(v) for k, v in stage_table(warm).items() if k in ("sampling", "preprocess", "annotate")}},
        "add_annotator": {"seconds": round(grown_s, 2),
                          "hit_rate": {k: hit_rate(v) for k, v in stage_table(grown).items() if k in ("sampling", "preprocess", "annotate")},
                          "annotate_computed": stage_table(grown)["annotate"]["computed"]},
    }
    if args.no_review:
        result["review"] = {"skipped": "--no-review"}
    else:
        ls, why = start_label_studio(work)
        if ls is None:
            result["review"] = {"skipped": why}
        else:
            url, token, port, env = ls
            try:
                result["review"] = review_rates(run, url, token, work)
            finally:
                subprocess.run([str(ROOT / "scripts" / "label-studio"), "stop", str(port)], capture_output=True, env=env)

    res = ROOT / "bench" / "results"
    res.mkdir(exist_ok=True)
    (res / "e2e.json").write_text(json.dumps(result, indent=2))
    (res / "e2e.md").write_text(summary_md(result))
    print(summary_md(result))


def summary_md(r: dict) -> str:
    rv = r["review"]
    review = (f"- Label Studio: push {rv['tasks']} tasks in {rv['push_s']} s ({rv['push_tasks_per_s']} tasks/s, {rv['note']}); "
              f"pull {rv['answers']} answers in {rv['pull_s']} s ({rv['pull_answers_per_s']} answers/s)"
              if "skipped" not in rv else f"- Label Studio: skipped ({rv['skipped']})")
    ratios = r["ratios"]
    lines = [
        "# emoforge end-to-end benchmark (bench/e2e.py)", "",
        f"{r['media_files']} demo files, {r['media_seconds']} s of media, {r['clips']} clips, {r['annotations']} answers; "
        f"cold run {r['cold_run_s']} s. Ratios, not absolute times, are what carry across machines.", "",
        f"- stage 1 vs decode floor: **{ratios['stage1_vs_decode']}x** (decode floor {r['decode_floor_s']} s)",
        f"- stage 2 real-time factor: **{ratios['stage2_real_time_factor']}** (stage 3: {ratios['stage3_real_time_factor']})",
        f"- judge: **{ratios['judge_rows_per_s']} rows/s** (includes Prefect task overhead on a handful of rows)",
        review,
        f"- rerun: {r['rerun']['seconds']} s ({r['rerun']['speedup']}x faster), cache hit rates {r['rerun']['hit_rate']}",
        f"- one annotator added: {r['add_annotator']['seconds']} s, hit rates {r['add_annotator']['hit_rate']} "
        f"({r['add_annotator']['annotate_computed']} answers computed)",
        f"- peak RSS: process {r['process_peak_rss_mb']} MB; by stage {r['peak_rss_mb']}", "",
        "| stage | seconds |", "|---|---|", *[f"| {k} | {v} |" for k, v in r["stage_seconds"].items()], "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
    os._exit(0)  # native libraries can crash in interpreter teardown after all work is done
