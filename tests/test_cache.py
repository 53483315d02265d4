"""Caches that cannot go stale or be turned against us: a stage's key covers every module of ours it
imports (and a plugin annotator's own source), and cached results are JSON records read as data."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flows.result_cache import ResultCache
from schemas import Reject, SourceSampling

pytestmark = pytest.mark.slow  # runs the pipeline and Python subprocesses

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agents", "evidence", "flows", "pipeline", "schemas", "storage")

CODES = """
import json
from flows.pipeline_flow import SAMPLING_CODE, PREPROCESS_CODE, AGENTS_CODE, annotator_code
from schemas.config import PluginSpec
plugin = PluginSpec(id="p", backend="tests.plugins.crash_once:CrashOnceLexical")
print(json.dumps({"sampling": SAMPLING_CODE, "preprocess": PREPROCESS_CODE, "agents": AGENTS_CODE, "plugin": annotator_code(plugin)}))
"""


def _copy_tree(dst: Path) -> Path:
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (dst / "tests" / "plugins").mkdir(parents=True)
    (dst / "tests" / "__init__.py").touch()
    for f in ("__init__.py", "crash_once.py"):
        shutil.copyfile(ROOT / "tests" / "plugins" / f, dst / "tests" / "plugins" / f)
    return dst


def _codes(tree: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-c", CODES], cwd=tree, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 134, 139) and proc.stdout.strip(), proc.stderr[-2000:]  # 134/139: ctranslate2 at exit
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# an edit\n")


def test_keys_follow_the_imports_of_each_stage(tmp_path):
    tree = _copy_tree(tmp_path / "tree")
    base = _codes(tree)
    # stage 2 decodes with stage 1's decoder and loads models through pipeline/models.py
    _edit(tree / "pipeline" / "sampling" / "decode.py")
    after_decode = _codes(tree)
    assert after_decode["preprocess"] != base["preprocess"] and after_decode["sampling"] != base["sampling"]
    _edit(tree / "pipeline" / "models.py")
    after_models = _codes(tree)
    assert after_models["preprocess"] != after_decode["preprocess"]
    # the judge is stage 4: editing it keeps stages 1-3
    _edit(tree / "agents" / "judge" / "scores.py")
    assert _codes(tree) == after_models
    # the annotators read their emotion vocabulary from evidence/ (shared with the judge): a stage-3 change
    _edit(tree / "evidence" / "lexicon.py")
    after_lexicon = _codes(tree)
    assert after_lexicon["agents"] != after_models["agents"] and after_lexicon["preprocess"] == after_models["preprocess"]
    # a plugin annotator's own source is in its key, and only in its key
    _edit(tree / "tests" / "plugins" / "crash_once.py")
    after_plugin = _codes(tree)
    assert after_plugin["plugin"] != after_lexicon["plugin"]
    assert {k: v for k, v in after_plugin.items() if k != "plugin"} == {k: v for k, v in after_lexicon.items() if k != "plugin"}


RUN = """
import json, sys
from flows.pipeline_flow import run_pipeline
from schemas import load_config
panel = json.dumps([{"id": "lexical", "backend": "lexical"}])
s = run_pipeline([sys.argv[1]], sys.argv[2], load_config(overrides=[f"annotate.panel={panel}"]))
print(json.dumps([[x.computed, x.reused] for x in s.stages[:3]]), flush=True)
import os; os._exit(0)
"""


def test_editing_an_imported_module_is_a_cache_miss(speech_dir, tmp_path):
    tree = _copy_tree(tmp_path / "tree")
    env = {**os.environ, "PYTHONPATH": str(tree)}

    def run() -> list[list[int]]:
        proc = subprocess.run([sys.executable, "-c", RUN, str(speech_dir / "beckett.wav"), str(tmp_path / "run")],
                              cwd=tree, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    first = run()
    assert all(c > 0 and r == 0 for c, r in first)
    assert all(p.suffix == ".json" for p in (tmp_path / "run" / ".cache" / "results").iterdir())
    assert [r for c, r in run()] == [c for c, r in first]  # unchanged code: every stage a hit
    _edit(tree / "pipeline" / "sampling" / "decode.py")  # a module stage 2 imports but does not live in
    third = run()
    assert third[1][0] == first[1][0] and third[1][1] == 0  # stage 2 recomputed


def test_results_are_data_a_foreign_file_cannot_run_code(tmp_path):
    cache = ResultCache(tmp_path / "results")
    value = SourceSampling(source=None, rejects=[Reject(run_id="r", stage="sampling", path="a.mp4", reason="a.mp4: empty file")])
    cache.save("k1", value)
    assert cache.load("k1", SourceSampling) == value
    doc = json.loads(cache.path("k1").read_text())
    assert doc["record"] == "SourceSampling" and doc["key"] == "k1"
    assert cache.load("k1", Reject) is None  # another record type: a miss, not a mix-up

    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    # a pickle, and Prefect's JSON form that names a class to import, planted where a result would be
    cache.path("k2").parent.mkdir(parents=True, exist_ok=True)
    cache.path("k2").write_bytes(pickle.dumps(Payload()))
    assert cache.load("k2", SourceSampling) is None
    cache.path("k3").write_text(json.dumps({"key": "k3", "record": "SourceSampling",
                                            "value": {"__class__": "os.system", "data": f"touch {marker}"}}))
    assert cache.load("k3", SourceSampling) is None
    assert not marker.exists()
