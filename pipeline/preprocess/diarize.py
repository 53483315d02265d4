"""Speaker separation, once per source over the spans of its speech clips:
- the offline diarizer (pipeline/preprocess/diarize_offline.py; registry weights, the default),
- a pyannote.audio pipeline built from a local config file whose checkpoint paths are local
  (pyannote's offline recipe), for users who have those checkpoints,
- `num_speakers: 1`: no model; every word is SPEAKER_00 because the config says so."""

from __future__ import annotations

import threading
from importlib import metadata
from pathlib import Path

import numpy as np

from pipeline.models import shared
from pipeline.preprocess.segmentation import SAMPLE_RATE  # what both diarizers hear
from pipeline.preprocess.weights import DVECTOR, SEGMENTATION_3, WeightsError
from pipeline.threads import apply_torch_threads
from schemas.config import DiarizationConfig
from schemas.features import SpeakerTurn



class Diarizer:
    def __init__(self, config: DiarizationConfig):
        self.config = config
        self.pipeline = None
        self.offline = None
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
        elif config.num_speakers == 1:
            self.name, self.version = "one-speaker(config)", "0"
        else:
            from pipeline.preprocess.diarize_offline import OfflineDiarizer

            self.offline = OfflineDiarizer(config)
            self.name = "offline:segmentation-3.0+dvector+agglomerative"
            self.version = f"{SEGMENTATION_3.spec}+{DVECTOR.spec}"
        self._lock = threading.Lock()

    def diarize_source(self, audio: np.ndarray, sample_rate: int, spans: list[tuple[float, float]],
                       speech: list[tuple[float, float]]) -> list[SpeakerTurn]:
        """Turns on the source timeline, looked for inside `spans` (the speech clips); `speech` is
        where voice activity or ASR words say someone talks."""
        spans = merged_spans(spans, audio.size / sample_rate)
        if not spans:
            return []
        if self.offline is None and self.pipeline is None:
            return [SpeakerTurn(speaker="SPEAKER_00", start=round(a, 3), end=round(b, 3)) for a, b in spans]
        if sample_rate != SAMPLE_RATE:
            from scipy.signal import resample_poly

            audio = resample_poly(audio, SAMPLE_RATE, sample_rate).astype(np.float32)
        if self.offline is not None:
            return self.offline(audio, spans, merged_spans(speech, audio.size / SAMPLE_RATE, join_s=0.0))
        return self._pyannote(audio, spans[0][0], spans[-1][1])

    def _pyannote(self, audio: np.ndarray, start: float, end: float) -> list[SpeakerTurn]:
        import torch

        cfg = self.config
        kwargs = {k: getattr(cfg, k) for k in ("num_speakers", "min_speakers", "max_speakers") if getattr(cfg, k)}
        piece = audio[int(start * SAMPLE_RATE):int(end * SAMPLE_RATE)]
        with self._lock:
            output = self.pipeline({"waveform": torch.from_numpy(piece)[None, :], "sample_rate": SAMPLE_RATE}, **kwargs)
        annotation = getattr(output, "speaker_diarization", output)  # pyannote 4 wraps the annotation
        overlaps = annotation.get_overlap()
        turns = []
        for seg, _, label in annotation.itertracks(yield_label=True):
            turns.append(SpeakerTurn(speaker=str(label), start=round(start + seg.start, 3), end=round(start + seg.end, 3),
                                     overlap=overlaps.crop(seg).duration() > seg.duration / 2))
        return turns


def merged_spans(spans: list[tuple[float, float]], duration: float, join_s: float = 5.0) -> list[tuple[float, float]]:
    """Spans sorted and merged where they are less than `join_s` apart (neighbouring clips then share
    segmentation windows instead of each paying for its own)."""
    out: list[list[float]] = []
    for a, b in sorted((max(0.0, a), min(duration, b)) for a, b in spans):
        if b <= a:
            continue
        if out and a - out[-1][1] <= join_s:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def clip_turns(turns: list[SpeakerTurn], start: float, end: float) -> list[SpeakerTurn]:
    """The source's turns cut to one clip."""
    return [t.model_copy(update={"start": round(max(t.start, start), 3), "end": round(min(t.end, end), 3)})
            for t in turns if t.end > start and t.start < end]


def get_diarizer(config: DiarizationConfig) -> Diarizer:
    return shared("diarizer", config, lambda: Diarizer(config))
