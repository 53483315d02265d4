"""A real annotator (the lexical agent) that notes which GPUs its process was given: a file named
`cuda-<CUDA_VISIBLE_DEVICES>-<pid>` in the directory named by its `model`. Named in a config as
`tests.plugins.gpu_probe:GpuProbeLexical`."""

from __future__ import annotations

import os
from pathlib import Path

from agents.feature_agents import LexicalAgent


class GpuProbeLexical(LexicalAgent):
    def annotate(self, batch, run_id):
        (Path(self.spec.model) / f"cuda-{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}-{os.getpid()}").touch()
        return super().annotate(batch, run_id)
