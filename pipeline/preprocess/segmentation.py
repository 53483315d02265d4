"""Local speaker segmentation: pyannote's segmentation-3.0 (ONNX) over sliding 10 s windows. Each
window says, per ~17 ms frame, which of up to three *local* speakers talk (two at most at once);
the local labels mean the same person only within one window, so linking them across windows is
the clustering's job (pipeline/preprocess/diarize_offline.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.preprocess.weights import SEGMENTATION_3

SAMPLE_RATE = 16000
WINDOW_S = 10.0
# the model's frames: SincNet + pooling give one frame every 270 samples, each seeing 991 samples
FRAME_STEP_S = 270 / SAMPLE_RATE
FRAME_SPAN_S = 991 / SAMPLE_RATE
LOCAL_SPEAKERS = 3


@dataclass
class Window:
    start: float  # seconds on the source timeline
    activity: np.ndarray  # [frames, LOCAL_SPEAKERS] bool, decoded from the powerset classes

    def frame_times(self) -> np.ndarray:
        return self.start + np.arange(self.activity.shape[0]) * FRAME_STEP_S + FRAME_SPAN_S / 2


class Segmenter:
    def __init__(self, batch: int = 8):
        import onnxruntime as ort

        options = ort.SessionOptions()
        # one thread: results do not depend on the machine's core count (see pipeline/threads.py),
        # and the stage already runs sources in parallel
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(SEGMENTATION_3.path()), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.batch = batch
        self._mapping = _powerset_mapping()

    def __call__(self, audio: np.ndarray, offset: float, step_s: float) -> list[Window]:
        """Windows over `audio` (16 kHz mono, starting at `offset` seconds): every `step_s` seconds, the
        last one flush with the end; audio shorter than a window is zero-padded (as pyannote does)."""
        size = int(WINDOW_S * SAMPLE_RATE)
        step = max(1, int(step_s * SAMPLE_RATE))
        starts = list(range(0, max(1, audio.size - size + 1), step))
        if audio.size > size and starts[-1] + size < audio.size:
            starts.append(audio.size - size)
        chunks = np.zeros((len(starts), 1, size), np.float32)
        for i, s in enumerate(starts):
            piece = audio[s:s + size]
            chunks[i, 0, :piece.size] = piece
        outs = []
        for b in range(0, len(starts), self.batch):
            outs.append(self.session.run(None, {self.input_name: chunks[b:b + self.batch]})[0])
        logp = np.concatenate(outs)  # [windows, frames, 7] powerset log-probabilities
        activity = self._mapping[logp.argmax(-1)].astype(bool)  # hard powerset decoding
        windows = []
        for i, s in enumerate(starts):
            t0 = offset + s / SAMPLE_RATE
            frames = activity[i]
            if audio.size - s < size:  # the zero padding is not speech; drop its frames
                frames = frames[: int((audio.size - s) / SAMPLE_RATE / FRAME_STEP_S) + 1]
            windows.append(Window(start=t0, activity=frames))
        return windows


def _powerset_mapping() -> np.ndarray:
    """[7, 3]: which local speakers each powerset class means: none, each one alone, each pair.
    pyannote.audio's `Powerset(3, 2).mapping` (tests/test_diarization.py checks it is the same),
    written out so the ONNX path does not import torch and pyannote."""
    return np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=np.int64)
