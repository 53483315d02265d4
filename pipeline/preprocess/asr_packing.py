"""Short sources share whisper windows. A corpus of 2 s files costs, file by file, a 30 s encoder
pass each (two when the language is detected): most of stage 2. When the language is known
(`preprocess.asr.language`), the speech clips of short sources are laid end to end, a second of
silence apart, into windows of up to `asr.window_s` seconds; each window is transcribed once, and
each word goes back to the clip it was said in (by its middle), on that clip's own timeline.

Only with a known language: one window is decoded in one language, so files in different languages
must not share one. A source is short when all its speech clips fit in half a window; longer ones
keep their own windows (asr.transcribe_clips)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.preprocess.asr import Transcriber, mean_states, pack_windows
from pipeline.sampling.decode import decode_once
from schemas import Clip, SourceMedia, Word
from schemas.features import ClipTranscript
from schemas.config import ASRConfig

GAP_S = 1.0  # silence between pieces: whisper ends a segment there, and no word straddles two clips



@dataclass
class Piece:
    source_id: str
    clip_id: str
    start: float  # the clip's start on its source's timeline
    audio: np.ndarray


def is_short(clips: list[Clip], config: ASRConfig) -> bool:
    windows = pack_windows(clips, config.window_s)
    return len(windows) == 1 and windows[0].end - windows[0].start <= config.window_s / 2


def packs_across_sources(config: ASRConfig) -> bool:
    return bool(config.language) and config.window_s > 0 and config.pack_sources


def pieces_of(source: SourceMedia, clips: list[Clip], sr: int, prepare=None) -> list[Piece]:
    audio = decode_once(Path(source.path), [], sample_rate=sr, want_video=False).audio  # the task decodes the frames
    if audio is None:
        return []
    out = []
    for i, c in enumerate(clips):
        if not (c.speech and c.has_audio):
            continue
        chunk = audio[int(c.start * sr):min(audio.size, int(c.end * sr))]
        if chunk.size:
            out.append(Piece(source.source_id, c.clip_id, c.start, prepare(chunk) if prepare else chunk))
    return out


def pack(pieces: list[Piece], window_s: float, sr: int) -> list[list[Piece]]:
    """Pieces in order, greedily, into windows of at most `window_s` seconds, gaps included."""
    windows: list[list[Piece]] = []
    length = 0.0
    for p in pieces:
        dur = p.audio.size / sr
        if windows and length + GAP_S + dur <= window_s:
            windows[-1].append(p)
            length += GAP_S + dur
        else:
            windows.append([p])
            length = dur
    return windows


def piece_of(word: Word, offsets: list[float]) -> int | None:
    """The piece a word of a packed window was said in: the last one starting before the word ends.
    By its end, not its middle: after a silence whisper stretches a word's start back into it."""
    t = word.end if word.end is not None else word.start
    if t is None:
        return None
    return max((k for k, off in enumerate(offsets) if off < t), default=0)


def transcribe_packed(asr: Transcriber, pieces: list[Piece], config: ASRConfig, sr: int) -> dict[str, list[ClipTranscript]]:
    """source id -> its clips' transcripts, one ASR call per window of pieces."""
    out: dict[str, list[ClipTranscript]] = {}
    gap = np.zeros(int(GAP_S * sr), np.float32)
    for window in pack(pieces, config.window_s, sr):
        parts, offsets, t = [], [], 0.0
        for k, p in enumerate(window):
            if k:
                parts.append(gap)
                t += GAP_S
            offsets.append(t)
            parts.append(p.audio.astype(np.float32, copy=False))
            t += p.audio.size / sr
        language, words, states, _ = asr.transcribe_encoded(np.concatenate(parts), 0.0, config.language)  # declared: none detected
        owner = [piece_of(w, offsets) for w in words]
        for k, (p, off) in enumerate(zip(window, offsets)):
            dur = p.audio.size / sr
            mine = [w for w, o in zip(words, owner) if o == k]
            shifted = [w.model_copy(update={"start": round(p.start + min(dur, max(0.0, w.start - off)), 3),
                                            "end": None if w.end is None else round(p.start + min(dur, max(0.0, w.end - off)), 3)})
                       for w in mine]
            out.setdefault(p.source_id, []).append(ClipTranscript(clip_id=p.clip_id, language=language or config.language, words=shifted,
                                                                  encoding=mean_states(states, off, off + dur)))
    return out


def transcribe_short_sources(asr: Transcriber, sources: list[tuple[SourceMedia, list[Clip]]], config: ASRConfig, sr: int,
                             prepare=None) -> dict[str, list[ClipTranscript]]:
    """Transcripts of the short sources among `sources`, packed together; the rest are left out (each
    transcribes its own clips in stage 2). Empty unless the language is configured."""
    if not packs_across_sources(config):
        return {}
    short = [(s, c) for s, c in sources if is_short(c, config)]
    pieces = [p for s, c in short for p in pieces_of(s, c, sr, prepare)]
    out = transcribe_packed(asr, pieces, config, sr) if pieces else {}
    for s, c in short:  # a speech clip that gave no piece still gets its (empty) answer
        have = {t.clip_id for t in out.get(s.source_id, [])}
        out.setdefault(s.source_id, []).extend(ClipTranscript(clip_id=cl.clip_id, language=config.language)
                                               for cl in c if cl.speech and cl.has_audio and cl.clip_id not in have)
    return out
