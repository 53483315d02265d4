"""No input silently dropped: a folder is read by content, not by file name. Media in containers
no list named (.flv, .ts, .3gp, .wmv, .mts, .m4b) become sources; every other file found has a
reject row naming it and why; the summary counts files found, used and rejected."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from flows.pipeline_flow import run_pipeline
from pipeline.sampling.inputs import InputError, list_inputs
from pipeline.sampling.media import MediaError, check_media
from schemas import load_config
from storage import DatasetDir, RunDir
from tests.conftest import ffmpeg

pytestmark = pytest.mark.slow  # runs the pipeline

# containers FFmpeg decodes that the old extension list left out: name -> ffmpeg output options
UNLISTED = {
    "talk.flv": ["-c:v", "flv", "-c:a", "mp3", "-ar", "22050"],
    "talk.ts": ["-c:v", "mpeg2video", "-c:a", "mp2"],
    "talk.3gp": ["-c:v", "h263", "-s", "352x288", "-c:a", "aac", "-ar", "8000", "-ac", "1"],
    "talk.wmv": ["-c:v", "wmv2", "-c:a", "wmav2"],
    "talk.mts": ["-f", "mpegts", "-c:v", "h264", "-c:a", "ac3"],
    "talk.m4b": ["-vn", "-f", "ipod", "-c:a", "aac"],
}


@pytest.fixture(scope="session")
def mixed_folder(tmp_path_factory, feat_data, speech_dir) -> Path:
    d = tmp_path_factory.mktemp("mixed")
    # a face with Beckett's voice over it, 4 s: real speech, so every container yields clips
    talk = d.parent / "talk-source.mp4"
    ffmpeg("-i", str(feat_data / "single_face.mp4"), "-i", str(speech_dir / "beckett.wav"), "-map", "0:v", "-map", "1:a",
           "-t", "4", "-c:v", "libx264", "-c:a", "aac", str(talk))
    for name, opts in UNLISTED.items():
        ffmpeg("-i", str(talk), "-t", "4", *opts, str(d / name))
    (d / "notes.txt").write_text("shopping list\n" * 20)
    (d / "scores.csv").write_text("a,b\n1,2\n")
    (d / "random.bin").write_bytes(os.urandom(4096))
    (d / "subs.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhello\n")
    shutil.copyfile(feat_data / "0-f1-su-ph.jpg", d / "face.jpg")
    (d / ".hidden.mp4").write_bytes((d / "talk.flv").read_bytes())
    return d


def test_containers_are_recognised_by_content_not_name(mixed_folder, tmp_path):
    listing = list_inputs([mixed_folder])
    names = {Path(f).name for f in listing.files}
    assert names == set(UNLISTED) | {"notes.txt", "scores.csv", "random.bin", "subs.srt", "face.jpg"}
    assert [(Path(s.path).name, s.error_type) for s in listing.skipped] == [(".hidden.mp4", "HiddenFile")]
    for name in UNLISTED:
        check_media(mixed_folder / name)
    # a video under a name that says otherwise is still a video
    disguised = tmp_path / "video.txt"
    shutil.copyfile(mixed_folder / "talk.flv", disguised)
    check_media(disguised)
    check_media(mixed_folder / "face.jpg")  # a photo is a source
    for name, why in [("notes.txt", "not a media file"), ("random.bin", "not a media file"), ("scores.csv", "not a media file"),
                      ("subs.srt", "no audio or video stream")]:
        with pytest.raises(MediaError, match=why) as exc:
            check_media(mixed_folder / name)
        assert str(mixed_folder / name) in str(exc.value)


def test_links_and_hidden_folders_are_accounted_for(mixed_folder, tmp_path):
    d = tmp_path / "tree"
    (d / ".git").mkdir(parents=True)
    (d / ".git" / "talk.flv").write_bytes(b"x")
    (d / "linked.flv").symlink_to(mixed_folder / "talk.flv")
    (d / "elsewhere").symlink_to(mixed_folder, target_is_directory=True)
    (d / "gone.mp4").symlink_to(tmp_path / "missing.mp4")
    listing = list_inputs([d])
    assert [Path(f).name for f in listing.files] == ["linked.flv"]  # a link to a file is read
    assert sorted((Path(s.path).name, s.error_type, s.severity) for s in listing.skipped) == [
        (".git", "HiddenFolder", "warning"), ("elsewhere", "SymlinkedFolder", "warning"), ("gone.mp4", "BrokenSymlink", "error")]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no media files"):
        list_inputs([empty])


def test_a_folder_of_unlisted_media_and_other_files_is_all_accounted_for(mixed_folder, tmp_path):
    panel = json.dumps([{"id": "lexical", "backend": "lexical"}])
    summary = run_pipeline([str(mixed_folder)], str(tmp_path / "run"), load_config(overrides=[f"annotate.panel={panel}"]))
    run = RunDir(tmp_path / "run")
    used = {Path(s.path).name for s in run.read("sources")}
    # the six containers are one recording: the same content in each is a distinct file, so six
    # sources; the photo is a seventh
    assert used == set(UNLISTED) | {"face.jpg"}, [r.reason for r in summary.rejects]
    rejected = {Path(r.path).name: r for r in run.read("rejects") if r.stage == "sampling"}
    assert set(rejected) == {"notes.txt", "scores.csv", "random.bin", "subs.srt", ".hidden.mp4"}
    assert all(r.path in r.reason for r in rejected.values())
    assert rejected[".hidden.mp4"].severity == "warning"
    assert summary.files.model_dump() == {"found": 12, "used": 7, "rejected": 5}
    assert json.loads((tmp_path / "run" / "run.json").read_text())["files"] == {"found": 12, "used": 7, "rejected": 5}
    assert all(run.read("clips")) and {c.source_id for c in run.read("clips")} == {s.source_id for s in run.read("sources")}


def _released_text(dataset: Path) -> str:
    """Everything a released dataset says, decoded: Parquet rows and metadata as JSON, other files as text."""
    import pyarrow.parquet as pq

    parts = []
    for f in sorted(p for p in dataset.rglob("*") if p.is_file()):
        parts.append(f.read_bytes().decode("latin-1"))  # raw bytes too: footers and metadata are not compressed
        if f.suffix == ".parquet":
            table = pq.read_table(f)
            parts.append(json.dumps(table.to_pylist(), default=str))
            parts.append(str(table.schema.metadata))
    return "\n".join(parts)


def test_the_released_dataset_names_no_local_path(mixed_folder, tmp_path):
    # the face answers on talk.flv; talk.m4b (audio only) is released unlabelled, so both clips' tables are checked
    panel = json.dumps([{"id": "face-expression", "backend": "face-expression"}])
    run_pipeline([str(mixed_folder / "talk.flv"), str(mixed_folder / "talk.m4b")], str(tmp_path / "run"),
                 load_config(overrides=[f"annotate.panel={panel}", "export.include_unlabelled=true"]))
    released = _released_text(tmp_path / "run" / "dataset")
    assert "talk.flv" in released and "clips.parquet" in str(list((tmp_path / "run" / "dataset").iterdir()))
    for private in (str(mixed_folder), str(tmp_path), str(Path.home())):
        assert private not in released, private
    assert {c.source_path for c in DatasetDir(tmp_path / "run" / "dataset").read_clips()} == {"talk.flv", "talk.m4b"}
