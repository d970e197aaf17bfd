"""Rewrite one module's source: decide with CPython's ast, read with libcst only what must change.

1. quick.engine_sites: the ast reading finds the statements where the engine may edit or report. With
   none, the module is returned as is, with the reports of the calls it leaves as written (if any).
2. quick.unread_of: every other statement, at any depth, becomes a placeholder line; the libcst pass
   (collect.py) runs over the rest, diagnostics are moved back to the input's lines, and the skipped
   lines are put back.
3. With a star import (any name may be Keras's), the libcst pass reads the whole module: scope-aware
   names (shadowing, aliases, attribute access, star imports), arguments bound to Keras 1 parameters,
   the shared op pipeline, and edits that reuse the written nodes so comments and formatting survive.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from kmigrate.diagnostics import Diagnostic, Severity
from kmigrate.spec.loader import RuleSet
from kmigrate.spec.model import Options

if TYPE_CHECKING:
    import libcst as cst


def rewrite_module(module: cst.Module, ruleset: RuleSet, options: Options, path: str,
                   text: str) -> tuple[cst.Module, list[Diagnostic]]:
    """Rewrite a parsed module; returns the new module and the diagnostics (positions in the input)."""
    from kmigrate.rewrite.collect import (
        rewrite,  # libcst is imported only for modules that need it
    )

    new, diags, _ = rewrite(module, ruleset, options, path, text)
    return new, diags


# libcst's tree and scope metadata take about 0.7 GB per MB of source: a larger file that needs the
# engine is refused (with a one-line error) rather than risk exhausting memory. Files that need nothing
# never reach libcst and have no limit.
MAX_ENGINE_CHARS = 1_000_000


_UNPARSED = object()


class Parsed(str):
    """Rewritten source already known to parse: the lines the engine wrote were parsed, and the
    others are the input's own, put back where they stood (files.process_data parses anything else)."""


def rewrite_text(text: str, ruleset: RuleSet, options: Options, path: str = "-", tree=_UNPARSED,
                 tidy: bool = False) -> tuple[str, list[Diagnostic]]:
    """Rewrite Python source text; raises libcst.ParserSyntaxError when libcst cannot parse it. A module
    that CPython's `ast` shows needs nothing (quick.py) is never handed to libcst. `tree`: the text's
    ast if the caller has it (None: CPython does not parse it); `tidy`: lay the result out for linters
    (tidy.py), over the lines the engine read."""
    import ast

    from kmigrate.rewrite.parse import parse_module
    from kmigrate.rewrite.quick import engine_sites, unread_of

    if tree is _UNPARSED:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            tree = None  # libcst decides, and reports the error in its own words
    m = engine_sites(tree, text, ruleset, options) if tree is not None else None
    if m is not None and not m.sites:
        return text, m.diagnostics(path)  # nothing to edit; calls left as written are reported from here
    unread = unread_of(m) if m is not None else None
    if unread:
        done = _rewrite_read_part(text, unread, ruleset, options, path, tidy)
        if done is not None:
            return done
    if len(text) > MAX_ENGINE_CHARS:
        from kmigrate.rewrite.files import SourceError

        raise SourceError(f"too large to rewrite: {len(text):,} characters, over the limit of {MAX_ENGINE_CHARS:,} "
                          "(libcst would need about 0.7 GB per MB); split the file, or rewrite its parts")
    module, respaced = parse_module(text)
    new, diags = rewrite_module(module, ruleset, options, path, text)
    if respaced:
        if new.code == module.code:
            return text, diags  # nothing to rewrite: the tabs stay as written
        diags.append(Diagnostic(Severity.WARNING, "file", "indentation that mixed tabs and spaces is written "
                                "in spaces (as CPython reads it), so that the file could be rewritten", 1, 1, path))
    code = new.code
    if tidy and code != text:
        from kmigrate.rewrite.tidy import tidy as lay_out

        code = lay_out(text, code)
    return code, diags


UNREAD = "#kmigrate:unread"  # ends each line of a statement the engine does not read
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def _rewrite_read_part(text: str, unread: list[tuple[int, int, str]], ruleset: RuleSet, options: Options,
                       path: str, tidy: bool = False) -> tuple[str, list[Diagnostic]] | None:
    """The engine over only the statements that matter (quick.unread_statements): each run of other
    statements becomes one placeholder line (`pass`, or `if 1:pass` when it holds a compound
    statement, at its indentation), so every block keeps a statement and the columns of the read
    lines stay those of the input; diagnostics are moved back to the input's lines, and the skipped
    lines are put back in place of the placeholders. None when this cannot be done exactly; the
    whole module is then read."""
    import ast
    import dataclasses

    import libcst as cst

    from kmigrate.rewrite.collect import rewrite
    from kmigrate.rewrite.parse import parse_module

    if UNREAD in text:
        return None
    lines = _LINES.findall(text)
    kept: list[str] = []
    hidden: list[str] = []
    origin: list[int] = []  # the input line of each line of the reduced module
    at = 0
    for first, last, placeholder in unread:
        kept.extend(lines[at:first - 1])
        origin.extend(range(at + 1, first))
        span = lines[first - 1:last]
        if not span:
            return None
        hidden.append("".join(span))
        ending = span[-1][len(span[-1].rstrip("\r\n")):] or "\n"
        kept.append(placeholder + UNREAD + ending)
        origin.append(first)
        at = last
    kept.extend(lines[at:])
    origin.extend(range(at + 1, len(lines) + 1))
    reduced = "".join(kept)
    if len(reduced) > MAX_ENGINE_CHARS:
        return None
    try:
        module, respaced = parse_module(reduced)
    except cst.ParserSyntaxError:
        return None  # the whole module is parsed, and any error reported in its own terms
    if respaced:
        return None
    new, diags, _ = rewrite(module, ruleset, options, path, reduced)
    diags = [dataclasses.replace(d, line=origin[d.line - 1]) if 0 < d.line <= len(origin) else d for d in diags]
    if new is module:
        return text, diags
    code = new.code
    if tidy and code != reduced:
        from kmigrate.rewrite.tidy import tidy as lay_out

        code = lay_out(reduced, code)  # what it touches lies on read lines: brackets, imports
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # the whole module is rewritten instead, and its result checked there
    out = _LINES.findall(code)
    it = iter(hidden)
    try:
        result = "".join(next(it) if line.rstrip("\r\n").endswith(UNREAD) else line for line in out)
    except StopIteration:
        return None
    if next(it, None) is not None:
        return None
    return Parsed(result), diags
