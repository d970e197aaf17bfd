"""Jupyter notebooks (nbformat 4): rewrite the code cells, keep everything else byte for byte where
possible (outputs, metadata, cell ids, key order, indentation).

IPython syntax is not Python: a cell that does not parse is retried with its magic and shell-escape lines
(`%time`, `!pip`, `x = !ls`, `obj?`) masked by placeholders, which are put back exactly afterwards; a
cell magic (`%%bash`, `%%time` ...) owns its whole cell, which is left as it is.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from typing import Callable

from kmigrate.diagnostics import Diagnostic

# rewrite one cell's source -> (new source, diagnostics); raises like rewrite_source on a parse error
CellRewriter = Callable[[str], "tuple[str, list[Diagnostic]]"]

_MAGIC = re.compile(r"^([ \t]*)(?:[!%?]|[\w.]+[ \t]*=[ \t]*[!%]|[\w.\[\]()'\"]+[ \t]*\?{1,2}[ \t]*$)")


class NotebookError(ValueError):
    """Not a notebook kmigrate can rewrite (bad JSON, not nbformat 4); the message says which."""


class CellError(Exception):
    """A code cell that does not parse: the 1-based cell number, the line and column inside it, and the
    parser's exception (its message and type decide how the caller words the error)."""

    def __init__(self, cell: int, line: int, col: int, error: BaseException):
        super().__init__(str(error))
        self.cell, self.line, self.col, self.error = cell, line, col, error


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def mask_magics(source: str) -> tuple[str, dict[str, str]]:
    """Replace IPython-only lines by `pass` statements carrying a unique marker; returns the masked
    source and marker -> original line."""
    lines = source.splitlines(keepends=True)
    restore: dict[str, str] = {}
    out = []
    for line in lines:
        m = _MAGIC.match(line)
        if m:
            marker = f"__kmigrate_magic_{len(restore)}__"
            while marker in source:
                marker = "_" + marker
            body = line.rstrip("\r\n")
            restore[marker] = body
            out.append(f"{m.group(1)}pass  # {marker}{line[len(body):]}")
        else:
            out.append(line)
    return "".join(out), restore


def unmask_magics(source: str, restore: dict[str, str]) -> str:
    if not restore:
        return source
    lines = source.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if "__kmigrate_magic_" in line:
            for marker, original in restore.items():
                if re.search(rf"(?<![\w]){re.escape(marker)}(?![\w])", line):
                    body = line.rstrip("\r\n")
                    lines[i] = original + line[len(body):]
                    break
    return "".join(lines)


def _cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _error_position(exc: BaseException) -> tuple[int, int]:
    line = getattr(exc, "line", None) or getattr(exc, "editor_line", None) or getattr(exc, "lineno", None) or 0
    col = getattr(exc, "col", None) or getattr(exc, "editor_column", None) or getattr(exc, "offset", None) or 0
    return int(line), int(col)


def rewrite_notebook(text: str, rewrite_source: CellRewriter) -> tuple[str, list[Diagnostic]]:
    """Rewrite the code cells of a notebook's JSON text; returns the new text (identical when no cell
    changed) and the diagnostics, each carrying its cell number.

    The cells share one namespace when the notebook runs (an import in cell 1 serves a call in cell 5),
    so they are rewritten together, as one module with a marker comment between cells."""
    try:
        nb = json.loads(text)  # data only, never executed
    except ValueError as exc:
        raise NotebookError(f"not valid notebook JSON: {exc}") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError("not a Jupyter notebook (no cells)")
    if nb.get("nbformat") != 4:
        raise NotebookError(f"nbformat {nb.get('nbformat')!r}: only nbformat 4 notebooks are rewritten "
                            "(`jupyter nbconvert --to notebook` upgrades older ones)")
    cells = []  # (cell number, cell, original source, masked source, restore map)
    for number, cell in enumerate(nb["cells"], 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = _cell_source(cell)
        if source.lstrip().startswith("%%"):
            continue  # a cell magic: not Python
        masked, restore = (source, {}) if _parses(source) else mask_magics(source)
        cells.append((number, cell, source, masked, restore))
    if not cells:
        return text, []
    marker = "# __kmigrate_cell__"
    while marker in text:
        marker += "_"
    parts, starts = [], []  # starts: (first line of the cell in the module, cell number)
    line = 1
    for number, _, _, masked, _ in cells:
        body = masked if masked.endswith("\n") or not masked else masked + "\n"
        parts.append(f"{marker} {number}\n{body}")
        starts.append((line + 1, number))
        line += 1 + body.count("\n")
    module = "".join(parts)

    def where(line: int) -> tuple[int, int]:
        start, number = starts[0]
        for s, n in starts:
            if s <= line:
                start, number = s, n
        return number, max(line - start + 1, 0)

    try:
        new_module, diags = rewrite_source(module)
    except Exception as exc:  # noqa: BLE001 - the caller words it, with the cell
        line, col = _error_position(exc)
        number, cell_line = where(line) if line else (cells[0][0], 0)
        raise CellError(number, cell_line, col, exc) from None
    diagnostics = []
    for d in diags:
        number, cell_line = where(d.line) if d.line else (None, 0)
        diagnostics.append(dataclasses.replace(d, cell=number, line=cell_line))
    pieces = re.split(rf"^{re.escape(marker)} \d+\n", new_module, flags=re.M)
    if len(pieces) != len(cells) + 1:
        raise NotebookError("internal error: the cell boundaries did not survive the rewrite; left as is")
    pieces[1] = pieces[0] + pieces[1]  # anything added above the first cell (an import) belongs to it
    changed = False
    for (number, cell, source, masked, restore), new in zip(cells, pieces[1:]):
        if not masked.endswith("\n") and new.endswith("\n"):
            new = new[:-1]
        new = unmask_magics(new, restore)
        if new != source:
            changed = True
            cell["source"] = new.splitlines(keepends=True) if isinstance(cell.get("source"), list) else new
    if not changed:
        return text, diagnostics
    return _dump_like(nb, text), diagnostics


def _dump_like(nb: dict, original: str) -> str:
    """Serialise as the original was: its indentation, its escaping, its final newline; keys keep their
    order (json.loads preserves it), so only the rewritten cells differ."""
    m = re.search(r"^\{\s*?\n([ \t]+)\"", original)
    indent = m.group(1) if m else None
    ensure_ascii = original.isascii() and "\\u" in original
    out = json.dumps(nb, indent=indent, ensure_ascii=ensure_ascii)
    if indent is None:
        out = json.dumps(nb, ensure_ascii=ensure_ascii, separators=(",", ":") if ", " not in original else None)
    return out + ("\n" if original.endswith("\n") else "")
