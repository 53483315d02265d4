"""Photos as sources: a picture is one clip of one frame, no audio; the face agents answer on it
(a phone's photo turned upright as its EXIF tag says),
small face photos (FER-style 48 px crops) included, and review shows it as a still video."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from flows.pipeline_flow import run_pipeline
from pipeline.preprocess.faces import OfflineFaceAnalyzer
from pipeline.review.media import STILL_SHOWN_S, cut_clip
from pipeline.sampling.media import STILL_FRAME_S, MediaError, check_media, is_still_image, open_media
from pipeline.sampling.orientation import EXIF_ORIENTATION
from schemas import load_config
from schemas.config import FaceConfig
from storage import RunDir

pytestmark = pytest.mark.slow  # runs the pipeline


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory, feat_data):
    d = tmp_path_factory.mktemp("photos")
    happy = cv2.imread(str(feat_data / "0-f15-hao-ph.jpg"))
    cv2.imwrite(str(d / "happy.jpg"), happy)
    # the same face as a 48 px grey crop, as face-expression corpora ship them (FER2013)
    [face] = OfflineFaceAnalyzer(FaceConfig()).analyse(happy)
    b = face.bbox
    crop = cv2.copyMakeBorder(happy[int(b.y):int(b.y + b.height), int(b.x):int(b.x + b.width)], 30, 30, 30, 30, cv2.BORDER_REPLICATE)
    cv2.imwrite(str(d / "happy-48.png"), cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), (48, 48), interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(d / "landscape.webp"), cv2.imread(str(feat_data / "free-mountain-vector-01.jpg")))
    # as a phone stores a portrait: the pixels lie on their side and the EXIF tag says turn them upright
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # turn a quarter clockwise to be seen
    Image.fromarray(np.rot90(happy[:, :, ::-1], 1).copy()).save(d / "happy-phone.jpg", exif=exif, quality=95)
    Image.fromarray(happy[:, :, ::-1]).save(d / "happy.gif")  # one frame: GIF has its own demuxer, not an image one
    out = tmp_path_factory.mktemp("photo-run")
    summary = run_pipeline([str(d)], str(out), load_config())
    run = RunDir(out)
    names = {s.source_id: s.path.rsplit("/", 1)[-1] for s in run.read("sources")}
    return summary, run, names


def test_each_photo_is_one_still_clip_without_audio(photo_run):
    summary, run, names = photo_run
    assert summary.files.model_dump() == {"found": 5, "used": 5, "rejected": 0}
    assert all(s.still and s.has_video and not s.has_audio and s.fps is None for s in run.read("sources"))
    clips = run.read("clips")
    assert sorted(names[c.source_id] for c in clips) == ["happy-48.png", "happy-phone.jpg", "happy.gif", "happy.jpg", "landscape.webp"]
    for c in clips:
        assert (c.kind, c.start, c.end, c.has_audio, c.speech) == ("still", 0.0, STILL_FRAME_S, False, [])
        assert c.instruction.text.startswith("You are annotating a photo for an emotion dataset.")
        [kf] = c.keyframes  # the picture itself is the key frame
        assert (run.root / kf.path).is_file() and kf.time == 0.0


def test_face_agents_answer_on_photos_small_ones_included(photo_run):
    _, run, names = photo_run
    clip_of = {names[c.source_id]: c.clip_id for c in run.read("clips")}
    faces = {f.clip_id: f for f in run.read("features")}
    assert all(faces[clip_of[name]].faces for name in ("happy.jpg", "happy-48.png", "happy-phone.jpg", "happy.gif"))
    assert not faces[clip_of["landscape.webp"]].faces
    small_face = faces[clip_of["happy-48.png"]].faces[0].bbox
    assert small_face.width < 48  # reported in the photo's own pixels although found on an enlarged copy
    answers = {(a.clip_id, a.annotator_id): a for a in run.read("annotations")}
    for name in ("happy.jpg", "happy-48.png", "happy-phone.jpg", "happy.gif"):
        assert answers[(clip_of[name], "face-expression")].label == "happiness"
        # nothing to hear, and one frame has no dynamics: those agents abstain, with a reason
        for agent in ("prosody", "face-dynamics"):
            a = answers[(clip_of[name], agent)]
            assert a.status == "abstained" and a.error
    assert all(answers[(clip_of["landscape.webp"], agent)].label is None for agent in ("face-expression", "facs-rules"))
    consensus = {c.clip_id: c for c in run.read("consensus")}
    assert consensus[clip_of["happy.jpg"]].label == "happiness"


def test_an_animated_gif_stays_a_video(tmp_path, feat_data):
    happy = Image.open(feat_data / "0-f15-hao-ph.jpg")
    frames = [happy.rotate(angle) for angle in (0, 5, 10, 15)]
    frames[0].save(tmp_path / "nod.gif", save_all=True, append_images=frames[1:], duration=200)
    with open_media(tmp_path / "nod.gif") as (container, video, audio, duration):
        assert not is_still_image(container) and video is not None and audio is None
        assert duration == pytest.approx(0.8, abs=0.05)


def test_an_animated_webp_is_refused_saying_what_it_is(tmp_path, feat_data):
    # FFmpeg has no decoder for animated WebP; a still WebP with the extended header still opens
    happy = Image.open(feat_data / "0-f15-hao-ph.jpg")
    happy.save(tmp_path / "nod.webp", save_all=True, append_images=[happy.rotate(5)], duration=200)
    with pytest.raises(MediaError, match="an animated WebP, which FFmpeg cannot decode") as exc:
        check_media(tmp_path / "nod.webp")
    assert str(tmp_path / "nod.webp") in str(exc.value)
    happy.convert("RGBA").save(tmp_path / "alpha.webp", exif=Image.Exif())  # VP8X, no animation flag
    check_media(tmp_path / "alpha.webp")


def test_review_shows_a_photo_as_a_still_video_big_enough_to_see(photo_run):
    _, run, names = photo_run
    [small] = [c for c in run.read("clips") if names[c.source_id] == "happy-48.png"]
    with av.open(str(cut_clip(run, small))) as media:
        v = media.streams.video[0]
        assert (v.codec_context.name, v.codec_context.width, v.codec_context.height) == ("h264", 256, 256)
        assert media.streams.audio  # the synced <Audio> needs a track to decode
        assert float(media.duration / av.time_base) == pytest.approx(STILL_SHOWN_S, abs=0.1)
