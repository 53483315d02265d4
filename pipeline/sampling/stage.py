"""Stage 1 for one source: probe, one decode pass (audio for VAD, frames for shots and key-frame
candidates), clip rules, key frames per clip, instruction per clip. Failures become reject rows."""

from __future__ import annotations

import shutil
import traceback
from importlib import metadata
from pathlib import Path

from pipeline.sampling import clips as clip_rules
from pipeline.sampling.decode import decode_once
from pipeline.sampling.instructions import render, template_hash
from pipeline.sampling.keyframes import KeyframeCandidates
from pipeline.sampling.media import STILL_FRAME_S, MediaError, probe
from pipeline.threads import use_torch_threads
from pipeline.sampling.shots import ShotDetector
from pipeline.sampling.vad import get_vad
from schemas import Clip, EmoforgeConfig, Provenance, Reject, Shot, SourceSampling
from storage import RunDir

STAGE = "sampling"


def clip_id(source_id: str, start: float, end: float) -> str:
    return f"{source_id[:12]}-{int(round(start * 1000)):07d}-{int(round(end * 1000)):07d}"


def sample_source(path: Path, sha256: str, config: EmoforgeConfig, run: RunDir, run_id: str) -> SourceSampling:
    """Never raises for a bad file: what cannot be used comes back as rejects."""
    path = Path(path)
    use_torch_threads(config.runtime.torch_threads)  # silero VAD runs torch

    def reject(reason: str, error_type: str, severity: str = "error", source_id: str | None = None) -> Reject:
        return Reject(run_id=run_id, stage=STAGE, path=str(path), source_id=source_id, severity=severity, reason=reason, error_type=error_type)

    base = Provenance(stage=STAGE, stage_config_hash=config.stage_hash(STAGE), run_id=run_id)
    try:
        source = probe(path, sha256, base)
    except MediaError as exc:
        return SourceSampling(source=None, rejects=[reject(str(exc), "MediaError")])

    work = run.cache_dir / "work" / run_id / source.source_id  # per run: another run's clean-up never touches it
    try:
        return _sample(path, source, config, run, run_id, work, reject)
    except Exception as exc:  # one bad file never fails the run; the reason is kept
        last = traceback.extract_tb(exc.__traceback__)[-1]
        return SourceSampling(
            source=source,
            rejects=[reject(f"{path}: {type(exc).__name__}: {exc} (at {Path(last.filename).name}:{last.lineno})", type(exc).__name__, source_id=source.source_id)],
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sample(path, source, config, run, run_id, work, reject) -> SourceSampling:
    cfg = config.sampling
    rejects: list[Reject] = []
    shot_det = ShotDetector(cfg.shots, source.fps) if source.has_video else None
    # a clip with no candidate inside takes the last one before it: nothing changed since, by definition
    candidates = (
        KeyframeCandidates(cfg.keyframes, work / "candidates", cfg.keyframes.max_interval_s)
        if source.has_video
        else None
    )
    decoded = decode_once(
        path,
        [c for c in (shot_det, candidates) if c is not None],
        sample_rate=cfg.audio_sample_rate,
        analysis_width=cfg.keyframes.analysis_width,
    )
    has_video = source.has_video and decoded.frames > 0
    audio = decoded.audio
    has_audio = audio is not None and audio.size > 0
    if not has_video and not has_audio:
        why = decoded.error or "no frames or samples could be decoded"
        return SourceSampling(source=source, rejects=[reject(f"{path}: {why}", "DecodeError", source_id=source.source_id)], decode_seconds=decoded.seconds)
    if decoded.error:
        rejects.append(reject(f"{path}: {decoded.error}; clips use the part that decoded", "TruncatedMedia", "warning", source.source_id))
    if decoded.audio_error:
        rejects.append(reject(f"{path}: {decoded.audio_error}", "AudioDecodeError", "warning", source.source_id))
    if source.has_video and not has_video:
        rejects.append(reject(f"{path}: video stream has no decodable frames; treated as audio-only", "DecodeError", "warning", source.source_id))

    if source.still:
        return _photo(source, decoded, candidates, config, run, rejects)

    ends = []
    if has_video:
        ends.append(decoded.last_frame_time + (1.0 / decoded.fps if decoded.fps else 0.0))
    if has_audio:
        ends.append(audio.size / decoded.sample_rate)
    decoded_end = max(ends)
    duration = min(decoded_end, source.duration_s)
    # a file cut short often decodes without any error, just ending early: compare with the header
    if not decoded.error and decoded_end < source.duration_s - max(0.5, 0.05 * source.duration_s):
        rejects.append(reject(
            f"{path}: only {decoded_end:.2f} s of {source.duration_s:.2f} s decoded (file truncated?); clips use the part that decoded",
            "TruncatedMedia", "warning", source.source_id,
        ))

    vad = get_vad(cfg.vad)
    speech = vad.detect(audio, decoded.sample_rate) if has_audio else []
    shots = shot_det.shots(duration) if has_video else [Shot(index=0, start=0.0, end=duration)]
    # a sound track that runs on after the picture ends (a recording kept rolling, a screen capture)
    # leaves clips with nothing to see: they are sound-only clips, with no key frame from before them
    video_end = decoded.last_frame_time + (1.0 / decoded.fps if decoded.fps else 0.0) if has_video else 0.0
    spans = clip_rules.make_clips(duration, speech, shots, has_video, cfg.clips, video_end=min(video_end, duration))
    if not spans:
        rejects.append(reject(f"{path}: audio-only file with no speech detected; nothing to clip", "NoSpeech", source_id=source.source_id))

    models = [f"{vad.name}=={vad.version}"]
    if has_video:
        models.append(f"scenedetect-{cfg.shots.detector}=={metadata.version('scenedetect')}")
    prov = source.provenance.model_copy(
        update={
            "model_id": "+".join(m.split("==")[0] for m in models),
            "model_version": "+".join(m.split("==")[1] for m in models),
            "prompt_hash": template_hash(cfg.instruction.template, cfg.instruction.version),
        }
    )
    clips = []
    for span in spans:
        seen = has_video and span.start < video_end - 1e-3
        clips.append(_make_clip(source, span, shots if seen else [], seen, has_audio, candidates if seen else None, config, run, prov))
    return SourceSampling(source=source, clips=clips, rejects=rejects, decode_seconds=decoded.seconds, frames_decoded=decoded.frames)


def _photo(source, decoded, candidates, config, run, rejects) -> SourceSampling:
    """A photo is one clip of one frame: no speech, no shots to find, its picture the key frame."""
    cfg = config.sampling
    span = clip_rules.ClipSpan(0.0, STILL_FRAME_S, "still", [])
    prov = source.provenance.model_copy(update={"prompt_hash": template_hash(cfg.instruction.template, cfg.instruction.version)})
    clip = _make_clip(source, span, [Shot(index=0, start=span.start, end=span.end)], True, False, candidates, config, run, prov)
    return SourceSampling(source=source, clips=[clip], rejects=rejects, decode_seconds=decoded.seconds, frames_decoded=decoded.frames)


def _make_clip(source, span, shots, has_video, has_audio, candidates, config, run, prov) -> Clip:
    """One span as a clip: its key frames written, the shots it overlaps, its instruction."""
    cfg = config.sampling
    cid = clip_id(source.source_id, span.start, span.end)
    keyframes = []
    if candidates is not None:
        keyframes = candidates.write(candidates.select(span.start, span.end), run.media_dir / source.source_id / cid, run.root)
    return Clip(
        clip_id=cid,
        source_id=source.source_id,
        source_path=source.path,
        start=round(span.start, 4),
        end=round(span.end, 4),
        kind=span.kind,
        has_video=has_video,
        has_audio=has_audio,
        shots=[s for s in shots if s.end > span.start and s.start < span.end],
        speech=[s.model_copy() for s in span.speech],
        keyframes=keyframes,
        instruction=render(cfg.instruction.template, cfg.instruction.version, duration=span.duration, has_video=has_video,
                           has_speech=bool(span.speech), has_audio=has_audio, labels=config.taxonomy, still=span.kind == "still"),
        provenance=prov,
    )
