"""Replace files atomically through a temporary file next to them, and clean up what killed runs left.

A temporary file is named `.<target name>.<pid>.<random>.kmigrate-tmp`: hidden, in the target's folder
(a rename is atomic only within one file system), and carrying the id of the process that writes it.
A SIGKILL leaves it behind; the next run removes it only when that process is gone, because runs may
overlap (pre-commit runs hooks in parallel) and a live run's temporary file is about to become a
user's file. Both `kmigrate rewrite` and `kmigrate weights convert` write through here.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Iterable, Iterator

SUFFIX = ".kmigrate-tmp"
_TEMP = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}" + re.escape(SUFFIX) + "$")


def temp_path(target: Path) -> Path:
    """A fresh temporary path for `target`, in its folder, naming this process."""
    return target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}{SUFFIX}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    except OSError:
        return True
    return True


def is_temp_name(name: str) -> bool:
    return _TEMP.match(name) is not None


def stale_temp_files(folder: Path, names: Iterable[str] | None = None) -> list[Path]:
    """Temporary files in `folder` whose writing process no longer exists (a reused pid keeps its file:
    leaving a stale file is harmless, removing a live one is not)."""
    if names is None:
        try:
            names = os.listdir(folder)
        except OSError:
            return []
    stale = []
    for name in names:
        m = _TEMP.match(name)
        if m and not _alive(int(m.group(1))):
            stale.append(folder / name)
    return stale


def clean_stale(folder: Path, names: Iterable[str] | None = None) -> list[Path]:
    """Remove the stale temporary files of `folder`; returns what was removed."""
    removed = []
    for p in stale_temp_files(folder, names):
        try:
            p.unlink()
            removed.append(p)
        except FileNotFoundError:  # an overlapping run removed it first
            pass
        except OSError:
            pass
    return removed


class Discard(Exception):
    """Raise inside `replacing` to drop the new content quietly (a conversion that failed its proof)."""


@contextlib.contextmanager
def replacing(target: Path, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path to write `target`'s new content into; on normal exit it is renamed over
    `target` (keeping `mode`, else the target's mode if it exists), on an exception it is removed and
    `target` is untouched (the exception propagates, except Discard). For writers that need a path
    (h5py) rather than bytes."""
    target = Path(target)
    tmp = temp_path(target)
    if mode is None:
        try:
            mode = target.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = None
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if not isinstance(exc, Discard):
            raise


def write_bytes(target: Path, data: bytes) -> None:
    """Replace `target`'s content with `data` atomically, keeping its mode; a symlink keeps pointing
    at its target, which is the file replaced."""
    target = Path(os.path.realpath(target))
    fd = None
    with replacing(target) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
