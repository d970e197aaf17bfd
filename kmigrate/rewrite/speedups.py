"""Faster dispatch for libcst's visitors, with the same behaviour: method lookups done once per class.

libcst finds a visitor's `visit_<Node>`, `leave_<Node>` and `visit_<Node>_<attribute>` methods by
formatting their names and looking them up for every node and every child attribute it visits, and
its typed base class defines a no-op stub for each, which is then called. Its batched metadata
providers run `inspect.getmembers` over every provider instance. On the statements the rewrite reads
this bookkeeping costs more than the scope analysis itself; here each lookup is made once per
visitor class and node type, and stubs marked no-op are not called. Imported by the libcst pass only.
"""

from __future__ import annotations

import inspect
from typing import Any

import libcst as cst
from libcst import _batched_visitor

_NOTHING = object()
_FOUND: dict[tuple[type, type, str], str | None] = {}


def _real(cls: type, name: str) -> str | None:
    """`name` if the class has a method of that name that does something (not a no-op stub)."""
    method = getattr(cls, name, None)
    if method is None or getattr(method, "_is_no_op", False):
        return None
    return name


def _lookup(visitor: Any, node: Any, prefix: str, attribute: str = "") -> str | None:
    key = (type(visitor), type(node), prefix + attribute)
    found = _FOUND.get(key, _NOTHING)
    if found is _NOTHING:
        name = f"{prefix}{type(node).__name__}_{attribute}" if attribute else f"{prefix}{type(node).__name__}"
        found = _FOUND[key] = _real(type(visitor), name)
    return found


def _on_visit(self, node) -> bool:
    name = _lookup(self, node, "visit_")
    retval = getattr(self, name)(node) if name is not None else True
    return retval is not False  # libcst: children are skipped only when the method returned False


def _on_leave(self, original_node) -> None:
    name = _lookup(self, original_node, "leave_")
    if name is not None:
        getattr(self, name)(original_node)


def _on_visit_attribute(self, node, attribute: str) -> None:
    name = _lookup(self, node, "visit_", attribute)
    if name is not None:
        getattr(self, name)(node)


def _on_leave_attribute(self, original_node, attribute: str) -> None:
    name = _lookup(self, original_node, "leave_", attribute)
    if name is not None:
        getattr(self, name)(original_node)


_VISITOR_NAMES: dict[type, tuple[str, ...]] = {}


def _visitor_names(cls: type) -> tuple[str, ...]:
    """What libcst's get_visitors finds with inspect.getmembers (the methods whose function is named
    visit_* or leave_* and is not a no-op stub), read from the class's attributes once."""
    out = []
    for name in dir(cls):
        method = getattr(cls, name, None)
        if not (inspect.isfunction(method) or inspect.ismethod(method)):
            continue
        if method.__name__.startswith(("visit_", "leave_")) and not getattr(method, "_is_no_op", False):
            out.append(name)
    return tuple(out)


def _get_visitors(visitor) -> dict[str, Any]:
    names = _VISITOR_NAMES.get(type(visitor))
    if names is None:
        names = _VISITOR_NAMES[type(visitor)] = _visitor_names(type(visitor))
    return {name: getattr(visitor, name) for name in names}


def install() -> None:
    """Replace the lookups (idempotent). Instances that define methods of their own are not supported
    by libcst's dispatch either: it looks methods up on the instance, which finds the class's."""
    cst.CSTVisitor.on_visit = _on_visit
    cst.CSTVisitor.on_leave = _on_leave
    cst.CSTVisitor.on_visit_attribute = _on_visit_attribute
    cst.CSTVisitor.on_leave_attribute = _on_leave_attribute
    _batched_visitor.BatchableCSTVisitor.get_visitors = _get_visitors
