"""Stage 2 for one source: one decode pass (16 kHz audio + the frames faces are read from), then per
clip ASR with word times, speakers, prosody and faces, all on the source timeline."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.preprocess import prosody as prosody_mod
from pipeline.preprocess.asr import Said, get_transcriber, transcribe_clips, transcriber_id
from pipeline.preprocess.diarize import clip_turns, get_diarizer
from pipeline.preprocess.faces import au_against_neutral, get_face_analyzer, person_neutral, track
from pipeline.sampling.decode import DecodedFrame, decode_once
from pipeline.threads import use_torch_threads
from schemas import Clip, ClipFeatures, EmoforgeConfig, FaceObservation, Provenance, Reject, SourceMedia
from schemas.config import FaceConfig
from schemas.features import ClipTranscript, SpeakerTurn, Word

STAGE = "preprocess"


def frame_times(clip: Clip, fps: float, max_frames: int, min_frames: int = 1) -> list[float]:
    """Key-frame times plus an even grid through the clip, at least `min_frames` (a short clip is
    sampled more densely) and at most `max_frames`; a photo's one frame."""
    if clip.kind == "still":
        return [clip.start]
    n = max(1, min(max_frames, max(min_frames, int(round(clip.duration * fps)))))
    grid = [clip.start + (k + 0.5) * clip.duration / n for k in range(n)]
    # a clip with no frame of its own that changed shows the last key frame before it (stage 1): that
    # frame is the clip's picture, but a face measured there would be evidence from outside the clip
    inside = [k.time for k in clip.keyframes if clip.start <= k.time <= clip.end]
    times = sorted({round(t, 3) for t in grid + inside})
    if len(times) > max_frames:
        idx = np.linspace(0, len(times) - 1, max_frames).round().astype(int)
        times = [times[i] for i in sorted(set(idx))]
    return times


class FrameSampler:
    """Frame consumer: analyses faces on the first frame at or after each requested time."""

    def __init__(self, requests: list[tuple[float, int]], analyzer):
        self.requests = sorted(requests)
        self.analyzer = analyzer
        self.pos = 0
        self.found: dict[int, list] = {}  # clip index -> [(time, frame_index, [FaceResult])]

    def on_frame(self, frame: DecodedFrame) -> None:
        hits = []
        while self.pos < len(self.requests) and self.requests[self.pos][0] <= frame.time + 1e-3:
            hits.append(self.requests[self.pos][1])
            self.pos += 1
        if not hits:
            return
        faces = self.analyzer.analyse(frame.full_bgr())
        for clip_index in set(hits):
            self.found.setdefault(clip_index, []).append((frame.time, frame.index, faces))

    def finish(self, end_time: float) -> None:
        pass


def loads_torch(clips: list[Clip], config: EmoforgeConfig) -> bool:
    """Whether stage 2 may import torch from its worker threads: the word-speaker step (whisperx,
    which loads torch and pyannote) runs for clips with speech; WhisperX ASR, a pyannote pipeline
    and py-feat load it too. The flow then imports torch first (pipeline.threads.preload_torch)."""
    p = config.preprocess
    return (any(c.speech for c in clips) or p.asr.backend == "whisperx" or bool(p.diarization.pipeline)
            or (p.faces.backend == "py-feat" and any(c.has_video for c in clips)))


def assign_speakers(words: list[Word], turns: list[SpeakerTurn]) -> list[Word]:
    """whisperx's assign_word_speakers: each word gets the speaker it overlaps most (the nearest one
    when it overlaps none); a word mostly inside an overlap turn is marked `overlap`."""
    import pandas as pd
    from whisperx.diarize import assign_word_speakers  # loads torch and pyannote: see loads_torch

    timed = [w for w in words if w.start is not None]
    if not timed or not turns:
        return words
    diarize_df = pd.DataFrame([{"start": t.start, "end": t.end, "speaker": t.speaker} for t in turns])
    transcript = {"segments": [{"start": timed[0].start, "end": timed[-1].end,
                                "words": [{"word": w.text, "start": w.start, "end": w.end} for w in words]}]}
    result = assign_word_speakers(diarize_df, transcript, fill_nearest=True)
    assigned = result["segments"][0]["words"]
    overlaps = [t for t in turns if t.overlap]
    return [w.model_copy(update={"speaker": a.get("speaker"), "overlap": _mostly_overlapped(w, overlaps)}) for w, a in zip(words, assigned)]


def _mostly_overlapped(word: Word, overlaps: list[SpeakerTurn]) -> bool:
    if word.start is None or word.end is None or word.end <= word.start:
        return False
    inside = sum(max(0.0, min(word.end, t.end) - max(word.start, t.start)) for t in overlaps)
    return inside > (word.end - word.start) / 2


def main_track(observations: list[FaceObservation]) -> tuple[int | None, str | None]:
    if not observations:
        return None, None
    frames = len({o.frame_index for o in observations})
    stats: dict[int, list[float]] = {}
    for o in observations:
        stats.setdefault(o.track_id, []).append(o.bbox.width * o.bbox.height)
    # the person the clip is about: on screen most often, and large when there
    best = max(stats, key=lambda t: (len(stats[t]) * float(np.mean(stats[t]))))
    reason = (f"track {best}: visible in {len(stats[best])} of {frames} sampled frames, mean face "
              f"{np.sqrt(np.mean(stats[best])):.0f} px; {len(stats)} face track(s) in the clip")
    return best, reason


def preprocess_source(source: SourceMedia, clips: list[Clip], config: EmoforgeConfig, run_id: str,
                      transcripts: list[ClipTranscript] | None = None) -> tuple[list[ClipFeatures], list[Reject]]:
    """Never raises for bad media: a failure becomes a reject row for the clip or source.
    `transcripts`: the clips' words when they were transcribed already, packed with other sources."""
    path = Path(source.path)
    use_torch_threads(config.runtime.torch_threads)  # pyannote diarization runs torch
    try:
        return _preprocess(path, source, clips, config, run_id, packed=transcripts)
    except Exception as exc:
        last = traceback.extract_tb(exc.__traceback__)[-1]
        reason = f"{path}: {type(exc).__name__}: {exc} (at {Path(last.filename).name}:{last.lineno})"
        return [], [Reject(run_id=run_id, stage=STAGE, path=str(path), source_id=source.source_id, reason=reason, error_type=type(exc).__name__)]


def _preprocess(path, source, clips, config, run_id, packed=None):
    cfg = config.preprocess
    sr = config.sampling.audio_sample_rate
    any_video = any(c.has_video for c in clips)
    analyzer = get_face_analyzer(cfg.faces) if any_video else None
    f = cfg.faces
    requests = [(t, i) for i, c in enumerate(clips) if c.has_video
                for t in frame_times(c, f.sample_fps, f.max_frames_per_clip, f.min_frames_per_clip)]
    sampler = FrameSampler(requests, analyzer) if requests else None
    decoded = decode_once(path, [sampler] if sampler else [], sample_rate=sr, analysis_width=64)
    audio = decoded.audio if decoded.audio is not None else np.zeros(0, np.float32)

    need_asr = any(c.speech for c in clips)
    asr = get_transcriber(cfg.asr) if need_asr and packed is None else None
    diarizer = get_diarizer(cfg.diarization) if need_asr else None
    models = [m for m in (transcriber_id(cfg.asr) if need_asr else None, diarizer, analyzer) if m is not None]
    prov = Provenance(
        stage=STAGE, stage_config_hash=config.stage_hash(STAGE), run_id=run_id,
        model_id="+".join(m.name for m in models) or None, model_version="+".join(m.version for m in models) or None,
    )
    denoise = (lambda x: prosody_mod.denoise(x, sr)) if cfg.asr.denoise else None
    if packed is not None:  # transcribed already, in windows shared with other short sources
        by_id = {t.clip_id: Said(t.language, t.words, t.encoding) for t in packed}
        said = {i: by_id[c.clip_id] for i, c in enumerate(clips) if c.clip_id in by_id}
    else:
        said = transcribe_clips(asr, clips, audio, sr, cfg.asr, denoise) if asr is not None else {}
    transcripts = {i: _transcript(clip, audio, sr, said.get(i)) for i, clip in enumerate(clips)}
    turns, diarize_error = _diarize(diarizer, audio, sr, clips, transcripts)
    features, rejects = [], []
    for i, clip in enumerate(clips):
        try:
            if diarize_error is not None and transcripts[i].spoken:
                raise diarize_error
            features.append(_clip_features(i, clip, audio, sr, sampler, transcripts[i], turns, config, prov))
        except Exception as exc:  # one broken clip never loses the others
            rejects.append(Reject(run_id=run_id, stage=STAGE, path=str(path), source_id=source.source_id, clip_id=clip.clip_id,
                                  reason=f"{path} [{clip.clip_id}]: {type(exc).__name__}: {exc}", error_type=type(exc).__name__))
    features = against_own_neutral(features, cfg.faces)
    if decoded.error:
        rejects.append(Reject(run_id=run_id, stage=STAGE, path=str(path), source_id=source.source_id, severity="warning",
                              reason=f"{path}: {decoded.error}", error_type="TruncatedMedia"))
    return features, rejects


@dataclass
class Transcript:
    language: str | None = None
    words: list[Word] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    spoken: bool = False  # the clip has speech that was transcribed, so it needs speakers
    encoding: list[float] | None = None  # mean whisper encoder state over the clip
    language_probability: float | None = None


def _clip_audio(clip: Clip, audio: np.ndarray, sr: int) -> np.ndarray:
    a, b = int(clip.start * sr), min(audio.size, int(clip.end * sr))
    return audio[a:b] if clip.has_audio and b > a else np.zeros(0, np.float32)


def _transcript(clip: Clip, audio: np.ndarray, sr: int, said: Said | None) -> Transcript:
    if _clip_audio(clip, audio, sr).size == 0:
        return Transcript(notes=["no audio: no transcript, speakers or prosody"])
    if not clip.speech:
        return Transcript(notes=["no speech detected in clip: no transcript or speakers"])
    said = said or Said(None, [])
    return Transcript(said.language, said.words, [] if said.words else ["ASR returned no words for the speech in this clip"],
                      spoken=True, encoding=said.encoding, language_probability=said.language_probability)


def _diarize(diarizer, audio, sr, clips, transcripts) -> tuple[list[SpeakerTurn], Exception | None]:
    """Once per source, over its speech clips: speaker labels then hold across the clips. Where people
    talk: the clips' voice activity plus the ASR's words (the VAD misses a short quiet 'yes')."""
    spoken = [i for i, t in transcripts.items() if t.spoken]
    if not spoken:
        return [], None
    spans = [(clips[i].start, clips[i].end) for i in spoken]
    speech = [(s.start, s.end) for i in spoken for s in clips[i].speech]
    speech += [(w.start, w.end) for i in spoken for w in transcripts[i].words if w.start is not None and w.end is not None]
    try:
        return diarizer.diarize_source(audio, sr, spans, speech), None
    except Exception as exc:  # the speech clips are rejected with this error; the others go on
        return [], exc


def _clip_features(i, clip, audio, sr, sampler, transcript, source_turns, config, prov) -> ClipFeatures:
    cfg = config.preprocess
    notes = list(transcript.notes)
    clip_audio = _clip_audio(clip, audio, sr)
    words, turns = transcript.words, []
    if transcript.spoken:
        turns = clip_turns(source_turns, clip.start, clip.end)
        words = assign_speakers(words, turns)
        if cfg.diarization.num_speakers == 1 and not cfg.diarization.pipeline:
            notes.append("speakers: one per source (preprocess.diarization.num_speakers=1)")
    speech_s = sum(s.end - s.start for s in clip.speech)
    prosody = prosody_mod.analyse(clip_audio, sr, clip.start, words, speech_s, cfg.prosody) if clip_audio.size else None

    faces: list[FaceObservation] = []
    if clip.has_video and sampler is not None:
        found = sorted(sampler.found.get(i, []), key=lambda x: x[0])
        ids = track([[f.bbox for f in res] for _, _, res in found])
        for (t, frame_index, results), frame_ids in zip(found, ids):
            for res, tid in zip(results, frame_ids):
                faces.append(FaceObservation(time=round(t, 4), frame_index=frame_index, track_id=tid, bbox=res.bbox,
                                             detection_score=res.score, landmarks=res.landmarks,
                                             action_units=res.action_units, geometry=res.geometry, expression=res.expression))
        if not faces:
            notes.append(f"no face found in {len(found)} sampled frames")
    elif not clip.has_video:
        notes.append("no video: no faces")
    main, reason = main_track(faces)
    return ClipFeatures(clip_id=clip.clip_id, language=transcript.language, language_probability=transcript.language_probability,
                        words=words, speakers=turns, prosody=prosody, faces=faces,
                        main_track_id=main, main_track_reason=reason, notes=notes, speech_encoding=transcript.encoding, provenance=prov)


# every note that says which neutral a clip's AUs are measured against starts so (one per clip)
AU_REFERENCE_NOTE = "action units "


def with_au_reference(f: ClipFeatures, neutral: dict[str, float] | None, note: str) -> ClipFeatures:
    """`f` with its main face's AUs re-measured against `neutral` (None: left as measured) and `note`
    in place of any earlier note on their reference."""
    faces = f.faces if neutral is None else [
        o.model_copy(update={"action_units": au_against_neutral({g.name: g.value for g in o.geometry}, neutral)})
        if o.track_id == f.main_track_id else o for o in f.faces]
    notes = [x for x in f.notes if not x.startswith(AU_REFERENCE_NOTE)]
    return f.model_copy(update={"faces": faces, "notes": [*notes, note]})


def against_own_neutral(features: list[ClipFeatures], config: FaceConfig) -> list[ClipFeatures]:
    """Re-measure the main faces' action units against the person's own neutral face, estimated from
    their least expressive frames over the whole source (one main person per source is assumed: the
    main track of each clip). Done here rather than in an agent so the stored AUs, which the judge
    checks cited AUs against, are the ones the FACS agent reads. A source whose face never moves (a
    still picture), has too few frames or is seen too briefly keeps the population-typical proxies,
    and its notes say which reference was used and why."""
    main = [o for f in features for o in f.faces if o.track_id == f.main_track_id]
    geoms = [{g.name: g.value for g in o.geometry} for o in main]
    if not geoms:
        return features
    span = max(o.time for o in main) - min(o.time for o in main)
    # an expression is held for up to about four seconds (Ekman 2003): in a shorter source the calmest
    # frames are the expression itself, and against them a smile held throughout is no movement
    neutral = (person_neutral(geoms, config.neutral_calm_share, config.neutral_min_frames)
               if span >= config.neutral_min_span_s else None)
    if neutral is None:
        why = (f"only {len(geoms)} main-face frames in this source, {config.neutral_min_frames} needed" if len(geoms) < config.neutral_min_frames
               else f"the face is seen for {span:.1f} s in this source, {config.neutral_min_span_s:g} s needed" if span < config.neutral_min_span_s
               else "the face does not move enough in this source")
        note = f"{AU_REFERENCE_NOTE}against population-typical neutral values ({why} to know this person's own neutral)"
    else:
        note = (f"{AU_REFERENCE_NOTE}of the main face against this person's own neutral (median of the least expressive "
                f"{config.neutral_calm_share:.0%} of {len(geoms)} frames in the source)")
    return [f if f.main_track_id is None else with_au_reference(f, neutral, note) for f in features]
