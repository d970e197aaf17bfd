"""Layout after a rewrite, so the result passes the linters users run: no import bound twice by the
rewrite (ruff F811) and continuation lines still aligned with their opening bracket after a rename
changed its column (pycodestyle E127/E128).

Only what the rewrite itself disturbed is touched: a duplicate import or a misaligned line that was
already there in the input stays as the user wrote it.
"""

from __future__ import annotations

import ast
import difflib
import io
import tokenize


def tidy(old: str, new: str) -> str:
    """`new` (the rewrite of `old`) with rewrite-made duplicate imports dropped and continuation lines
    realigned; `new` unchanged when anything here cannot be sure."""
    try:
        new = drop_duplicate_imports(old, new)
        aligned = realign(old, new)
        # whitespace inside brackets means nothing to Python: if the tree differs, a string moved
        if aligned != new and ast.dump(ast.parse(aligned)) == ast.dump(ast.parse(new)):
            new = aligned
    except (SyntaxError, ValueError, RecursionError, MemoryError, tokenize.TokenError, IndentationError):
        pass
    return new


# --- duplicate imports ------------------------------------------------------------------------------

def _bound_names(stmt: ast.stmt) -> set[str]:
    """Names a module-level statement (re)binds, generously: anything stored anywhere inside it."""
    names = set()
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
    return names


def _duplicates(tree: ast.Module) -> list[tuple[ast.ImportFrom, ast.alias, tuple]]:
    """Module-level `from M import n [as a]` aliases that repeat a binding an earlier unconditional
    import made, with nothing rebinding the name in between."""
    current: dict[str, tuple] = {}
    found = []
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and not any(a.name == "*" for a in stmt.names):
            for alias in stmt.names:
                local = alias.asname or alias.name
                key = (stmt.module, stmt.level, alias.name, local)
                if current.get(local) == key:
                    found.append((stmt, alias, key))
                else:
                    current[local] = key
            continue
        for name in _bound_names(stmt):
            current.pop(name, None)
    return found


def drop_duplicate_imports(old: str, new: str) -> str:
    new_dups = _duplicates(ast.parse(new))
    if not new_dups:
        return new
    old_keys = [key for _, _, key in _duplicates(ast.parse(old))]
    lines = new.splitlines(keepends=True)
    by_stmt: dict[int, tuple[ast.ImportFrom, list[ast.alias]]] = {}
    for stmt, alias, key in new_dups:
        if key in old_keys:  # the input repeated it already: the user's business
            old_keys.remove(key)
            continue
        by_stmt.setdefault(id(stmt), (stmt, []))[1].append(alias)
    # edit from the bottom up so earlier positions stay valid
    for stmt, aliases in sorted(by_stmt.values(), key=lambda v: -v[0].lineno):
        first, last = stmt.lineno - 1, stmt.end_lineno - 1
        head = lines[first][:_byte_to_char(lines[first], stmt.col_offset)]
        tail = lines[last][_byte_to_char(lines[last], stmt.end_col_offset):]
        if head.strip() or tail.strip():
            continue  # shares its line with other code or a comment: leave it
        if len(aliases) == len(stmt.names):
            del lines[first:last + 1]
        elif first == last and "(" not in lines[first]:
            keep = [a for a in stmt.names if a not in aliases]
            names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in keep)
            text = lines[first]
            prefix = text[:text.index(" import ") + len(" import ")]
            lines[first] = prefix + names + tail
    return "".join(lines)


def _byte_to_char(line: str, offset: int) -> int:
    """ast gives UTF-8 byte offsets; lines are str."""
    return len(line.encode("utf-8")[:offset].decode("utf-8", errors="ignore"))


# --- continuation lines -----------------------------------------------------------------------------

def _continuations(text: str) -> dict[int, tuple[int, int, int]]:
    """line -> (line of the innermost open bracket, its visual column, the line's indent) for each
    physical line that starts inside a bracket whose first element follows it on the same line
    (pycodestyle's "visual indent"). Columns are in characters."""
    out: dict[int, tuple[int, int, int]] = {}
    stack: list[list] = []  # [line, visual column or None, awaiting first token]
    last_line = 0
    in_fstring = 0  # Python 3.12+ tokenizes f-strings: their inner lines start tokens too
    fstring_start, fstring_end = getattr(tokenize, "FSTRING_START", -1), getattr(tokenize, "FSTRING_END", -1)
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                        tokenize.ENDMARKER):
            continue
        if tok.type == fstring_start:
            in_fstring += 1
        elif tok.type == fstring_end:
            in_fstring -= 1
            last_line = tok.end[0]
            continue
        if in_fstring and tok.type != fstring_start:
            last_line = tok.end[0]
            continue
        line, col = tok.start
        if stack and stack[-1][2]:
            stack[-1][2] = False
            if line == stack[-1][0] and tok.type != tokenize.COMMENT:
                stack[-1][1] = col
        if line != last_line:
            last_line = line
            closing = tok.type == tokenize.OP and tok.string in ")]}"
            if stack and not closing and stack[-1][1] is not None and line != stack[-1][0]:
                out[line] = (stack[-1][0], stack[-1][1], col)
        if tok.type == tokenize.STRING:
            last_line = tok.end[0]  # lines inside a string start no token
        if tok.type == tokenize.OP and tok.string in "([{":
            stack.append([line, None, True])
        elif tok.type == tokenize.OP and tok.string in ")]}" and stack:
            stack.pop()
    return out


def realign(old: str, new: str) -> str:
    """Shift the continuation lines that were aligned with their bracket in `old` and are not in `new`
    (a call renamed `Convolution2D(` -> `Conv2D(` moves its bracket 7 columns left)."""
    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    new_info = _continuations(new)
    if not new_info:
        return new
    old_info = _continuations(old)
    mapping: dict[int, int] = {}  # new line -> old line (1-based), where the diff pairs them
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            for k in range(j2 - j1):
                mapping[j1 + k + 1] = i1 + k + 1
    # a bracket is ours to realign when its continuation lines that the diff pairs with the input were
    # aligned there; lines the rewrite wrote anew (three keywords became two, a call wrapped in another)
    # follow their bracket, and are ours when no line of the bracket comes from the input
    aligned_before: dict[int, bool] = {}
    for line, (bracket_line, _, _) in new_info.items():
        if line in mapping:
            was = old_info.get(mapping[line])
            ok = was is not None and was[1] == was[2]
            aligned_before[bracket_line] = aligned_before.get(bracket_line, True) and ok
    shift: dict[int, int] = {}
    for line in sorted(new_info):
        bracket_line, visual, indent = new_info[line]
        if line in mapping:
            was = old_info.get(mapping[line])
            if was is None or was[1] != was[2]:
                continue  # not a continuation line aligned in the input: not ours to move
        elif not aligned_before.get(bracket_line, True):
            continue  # written anew by the rewrite, in a bracket the input did not align
        delta = visual + shift.get(bracket_line, 0) - indent
        text = new_lines[line - 1]
        if delta > 0:
            new_lines[line - 1] = " " * delta + text
        elif delta < 0 and text[:-delta].strip(" ") == "":
            new_lines[line - 1] = text[-delta:]
        else:
            continue
        shift[line] = delta
    return "".join(new_lines)
