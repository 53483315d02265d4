"""Voice activity detection behind one interface. Every backend uses weights its package carries:
Silero v6 as ONNX inside faster-whisper (batched, ~5x faster than TorchScript, no torch import),
Silero as TorchScript from the silero-vad package, and whisperx's pyannote segmentation checkpoint."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from importlib import metadata
from typing import Callable

import numpy as np

from pipeline.models import shared
from schemas import Span
from schemas.config import VADConfig


class VoiceActivityDetector(ABC):
    name: str
    version: str

    @abstractmethod
    def detect(self, audio: np.ndarray, sample_rate: int) -> list[Span]:
        """Speech regions in a mono float32 signal, in seconds."""


# silence put before the audio for Silero when it heard nothing: its recurrent state starts cold,
# and a word that begins in a file's first few hundred milliseconds never crosses the threshold
# (single-word corpus files, a shouted "Stop!", were read as no speech at all and their clip was
# never made). 16 of Silero's windows (512 samples at 16 kHz, 256 at 8 kHz).
LEAD_IN_S = 0.512


def heard_or_warmed(detect: Callable[[np.ndarray], list[tuple[float, float]]], audio: np.ndarray, sample_rate: int) -> list[Span]:
    """`detect`'s regions on the audio; where it finds none, its regions on the audio after LEAD_IN_S
    of silence, moved back onto the audio's own time and clipped to it. Only a file read as silent is
    read again: a file with speech keeps the regions it had, and so its clips and their ids, which a
    re-annotated dataset's reviews and gold labels are keyed by."""
    duration = audio.size / sample_rate
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    found = detect(audio)
    lead = 0.0
    if not found:
        lead = LEAD_IN_S
        found = detect(np.concatenate([np.zeros(int(LEAD_IN_S * sample_rate), dtype=np.float32), audio]))
    out = []
    for start, end in found:
        start, end = max(0.0, start - lead), min(duration, end - lead)
        if end > start:
            out.append(Span(start=round(start, 3), end=round(end, 3)))
    return out


def restore_torch_threads() -> None:
    # `import silero_vad` sets torch to one thread for the whole process; put back runtime.torch_threads
    from pipeline.threads import apply_torch_threads

    apply_torch_threads()


class SileroOnnxVAD(VoiceActivityDetector):
    """Silero v6 (ONNX) run by faster-whisper's batched implementation."""

    name = "silero-vad-onnx(faster-whisper)"

    def __init__(self, config: VADConfig):
        from faster_whisper import vad as fw_vad

        self._vad = fw_vad
        self.config = config
        self.version = "6@faster-whisper-" + metadata.version("faster-whisper")

    def detect(self, audio: np.ndarray, sample_rate: int) -> list[Span]:
        if sample_rate != 16000:
            raise ValueError(f"silero VAD needs 16 kHz audio, got {sample_rate} Hz (set sampling.audio_sample_rate)")
        if audio.size < sample_rate // 10:
            return []
        c = self.config
        options = self._vad.VadOptions(
            threshold=c.threshold,
            min_speech_duration_ms=int(c.min_speech_s * 1000),
            min_silence_duration_ms=int(c.min_silence_s * 1000),
            speech_pad_ms=int(c.speech_pad_s * 1000),
        )

        def detect(x: np.ndarray) -> list[tuple[float, float]]:
            stamps = self._vad.get_speech_timestamps(x, options, sampling_rate=sample_rate)
            return [(s["start"] / sample_rate, s["end"] / sample_rate) for s in stamps]

        return heard_or_warmed(detect, audio, sample_rate)


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
        import torch

        c = self.config

        def detect(x: np.ndarray) -> list[tuple[float, float]]:
            stamps = self._silero.get_speech_timestamps(
                torch.from_numpy(x), self._model(), threshold=c.threshold, sampling_rate=sample_rate,
                min_speech_duration_ms=int(c.min_speech_s * 1000), min_silence_duration_ms=int(c.min_silence_s * 1000),
                speech_pad_ms=int(c.speech_pad_s * 1000), return_seconds=True,
            )
            return [(float(s["start"]), float(s["end"])) for s in stamps]

        return heard_or_warmed(detect, audio, sample_rate)


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
        import torch

        with self._lock:
            segments = self.pipeline(
                {"waveform": torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None, :], "sample_rate": sample_rate}
            )
        from whisperx.vads.pyannote import Binarize

        c = self.config
        # the pipeline returns frame scores; hysteresis thresholds turn them into regions
        regions = Binarize(
            onset=c.threshold, offset=max(0.05, c.threshold - 0.137), min_duration_on=c.min_speech_s,
            min_duration_off=c.min_silence_s, pad_onset=c.speech_pad_s, pad_offset=c.speech_pad_s,
        )(segments)
        duration = audio.size / sample_rate
        return [
            Span(start=round(max(0.0, seg.start), 3), end=round(min(duration, seg.end), 3))
            for seg in regions.get_timeline().support()
        ]


_BACKENDS = {"silero": SileroOnnxVAD, "silero-jit": SileroVAD, "pyannote": PyannoteVAD}
def get_vad(config: VADConfig) -> VoiceActivityDetector:
    return shared("vad", config, lambda: _BACKENDS[config.backend](config))
