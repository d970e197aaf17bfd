"""Which files a `kmigrate rewrite` run reads: explicit files, folders walked for code, notebooks and
keras.json, minus built-in excludes, the config's `exclude` patterns and `.gitignore`d paths.

Folders are walked without following symbolic links: a linked file inside the tree is reached through
its own path, one pointing outside is reported and left alone, and linked folders are not entered (no
cycles, nothing outside the tree). A file named on the command line is always read, through a link
if it is one, and its target is what gets rewritten (the link stays a link). Anything that is not a
regular file (a FIFO, a device) is never opened for reading: it could block the run forever.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from kmigrate.diagnostics import Diagnostic, FileResult, Severity, Status

SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".tox", ".nox", ".venv", "venv", "env", ".env",
             "build", "dist", "site-packages", "node_modules", ".eggs", ".mypy_cache", ".pytest_cache",
             ".ipynb_checkpoints", ".ruff_cache"}
KERAS_JSON = "keras.json"


def wanted(name: str) -> bool:
    """A name a folder walk picks up."""
    return name.endswith((".py", ".ipynb")) or name == KERAS_JSON


@dataclass
class Discovery:
    files: list[Path] = field(default_factory=list)  # in a stable order, each real file once
    results: list[FileResult] = field(default_factory=list)  # not read: missing, unreadable, skipped
    folders: dict[Path, list[str] | None] = field(default_factory=dict)  # folder -> its listing if known


class _Ignore:
    """Glob patterns (gitignore syntax) relative to a base folder."""

    def __init__(self, base: Path, lines: Iterable[str]):
        import pathspec  # only when there are patterns: the one-file pre-commit run never needs it

        self.base = base
        self.spec = pathspec.GitIgnoreSpec.from_lines(list(lines))

    def matches(self, path: Path, is_dir: bool) -> bool:
        try:
            rel = path.relative_to(self.base).as_posix()
        except ValueError:
            return False
        if rel == ".":
            return False
        return self.spec.match_file(rel + "/" if is_dir else rel)


def _gitignore(folder: Path) -> _Ignore | None:
    try:
        text = (folder / ".gitignore").read_text(encoding="utf-8", errors="replace")
    except OSError:  # absent, or unreadable: nothing to honour
        return None
    lines = text.splitlines()
    return _Ignore(folder, lines) if any(line.strip() and not line.startswith("#") for line in lines) else None


def _git_root(folder: Path) -> Path | None:
    for candidate in (folder, *folder.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return None


def _skip_dir(path: Path, name: str) -> bool:
    if name in SKIP_DIRS or name.endswith(".egg-info"):
        return True
    try:
        return os.path.lexists(path / "pyvenv.cfg")  # a virtualenv under any name
    except OSError:
        return False


def _excludes(exclude: tuple[Path | None, tuple[str, ...]]) -> list[_Ignore]:
    base, patterns = exclude
    return [_Ignore(Path(os.path.abspath(base or ".")), patterns)] if patterns else []


def force_excluded(path: str, exclude: tuple[Path | None, tuple[str, ...]] = (None, ())) -> bool:
    """Whether --force-exclude leaves out a path named on the command line (or a --stdin-filename,
    which need not exist)."""
    return _excluded_explicit(Path(path), _excludes(exclude))


def discover(paths: Iterable[str], exclude: tuple[Path | None, tuple[str, ...]] = (None, ()),
             force_exclude: bool = False, respect_gitignore: bool = True) -> Discovery:
    """Resolve the command line's paths to the files to read. `exclude` is (the folder its patterns are
    relative to, the patterns). Never raises for a bad path: a missing path or an unreadable folder
    becomes a FAILED result, and the rest is still found."""
    out = Discovery()
    seen: set[str] = set()
    excludes = _excludes(exclude)

    def add(path: Path, key: str | None = None) -> None:
        key = key or os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            out.files.append(path)

    for p in paths:
        path = Path(p)
        if not os.path.lexists(path):
            out.results.append(_failed(str(path), "no such file or directory"))
            continue
        if path.is_dir():
            _walk(path, out, add, excludes, respect_gitignore)
            continue
        if force_exclude and _excluded_explicit(path, excludes):
            out.results.append(FileResult(str(path), Status.SKIPPED, note="excluded (--force-exclude)"))
            continue
        out.folders.setdefault(Path(os.path.realpath(path)).parent, None)
        add(path)
    return out


def _excluded_explicit(path: Path, excludes: list[_Ignore]) -> bool:
    """--force-exclude: a named file inside a built-in excluded folder, or matching `exclude`."""
    absolute = Path(os.path.abspath(path))
    base = excludes[0].base if excludes else Path.cwd()
    try:
        parts = absolute.relative_to(base).parts[:-1]
    except ValueError:
        parts = path.parts[:-1] if not path.is_absolute() else ()
    if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in parts):
        return True
    return any(ex.matches(absolute, False) for ex in excludes)


def _walk(top: Path, out: Discovery, add, excludes: list[_Ignore], respect_gitignore: bool) -> None:
    top_abs = Path(os.path.abspath(top))
    ignores: list[_Ignore] = []
    if respect_gitignore:
        root = _git_root(top_abs)
        if root is not None:  # .gitignore files above the walked folder apply inside it too
            for folder in reversed(top_abs.relative_to(root).parents):
                ig = _gitignore(root / folder)
                if ig:
                    ignores.append(ig)
    _walk_folder(top, top_abs, top_abs, out, add, excludes, ignores, respect_gitignore)


def _walk_folder(folder: Path, folder_abs: Path, top_abs: Path, out: Discovery, add,
                 excludes: list[_Ignore], ignores: list[_Ignore], respect_gitignore: bool) -> None:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        out.results.append(_failed(str(folder), f"cannot read folder: {exc.strerror or exc}"))
        return
    out.folders[folder_abs] = [e.name for e in entries]
    folder_real = os.path.realpath(folder_abs)  # a regular file found here is folder_real/name
    if respect_gitignore:
        ig = _gitignore(folder_abs)
        if ig:
            ignores = [*ignores, ig]
    for entry in entries:
        path = Path(folder, entry.name)
        path_abs = folder_abs / entry.name
        try:
            is_link = entry.is_symlink()
            is_dir = entry.is_dir(follow_symlinks=False)
            is_file = entry.is_file(follow_symlinks=False)
        except OSError as exc:
            out.results.append(_failed(str(path), f"cannot read: {exc.strerror or exc}"))
            continue
        if any(ex.matches(path_abs, is_dir) for ex in excludes) or \
                any(ig.matches(path_abs, is_dir) for ig in ignores):
            continue
        if is_dir:
            if not _skip_dir(path_abs, entry.name):
                _walk_folder(path, path_abs, top_abs, out, add, excludes, ignores, respect_gitignore)
            continue
        if not wanted(entry.name):
            continue
        if is_link:
            target = Path(os.path.realpath(path_abs))
            if not target.is_relative_to(os.path.realpath(top_abs)) and target.is_file():
                out.results.append(FileResult(str(path), Status.SKIPPED,
                                              note=f"symbolic link to {target}, outside the folder: not followed"))
            continue  # a target inside the tree is reached through its own path
        if not is_file:
            out.results.append(FileResult(str(path), Status.SKIPPED, note="not a regular file"))
            continue
        add(path, os.path.join(folder_real, entry.name))


def read_regular(path: Path) -> bytes:
    """A file's bytes; OSError for anything that is not a regular file. Opened without blocking and
    checked after opening, so a FIFO swapped in after the walk still cannot hang the run."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(0, "not a regular file") if stat.S_ISDIR(os.fstat(fd).st_mode) \
                else OSError(0, "not a regular file")
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _failed(path: str, message: str) -> FileResult:
    return FileResult(path, Status.FAILED, [Diagnostic(Severity.ERROR, "file", message, 0, 0, path)])
