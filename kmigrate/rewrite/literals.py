"""Read Python literals out of libcst expressions and render them back, without ever evaluating code."""

from __future__ import annotations

from typing import Any

import libcst as cst

from kmigrate.spec.pipeline import NOLIT


def literal_of(node: cst.BaseExpression) -> Any:
    """The Python value of a literal expression (numbers, strings, None/True/False, tuples, lists,
    dicts with literal keys), or NOLIT for anything else."""
    if isinstance(node, cst.Integer):
        try:
            return int(node.value.replace("_", ""), 0)
        except ValueError:
            return NOLIT
    if isinstance(node, cst.Float):
        try:
            return float(node.value.replace("_", ""))
        except ValueError:
            return NOLIT
    if isinstance(node, cst.SimpleString):
        prefix = node.prefix.lower()
        if "b" in prefix or "f" in prefix:
            return NOLIT
        body = node.raw_value
        if "r" in prefix or "\\" not in body:
            return body
        return NOLIT  # escapes: not worth decoding for Keras arguments
    if isinstance(node, cst.Name):
        return {"None": None, "True": True, "False": False}.get(node.value, NOLIT)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Minus, cst.Plus)):
        inner = literal_of(node.expression)
        if isinstance(inner, (int, float)) and not isinstance(inner, bool):
            return -inner if isinstance(node.operator, cst.Minus) else inner
        return NOLIT
    if isinstance(node, (cst.Tuple, cst.List)):
        items = []
        for el in node.elements:
            if not isinstance(el, cst.Element):
                return NOLIT
            v = literal_of(el.value)
            if v is NOLIT:
                return NOLIT
            items.append(v)
        return tuple(items)  # lists and tuples mean the same to Keras
    if isinstance(node, cst.Dict):
        out = {}
        for el in node.elements:
            if not isinstance(el, cst.DictElement):
                return NOLIT
            k, v = literal_of(el.key), literal_of(el.value)
            if k is NOLIT or v is NOLIT or isinstance(k, (tuple, dict)):
                return NOLIT
            out[k] = v
        return out
    return NOLIT


def render(value: Any, quote: str = "'") -> str:
    """Source text for a literal value, in the style Keras code is written in."""
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace(quote, "\\" + quote)
        return f"{quote}{escaped}{quote}"
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, tuple):
        inner = ", ".join(render(v, quote) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{render(k, quote)}: {render(v, quote)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot render {value!r}")


def render_node(value: Any, like: cst.BaseExpression | None = None) -> cst.BaseExpression:
    """A libcst expression for `value`, keeping the quote style of the expression it replaces."""
    quote = "'"
    if isinstance(like, cst.SimpleString):
        quote = like.quote[0] if like.quote else "'"
    if isinstance(like, cst.List) and isinstance(value, tuple):  # a list stays a list
        return cst.parse_expression("[" + ", ".join(render(v, quote) for v in value) + "]")
    return cst.parse_expression(render(value, quote))
