"""What `emoforge run DIR` reads: every regular file under DIR, whatever its name; whether it is
media is decided by content later (media.check_media). Files not read at all are listed too, so
every file found is accounted for:
- hidden files and folders (name starting with "."), inside a directory given: not read (a warning
  row each; a hidden folder is one row, not searched). Named on the command line, a file is read.
- symbolic links to files: read (the link's path is kept, the content is the target's);
  links to folders: not followed (a warning row), so a tree cannot loop; broken links: an error row.
- anything else that is not a regular file (FIFOs, sockets, devices): an error row.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path


class InputError(ValueError):
    """An input that names nothing to read: a missing path, or a directory with no files at all."""


@dataclass(frozen=True)
class Skipped:
    """A file found but not read, and why (becomes a reject row of stage 1)."""

    path: str
    reason: str
    error_type: str
    severity: str = "warning"


@dataclass
class InputListing:
    files: list[str] = field(default_factory=list)  # to probe, in a stable order
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def found(self) -> int:
        return len(self.files) + len(self.skipped)


def list_inputs(paths: list[str | Path]) -> InputListing:
    listing = InputListing()
    for raw in paths:
        p = Path(raw)
        if not p.exists() and not p.is_symlink():
            raise InputError(f"{p}: no such file or directory")
        if p.is_dir():
            before = listing.found
            _walk(p, listing)
            if listing.found == before:
                raise InputError(f"{p}: directory holds no media files (it holds no files at all)")
        else:
            listing.files.append(str(p))  # named explicitly: probed, whatever it is
    return listing


def _walk(root: Path, listing: InputListing) -> None:
    for base, dirs, files in os.walk(root, followlinks=False):
        kept = []
        for d in sorted(dirs):
            path = Path(base, d)
            if path.is_symlink():
                listing.skipped.append(Skipped(str(path), f"{path}: symbolic link to a folder, not followed", "SymlinkedFolder"))
            elif d.startswith("."):
                listing.skipped.append(Skipped(str(path), f"{path}: hidden folder, not searched", "HiddenFolder"))
            else:
                kept.append(d)
        dirs[:] = kept
        for f in sorted(files):
            path = Path(base, f)
            if f.startswith("."):
                listing.skipped.append(Skipped(str(path), f"{path}: hidden file, not read (name it on the command line to use it)", "HiddenFile"))
                continue
            try:
                mode = path.stat().st_mode  # follows a link to its target
            except OSError:
                listing.skipped.append(Skipped(str(path), f"{path}: broken symbolic link", "BrokenSymlink", "error"))
                continue
            if stat.S_ISREG(mode):
                listing.files.append(str(path))
            else:
                listing.skipped.append(Skipped(str(path), f"{path}: not a regular file", "NotRegularFile", "error"))
