"""Modules that load torch are imported one at a time across threads (pipeline.threads.import_serially):
two threads importing torch at once can hand one of them a half-built torch."""

from __future__ import annotations

import sys
import threading
import time

from pipeline.threads import import_serially


def test_imports_from_many_threads_never_overlap(tmp_path, monkeypatch):
    log = tmp_path / "log.txt"
    # each module's import takes a while and notes when it starts and ends
    for i in range(4):
        (tmp_path / f"slow_module_{i}.py").write_text(
            "import time\n"
            f"open({str(log)!r}, 'a').write('start\\n')\n"
            "time.sleep(0.05)\n"
            f"open({str(log)!r}, 'a').write('end\\n')\n"
            "value = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    results, barrier = [], threading.Barrier(8)

    def load(i: int) -> None:
        barrier.wait()  # all threads ask at once
        results.append(import_serially(f"slow_module_{i % 4}").value)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(8)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [42] * 8
    # four modules, each imported once, strictly one after another: start, end, start, end...
    assert log.read_text().split() == ["start", "end"] * 4
    assert time.perf_counter() - t0 >= 4 * 0.05
    for i in range(4):
        sys.modules.pop(f"slow_module_{i}", None)


def test_an_import_inside_an_import_does_not_deadlock(tmp_path, monkeypatch):
    """A module imported serially may itself call import_serially (torch's thread settings are
    applied while a model package loads): the lock is re-entrant."""
    (tmp_path / "outer_module.py").write_text(
        "from pipeline.threads import import_serially\n"
        "inner = import_serially('inner_module')\n")
    (tmp_path / "inner_module.py").write_text("value = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    done = []
    t = threading.Thread(target=lambda: done.append(import_serially("outer_module").inner.value))
    t.start()
    t.join(timeout=10)
    assert done == [7]
    for name in ("outer_module", "inner_module"):
        sys.modules.pop(name, None)


def test_stage_two_says_when_it_may_load_torch():
    """The flow imports torch before stage 2 when its threads may (pipeline.threads.preload_torch):
    the word-speaker step for speech, and the torch-based backends."""
    from pipeline.preprocess.stage import loads_torch
    from schemas import Span, load_config
    from tests.fixtures.judge_cases import clip

    config = load_config()
    speech = clip("a").model_copy(update={"speech": [Span(start=0.0, end=1.0)]})
    silent = clip("b").model_copy(update={"speech": []})
    assert loads_torch([silent, speech], config)
    assert not loads_torch([silent], config)
    assert loads_torch([silent], load_config(overrides=["preprocess.asr.backend=whisperx"]))


def test_preload_leaves_torch_whole_in_sys_modules():
    from pipeline.threads import preload_torch

    preload_torch()
    import torch

    assert sys.modules["torch"] is torch and isinstance(torch.zeros(1), torch.Tensor)
