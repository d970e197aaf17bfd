"""One input's work for `kmigrate rewrite`: decode, prefilter, parse (porting Python 2 on request), rewrite,
tidy, check, encode. Pure: bytes in, a FileResult out; writing and isolation belong to the runner.

The per-input boundary never raises: every input yields a FileResult, so one bad file never aborts a tree.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from kmigrate import atomic
from kmigrate.diagnostics import Diagnostic, FileResult, Severity, Status
from kmigrate.spec.loader import RuleSet, default_ruleset
from kmigrate.spec.model import Options

KERAS_JSON = "keras.json"
PYTHON, NOTEBOOK, JSON = "python", "notebook", "json"


def kind_of(name: str) -> str:
    """How an input is read, from its name: a notebook, a keras.json, else Python source."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if base.endswith(".ipynb"):
        return NOTEBOOK
    return JSON if base == KERAS_JSON else PYTHON


def needs_parse(data: bytes, ruleset: RuleSet) -> bool:
    """The byte prefilter: False means the input certainly needs no rewrite nor report (the parser
    never runs); see RuleSet.markers."""
    return any(m in data for m in ruleset.markers())


class SourceError(ValueError):
    """Source that does not parse (or could not be ported): a message with its line and column."""

    def __init__(self, message: str, line: int = 0, col: int = 0):
        super().__init__(message)
        self.message, self.line, self.col = message, line, col


def rewrite_source(text: str, path: str = "-", options: Options | None = None,
                   ruleset: RuleSet | None = None, **engine) -> tuple[str, list[Diagnostic]]:
    """The engine's rewrite of Python source text; raises libcst.ParserSyntaxError when it does not parse.
    `engine`: rewrite_text's `tree` and `tidy`."""
    from kmigrate.rewrite.engine import rewrite_text  # here, not at import: files without Keras code never need it

    return rewrite_text(text, ruleset or default_ruleset(), options or Options(), path, **engine)


def _python_error(text: str, exc: BaseException) -> SourceError:
    """Where and why source does not parse, in CPython's words when CPython rejects it too (its
    positions are the ones editors and tracebacks show); libcst's own otherwise."""
    try:
        ast.parse(text)
    except SyntaxError as err:
        return SourceError(f"does not parse as Python 3: {err.msg}", err.lineno or 0, err.offset or 0)
    except (RecursionError, MemoryError, ValueError) as err:
        return SourceError(f"does not parse as Python 3: {type(err).__name__}: {err}")
    message = getattr(exc, "message", str(exc))
    m = re.match(r"(?:parser error: )?error at (\d+):(\d+): (.*)", message, re.S)
    if m:
        return SourceError(f"libcst cannot parse this: {m.group(3)}", int(m.group(1)), int(m.group(2)))
    return SourceError(f"libcst cannot parse this: {message}",
                       getattr(exc, "editor_line", 0), getattr(exc, "editor_column", 0))


def _parser_error(exc: BaseException) -> bool:
    """libcst's ParserSyntaxError, without importing libcst for a module that never needed it."""
    import sys

    libcst = sys.modules.get("libcst")
    return libcst is not None and isinstance(exc, libcst.ParserSyntaxError)


def migrate_python(text: str, path: str = "-", options: Options | None = None,
                   ruleset: RuleSet | None = None, py2: bool = False) -> tuple[str, list[Diagnostic]]:
    """What `kmigrate rewrite` does to Python source: the engine's rewrite, on a Python 3 port with
    `py2`, then the layout tidy-up (duplicate imports, continuation lines). Raises SourceError."""
    from kmigrate.py2 import MissingFissix, looks_like_python2, parse_error_position, port

    # libcst knows only \n and \r\n: a file of bare \r line endings (old Mac) is parsed as \n and put
    # back, so it comes out byte-identical when nothing changes. Python reads \r as a newline anyway.
    bare_cr = "\r" in text and "\n" not in text
    source = text.replace("\r", "\n") if bare_cr else text
    notes: list[Diagnostic] = []
    try:
        tree = ast.parse(source)
    except (RecursionError, MemoryError):
        # CPython's parser gives up in milliseconds where libcst's native parser grinds for minutes and
        # then crashes (a 10,000-term sum: 150 s, then SIGSEGV); CPython could not run this file either
        raise SourceError("too deeply nested: CPython's own parser gives up on it (RecursionError); "
                          "left as is") from None
    except (SyntaxError, ValueError):
        tree = None  # libcst decides, and may know newer syntax than this interpreter; its error is worded below
    try:
        new, diags = rewrite_source(source, path, options, ruleset, tree=tree, tidy=True)
    except Exception as exc:  # noqa: BLE001 - only libcst's parse error is handled here
        if not _parser_error(exc):
            raise
        error = _python_error(source, exc)
        if not py2:
            if looks_like_python2(source):
                error.message += " (this looks like Python 2: `--py2` ports it to Python 3 first, with fissix)"
            raise error from None
        try:
            ported = port(source, path)
        except MissingFissix as missing:
            raise SourceError(str(missing)) from None
        except Exception as err:  # noqa: BLE001 - fissix's ParseError and tokenizer errors
            where = parse_error_position(err) or (error.line, error.col)
            raise SourceError(f"does not parse as Python 3 or Python 2: {error.message.split(': ', 1)[-1]}",
                              *where) from None
        try:
            new, diags = rewrite_source(ported, path, options, ruleset, tidy=True)
        except Exception as exc2:  # noqa: BLE001 - only libcst's parse error is handled here
            if not _parser_error(exc2):
                raise
            raise _python_error(ported, exc2) from None
        notes.append(Diagnostic(Severity.INFO, "py2", "ported from Python 2 (fissix)", 0, 0, path))
        source = ported
    if bare_cr:
        new = new.replace("\n", "\r")
    return new, notes + diags


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


def decode(data: bytes, python: bool = True) -> tuple[str, str]:
    """Text and encoding of an input (PEP 263 cookie and BOM for Python source), without importing it."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    if python:
        for line in re.split(rb"\r\n|\r|\n", data, maxsplit=2)[:2]:
            m = re.match(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", line)
            if m:
                enc = m.group(1).decode("ascii")
                return data.decode(enc), enc
    return data.decode("utf-8"), "utf-8"


def encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding)  # "utf-8-sig" writes the BOM back


def process_data(name: str, data: bytes, options: Options, ruleset: RuleSet | None = None,
                 py2: bool = False, kind: str | None = None, prefiltered: bool = False) -> FileResult:
    """Rewrite one input's bytes; `new_data` holds the bytes to write when it changed. Never raises.
    `prefiltered`: the caller ran needs_parse on these bytes already."""
    ruleset = ruleset or default_ruleset()
    kind = kind or kind_of(name)
    if not prefiltered and not needs_parse(data, ruleset):
        return FileResult(name, Status.SKIPPED, note="no Keras marker")
    try:
        text, encoding = decode(data, python=kind == PYTHON)
    except (UnicodeDecodeError, LookupError) as exc:
        return failed(name, f"cannot decode: {exc}")
    try:
        if kind == JSON:
            new_text, diags = rewrite_keras_json(text, name, options, ruleset)
        elif kind == NOTEBOOK:
            new_text, diags = _rewrite_notebook(text, name, options, ruleset, py2)
        else:
            new_text, diags = migrate_python(text, name, options, ruleset, py2)
    except SourceError as exc:
        return failed(name, exc.message, exc.line, exc.col)
    except _NotebookCellError as exc:
        return FileResult(name, Status.FAILED, [Diagnostic(Severity.ERROR, "file", exc.message, exc.line,
                                                           exc.col, name, exc.cell)])
    except ValueError as exc:  # bad JSON, not a notebook
        return failed(name, f"not valid {'JSON' if kind == JSON else 'notebook'}: {exc}"
                      if kind == JSON else str(exc))
    except RecursionError:
        return failed(name, "too deeply nested to rewrite safely; left as is")
    except Exception as exc:  # noqa: BLE001 - one bad file must never abort a tree
        return failed(name, f"internal error: {type(exc).__name__}: {exc}")
    if new_text == text:
        return FileResult(name, Status.UNCHANGED, diags)
    from kmigrate.rewrite.engine import Parsed

    if kind == PYTHON and not isinstance(new_text, Parsed):
        try:
            ast.parse(new_text)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:  # never write what fails to parse
            return failed(name, f"internal error: the rewrite did not parse ({exc}); file left as is")
    try:
        new_data = encode(new_text, encoding)
    except UnicodeEncodeError as exc:
        return failed(name, f"the rewrite cannot be written in the file's encoding {encoding}: {exc}")
    return FileResult(name, Status.CHANGED, diags, old_text=text, new_text=new_text, new_data=new_data)


class _NotebookCellError(Exception):
    def __init__(self, message: str, cell: int, line: int, col: int):
        super().__init__(message)
        self.message, self.cell, self.line, self.col = message, cell, line, col


def _rewrite_notebook(text: str, name: str, options: Options, ruleset: RuleSet,
                      py2: bool) -> tuple[str, list[Diagnostic]]:
    from kmigrate.notebook import CellError, rewrite_notebook

    try:
        return rewrite_notebook(text, lambda source: migrate_python(source, name, options, ruleset, py2))
    except CellError as exc:
        err = exc.error
        if isinstance(err, SourceError):
            raise _NotebookCellError(err.message, exc.cell, exc.line, err.col) from None
        raise _NotebookCellError(f"internal error: {type(err).__name__}: {err}", exc.cell, exc.line,
                                 exc.col) from None


def failed(path: str, message: str, line: int = 0, col: int = 0) -> FileResult:
    return FileResult(path, Status.FAILED, [Diagnostic(Severity.ERROR, "file", message, line, col, path)])


def process_file(path: Path, options: Options, write: bool, ruleset: RuleSet | None = None,
                 py2: bool = False) -> FileResult:
    """Rewrite one file in this process (no crash isolation: the runner's pool adds that)."""
    from kmigrate.rewrite.walk import read_regular

    try:
        data = read_regular(path)
    except OSError as exc:
        return failed(str(path), f"cannot read: {exc.strerror or exc}")
    result = process_data(str(path), data, options, ruleset, py2)
    if write and result.new_data is not None:
        try:
            atomic.write_bytes(path, result.new_data)
        except OSError as exc:
            return failed(str(path), f"cannot write: {exc.strerror or exc}")
    return result
