"""Where a dataset may be written, and how it replaces an earlier one without a moment in which
neither is whole: written aside, swapped in with renames, the old one deleted last."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import shutil
import tempfile
from pathlib import Path

from pipeline.export.dataset import ExportError

# everything an export writes at the top of a dataset directory (storage/dataset_dir.py)
DATASET_ENTRIES = frozenset({"data", "answer_key", "features.parquet", "clips.parquet", "README.md", "croissant.json", "report",
                             "media", "instruct"})
_TMP_TAG = ".emoforge-export-"
_STAGED = re.compile(r"-(\d+)-[a-z0-9_]+(-old)?$")  # pid of the export that made it; -old: a dataset set aside


class DestinationRefused(ExportError):
    """`--out` names a place an export must not replace: a run directory, or a folder of other files."""


def is_run_dir(path: Path) -> bool:
    return (path / "tables").is_dir() or (path / "run.json").is_file()


def is_dataset_dir(path: Path) -> bool:
    """A folder an export wrote: its Croissant file and split folder, and nothing an export does not write."""
    try:
        names = {p.name for p in path.iterdir()}
    except OSError:
        return False
    return {"croissant.json", "data"} <= names and names <= DATASET_ENTRIES


def check_destination(out: Path, run_root: Path) -> None:
    """Refuse an `out` that replacing would destroy something that is not a dataset of ours."""
    target, run = out.resolve(), run_root.resolve()
    if target == run or run in target.parents:
        raise DestinationRefused(f"{out}: is inside the run directory {run_root}; choose a dataset folder outside it")
    if target in run.parents:
        raise DestinationRefused(f"{out}: contains the run directory {run_root}; replacing it would delete the run")
    for parent in target.parents:
        if is_run_dir(parent):
            raise DestinationRefused(f"{out}: lies inside the run directory {parent}; choose a dataset folder outside it")
    if not target.exists():
        return
    if not target.is_dir():
        raise DestinationRefused(f"{out}: exists and is not a folder; choose another --out")
    if is_run_dir(target):
        raise DestinationRefused(f"{out}: is a run directory; choose a dataset folder outside it")
    if any(target.iterdir()) and not is_dataset_dir(target):
        raise DestinationRefused(f"{out}: a non-empty folder that is not an emoforge dataset; choose an empty or new folder")


def staging_dir(out: Path) -> Path:
    """A fresh folder beside `out` (same file system, so the swap is a rename), after clearing the
    leftovers of exports that were killed before they could clean up."""
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in sorted(out.parent.glob(f".{out.name}{_TMP_TAG}*")):
        match = _STAGED.search(stale.name)
        if not match or _alive(int(match.group(1))):
            continue
        if match.group(2) and not out.exists():
            os.rename(stale, out)  # killed between the two renames of a swap: the old dataset goes back
        else:
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}{_TMP_TAG}{os.getpid()}-", dir=out.parent))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def publish(staged: Path, out: Path) -> None:
    """Give the staged dataset normal permissions and put it at `out`, replacing a dataset there."""
    _normal_permissions(staged)
    if not out.exists():
        os.rename(staged, out)
        return
    if not _exchange(staged, out):
        # no atomic exchange here: the old dataset steps aside under a name that says whose it is,
        # then the new one moves in; only between these two renames is `out` absent
        aside = staged.with_name(staged.name + "-old")
        os.rename(out, aside)
        try:
            os.rename(staged, out)
        except BaseException:
            os.rename(aside, out)
            raise
        staged = aside
    shutil.rmtree(staged, ignore_errors=True)  # now the old dataset


def _normal_permissions(root: Path) -> None:
    # mkdtemp/mkstemp make 0700 folders and 0600 files; a dataset is for sharing, as the umask allows
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(root, 0o777 & ~umask)
    for base, dirs, files in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(base, d), 0o777 & ~umask)
        for f in files:
            os.chmod(os.path.join(base, f), 0o666 & ~umask)


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where that is unavailable."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # file system or kernel without it
        return False
    raise OSError(code, os.strerror(code), str(b))
