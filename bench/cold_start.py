"""Benchmark: the fixed cost of a fresh `emoforge run` process, by component (imports, each model's
load), and an unchanged rerun of the demo against its first run. Goals: cold fixed cost <= 10 s;
unchanged rerun <= 0.25x of the first run.

    .venv/bin/python bench/cold_start.py            # components, in a fresh process
    .venv/bin/python bench/cold_start.py --demo     # also the demo, first run then an unchanged rerun

The demo timing uses the local Prefect server as runs do (flows/prefect_server.py), started before
the first run so neither run pays for it; EMOFORGE_PREFECT=ephemeral measures the old way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = r"""
import json, time
out = {}
def t(label, fn):
    t0 = time.perf_counter(); fn(); out[label] = round(time.perf_counter() - t0, 2)
from flows.prefect_env import configure_prefect; configure_prefect()
t("imports (flow, prefect, stages)", lambda: __import__("flows.pipeline_flow"))
from schemas import load_config
cfg = load_config()
from pipeline.sampling.vad import get_vad
t("VAD (silero)", lambda: get_vad(cfg.sampling.vad))
from pipeline.preprocess.asr import get_transcriber
t("ASR (whisper base, CTranslate2)", lambda: get_transcriber(cfg.preprocess.asr))
from pipeline.preprocess.faces import get_face_analyzer
t("faces (dlib, landmarks, fer)", lambda: get_face_analyzer(cfg.preprocess.faces))
import numpy as np
from pipeline.preprocess import prosody
t("prosody (openSMILE eGeMAPS)", lambda: prosody.egemaps(np.zeros(16000, np.float32), 16000))
from pipeline.preprocess.diarize import get_diarizer
t("diarization", lambda: get_diarizer(cfg.preprocess.diarization))
print(json.dumps(out))
"""


def components() -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", COMPONENTS], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode not in (0, 134, 139):  # ctranslate2 may crash at interpreter exit (see NOTES)
        raise SystemExit(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def demo_rerun() -> dict[str, float]:
    cli = Path(sys.executable).with_name("emoforge")
    out = Path(tempfile.mkdtemp(prefix="emoforge-cold-")) / "demo"
    subprocess.run([str(cli), "server", "start"], check=True, capture_output=True)
    times = {}
    for name in ("first run", "unchanged rerun"):
        t0 = time.perf_counter()
        subprocess.run([str(cli), "demo", "--out", str(out)], check=True, capture_output=True)
        times[name] = round(time.perf_counter() - t0, 1)
    times["rerun / first"] = round(times["unchanged rerun"] / times["first run"], 2)
    shutil.rmtree(out.parent, ignore_errors=True)
    return times


def main(argv: list[str]) -> None:
    result = {"components_s": components()}
    result["components_s"]["total"] = round(sum(result["components_s"].values()), 2)
    if "--demo" in argv:
        result["demo"] = demo_rerun()
    dest = ROOT / "bench" / "results" / "cold_start.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(result, indent=2))
    print("| component | seconds |\n|---|---|")
    for k, v in result["components_s"].items():
        print(f"| {k} | {v} |")
    if "demo" in result:
        print(f"demo: {result['demo']}")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
