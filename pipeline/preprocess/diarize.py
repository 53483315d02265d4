"""Speaker separation: a pyannote.audio pipeline built from a local config file whose checkpoint
paths are local (pyannote's offline recipe). Without one, every word goes to one speaker and the
clip's notes say so: a fallback that is reported, never a silent guess."""

from __future__ import annotations

import threading
from importlib import metadata
from pathlib import Path

import numpy as np

from pipeline.models import shared
from pipeline.preprocess.weights import WeightsError
from pipeline.threads import apply_torch_threads
from schemas.config import DiarizationConfig
from schemas.features import SpeakerTurn

FALLBACK_NOTE = "diarization: no local pyannote pipeline configured (preprocess.diarization.pipeline); single-speaker fallback"


class Diarizer:
    def __init__(self, config: DiarizationConfig):
        self.config = config
        self.pipeline = None
        self.name = "single-speaker-fallback"
        self.version = "0"
        if config.pipeline:
            path = Path(config.pipeline)
            if not path.is_file():
                raise WeightsError(f"{path}: pyannote pipeline config not found (preprocess.diarization.pipeline)")
            import torch
            from pyannote.audio import Pipeline

            self.pipeline = Pipeline.from_pretrained(path)
            self.pipeline.to(torch.device(config.device))
            apply_torch_threads()  # runtime.torch_threads: torch may have been loaded just now
            self.name = f"pyannote:{path.name}"
            self.version = metadata.version("pyannote.audio")
        self._lock = threading.Lock()

    def diarize(self, audio: np.ndarray, sample_rate: int, offset: float) -> tuple[list[SpeakerTurn], str | None]:
        duration = audio.size / sample_rate
        if self.pipeline is None:
            return [SpeakerTurn(speaker="SPEAKER_00", start=round(offset, 3), end=round(offset + duration, 3))], FALLBACK_NOTE
        import torch

        kwargs = {"num_speakers": self.config.num_speakers} if self.config.num_speakers else {}
        with self._lock:
            output = self.pipeline({"waveform": torch.from_numpy(audio)[None, :], "sample_rate": sample_rate}, **kwargs)
        annotation = getattr(output, "speaker_diarization", output)  # pyannote 4 wraps the annotation
        turns = [
            SpeakerTurn(speaker=str(label), start=round(offset + seg.start, 3), end=round(offset + seg.end, 3))
            for seg, _, label in annotation.itertracks(yield_label=True)
        ]
        return turns, None


def get_diarizer(config: DiarizationConfig) -> Diarizer:
    return shared("diarizer", config, lambda: Diarizer(config))
