"""Placing a file that already exists elsewhere on disk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def link_or_copy(src: Path, dest: Path) -> None:
    """A hard link where the filesystem allows one (no second copy of the bytes), else a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)
