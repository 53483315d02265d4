"""Which way up a picture is meant to be seen. Phones store photos and videos as the sensor read
them and tag how to turn them for display: an EXIF orientation on a photo, a display matrix on a
video. A decoder hands over the stored pixels, so a portrait face arrives lying on its side and the
face detector finds nothing. Every frame the pipeline analyses is turned upright first, as a
player would show it (FFmpeg's command line does the same when it cuts review and export clips).

The one currency is the EXIF orientation code (1 = as stored, 2-8 = the flips and quarter turns
of the TIFF 6.0 / Exif 2.3 tag 0x0112)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

EXIF_ORIENTATION = 0x0112
AS_STORED = 1
TRANSPOSING = {5, 6, 7, 8}  # width and height swap


def still_orientation(path: Path) -> int:
    """A photo's EXIF orientation (1 where it has none). Read with Pillow, not from the decoder's
    display matrix: FFmpeg's image decoders report the turn with the opposite sign to its video
    demuxers (measured with PyAV 18 on FFmpeg 8), and EXIF also says mirror, which a rotation cannot."""
    try:
        with Image.open(path) as img:
            code = img.getexif().get(EXIF_ORIENTATION, AS_STORED)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return AS_STORED  # a picture Pillow cannot parse: FFmpeg decodes it as stored
    return code if code in range(1, 9) else AS_STORED


def rotation_orientation(degrees: float | None) -> int:
    """A video frame's display rotation as PyAV reports it (degrees the picture turns clockwise to
    be shown upright: a phone's portrait video says 90) as an EXIF orientation code."""
    turn = int(round((degrees or 0.0) / 90.0)) % 4
    return {0: AS_STORED, 1: 6, 2: 3, 3: 8}[turn]


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """The image (rows x columns [x channels]) as it is meant to be seen."""
    if orientation == AS_STORED:
        return image
    turned = {
        2: lambda a: a[:, ::-1],  # mirrored left to right
        3: lambda a: a[::-1, ::-1],  # upside down
        4: lambda a: a[::-1],  # mirrored top to bottom
        5: lambda a: a.swapaxes(0, 1),  # mirrored along the main diagonal
        6: lambda a: np.rot90(a, -1),  # turned a quarter clockwise to be seen
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1),  # mirrored along the other diagonal
        8: lambda a: np.rot90(a, 1),  # turned a quarter counter-clockwise to be seen
    }[orientation](image)
    return np.ascontiguousarray(turned)  # OpenCV refuses negative strides


def shown_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """(width, height) as the picture is seen."""
    return (height, width) if orientation in TRANSPOSING else (width, height)
