"""Parse Python source with libcst, including what CPython accepts and libcst's tokenizer does not."""

from __future__ import annotations

import io
import tokenize


def parse_module(text: str):
    """The libcst module of `text`, and whether its indentation had to be rewritten to parse.

    CPython reads a tab in indentation as a move to the next multiple of 8 columns and accepts files
    that mix tabs and spaces consistently; libcst's tokenizer rejects some of them. Such a file is
    parsed with its indentation written out in spaces, which is what CPython already read it as.
    """
    import libcst as cst

    try:
        return cst.parse_module(text), False
    except cst.ParserSyntaxError:
        expanded = expand_indentation(text)
        if expanded is None or expanded == text:
            raise
        try:
            return cst.parse_module(expanded), True
        except cst.ParserSyntaxError:
            pass
        raise


def expand_indentation(text: str) -> str | None:
    """`text` with the leading whitespace of every line that starts a token written in spaces (CPython's
    tab stops of 8); lines inside strings are content and stay as they are. None if CPython's tokenizer
    rejects the text."""
    starts: set[int] = set()
    last_row = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            row = tok.start[0]
            if row != last_row and tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.DEDENT,
                                                    tokenize.ENDMARKER):
                starts.add(row)
                last_row = row
    except (tokenize.TokenError, SyntaxError):
        return None
    lines = text.splitlines(keepends=True)
    for row in starts:
        line = lines[row - 1]
        body = line.lstrip(" \t")
        lead = line[: len(line) - len(body)]
        if "\t" in lead:
            column = 0
            for ch in lead:
                column = (column // 8 + 1) * 8 if ch == "\t" else column + 1
            lines[row - 1] = " " * column + body
    return "".join(lines)
