"""A real annotator (the lexical agent) that notes, for every job it answers, which GPUs its process
was given and which instance (which loaded model) answered: a file
`cuda-<CUDA_VISIBLE_DEVICES>-<pid>-<instance>-<source_id>` in the directory named by its `model`.
A file `sleep` in that directory makes every job first wait that many seconds (a slow model). Named in
a config as `tests.plugins.gpu_probe:GpuProbeLexical`."""

from __future__ import annotations

import os
import time
from pathlib import Path

from agents.feature_agents import LexicalAgent


class GpuProbeLexical(LexicalAgent):
    def annotate(self, batch, run_id):
        gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        sleep = Path(self.spec.model) / "sleep"
        if sleep.exists():
            time.sleep(float(sleep.read_text()))
        (Path(self.spec.model) / f"cuda-{gpus}-{os.getpid()}-{id(self)}-{batch[0].clip.source_id}").touch()
        return super().annotate(batch, run_id)
