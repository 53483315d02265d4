"""Frames reach the analysis upright: a phone's photo (EXIF orientation) and a phone's video (display
matrix) are turned the way a viewer sees them, as FFmpeg's command line and Pillow turn them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from pipeline.sampling.decode import decode_once
from pipeline.sampling.orientation import EXIF_ORIENTATION
from tests.conftest import ffmpeg


class FirstFrame:
    def __init__(self):
        self.full = self.small = None

    def on_frame(self, frame):
        if self.full is None:
            self.full, self.small = frame.full_bgr()[:, :, ::-1].astype(float), frame.small_bgr[:, :, ::-1].astype(float)

    def finish(self, end_time):
        pass


def first_frame(path, analysis_width=40) -> FirstFrame:
    keep = FirstFrame()
    decode_once(path, [keep], analysis_width=analysis_width, want_audio=False)
    return keep


def asymmetric_picture(height=80, width=120) -> np.ndarray:
    """Smooth (JPEG keeps it) and different under every flip and quarter turn."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([2 * x, 3 * y, np.full_like(x, 60)], axis=-1).astype(float)
    rgb[:20, :30] = 255  # a bright corner at the top left
    return rgb.clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_photo_is_analysed_the_way_its_exif_orientation_says_it_is_seen(tmp_path, orientation):
    path = tmp_path / f"phone-{orientation}.jpg"
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    Image.fromarray(asymmetric_picture()).save(path, exif=exif, quality=95)
    with Image.open(path) as img:
        seen = np.asarray(ImageOps.exif_transpose(img).convert("RGB")).astype(float)
    got = first_frame(path)
    assert got.full.shape == seen.shape
    # JPEG noise is a few levels; any other flip or turn of this picture differs by tens
    assert np.abs(got.full - seen).mean() < 3
    # the analysis copy is the same picture, the seen width scaled to 40
    assert got.small.shape[1] == 40 and got.small.shape[0] == round(seen.shape[0] * 40 / seen.shape[1] / 2) * 2


@pytest.mark.parametrize("turn, tag", [("transpose=2", 90), ("transpose=1", 270), ("hflip,vflip", 180)])
def test_a_phone_video_is_analysed_upright(tmp_path, turn, tag):
    """A phone films portrait as landscape pixels and tags how to turn them; the frames analysed
    must match the same video stored upright."""
    upright_video = tmp_path / "upright.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x96:rate=5:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(upright_video))
    stored = tmp_path / "stored.mp4"
    ffmpeg("-i", str(upright_video), "-vf", turn, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(stored))
    phone = tmp_path / "phone.mp4"
    ffmpeg("-i", str(stored), "-c", "copy", "-metadata:s:v:0", f"rotate={tag}", str(phone))
    want, got = first_frame(upright_video), first_frame(phone)
    assert got.full.shape == want.full.shape == (96, 160, 3)
    assert np.abs(got.full - want.full).mean() < 6  # two H.264 encodes; a wrong turn differs by tens
    assert got.small.shape == want.small.shape
    as_stored = first_frame(stored)
    assert as_stored.full.shape != want.full.shape or np.abs(as_stored.full - want.full).mean() > 20  # the check can fail
