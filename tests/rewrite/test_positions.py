"""Diagnostics are placed by one light pass (names._starts) that must agree with libcst's PositionProvider."""

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from kmigrate.rewrite.names import _starts

from ..conftest import FIXTURES

SOURCES = sorted([*FIXTURES.glob("code/*/*.before.py"), *FIXTURES.glob("legacy/models/*.py"),
                  *FIXTURES.glob("scripts/*.py")])
KINDS = (cst.Call, cst.Attribute, cst.ImportAlias, cst.ImportFrom, cst.Import, cst.Name, cst.Arg,
         cst.SimpleString, cst.Comparison)


class _Nodes(cst.CSTVisitor):
    def __init__(self):
        self.found = []

    def on_visit(self, node):
        if isinstance(node, KINDS):
            self.found.append(node)
        return True


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_starts_are_positionprovider_starts(path):
    text = path.read_text(encoding="utf-8")
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError:
        return
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    nodes = _Nodes()
    module.visit(nodes)
    assert nodes.found
    got = _starts(module, set(nodes.found))
    for node in nodes.found:
        want = positions[node].start
        assert got[node] == (want.line, want.column), (path.name, type(node).__name__, want)


def test_parenthesised_and_multiline():
    text = "x = (\n    (Conv(1,\n          2))  # c\n)\nimport a.b as c, d\n"
    module = cst.parse_module(text)
    call = module.body[0].body[0].value
    alias = module.body[1].body[0].names[1]
    got = _starts(module, {call, alias})
    assert got[call] == (2, 5)  # inside its own parentheses, as PositionProvider says
    assert got[alias] == (5, 17)


def test_visitor_lookups_are_libcsts():
    """speedups.py finds the same batched visitor methods libcst's get_visitors finds (inspect.getmembers)."""
    import inspect

    from libcst import metadata

    from kmigrate.rewrite import speedups

    providers = [c for _, c in inspect.getmembers(metadata, inspect.isclass)
                 if issubclass(c, metadata.BatchableMetadataProvider) and c is not metadata.BatchableMetadataProvider]
    assert len(providers) >= 3
    for cls in providers:
        try:
            instance = cls()
        except TypeError:
            continue  # providers that need arguments
        found = {n for n, _ in inspect.getmembers(instance, lambda m: inspect.ismethod(m) and m.__name__.startswith(
            ("visit_", "leave_")) and not getattr(m, "_is_no_op", False))}
        assert set(speedups._visitor_names(cls)) == found, cls.__name__
