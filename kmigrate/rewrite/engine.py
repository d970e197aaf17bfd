"""Rewrite one module's source: decide with CPython's ast, read with libcst only what a rule can see.

1. quick.needs_nothing: a module the ast reading shows needs no edit and no report is returned as is
   (most of a migrated project, never parsed by libcst).
2. quick.unread_statements: top-level statements no rule can see become placeholder comments (lines
   and columns unchanged), the libcst pass (collect.py) runs over the rest, and they are put back.
3. Otherwise the libcst pass reads the whole module: scope-aware names (shadowing, aliases, attribute
   access, star imports), arguments bound to Keras 1 parameters, the shared op pipeline, and edits that
   reuse the written nodes so comments and formatting survive.
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
    from kmigrate.rewrite.collect import rewrite  # libcst is imported only for modules that need it

    new, diags, _ = rewrite(module, ruleset, options, path, text)
    return new, diags


# libcst's tree and scope metadata take about 0.7 GB per MB of source: a larger file that needs the
# engine is refused (with a one-line error) rather than risk exhausting memory. Files that need nothing
# never reach libcst and have no limit.
MAX_ENGINE_CHARS = 1_000_000


def rewrite_text(text: str, ruleset: RuleSet, options: Options, path: str = "-") -> tuple[str, list[Diagnostic]]:
    """Rewrite Python source text; raises libcst.ParserSyntaxError when libcst cannot parse it. A module
    that CPython's `ast` shows needs nothing (quick.py) is never handed to libcst."""
    import ast

    from kmigrate.rewrite.parse import parse_module
    from kmigrate.rewrite.quick import needs_nothing, unread_statements

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        tree = None  # libcst decides, and reports the error in its own words
    if tree is not None and needs_nothing(tree, text, ruleset, options):
        return text, []
    unread = unread_statements(tree, ruleset) if tree is not None else []
    if unread:
        done = _rewrite_read_part(text, unread, ruleset, options, path)
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
    return new.code, diags


UNREAD = "#kmigrate:unread"  # stands for each line of a statement the engine does not read
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def _rewrite_read_part(text: str, unread: list[tuple[int, int]], ruleset: RuleSet, options: Options,
                       path: str) -> tuple[str, list[Diagnostic]] | None:
    """The engine over only the statements that matter (quick.unread_statements): every other line
    becomes a placeholder comment, so lines and columns (and diagnostics) stay those of the input,
    and is put back afterwards. None when this cannot be done exactly; the whole module is then read."""
    import libcst as cst

    from kmigrate.rewrite.collect import rewrite
    from kmigrate.rewrite.parse import parse_module

    if UNREAD in text:
        return None
    lines = _LINES.findall(text)
    kept = list(lines)
    hidden = []
    for first, last in unread:
        for i in range(first - 1, min(last, len(lines))):
            line = lines[i]
            body = line.rstrip("\r\n")
            hidden.append(line)
            kept[i] = UNREAD + line[len(body):]
    reduced = "".join(kept)
    if len(reduced) > MAX_ENGINE_CHARS:
        return None
    try:
        module, respaced = parse_module(reduced)
    except cst.ParserSyntaxError:
        return None  # the whole module is parsed, and any error reported in its own terms
    if respaced:
        return None
    new, diags, plans = rewrite(module, ruleset, options, path, reduced)
    if plans.modules_needed:
        return None  # where `import math` goes depends on every top-level statement
    if new is module:
        return text, diags
    out = _LINES.findall(new.code)
    it = iter(hidden)
    try:
        result = "".join(next(it) if line.rstrip("\r\n") == UNREAD else line for line in out)
    except StopIteration:
        return None
    if next(it, None) is not None:
        return None
    return result, diags
