"""Stage 1 on real media: shot cuts, VAD against reference phrases, key frames, clip rules."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.sampling.clips import make_clips
from pipeline.sampling.decode import decode_once
from pipeline.sampling.keyframes import frame_distance
from pipeline.sampling.media import file_sha256
from pipeline.sampling.stage import sample_source
from pipeline.sampling.vad import get_vad
from schemas import Shot, Span, load_config
from schemas.config import ClipRules

REFERENCE = json.loads((Path(__file__).parent / "data" / "reference_phrases.json").read_text())


def sample(path: Path, config, run_dir):
    return sample_source(path, file_sha256(path), config, run_dir, "test-run")


def test_the_cut_in_face_noface_is_found(feat_data, config, run_dir):
    result = sample(feat_data / "face_noface.mov", config, run_dir)
    assert not result.rejects
    cuts = sorted({s.start for c in result.clips for s in c.shots if s.start > 0})
    assert len(cuts) == 1 and abs(cuts[0] - 2.4) < 0.15, cuts
    # no speech in this file: one clip per shot, split exactly at the cut
    assert [c.kind for c in result.clips] == ["shot", "shot"]
    assert abs(result.clips[0].end - cuts[0]) < 1e-6 and abs(result.clips[1].start - cuts[0]) < 1e-6


@pytest.mark.parametrize("backend", ["silero", "silero-jit", "pyannote"])
def test_vad_segments_cover_every_phrase_of_two_cities(speech_dir, backend):
    cfg = load_config(overrides=[f"sampling.vad.backend={backend}"])
    audio = decode_once(speech_dir / "two_cities.wav", []).audio
    segments = get_vad(cfg.sampling.vad).detect(audio, 16000)
    for text, start, end in REFERENCE["two_cities.wav"]:
        mid = (start + end) / 2
        assert any(s.start <= mid <= s.end for s in segments), f"{backend}: phrase {text!r} at {mid:.2f}s not in speech"
    for s in segments:  # and no region invents speech where none was said
        assert any(s.start < end + 0.3 and s.end > start - 0.3 for _, start, end in REFERENCE["two_cities.wav"]), s
    # pauses between sentences are found, not one block of "speech"
    assert len(segments) >= 10


@pytest.mark.parametrize("backend", ["silero", "silero-jit"])
def test_silero_vad_finds_the_six_beckett_phrases(speech_dir, backend):
    cfg = load_config(overrides=[f"sampling.vad.backend={backend}"])
    audio = decode_once(speech_dir / "beckett.wav", []).audio
    segments = get_vad(cfg.sampling.vad).detect(audio, 16000)
    phrases = REFERENCE["beckett.wav"]
    assert len(segments) == len(phrases) == 6
    for seg, (text, start, end) in zip(segments, phrases):
        # whisper stretches a phrase's first word back over leading silence, so compare ends tightly
        assert abs(seg.end - end) < 0.35, (text, seg, end)
        assert seg.start <= (start + end) / 2 <= seg.end


def test_silero_hears_a_word_at_the_very_start_of_a_short_file(speech_dir):
    """As single-word emotion corpora are cut: a phrase 0.35 s into a 0.5 s file. Silero's state
    starts cold; without a second reading after a lead-in of silence the ONNX model read such files
    as no speech at all, and stage 1 made no clip of them (any lead-in from 64 ms to 0.5 s finds
    this one)."""
    from pipeline.sampling.vad import SileroOnnxVAD

    audio = decode_once(speech_dir / "two_cities.wav", []).audio
    text, start, _ = next(p for p in REFERENCE["two_cities.wav"] if p[0].startswith("It was the age of wisdom"))
    clip = np.ascontiguousarray(audio[int((start - 0.35) * 16000):int((start + 0.15) * 16000)])
    segments = SileroOnnxVAD(load_config().sampling.vad).detect(clip, 16000)
    assert segments, f"no speech found in the start of {text!r} cut to 0.5 s"
    assert all(0.0 <= s.start < s.end <= 0.5 + 1e-9 for s in segments)  # on the file's own time
    assert any(s.start <= 0.42 <= s.end for s in segments)  # the words, not the silence before them


def test_only_a_file_read_as_silent_is_read_again_and_lands_on_its_own_time():
    from pipeline.sampling.vad import LEAD_IN_S, heard_or_warmed

    sizes = []

    def silent_then_warmed(x):
        sizes.append(x.size)
        if x.size == 16000:
            return []
        # one region wholly in the lead-in, one straddling the file's start, one running past its end
        return [(0.1, 0.3), (LEAD_IN_S - 0.1, LEAD_IN_S + 0.4), (LEAD_IN_S + 0.8, LEAD_IN_S + 1.2)]

    audio = np.zeros(16000, dtype=np.float32)  # a 1 s file
    spans = heard_or_warmed(silent_then_warmed, audio, 16000)
    assert sizes == [16000, 16000 + int(LEAD_IN_S * 16000)]
    assert [(s.start, s.end) for s in spans] == [(0.0, 0.4), (0.8, 1.0)]

    sizes.clear()
    # a file with speech keeps its regions exactly (its clip ids with them): read once
    spans = heard_or_warmed(lambda x: sizes.append(x.size) or [(0.1234, 0.5)], audio, 16000)
    assert sizes == [16000] and [(s.start, s.end) for s in spans] == [(0.123, 0.5)]


def test_keyframes_are_distinct_images_inside_their_clip(feat_data, config, run_dir):
    result = sample(feat_data / "WolfgangLanger_Pexels.mp4", config, run_dir)
    assert result.clips
    for clip in result.clips:
        assert 2 <= len(clip.keyframes) <= config.sampling.keyframes.max_per_clip
        times = [k.time for k in clip.keyframes]
        assert times == sorted(times) and all(clip.start <= t < clip.end for t in times)
        thumbs = []
        for kf in clip.keyframes:
            img = cv2.imread(str(run_dir.root / kf.path), cv2.IMREAD_GRAYSCALE)
            assert img is not None and img.shape == (360, 640)
            thumbs.append(cv2.resize(img, (160, 90), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0)
        for i in range(len(thumbs)):
            for j in range(i + 1, len(thumbs)):
                assert frame_distance(thumbs[i], thumbs[j]) >= 0.02, (clip.clip_id, i, j)


@pytest.mark.parametrize("method", ["frame_diff", "optical_flow", "orb"])
def test_each_keyframe_method_picks_frames(feat_data, run_dir, method):
    cfg = load_config(overrides=[f"sampling.keyframes.method={method}"])
    result = sample(feat_data / "face_noface.mov", cfg, run_dir)
    kfs = [k for c in result.clips for k in c.keyframes]
    assert kfs and all(k.method == method for k in kfs)
    # the first frame after the cut is always a key frame: it is the most changed frame there is
    assert any(abs(k.time - 2.4) < 0.1 for k in kfs)


def test_speech_over_video_makes_speech_clips_with_instructions(feat_data, speech_dir, config, run_dir, tmp_path):
    from flows.demo import mux_speech_over_video

    video = mux_speech_over_video(feat_data / "WolfgangLanger_Pexels.mp4", speech_dir / "two_cities.wav", tmp_path / "talk.mp4")
    result = sample(video, config, run_dir)
    assert result.clips and all(c.kind == "speech" for c in result.clips)
    for c in result.clips:
        assert c.speech and all(c.start <= s.start <= s.end <= c.end + 1e-6 for s in c.speech)
        assert config.sampling.clips.min_clip_s - 1e-6 <= c.duration <= config.sampling.clips.max_clip_s + 1e-6
        assert "most prominent emotion" in c.instruction.text and "happiness" in c.instruction.text
        assert c.provenance.prompt_hash == c.instruction.template_hash
        assert c.keyframes


def test_clips_after_the_picture_ends_are_sound_only(speech_dir, config, run_dir, tmp_path):
    """A sound track longer than its video: the clips that start after the last frame have nothing to
    see, so no key frame (before, they took the last frame from before they began) and no video."""
    from tests.conftest import ffmpeg

    video = tmp_path / "picture-stops.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x96:rate=10:duration=6", "-i", str(speech_dir / "two_cities.wav"),
           "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(video))
    result = sample(video, config, run_dir)
    seen = [c for c in result.clips if c.has_video]
    heard = [c for c in result.clips if not c.has_video]
    assert seen and heard and result.clips[-1].end > 30  # the speech goes on long after the 6 s of picture
    for c in seen:
        assert c.start < 6.0 and c.keyframes and all(c.start <= k.time < c.end for k in c.keyframes[1:])
    for c in heard:
        assert c.start >= 6.0 - 0.1 and c.has_audio and c.speech
        assert not c.keyframes and not c.shots
        assert "video" not in c.instruction.text.lower()


# ---- clip rules (pure) ----

RULES = ClipRules(min_clip_s=1.0, max_clip_s=6.0, merge_gap_s=0.8, context_pad_s=0.0)


def spans(*pairs):
    return [Span(start=a, end=b) for a, b in pairs]


def speech_only(clips):
    """The speech clips (around them the silent picture gets shot clips: tested on its own below)."""
    return [c for c in clips if c.kind == "speech"]


def shots(*bounds):
    return [Shot(index=i, start=a, end=b) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]


def test_close_speech_regions_merge_within_a_shot():
    clips = speech_only(make_clips(20.0, spans((1, 2), (2.5, 3.5)), shots(0, 20), True, RULES))
    assert [(c.start, c.end) for c in clips] == [(1, 3.5)]
    assert len(clips[0].speech) == 2


def test_speech_regions_do_not_merge_across_a_cut():
    clips = speech_only(make_clips(20.0, spans((1, 2), (2.5, 3.5)), shots(0, 2.2, 20), True, RULES))
    assert len(clips) == 2


def test_long_speech_is_split_to_max_length():
    clips = speech_only(make_clips(30.0, spans((0, 14)), shots(0, 30), True, RULES))
    assert len(clips) == 3 and all(c.duration <= 6.0 + 1e-9 for c in clips)
    assert clips[0].start == 0 and clips[-1].end == 14


def test_short_speech_grows_to_min_length_inside_its_shot():
    clips = speech_only(make_clips(20.0, spans((5.0, 5.3)), shots(0, 5.1, 20), True, RULES))
    assert len(clips) == 1 and abs(clips[0].duration - 1.0) < 1e-9
    assert clips[0].start >= 0 and clips[0].end <= 20


def test_no_speech_video_clips_follow_shots():
    clips = make_clips(20.0, [], shots(0, 0.4, 8, 20), True, RULES)
    assert all(c.kind == "shot" for c in clips)
    # 7.6 s and 12 s shots split evenly below 6 s; the 0.4 s shot joins the clip after it
    assert [(round(c.start, 3), round(c.end, 3)) for c in clips] == [(0, 4.2), (4.2, 8), (8, 14), (14, 20)]


def test_silent_stretches_of_video_between_speech_become_shot_clips():
    """A face that goes on in silence (a reaction, a laugh) is not dropped because someone spoke
    elsewhere in the video; a pause shorter than min_clip_s stays a pause."""
    out = make_clips(20.0, spans((1.0, 4.0), (4.5, 8.0), (14.0, 16.0)), shots(0, 10, 20), True, RULES)
    assert [(c.kind, c.start, c.end) for c in out] == [
        ("shot", 0.0, 1.0), ("speech", 1.0, 4.0), ("speech", 4.5, 8.0), ("shot", 8.0, 10.0), ("shot", 10.0, 14.0),
        ("speech", 14.0, 16.0), ("shot", 16.0, 20.0)]  # the 0.5 s between the first two phrases is a pause
    # the picture stops at 12 s: nothing silent after it is clipped for the picture's sake
    out = make_clips(20.0, spans((1.0, 4.0)), shots(0, 20), True, RULES, video_end=12.0)
    assert [(c.kind, c.start, c.end) for c in out] == [("shot", 0.0, 1.0), ("speech", 1.0, 4.0), ("shot", 4.0, 8.0), ("shot", 8.0, 12.0)]
    assert [(c.start, c.end) for c in make_clips(20.0, [], shots(0, 20), True, RULES, video_end=5.0)] == [(0.0, 5.0)]


def test_audio_only_without_speech_has_no_clips():
    assert make_clips(10.0, [], shots(0, 10), False, RULES) == []


def test_runtime_torch_threads_is_applied_where_stage_1_runs_torch(speech_dir, run_dir):
    import os

    import torch

    from pipeline.threads import use_torch_threads

    try:
        result = sample(speech_dir / "beckett.wav", load_config(overrides=["runtime.torch_threads=3"]), run_dir)
        assert result.clips and not result.rejects
        assert torch.get_num_threads() == 3  # after silero VAD, whose import sets one thread for the process
    finally:
        use_torch_threads(None)
    assert torch.get_num_threads() == (os.cpu_count() or 1)  # unset: one per core
