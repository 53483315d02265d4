"""Awkward inputs: each becomes a reject row or a valid clip, never a crash; others are unaffected."""

from __future__ import annotations

import pytest

from flows.pipeline_flow import run_pipeline
from pipeline.sampling.media import file_sha256
from pipeline.sampling.stage import sample_source

pytestmark = pytest.mark.slow  # runs the pipeline on bad media

EXPECT = {
    # name: (clips expected?, reject severity or None, words the reason must contain)
    "zero_bytes": (False, "error", "empty file (0 bytes)"),
    "not_media": (False, "error", "not a media file"),
    "truncated_header_last": (False, "error", "not a media file"),
    "truncated_header_first": (True, "warning", "truncated"),
    "no_audio_track": (True, None, ""),
    "audio_only": (True, None, ""),
    "silent_video": (True, None, ""),
    "silent_audio_only": (False, "error", "no speech detected"),
}


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_each_awkward_input_is_a_reject_or_a_valid_clip(bad_media, config, run_dir, name):
    path = bad_media[name]
    want_clips, severity, words = EXPECT[name]
    result = sample_source(path, file_sha256(path), config, run_dir, "r")
    assert bool(result.clips) == want_clips, (name, result.rejects)
    if severity is None:
        assert not result.rejects, result.rejects
    else:
        assert {r.severity for r in result.rejects} == {severity}, result.rejects
        assert all(str(path) in r.reason for r in result.rejects)
        assert any(words in r.reason for r in result.rejects), result.rejects
    for clip in result.clips:
        assert clip.end > clip.start
        if name in ("no_audio_track", "silent_video"):
            assert clip.kind == "shot" and clip.keyframes and not clip.speech
        if name == "audio_only":
            assert clip.kind == "audio" and not clip.keyframes and clip.speech and not clip.has_video


def test_truncated_file_keeps_only_the_decoded_part(bad_media, feat_data, config, run_dir):
    full = sample_source(feat_data / "WolfgangLanger_Pexels.mp4", file_sha256(feat_data / "WolfgangLanger_Pexels.mp4"), config, run_dir, "r")
    cut = sample_source(bad_media["truncated_header_first"], file_sha256(bad_media["truncated_header_first"]), config, run_dir, "r")
    assert max(c.end for c in cut.clips) < 0.75 * max(c.end for c in full.clips)


def test_bad_files_never_fail_a_run_and_good_files_are_unaffected(bad_media, feat_data, config, tmp_path):
    good = feat_data / "face_noface.mov"
    alone = run_pipeline([str(good)], str(tmp_path / "alone"), config)
    mixed = run_pipeline([str(p) for p in bad_media.values()] + [str(good)], str(tmp_path / "mixed"), config)

    from storage import RunDir

    alone_clips = RunDir(tmp_path / "alone").read("clips")
    mixed_run = RunDir(tmp_path / "mixed")
    mixed_clips = mixed_run.read("clips")
    ours = [c for c in mixed_clips if c.source_path == str(good.resolve())]
    assert [(c.clip_id, c.start, c.end) for c in ours] == [(c.clip_id, c.start, c.end) for c in alone_clips]
    rejects = mixed_run.read("rejects")
    rejected_paths = {r.path for r in rejects if r.severity == "error"}
    assert rejected_paths == {str(bad_media[n]) for n, (_, sev, _) in EXPECT.items() if sev == "error"}
    assert mixed.stages[0].rejects == len(rejected_paths)
    assert alone.stages[0].rejects == 0
    # every source that produced clips is in the sources table, with its streams described
    sources = {s.path: s for s in mixed_run.read("sources")}
    assert sources[str(bad_media["no_audio_track"].resolve())].has_audio is False
    assert sources[str(bad_media["audio_only"].resolve())].has_video is False
