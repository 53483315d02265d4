"""torch is loaded whole before stage 2's threads start, when they or the agents may load it
(pipeline.threads.preload_torch): half-imported in one thread it sits in sys.modules, and another
thread's SciPy/scikit-learn array-API check reads it there and fails."""

from __future__ import annotations

import sys


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
