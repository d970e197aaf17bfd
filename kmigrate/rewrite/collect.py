"""The libcst pass over one module: the Collector (name resolution, calls, backend calls, imports)
plans every edit and diagnostic, then the Applier carries the plans out."""

from __future__ import annotations

import re
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, ScopeProvider

from kmigrate.diagnostics import Diagnostic
from kmigrate.rewrite import speedups
from kmigrate.rewrite.apply import Applier
from kmigrate.rewrite.backend import BackendCalls
from kmigrate.rewrite.calls import LayerCalls
from kmigrate.rewrite.imports import ImportCollector
from kmigrate.rewrite.names import NameResolution
from kmigrate.rewrite.plans import SKIP_MARKER, ModulePlans
from kmigrate.spec.loader import RuleSet
from kmigrate.spec.model import Options, Rule

speedups.install()  # libcst's visitor dispatch, looked up once per class
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


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
        self.import_nodes: list[cst.CSTNode] = []  # every import statement, as the applier may rewrite it
        self.wrapper: MetadataWrapper | None = None
        self.parents: dict[cst.CSTNode, cst.CSTNode | None] = {}
        self._stack: list[cst.CSTNode] = []
        self._positions = self._all_parents = self._assigns = None
        self._unplaced: list = []  # diagnostics whose position is still to be found
        self.any_skip_marker = any(SKIP_MARKER in line for line in lines)

    def touched(self) -> set[cst.CSTNode]:
        """Every node the applier changes, and their ancestors: the applier visits only these."""
        plans = self.plans
        out: set[cst.CSTNode] = set()
        starts = [*plans.calls, *plans.strings, *plans.attributes, *plans.wraps, *plans.wraps.values()]
        if plans.imports_change:
            starts += self.import_nodes
        for node in starts:
            while node is not None and node not in out:
                out.add(node)
                node = self.parent(node)
        return out

    def leave_Module(self, original_node: cst.Module) -> None:
        """Work that needs the whole module seen: deferred calls, compared literals, import bindings."""
        self.finish_constants()
        self.finish_deferred()
        self.finish_comparisons()
        self.finish_imports()


def rewrite(module: cst.Module, ruleset: RuleSet, options: Options, path: str,
             text: str) -> tuple[cst.Module, list[Diagnostic], ModulePlans]:
    """The new module, the diagnostics (positions in `text`) and the plans behind them."""
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    # the lines as the parser counts them (str.splitlines also splits at \x0c, \x1c, \u2028 ...)
    collector = Collector(ruleset, options, path, _LINE_BREAK.split(text))
    collector.wrapper = wrapper
    wrapper.visit(collector)
    collector.place_diagnostics()
    plans = collector.plans
    if plans.empty:
        return module, plans.diagnostics, plans  # nothing to change: skip the transform pass
    new = wrapper.module.visit(Applier(plans, ruleset, options, collector.touched()))
    return new, plans.diagnostics, plans
