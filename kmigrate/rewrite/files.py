"""Per-file work for `kmigrate rewrite`: find files, prefilter, parse, rewrite, check, write atomically.

The per-file boundary never raises: every file yields a FileResult, so one bad file never aborts a tree.
"""

from __future__ import annotations

import ast
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from kmigrate.diagnostics import Diagnostic, FileResult, Severity, Status
from kmigrate.spec.loader import RuleSet, default_ruleset
from kmigrate.spec.model import Options

SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".tox", ".nox", ".venv", "venv", "env", ".env",
             "build", "dist", "site-packages", "node_modules", ".eggs", ".mypy_cache", ".pytest_cache"}
KERAS_JSON = "keras.json"


def iter_paths(paths: Iterable[str]) -> Iterator[Path]:
    """Explicit files as given (what pre-commit passes); directories walked for *.py and keras.json."""
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")
                                 and not (Path(root, d) / "pyvenv.cfg").exists())
                for f in sorted(files):
                    if f.endswith(".py") or f == KERAS_JSON:
                        yield Path(root, f)
        else:
            yield path


def markers(ruleset: RuleSet) -> tuple[bytes, ...]:
    """Byte strings at least one of which every file that needs a rewrite contains: code names a
    Keras module to import anything from it; keras.json names its own keys."""
    return (b"keras",) + tuple(k.encode() for r in ruleset.of_kind("json") for k in r.names)


def rewrite_source(text: str, path: str = "-", options: Options | None = None,
                   ruleset: RuleSet | None = None) -> tuple[str, list[Diagnostic]]:
    """Rewrite Python source text; raises libcst.ParserSyntaxError when it does not parse."""
    import libcst as cst  # here, not at import: files without Keras code never need the parser

    from kmigrate.rewrite.engine import rewrite_module

    ruleset = ruleset or default_ruleset()
    module = cst.parse_module(text)
    new, diags = rewrite_module(module, ruleset, options or Options(), path, text)
    return new.code, diags


def rewrite_keras_json(text: str, path: str = "-", options: Options | None = None,
                       ruleset: RuleSet | None = None) -> tuple[str, list[Diagnostic]]:
    """keras.json: "image_dim_ordering": "th" -> "image_data_format": "channels_first", keeping layout.
    Keras 2+ ignores the old key, so a th project silently became channels_last without this."""
    ruleset = ruleset or default_ruleset()
    rule = ruleset.of_kind("json")[0]
    options = options or Options()
    if not options.enabled(rule.id):
        return text, []
    data = json.loads(text)  # data only: raises ValueError on bad JSON
    (old_key, new_key), = rule.names.items()
    vmap = next(iter(rule.value_maps.values()))
    notes = []
    if isinstance(data, dict) and data.get("backend") == "theano":
        notes.append(Diagnostic(Severity.WARNING, rule.id, '"backend": "theano" makes Keras 3 fail at import: '
                                'set it to "tensorflow", "jax" or "torch"', 1, 1, path))
    if not isinstance(data, dict) or old_key not in data:
        return text, notes
    old = data[old_key]
    if old not in vmap.mapping:
        return text, [Diagnostic(Severity.ERROR, rule.id, f'"{old_key}": {old!r} is not "th" or "tf"',
                                 1, 1, path)]
    new_value = vmap.mapping[old]
    if new_key in data:
        if data[new_key] != new_value:
            return text, [Diagnostic(Severity.WARNING, rule.id,
                                     f'"{old_key}": "{old}" disagrees with "{new_key}": "{data[new_key]}"; '
                                     f'Keras 2+ reads only "{new_key}"', 1, 1, path)]
        return text, []
    pattern = re.compile(r'"%s"(\s*):(\s*)"%s"' % (re.escape(old_key), re.escape(old)))
    new_text, n = pattern.subn(lambda m: f'"{new_key}"{m.group(1)}:{m.group(2)}"{new_value}"', text, count=1)
    if n != 1 or json.loads(new_text).get(new_key) != new_value:
        return text, notes + [Diagnostic(Severity.ERROR, rule.id, f'could not rewrite "{old_key}" in place', 1, 1, path)]
    return new_text, notes


def syntax_error_position(exc: BaseException) -> tuple[int, int, str] | None:
    """(line, column, message) of a libcst parse error, as an editor shows them; None otherwise."""
    from libcst import ParserSyntaxError

    if not isinstance(exc, ParserSyntaxError):
        return None
    return exc.editor_line, exc.editor_column, exc.message


def _decode(data: bytes) -> tuple[str, str]:
    """Text and encoding of a Python source file (PEP 263 cookie, BOM), without importing it."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    head = data.split(b"\n", 2)[:2]
    for line in head:
        m = re.match(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", line)
        if m:
            enc = m.group(1).decode("ascii")
            return data.decode(enc), enc
    return data.decode("utf-8"), "utf-8"


def process_file(path: Path, options: Options, write: bool, ruleset: RuleSet | None = None) -> FileResult:
    """Rewrite one file; `write=False` computes the result without touching the file."""
    ruleset = ruleset or default_ruleset()
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _failed(name, f"cannot read: {exc.strerror or exc}")
    if not any(m in data for m in markers(ruleset)):
        return FileResult(name, Status.SKIPPED)
    try:
        text, encoding = _decode(data)
    except (UnicodeDecodeError, LookupError) as exc:
        return _failed(name, f"cannot decode: {exc}")
    is_json = path.name == KERAS_JSON
    try:
        if is_json:
            try:
                new_text, diags = rewrite_keras_json(text, name, options, ruleset)
            except ValueError as exc:
                return _failed(name, f"not valid JSON: {exc}")
        else:
            new_text, diags = rewrite_source(text, name, options, ruleset)
    except Exception as exc:  # noqa: BLE001 - one bad file must never abort a tree
        where = syntax_error_position(exc)
        if where is None:
            return _failed(name, f"internal error: {type(exc).__name__}: {exc}")
        hint = " (Keras 1 code is often Python 2: port it to Python 3 first, e.g. with 2to3)" \
            if _looks_like_python2(text) else ""
        return _failed(name, f"does not parse as Python 3: {where[2]}{hint}", where[0], where[1])
    if new_text == text:
        return FileResult(name, Status.UNCHANGED, diags)
    if not is_json:
        try:
            ast.parse(new_text)
        except SyntaxError as exc:  # never write a file that fails to parse
            return _failed(name, f"internal error: the rewrite did not parse ({exc.msg}); file left as is")
    result = FileResult(name, Status.CHANGED, diags, old_text=text, new_text=new_text)
    if write:
        try:
            atomic_write(path, new_text.encode(encoding if encoding != "utf-8-sig" else "utf-8-sig"))
        except OSError as exc:
            return _failed(name, f"cannot write: {exc.strerror or exc}")
    return result


def _looks_like_python2(text: str) -> bool:
    return bool(re.search(r"^\s*print\s+[^(\s=]|^\s*exec\s+['\"]|except\s+\w+\s*,\s*\w+\s*:|\bur?'", text, re.M))


def _failed(path: str, message: str, line: int = 0, col: int = 0) -> FileResult:
    return FileResult(path, Status.FAILED, [Diagnostic(Severity.ERROR, "file", message, line, col, path)])


def atomic_write(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, keep the mode, then rename over."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".kmigrate", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
