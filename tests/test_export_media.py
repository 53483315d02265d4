"""Datasets that ship their media (export.media) and instruction-tuning files (export.formats), on a
run sampled from real recordings: the clips are cut by ffmpeg, decode through Hugging Face
`datasets` from wherever the folder is, are listed in Croissant with their hashes, and the
LLaMA-Factory / ms-swift files follow those projects' documented formats."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from agents.judge import judge_run
from pipeline.export.dataset import ExportError
from pipeline.export.export import export_run
from pipeline.sampling.media import file_sha256
from pipeline.sampling.stage import sample_source
from schemas import ConfigError, load_config
from storage import SPLITS, DatasetDir, RunDir
from tests.fixtures.judge_cases import GOOD_EVIDENCE, answer, features
from tests.test_cli import emoforge

pytestmark = pytest.mark.slow  # runs the pipeline and the emoforge command

LABELS = ["happiness", "sadness", "anger", "neutral", "surprise"]


@pytest.fixture(scope="module")
def media_run(tmp_path_factory, feat_data, speech_dir):
    """Six real sources (three videos, two audio-only recordings, a photo), each clip answered by a three-model panel."""
    sources = [feat_data / "single_face.mp4", feat_data / "face_noface.mov", feat_data / "no_face.mp4",
               speech_dir / "beckett.wav", speech_dir / "two_cities.wav", feat_data / "0-f15-hao-ph.jpg"]
    return make_run(tmp_path_factory.mktemp("media_run") / "run", sources)


def make_run(root: Path, sources: list[Path]):
    """Stage 1 for real on the sources, a panel's answers for each clip, the judge for real."""
    config = load_config()
    run = RunDir.create(root)
    clips = []
    for path in sources:
        sampled = sample_source(path, file_sha256(path), config, run, "run-m")
        assert sampled.clips, sampled.rejects
        clips += sampled.clips
    answers = [answer(f"w{w}", LABELS[i % len(LABELS)], GOOD_EVIDENCE, clip_id=c.clip_id) for i, c in enumerate(clips) for w in range(3)]
    feats = [features(c.clip_id) for c in clips]
    judged = judge_run(clips, feats, answers, config, "run-m")
    run.write("clips", clips)
    run.write("features", feats)
    run.write("annotations", answers)
    run.write("judgements", judged.judgements)
    run.write("consensus", judged.consensus)
    return run, {c.clip_id: c for c in clips}


@pytest.fixture(scope="module")
def exported(media_run, tmp_path_factory):
    run, clips = media_run
    out = tmp_path_factory.mktemp("exported") / "ds"
    config = load_config(overrides=["export.formats=[sharegpt,swift,merr]"])
    sizes = export_run(run, out, config, "run-m").splits
    assert all(sizes.values()), sizes  # five sources: every split has one
    return out, clips


def _clip_ids(out: Path) -> set[str]:
    return {r.clip_id for s in SPLITS for r in DatasetDir(out).read_split(s)}


def _probe(path: Path) -> list[str]:
    proc = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", str(path)],
                          capture_output=True, text=True, check=True)
    return sorted(proc.stdout.split())


def test_clips_and_key_frames_are_shipped_and_decode_with_hugging_face(exported, tmp_path, monkeypatch):
    from datasets import load_dataset

    out, clips = exported
    ds = DatasetDir(out)
    rows = [r for s in SPLITS for r in ds.read_split(s)]
    assert {r.clip_id for r in rows} == set(clips)
    codecs = []
    for r in rows:
        clip = clips[r.clip_id]
        assert (out / r.media_path).is_file() and not Path(r.media_path).is_absolute()
        if clip.kind == "still":  # a photo ships as itself
            assert r.media_kind == "image" and (out / r.media_path).read_bytes() == Path(clip.source_path).read_bytes()
        elif clip.has_video:
            # no AAC track only where the source has no sound in the span (face_noface.mov's audio starts at 2.43 s)
            codecs.append(_probe(out / r.media_path))
            assert r.media_kind == "video" and r.media_path.endswith(".mp4") and codecs[-1] in (["aac", "h264"], ["h264"])
        else:
            assert r.media_kind == "audio" and r.media_path.endswith(".flac") and _probe(out / r.media_path) == ["flac"]
        assert len(r.keyframe_paths) == len(clip.keyframes) and all((out / p).is_file() for p in r.keyframe_paths)
    assert codecs.count(["aac", "h264"]) >= 3
    # the released clip table points at the shipped key frames, not into the run
    assert all((out / k.path).is_file() for c in ds.read_clips() for k in c.keyframes)

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # media decode from anywhere, not only from inside the folder
    hf = load_dataset(str(out), cache_dir=str(tmp_path / "hf-cache"))
    assert set(hf) == set(SPLITS) and sum(len(hf[s]) for s in SPLITS) == len(rows)
    assert hf["test"][0]["label"] is None  # media ship with the test split, its labels do not
    seen = {"video": 0, "audio": 0, "photo": 0, "image": 0}
    for split in SPLITS:
        for item in hf[split]:
            clip = clips[item["clip_id"]]
            if clip.kind == "still":
                with Image.open(clip.source_path) as photo:
                    assert item["video"] is None and item["audio"] is None and item["image"].size == photo.size
                seen["photo"] += 1
            elif clip.has_video:
                video = item["video"]
                assert item["audio"] is None and item["image"] is None
                frame = video.get_frame_at(0).data
                assert frame.shape[0] == 3 and frame.shape[1] > 0
                # the cut spans the clip (encoders pad or trim by a frame or two)
                assert video.metadata.duration_seconds == pytest.approx(clip.duration, abs=0.2)
                seen["video"] += 1
            else:
                samples = item["audio"].get_all_samples()
                assert item["video"] is None and samples.data.abs().max() > 0
                assert samples.data.shape[-1] / samples.sample_rate == pytest.approx(clip.duration, abs=0.1)
                seen["audio"] += 1
            assert len(item["keyframes"]) == len(clip.keyframes)
            for img in item["keyframes"]:
                img.load()
                assert img.size[0] > 0
                seen["image"] += 1
    assert all(seen.values()), seen


def test_croissant_lists_every_shipped_file_with_its_hash(exported):
    import mlcroissant as mlc

    out, _ = exported
    meta = json.loads((out / "croissant.json").read_text())
    listed = {d["contentUrl"]: d for d in meta["distribution"]}
    shipped = sorted(p.relative_to(out).as_posix() for sub in ("media", "instruct") for p in (out / sub).rglob("*") if p.is_file())
    assert shipped and set(shipped) <= set(listed)
    for rel in shipped:
        assert listed[rel]["sha256"] == hashlib.sha256((out / rel).read_bytes()).hexdigest()
    assert {listed[r]["encodingFormat"] for r in shipped} >= {"video/mp4", "audio/flac", "image/jpeg", "application/json"}
    assert len([r for r in shipped if r.startswith("media/clips/")]) == len(_clip_ids(out))
    records = list(mlc.Dataset(jsonld=str(out / "croissant.json")).records("train"))
    assert records and all((out / r["train/media_path"].decode()).is_file() for r in records)


# --- instruction-tuning files, checked against the formats documented by LLaMA-Factory
# (data/README.md: dataset_info.json, ShareGPT, multimodal image/video/audio datasets) and ms-swift
# (docs/source_en/Customization/Custom-dataset.md: standard messages format, multimodal keys)
PLACEHOLDERS = {"images": "<image>", "videos": "<video>", "audios": "<audio>"}


def check_llama_factory(folder: Path, labels: dict[str, str], answered: set[str], cache: Path) -> int:
    from datasets import load_dataset

    info = json.loads((folder / "dataset_info.json").read_text())
    # the hidden-label test split is registered as prompts, so nobody trains on its empty replies
    assert set(info) == {"emoforge-emotion_train", "emoforge-emotion_validation", "emoforge-emotion_test_prompts"}
    checked = 0
    for desc in info.values():
        assert desc["formatting"] == "sharegpt" and set(desc) <= {"file_name", "formatting", "columns", "tags", "split"}
        cols, tags = desc["columns"], desc["tags"]
        assert set(cols) <= {"messages", "system", "tools", "images", "videos", "audios"}
        records = json.loads((folder / desc["file_name"]).read_text())
        assert isinstance(records, list)
        # LLaMA-Factory reads the file with `datasets` (json) and then indexes every mapped column
        loaded = load_dataset("json", data_files=str(folder / desc["file_name"]), split="train", cache_dir=str(cache))
        assert set(cols.values()) <= set(loaded.column_names) and len(loaded) == len(records)
        for rec in records:
            msgs = rec[cols["messages"]]
            # user (or observation) turns at odd positions, assistant (or function) turns at even ones, in pairs
            assert len(msgs) % 2 == 0 and msgs
            for i, m in enumerate(msgs):
                assert set(m) == {tags["role_tag"], tags["content_tag"]}
                assert m[tags["role_tag"]] == (tags["user_tag"] if i % 2 == 0 else tags["assistant_tag"])
            text = "".join(m[tags["content_tag"]] for m in msgs)
            for key, token in PLACEHOLDERS.items():
                media = rec.get(cols.get(key, key)) or []
                assert text.count(token) == len(media), (key, rec)  # "identical to the number of <...> tokens"
                for p in media:  # relative to media_dir, which defaults to the dataset_dir holding dataset_info.json
                    assert not Path(p).is_absolute() and (folder / p).is_file() and (folder / p).resolve().is_relative_to(folder.parent)
            reply = msgs[-1][tags["content_tag"]]
            if rec["id"] in answered:  # the rationale, its last step stating the label
                last = reply.splitlines()[-1]
                assert reply.startswith("Step 1: ") and last.startswith("Step ") and labels[rec["id"]] in last
            else:
                assert reply == ""  # hidden test label: a prompt to answer, no label, no rationale
            checked += 1
    return checked


def check_swift(path: Path, labels: dict[str, str], answered: set[str]) -> int:
    n = 0
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        assert set(rec) <= {"id", "messages", "images", "videos", "audios"}
        msgs = rec["messages"]
        assert [m["role"] for m in msgs] == (["user", "assistant"] if rec["id"] in answered else ["user"])
        assert all(set(m) == {"role", "content"} and isinstance(m["content"], str) for m in msgs)
        for key, token in PLACEHOLDERS.items():
            media = rec.get(key, [])
            assert "".join(m["content"] for m in msgs).count(token) == len(media)
            assert all((path.parent / p).is_file() for p in media)
        if rec["id"] in answered:
            assert labels[rec["id"]] in msgs[-1]["content"].splitlines()[-1]
        n += 1
    return n


def test_instruction_files_follow_llama_factory_and_ms_swift_formats(exported, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out, clips = exported
    ds = DatasetDir(out)
    labels = {r.clip_id: r.label for s in ("train", "validation") for r in ds.read_split(s)}
    labels |= {k.clip_id: k.label for k in ds.read_answer_key()}
    answered = {r.clip_id for s in ("train", "validation") for r in ds.read_split(s)}
    folder = out / "instruct"
    assert check_llama_factory(folder, labels, answered, tmp_path / "hf") == len(clips)
    assert sum(check_swift(folder / f"swift-{s}.jsonl", labels, answered) for s in SPLITS) == len(clips)
    # the test split's file gives no label away: none of its clips' answer-key rationales appear in it
    test_text = (folder / "sharegpt-test.json").read_text() + (folder / "swift-test.jsonl").read_text()
    assert "Step 1:" not in test_text
    assert json.loads((folder / "skipped.json").read_text()) == []


def test_merr_style_json_holds_the_cues_and_the_caption(exported):
    out, _ = exported
    ds = DatasetDir(out)
    for split in SPLITS:
        merr = json.loads((out / "instruct" / f"merr-{split}.json").read_text())
        rows = {r.clip_id: r for r in ds.read_split(split)}
        assert set(merr) == set(rows)
        for cid, entry in merr.items():
            assert (out / "instruct" / entry["video"]).is_file()
            # the fixture features: "I am so happy today", AU12 present on the main face, strongest at frame 24
            assert entry["text"] == "I am so happy today" and entry["AU_list"] == ["AU12"]
            assert (entry["peak_index"], entry["peak_AU_list"], entry["visual_prior_list"]) == (24, ["AU12"], ["happiness"])
            assert entry["audio_prior_list"]["pitch_mean_hz"] == 220.0
            if rows[cid].label is None:
                assert "pseudo_label" not in entry and "smp_reason_caption" not in entry  # hidden test label
            else:
                assert entry["pseudo_label"] == rows[cid].label and entry["smp_reason_caption"].startswith("Step 1: ")
                assert entry["smp_reason_caption"].endswith(f"{rows[cid].label}.")


def test_keyframes_only_and_no_media(media_run, tmp_path):
    run, clips = media_run
    kf = tmp_path / "kf"
    export_run(run, kf, load_config(overrides=["export.media=keyframes", "export.formats=[sharegpt]"]), "run-m")
    assert not (kf / "media" / "clips").exists() and any((kf / "media" / "keyframes").iterdir())
    rows = [r for s in SPLITS for r in DatasetDir(kf).read_split(s)]
    for r in rows:
        if clips[r.clip_id].keyframes:
            assert r.media_kind == "image" and r.media_path == r.keyframe_paths[0] and (kf / r.media_path).is_file()
        else:
            assert r.media_path is None and r.keyframe_paths == []
    skipped = json.loads((kf / "instruct" / "skipped.json").read_text())
    audio_only = {c for c, clip in clips.items() if not clip.keyframes}
    assert audio_only and {s["clip_id"] for s in skipped} == audio_only  # nothing to show: each named, with why
    records = [r for s in SPLITS for r in json.loads((kf / "instruct" / f"sharegpt-{s}.json").read_text())]
    assert records and all(r["images"] and r["conversations"][0]["value"].count("<image>") == len(r["images"]) for r in records)

    none = kf  # a dataset with media and instruction files is ours to replace, whole
    export_run(run, none, load_config(overrides=["export.media=none"]), "run-m")
    assert not (none / "media").exists() and not (none / "instruct").exists()
    assert all(r.media_path is None for s in SPLITS for r in DatasetDir(none).read_split(s))
    with pytest.raises(ConfigError, match="need media"):
        load_config(overrides=["export.media=none", "export.formats=[sharegpt]"])


def test_a_missing_source_is_a_clear_error_and_leaves_nothing(media_run, tmp_path):
    run, clips = media_run
    moved = RunDir.create(tmp_path / "run")
    for table in ("features", "annotations", "judgements", "consensus"):
        moved.write(table, run.read(table))
    gone = str(tmp_path / "gone.mp4")
    # the clips with a picture lose their source; no clip keeps key frames (they are in the original run)
    moved.write("clips", [c.model_copy(update={"source_path": gone, "keyframes": []}) if c.has_video else c.model_copy(update={"keyframes": []})
                          for c in clips.values()])
    with pytest.raises(ExportError, match=f"{gone}: source of clip .* not found"):
        export_run(moved, tmp_path / "ds", load_config(), "run-m")
    assert not (tmp_path / "ds").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".ds")]


def test_command_line_options(media_run, tmp_path):
    run, _ = media_run
    proc = emoforge("export", str(run.root), "--out", str(tmp_path / "ds"), "--media", "keyframes", "--format", "swift")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "ds" / "instruct" / "swift-train.jsonl").is_file() and not (tmp_path / "ds" / "media" / "clips").exists()
    bad = emoforge("export", str(run.root), "--out", str(tmp_path / "ds2"), "--media", "films")
    assert bad.returncode == 2 and "export.media" in bad.stderr and "Traceback" not in bad.stderr


def test_shipped_media_carry_no_metadata_of_their_source(tmp_path, feat_data, speech_dir):
    secret = "/home/alice/holiday"
    tags = ["-metadata", f"comment={secret}", "-metadata", "location=+48.8577+002.2950/", "-metadata", "title=Alice"]
    video, sound, photo = tmp_path / "v.mp4", tmp_path / "s.flac", tmp_path / "p.jpg"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(feat_data / "single_face.mp4"), "-c", "copy", *tags, str(video)], check=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(speech_dir / "beckett.wav"), *tags, str(sound)], check=True)
    with Image.open(feat_data / "0-f15-hao-ph.jpg") as img:
        exif = Image.Exif()
        exif[0x010E], exif[0x0112] = secret, 6  # ImageDescription; Orientation: stored turned, shown upright
        img.save(photo, exif=exif.tobytes())
        stored = img.size
    run, _ = make_run(tmp_path / "run", [video, sound, photo])
    out = tmp_path / "ds"
    export_run(run, out, load_config(), "run-m")
    shipped = sorted((out / "media").rglob("*.*"))
    assert len([p for p in shipped if p.parent.name == "clips"]) == 3
    for path in shipped:
        assert secret.encode() not in path.read_bytes() and b"Alice" not in path.read_bytes(), path
    [shipped_photo] = [p for p in shipped if p.parent.name == "clips" and p.suffix == ".jpg"]
    with Image.open(shipped_photo) as img:
        assert not img.getexif() and img.size == stored[::-1]  # turned upright as its tag said


def test_a_cut_made_before_metadata_was_dropped_is_cut_again_and_png_text_is_removed(tmp_path, feat_data):
    from pipeline.review.media import carries_source_metadata, clip_media_path

    secret = "/home/alice/holiday"
    video = tmp_path / "v.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(feat_data / "single_face.mp4"), "-c", "copy",
                    "-metadata", f"comment={secret}", str(video)], check=True)
    photo = tmp_path / "p.png"
    from PIL.PngImagePlugin import PngInfo

    text = PngInfo()
    text.add_text("Author", secret)
    with Image.open(feat_data / "0-f15-hao-ph.jpg") as img:
        img.save(photo, pnginfo=text)
    run, _ = make_run(tmp_path / "run", [video, photo])
    [clip] = [c for c in run.read("clips") if c.kind != "still"]
    stale = clip_media_path(run, clip)  # what an older version cut and kept in the run: tags and all
    stale.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(video), "-c", "copy", str(stale)], check=True)
    assert carries_source_metadata(stale)
    out = tmp_path / "ds"
    export_run(run, out, load_config(), "run-m")
    shipped = sorted((out / "media").rglob("*.*"))
    assert shipped and all(secret.encode() not in p.read_bytes() for p in shipped)
    assert not carries_source_metadata(stale)  # the run's own cut was made again, without them
