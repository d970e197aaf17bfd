"""Port Python 2 source to Python 3 with fissix (the maintained fork of lib2to3; 2to3 left the standard
library in Python 3.13), so `rewrite --py2` can migrate Keras 1 code written for Python 2 in one run.

fissix is an optional dependency: `pip install fissix`.
"""

from __future__ import annotations

import re

# 2to3's defaults: every fixer except the explicit-only ones (style changes, not ports)
_EXPLICIT = {"fix_buffer", "fix_idioms", "fix_set_literal", "fix_ws_comma"}

_PY2_HINTS = re.compile(
    r"^\s*print\s+[^(\s=,.)\[]|^\s*exec\s+['\"]|except\s+[\w.]+\s*,\s*\w+\s*:|\bur?'|"
    r"^\s*raise\s+\w+\s*,|\b0[0-7]+\b|\bxrange\(|\.iteritems\(|`[^`\n]+`|<>", re.M)


class MissingFissix(RuntimeError):
    """--py2 was asked for and fissix is not installed."""


def looks_like_python2(text: str) -> bool:
    """Python 2-only syntax somewhere in the text (a hint for the error message, never a decision)."""
    return bool(_PY2_HINTS.search(text))


_tool = None


def _refactoring_tool():
    global _tool
    if _tool is None:
        try:
            from fissix import refactor
        except ModuleNotFoundError:
            from kmigrate.deps import missing

            raise MissingFissix(missing("fissix", "--py2 (porting with the maintained lib2to3)")) from None
        fixers = [f for f in refactor.get_fixers_from_package("fissix.fixes")
                  if f.rsplit(".", 1)[-1] not in _EXPLICIT]
        _tool = refactor.RefactoringTool(fixers)
    return _tool


def port(text: str, path: str) -> str:
    """The Python 3 port of `text`. `path` lets the implicit-relative-import fixer look for sibling
    modules on disk (it reads names, never the modules). Raises MissingFissix, or fissix's ParseError
    when the text is not Python 2 either."""
    tool = _refactoring_tool()
    source = text if text.endswith("\n") else text + "\n"  # lib2to3's grammar wants a final newline
    tree = tool.refactor_string(source, path)
    out = str(tree)
    return out if text.endswith("\n") else out[:-1]


def parse_error_position(exc: BaseException) -> tuple[int, int] | None:
    """(line, 1-based column) of a fissix parse error, when it carries one."""
    context = getattr(exc, "context", None)
    if context and len(context) == 2 and isinstance(context[1], tuple):
        line, col = context[1]
        return line, col + 1
    return None
