"""`[tool.kmigrate]` in pyproject.toml: found upward from the paths' common parent, as ruff and black do.

Keys mirror `kmigrate rewrite`'s long options; the command line wins over the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

# key -> (type check, what the value must be); booleans are not ints here
KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "backend": (str, '"theano" or "tensorflow"'),
    "default-dim-ordering": (str, '"th" or "tf"'),
    "exclude": (list, "a list of glob patterns"),
    "only": (list, "a list of rule ids"),
    "skip": (list, "a list of rule ids"),
    "py2": (bool, "true or false"),
    "jobs": (int, "a positive integer"),
    "force-exclude": (bool, "true or false"),
}
CHOICES = {"backend": ("theano", "tensorflow"), "default-dim-ordering": ("th", "tf")}


class ConfigError(ValueError):
    """A pyproject.toml that cannot be used: names the file and the key."""


@dataclass(frozen=True)
class Config:
    path: Path | None = None  # the pyproject.toml the values came from
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path | None:
        """The folder `exclude` patterns are relative to."""
        return self.path.parent if self.path else None

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def common_parent(paths: Iterable[str | os.PathLike]) -> Path:
    """The deepest folder containing every path (a file's folder when one file is given)."""
    absolute = [os.path.abspath(p) for p in paths]
    if not absolute:
        return Path.cwd()
    parent = os.path.commonpath(absolute)
    return Path(parent if os.path.isdir(parent) else os.path.dirname(parent))


def find(start: Path) -> Config:
    """The nearest pyproject.toml with a [tool.kmigrate] table at or above `start`; an empty Config
    when there is none. A pyproject.toml without the table is passed over, as ruff does."""
    folder = Path(os.path.abspath(start))
    for candidate in (folder, *folder.parents):
        path = candidate / "pyproject.toml"
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if b"kmigrate" not in data:  # cheap: most projects never mention us; skip the TOML parse
            continue
        table = _table(path, data)
        if table is not None:
            return Config(path, _validate(path, table))
    return Config()


def _table(path: Path, data: bytes) -> dict | None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    tool = doc.get("tool")
    table = tool.get("kmigrate") if isinstance(tool, dict) else None
    if table is not None and not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.kmigrate] must be a table")
    return table


def _validate(path: Path, table: dict) -> dict[str, Any]:
    out = {}
    for key, value in table.items():
        if key not in KEYS:
            raise ConfigError(f"{path}: [tool.kmigrate] unknown key {key!r}; valid keys: {', '.join(KEYS)}")
        kind, what = KEYS[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if ok and kind is list:
            ok = all(isinstance(v, str) for v in value)
        if ok and key in CHOICES:
            ok = value in CHOICES[key]
        if ok and key == "jobs":
            ok = value >= 1
        if not ok:
            raise ConfigError(f"{path}: [tool.kmigrate] {key} = {value!r}: must be {what}")
        out[key] = value
    return out
