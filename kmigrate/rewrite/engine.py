"""Rewrite one module: Keras 1 layer calls, backend dim-ordering calls and Keras 1 import paths.

Collect, then edit: a metadata-aware visitor resolves every call to a qualified name (scope-aware:
shadowing, aliases, attribute access, star imports), binds its arguments to Keras 1 parameter names
and runs the shared op pipeline; a plain transformer then applies the plans to the tree, reusing the
original argument nodes so comments and formatting survive.
"""

from __future__ import annotations

import re
from typing import Any

import libcst as cst
from libcst.metadata import (
    MetadataWrapper,
    ScopeProvider,
)

from kmigrate.diagnostics import Diagnostic, Severity
from kmigrate.rewrite.apply import Applier
from kmigrate.rewrite.backend import BackendCalls
from kmigrate.rewrite.calls import LayerCalls
from kmigrate.rewrite.imports import ImportCollector
from kmigrate.rewrite.names import NameResolution
from kmigrate.rewrite.plans import SKIP_MARKER, ModulePlans
from kmigrate.spec.loader import RuleSet
from kmigrate.spec.model import Options, Rule


class Collector(NameResolution, LayerCalls, BackendCalls, ImportCollector, cst.CSTVisitor):
    METADATA_DEPENDENCIES = (ScopeProvider,)  # the others are computed where asked (names.py)

    def __init__(self, ruleset: RuleSet, options: Options, path: str, lines: list[str]) -> None:
        super().__init__()
        self.rs = ruleset
        self.options = options
        self.path = path
        self.lines = lines
        self.plans = ModulePlans()
        self.layer_modules = ruleset.layer_modules()
        self.module_map = ruleset.module_map() if options.enabled("module-paths") else {}
        self.functions = {q: r for r in ruleset.of_kind("function") for q in r.names}
        self.getters = {q for q, r in self.functions.items() if not r.signature}
        # removed names, also as a rewritten file spells them (`from keras import utils as np_utils`)
        self.removed = {m: r for r in ruleset.of_kind("removed") for q in r.names for m in (q, ruleset.moved(q))}
        self.methods = ruleset.method_rules()
        self.module_facts: dict[str, Any] = {}
        self.names_rule = next((r for r in ruleset.of_kind("names") if options.enabled(r.id)), None)
        self.keras_imported = False  # method rules (`fit(nb_epoch=)`) apply only in modules that use Keras
        self.model_targets: set[cst.Name] = set()  # names assigned a Keras model
        self.star_modules: list[str] = []
        self.any_star = False
        # Keras 1 code is certain here (a rewrite that changes something, a Keras 1 module path): calls
        # that are valid Keras 3 but meant Keras 1's defaults (`LSTM(32)` had hard_sigmoid gates) get
        # those defaults written out; `deferred` holds them until the whole module has been seen.
        self.keras1_evidence = False
        self.deferred: list[tuple[cst.Call, Rule, str]] = []
        self.comparisons: list[cst.Comparison] = []
        self.imports: list[cst.ImportFrom] = []
        self.wrapper: MetadataWrapper | None = None
        self.parents: dict[cst.CSTNode, cst.CSTNode | None] = {}
        self._stack: list[cst.CSTNode] = []
        self._positions = self._all_parents = self._assigns = None
        self.any_skip_marker = any(SKIP_MARKER in line for line in lines)

    def leave_Module(self, original_node: cst.Module) -> None:
        """Work that needs the whole module seen: deferred calls, compared literals, import bindings."""
        self.finish_constants()
        self.finish_deferred()
        self.finish_comparisons()
        self.finish_imports()


def rewrite_module(module: cst.Module, ruleset: RuleSet, options: Options, path: str,
                   text: str) -> tuple[cst.Module, list[Diagnostic]]:
    """Rewrite a parsed module; returns the new module and the diagnostics (positions in the input)."""
    new, diags, _ = _rewrite(module, ruleset, options, path, text)
    return new, diags


def _rewrite(module: cst.Module, ruleset: RuleSet, options: Options, path: str,
             text: str) -> tuple[cst.Module, list[Diagnostic], ModulePlans]:
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    collector = Collector(ruleset, options, path, text.splitlines())
    collector.wrapper = wrapper
    wrapper.visit(collector)
    plans = collector.plans
    if plans.empty:
        return module, plans.diagnostics, plans  # nothing to change: skip the transform pass
    new = wrapper.module.visit(Applier(plans, ruleset, options))
    return new, plans.diagnostics, plans


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
    new, diags, plans = _rewrite(module, ruleset, options, path, reduced)
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
