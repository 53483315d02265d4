"""Prosody: pitch and intensity contours (Praat via parselmouth), pauses and speaking rate from the
word timings, and the standard eGeMAPS v02 functionals (openSMILE). All weight-free."""

from __future__ import annotations

import threading

import numpy as np

from schemas.config import ProsodyConfig
from schemas.features import NamedValue, Prosody, ProsodyWindow, Word

_smile = None
_smile_lock = threading.Lock()


def egemaps(audio: np.ndarray, sample_rate: int) -> list[NamedValue]:
    global _smile
    import opensmile

    with _smile_lock:
        if _smile is None:
            _smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)
        frame = _smile.process_signal(audio, sample_rate)
    return [NamedValue(name=str(k), value=round(float(v), 6)) for k, v in frame.iloc[0].items()]


def contours(audio: np.ndarray, sample_rate: int, config: ProsodyConfig):
    """(times, pitch Hz with NaN where unvoiced, intensity times, intensity dB), times from clip start."""
    import parselmouth

    snd = parselmouth.Sound(audio.astype(np.float64), sampling_frequency=sample_rate)
    pitch = snd.to_pitch(time_step=0.01, pitch_floor=config.pitch_floor_hz, pitch_ceiling=config.pitch_ceiling_hz)
    f0 = pitch.selected_array["frequency"]
    f0 = np.where(f0 > 0, f0, np.nan)
    intensity = snd.to_intensity(minimum_pitch=config.pitch_floor_hz, time_step=0.01)
    return pitch.xs(), f0, intensity.xs(), intensity.values[0]


def _mean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return round(float(values.mean()), 3) if values.size else None


def analyse(audio: np.ndarray, sample_rate: int, offset: float, words: list[Word], speech_s: float, config: ProsodyConfig) -> Prosody:
    """Prosody of a clip. `offset` puts clip-relative times on the source timeline; `speech_s` is the
    VAD speech time inside the clip (the pause ratio's complement when there are no words)."""
    duration = audio.size / sample_rate
    if duration < 0.1:
        return Prosody()
    pt, f0, it, db = contours(audio, sample_rate, config)
    voiced = f0[np.isfinite(f0)]
    windows: list[ProsodyWindow] = []

    def window(start: float, end: float, word_index: int | None) -> ProsodyWindow:
        a, b = start - offset, end - offset
        return ProsodyWindow(start=round(start, 3), end=round(end, 3), pitch_hz=_mean(f0[(pt >= a) & (pt < b)]),
                             intensity_db=_mean(db[(it >= a) & (it < b)]), word_index=word_index)

    timed = [(i, w) for i, w in enumerate(words) if w.start is not None and w.end is not None and w.end > w.start]
    if timed:
        windows = [window(w.start, w.end, i) for i, w in timed]
        spoken = sum(w.end - w.start for _, w in timed)
        gaps = [b.start - a.end for (_, a), (_, b) in zip(timed, timed[1:])]
        pauses = sum(g for g in gaps if g >= config.min_pause_s)
        span = timed[-1][1].end - timed[0][1].start
        pause_ratio = pauses / span if span > 0 else 0.0
        rate = len(timed) / spoken if spoken > 0 else None
    else:
        t = 0.0
        while t < duration - 1e-6:
            windows.append(window(offset + t, offset + min(duration, t + config.window_s), None))
            t += config.window_s
        pause_ratio = max(0.0, 1.0 - speech_s / duration)
        rate = None
    return Prosody(
        pitch_mean_hz=round(float(voiced.mean()), 2) if voiced.size else None,
        pitch_std_hz=round(float(voiced.std()), 2) if voiced.size else None,
        intensity_mean_db=_mean(db),
        pause_ratio=round(pause_ratio, 4),
        speech_rate_wps=round(rate, 3) if rate else None,
        functionals=egemaps(audio, sample_rate) if config.egemaps else [],
        windows=windows,
    )


def denoise(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Spectral gating (noisereduce): stationary noise estimated from the clip itself."""
    import noisereduce

    return noisereduce.reduce_noise(y=audio, sr=sample_rate, stationary=True).astype(np.float32)
