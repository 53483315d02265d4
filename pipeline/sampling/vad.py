"""Voice activity detection behind one interface. Both backends use weights their packages carry:
silero-vad (TorchScript model inside the wheel) and whisperx's pyannote segmentation checkpoint."""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from importlib import metadata

import numpy as np
import torch

from schemas import Span
from schemas.config import VADConfig


class VoiceActivityDetector(ABC):
    name: str
    version: str

    @abstractmethod
    def detect(self, audio: np.ndarray, sample_rate: int) -> list[Span]:
        """Speech regions in a mono float32 signal, in seconds."""


def restore_torch_threads(n: int | None = None) -> None:
    # `import silero_vad` sets torch to one thread for the whole process; put it back
    torch.set_num_threads(n or os.cpu_count() or 1)


class SileroVAD(VoiceActivityDetector):
    name = "silero-vad"

    def __init__(self, config: VADConfig):
        import silero_vad

        restore_torch_threads()
        self._silero = silero_vad
        self.config = config
        self.version = metadata.version("silero-vad")
        self._local = threading.local()  # the model keeps recurrent state: one per thread

    def _model(self):
        if not hasattr(self._local, "model"):
            self._local.model = self._silero.load_silero_vad(onnx=False)
        return self._local.model

    def detect(self, audio: np.ndarray, sample_rate: int) -> list[Span]:
        if audio.size < sample_rate // 10:
            return []
        c = self.config
        stamps = self._silero.get_speech_timestamps(
            torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)),
            self._model(),
            threshold=c.threshold,
            sampling_rate=sample_rate,
            min_speech_duration_ms=int(c.min_speech_s * 1000),
            min_silence_duration_ms=int(c.min_silence_s * 1000),
            speech_pad_ms=int(c.speech_pad_s * 1000),
            return_seconds=True,
        )
        return [Span(start=float(s["start"]), end=float(s["end"])) for s in stamps]


class PyannoteVAD(VoiceActivityDetector):
    """whisperx's pyannote VAD with the segmentation checkpoint shipped in whisperx/assets."""

    name = "pyannote-vad(whisperx)"

    def __init__(self, config: VADConfig):
        from whisperx.vads.pyannote import load_vad_model

        self.config = config
        self.version = metadata.version("whisperx")
        self.pipeline = load_vad_model("cpu", vad_onset=config.threshold, vad_offset=max(0.05, config.threshold - 0.137))
        restore_torch_threads()
        self._lock = threading.Lock()

    def detect(self, audio: np.ndarray, sample_rate: int) -> list[Span]:
        if audio.size < sample_rate // 10:
            return []
        with self._lock:
            segments = self.pipeline(
                {"waveform": torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None, :], "sample_rate": sample_rate}
            )
        spans = []
        for seg in segments.get_timeline().support():
            start = max(0.0, seg.start - self.config.speech_pad_s)
            end = seg.end + self.config.speech_pad_s
            if end - start >= self.config.min_speech_s:
                spans.append(Span(start=round(start, 3), end=round(end, 3)))
        return spans


_BACKENDS = {"silero": SileroVAD, "pyannote": PyannoteVAD}
_cache: dict[str, VoiceActivityDetector] = {}
_cache_lock = threading.Lock()


def get_vad(config: VADConfig) -> VoiceActivityDetector:
    """One detector per configuration per process: loading weights per clip would dominate."""
    key = config.model_dump_json()
    with _cache_lock:
        if key not in _cache:
            _cache[key] = _BACKENDS[config.backend](config)
        return _cache[key]
