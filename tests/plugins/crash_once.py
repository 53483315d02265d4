"""A real annotator (the lexical agent) whose process dies the first time it is called, as a worker
killed by the OOM killer or a lost machine would. Named in a config as
`tests.plugins.crash_once:CrashOnceLexical`, with `model` a directory for its marker files."""

from __future__ import annotations

import os
from pathlib import Path

from agents.feature_agents import LexicalAgent


class CrashOnceLexical(LexicalAgent):
    def annotate(self, batch, run_id):
        state = Path(self.spec.model)
        try:  # O_EXCL: exactly one call, across all worker processes, wins the crash
            os.close(os.open(state / "crashed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            os._exit(17)
        answers = super().annotate(batch, run_id)
        # one file per completed call: a retried task that ran twice would leave two for its source
        (state / f"done-{batch[0].clip.source_id}-{os.getpid()}-{os.urandom(3).hex()}").touch()
        return answers
