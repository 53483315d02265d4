"""Speech recognition with word timings. Backends:
- faster-whisper: a local CTranslate2 directory or a hub id; word times from cross-attention.
  The offline default is whisper base assembled from packages (weights.whisper_base_dir).
- whisperx: whisperx.load_model (same CTranslate2 models), plus forced alignment with a wav2vec2
  model when `align_model` names a local directory (large-v3 + alignment is the GPU configuration).

Whisper hears 30 s at a time whatever it is given: a 3 s clip costs a full 30 s encoder pass. So
the speech clips of a source are packed into windows of up to `asr.window_s` seconds of the source
(as WhisperX packs VAD segments), each window is transcribed once, and its words go back to the
clips they fall in. The language is detected once per source (on its first window), or taken from
`asr.language`. A detected language keeps whisper's probability for it: on a word or two of a
language whisper knows poorly it guesses, often English, and transcribes what it guessed ("Thank you
very much." for a Polish word), so readers of the words can tell a heard transcript from a guessed one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from importlib import metadata
from typing import NamedTuple

import numpy as np

from pipeline.models import shared
from pipeline.preprocess.weights import whisper_base_dir
from pipeline.threads import ctranslate2_threads, pin_blas_threads
from schemas import Clip, Word
from schemas.config import ASRConfig


ENCODER_FPS = 50  # whisper's encoder: 1500 states per 30 s window


class Heard(NamedTuple):
    """What one ASR call gives."""

    language: str | None
    words: list[Word]
    states: np.ndarray | None = None  # the encoder's states over the first 30 s, where the backend exposes them
    language_probability: float | None = None  # whisper's, where it detected the language in this call


class Transcriber:
    name: str
    version: str

    def transcribe(self, audio: np.ndarray, offset: float, language: str | None = None) -> tuple[str | None, list[Word]]:
        """Words of 16 kHz mono audio, with times shifted by `offset` onto the source timeline, in
        `language` (None: the configured language, else detected)."""
        raise NotImplementedError

    def transcribe_encoded(self, audio: np.ndarray, offset: float, language: str | None = None) -> Heard:
        """`transcribe`, plus the encoder's states over the first 30 s of `audio` ((frames, dim),
        ENCODER_FPS a second) where the backend exposes them: the ASR model's own acoustic reading
        of the speech, which the learned voice model reads (agents/learned_voice.py); and the
        probability of the language where this call detected it."""
        return Heard(*self.transcribe(audio, offset, language))


def mean_states(states: np.ndarray | None, start_s: float, end_s: float) -> list[float] | None:
    """The mean encoder state over [start_s, end_s) of a window (seconds from its start)."""
    if states is None:
        return None
    a, b = max(0, int(start_s * ENCODER_FPS)), min(states.shape[0], int(np.ceil(end_s * ENCODER_FPS)))
    if b <= a:
        return None
    return [round(float(v), 4) for v in states[a:b].mean(axis=0)]


def _to_numpy(view) -> np.ndarray | None:
    """A CTranslate2 StorageView as (frames, dim); None where it cannot be read on the host."""
    try:
        arr = np.asarray(view)
    except Exception:  # on a GPU: copy to the host first
        try:
            import ctranslate2

            arr = np.asarray(view.to_device(ctranslate2.Device.cpu))
        except Exception:
            return None
    return arr[0] if arr.ndim == 3 else arr


@dataclass(frozen=True)
class ModelId:
    name: str
    version: str


def transcriber_id(config: ASRConfig) -> ModelId:
    """What transcribes under `config`, for provenance, without loading it."""
    return ModelId(f"{config.backend}:{config.model}", metadata.version(config.backend))


def resolve_model(config: ASRConfig) -> str:
    return str(whisper_base_dir()) if config.model == "packaged:whisper-base" else config.model


def _reusing_encoder_model(**kwargs):
    """A faster-whisper WhisperModel that encodes the same 30 s window once. faster-whisper (1.2)
    encodes the first window twice when it detects the language: once to detect it, once to
    transcribe; on a short clip that second encoder pass is about half the ASR time."""
    from faster_whisper import WhisperModel

    class ReusingEncoder(WhisperModel):
        _last: tuple[np.ndarray, object] | None = None
        first: object | None = None  # the first window's encoder output since it was last reset

        def encode(self, features):
            last = self._last
            if last is not None and last[0].shape == features.shape and np.array_equal(last[0], features):
                out = last[1]
            else:
                out = super().encode(features)
                self._last = (np.array(features, copy=True), out)
            if self.first is None:
                self.first = out
            return out

    return ReusingEncoder(**kwargs)


class FasterWhisperASR(Transcriber):
    def __init__(self, config: ASRConfig):
        self.config = config
        self.model_path = resolve_model(config)
        ident = transcriber_id(config)
        self.name, self.version = ident.name, ident.version
        self.model = _reusing_encoder_model(model_size_or_path=self.model_path, device=config.device, compute_type=config.compute_type,
                                            cpu_threads=ctranslate2_threads(config.cpu_threads))
        self._lock = threading.Lock()

    def _detect_language(self, audio: np.ndarray) -> tuple[str, float | None]:
        """The language of the first window and its probability, encoded exactly as transcription
        will encode it (the same frames: generate_segments leaves out the extractor's last frame), so
        that pass is reused. An English-only model detects nothing (None)."""
        from faster_whisper.audio import pad_or_trim

        if not self.model.model.is_multilingual:
            return "en", None
        features = self.model.feature_extractor(audio)
        first = pad_or_trim(features[:, :min(self.model.feature_extractor.nb_max_frames, features.shape[-1] - 1)])
        token, prob = self.model.model.detect_language(self.model.encode(first))[0][0]
        return token[2:-2], round(float(prob), 4)

    def transcribe(self, audio, offset, language=None):
        return self.transcribe_encoded(audio, offset, language)[:2]

    def transcribe_encoded(self, audio, offset, language=None):
        if audio.size < 1600:
            return Heard(None, [])
        with self._lock:
            self.model.first = None
            language, probability = language or self.config.language, None
            if not language:
                language, probability = self._detect_language(audio)
            segments, info = self.model.transcribe(
                audio, language=language, beam_size=self.config.beam_size, word_timestamps=True,
                vad_filter=False, condition_on_previous_text=False, temperature=list(self.config.temperatures),
            )
            words = [
                Word(text=w.word.strip(), start=round(offset + w.start, 3), end=round(offset + w.end, 3), confidence=round(w.probability, 4))
                for s in segments for w in (s.words or []) if w.word.strip()
            ]
            states = _to_numpy(self.model.first) if self.model.first is not None else None
            self.model.first = None
        return Heard(info.language, words, states, probability)


class WhisperXASR(Transcriber):
    def __init__(self, config: ASRConfig):
        import whisperx

        self.config = config
        self._wx = whisperx
        ident = transcriber_id(config)
        self.name, self.version = ident.name, ident.version
        self.model = whisperx.load_model(
            resolve_model(config), config.device, compute_type=config.compute_type, language=config.language,
            vad_method="pyannote", threads=ctranslate2_threads(config.cpu_threads),
            asr_options={"temperatures": list(config.temperatures), "beam_size": config.beam_size},
        )
        self.align = None
        if config.align_model:
            self.align = whisperx.load_align_model(language_code=config.language or "en", device=config.device, model_name=config.align_model)
        self._lock = threading.Lock()

    def transcribe(self, audio, offset, language=None):
        if audio.size < 1600:
            return None, []
        with self._lock:
            result = self.model.transcribe(audio, batch_size=self.config.batch_size, language=language or self.config.language)
            language = result.get("language")
            if self.align is not None:
                model, meta = self.align
                result = self._wx.align(result["segments"], model, meta, audio, self.config.device, return_char_alignments=False)
                words = [w for s in result["segments"] for w in s.get("words", [])]
            else:
                words = [w for s in result["segments"] for w in spread_words(s["text"], s["start"], s["end"])]
        out = []
        for w in words:
            start, end = w.get("start"), w.get("end")
            out.append(Word(text=w["word"].strip(), start=None if start is None else round(offset + start, 3),
                            end=None if end is None else round(offset + end, 3), confidence=w.get("score")))
        return language, out


def spread_words(text: str, start: float, end: float) -> list[dict]:
    """Approximate word times without a forced aligner: the segment's span shared out by word length
    (whisperx gives only segment times unless a wav2vec2 alignment model is available)."""
    tokens = text.split()
    total = sum(len(t) for t in tokens) or 1
    out, t = [], start
    for tok in tokens:
        dur = (end - start) * len(tok) / total
        out.append({"word": tok, "start": round(t, 3), "end": round(t + dur, 3), "score": None})
        t += dur
    return out


@dataclass
class Window:
    """A stretch of the source transcribed in one go, and the clips (indices) it serves."""

    start: float
    end: float
    clips: list[int] = field(default_factory=list)


def pack_windows(clips: list[Clip], window_s: float) -> list[Window]:
    """The speech clips of one source, in time order, joined into windows of at most `window_s`
    seconds of source time; a clip never straddles two windows. `window_s` 0: one window per clip."""
    order = sorted((i for i, c in enumerate(clips) if c.speech and c.has_audio), key=lambda i: (clips[i].start, clips[i].end))
    windows: list[Window] = []
    for i in order:
        c = clips[i]
        last = windows[-1] if windows else None
        if last is not None and window_s > 0 and max(last.end, c.end) - last.start <= window_s:
            last.end = max(last.end, c.end)
            last.clips.append(i)
        else:
            windows.append(Window(c.start, c.end, [i]))
    return windows


def words_in(words: list[Word], start: float, end: float) -> list[Word]:
    """The words whose middle lies in [start, end): each word of a window goes to the clip it is said in."""
    return [w for w in words if w.start is not None and start <= (w.start + (w.end if w.end is not None else w.start)) / 2 < end]


@dataclass(frozen=True)
class Said:
    """What ASR gives one clip: the language, its words, and the mean encoder state over its span."""

    language: str | None
    words: list[Word]
    encoding: list[float] | None = None
    language_probability: float | None = None  # whisper's for the source's detected language (None: declared)


def transcribe_clips(asr: Transcriber, clips: list[Clip], audio: np.ndarray, sr: int, config: ASRConfig,
                     prepare=None) -> dict[int, Said]:
    """Language, words and encoder mean of every speech clip of a source (by clip index), one ASR
    call per window. `prepare` maps a window's audio before ASR (denoising)."""
    out: dict[int, Said] = {}
    language, probability = config.language, None
    for w in pack_windows(clips, config.window_s):
        a, b = int(w.start * sr), min(audio.size, int(w.end * sr))
        chunk = audio[a:b] if b > a else np.zeros(0, np.float32)
        heard = asr.transcribe_encoded(prepare(chunk) if prepare else chunk, w.start, language)
        if not language and heard.language:  # detected once per source, on its first window
            language, probability = heard.language, heard.language_probability
        for i in w.clips:
            c = clips[i]
            out[i] = Said(heard.language, words_in(heard.words, c.start, c.end) if len(w.clips) > 1 else heard.words,
                          mean_states(heard.states, c.start - w.start, c.end - w.start),
                          probability if heard.language == language else heard.language_probability)
    return out


_BACKENDS = {"faster-whisper": FasterWhisperASR, "whisperx": WhisperXASR}
def get_transcriber(config: ASRConfig) -> Transcriber:
    pin_blas_threads()  # the features whisper decodes from must not depend on the runner
    return shared("asr", config, lambda: _BACKENDS[config.backend](config))
