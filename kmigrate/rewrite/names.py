"""Name resolution for the collector: qualified names through libcst's scope metadata (shadowing,
aliases, attribute access, star imports, try/except import fallbacks) and the never-silent names check."""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import libcst as cst
from libcst._nodes.internal import CodegenState
from libcst.helpers import get_full_name_for_node
from libcst.metadata import (
    ClassScope,
    GlobalScope,
    ImportAssignment,
    ParentNodeProvider,
    PositionProvider,
    ScopeProvider,
)

from kmigrate.diagnostics import Diagnostic, Severity
from kmigrate.rewrite import findings
from kmigrate.rewrite.plans import KERAS_MODEL_FACTORIES, SKIP_MARKER
from kmigrate.spec.model import Rule

_NEWLINE = re.compile(r"\r\n?|\n")


class NameResolution:
    """What a name or attribute means where it stands (mixed into the Collector)."""

    # -- metadata --------------------------------------------------------------------------------
    # libcst's QualifiedNameProvider, PositionProvider and ParentNodeProvider each walk the whole tree
    # up front; the collector needs them for a few nodes, so they are computed where asked.
    def qnames(self, node: cst.CSTNode):
        """QualifiedNameProvider's answer for this node, computed for it alone."""
        scope = self.get_metadata(ScopeProvider, node, None)
        return scope.get_qualified_names_for(node) if scope else set()

    def position(self, node: cst.CSTNode):
        """PositionProvider's answer: the positions are computed once, when first asked (a diagnostic)."""
        if self._positions is None:
            self._positions = self.wrapper.resolve(PositionProvider)
        return self._positions[node]

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        """The node's parent, as recorded on the way down; a node not visited yet asks libcst."""
        found = self.parents.get(node)
        if found is None and node not in self.parents:
            if self._all_parents is None:
                self._all_parents = self.wrapper.resolve(ParentNodeProvider)
            return self._all_parents.get(node)
        return found

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.parents[node] = self._stack[-1] if self._stack else None
        self._stack.append(node)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        super().on_leave(original_node)
        self._stack.pop()

    # -- helpers ---------------------------------------------------------------------------------
    def diag(self, node: cst.CSTNode, severity: Severity, rule: str, message: str) -> None:
        """A diagnostic at `node`; where it stands is computed once for all (place_diagnostics)."""
        said = Diagnostic(severity, rule, message, 0, 0, self.path)
        self.plans.diagnostics.append(said)
        self._unplaced.append((said, node))

    def place_diagnostics(self) -> None:
        """Give every diagnostic its node's line and column: one pass over the module that follows
        only those nodes (libcst's PositionProvider records a range for every node there is)."""
        if not self._unplaced:
            return
        if self._positions is not None:
            where = {node: (p.start.line, p.start.column) for node, p in
                     ((n, self._positions[n]) for _, n in self._unplaced)}
        else:
            where = _starts(self.wrapper.module, {n for _, n in self._unplaced})
        placed = {id(d): replace(d, line=where[n][0], col=where[n][1] + 1) for d, n in self._unplaced}
        self.plans.diagnostics = [placed.get(id(d), d) for d in self.plans.diagnostics]
        self._unplaced = []

    def skipped_by_comment(self, node: cst.CSTNode) -> bool:
        if not self.any_skip_marker:
            return False
        pos = self.position(node)
        return any(SKIP_MARKER in self.lines[i - 1] for i in range(pos.start.line, pos.end.line + 1)
                   if 0 < i <= len(self.lines))

    def qualified(self, node: cst.BaseExpression) -> str | None:
        names = {q.name for q in self.qnames(node)}
        if not names and isinstance(node, cst.Name) and self.star_modules:
            if self._unbound(node) or self._read_before_bound(node):
                names = {f"{self.star_modules[0]}.{node.value}"}
        if len(names) > 1:  # e.g. try: from keras.layers import X / except: from keras.layers.convolutional ...
            meanings = {self._meaning(n) for n in names}
            return sorted(names)[0] if len(meanings) == 1 and None not in meanings else None
        return names.pop() if names else None

    def _meaning(self, qname: str):
        found = self.layer_rule(qname)
        if found is not None:
            return (found[0].id, found[1])
        if qname in self.functions:
            return qname.rsplit(".", 1)[1]
        return None

    def _unbound(self, node: cst.Name) -> bool:
        scope = self.get_metadata(ScopeProvider, node, None)
        return scope is not None and not scope[node.value]

    def _read_before_bound(self, node: cst.Name) -> bool:
        """A name read at the module's (or a class body's) level before the statement that binds it
        there, which libcst leaves without a qualified name: when it runs, the name is what the module
        has bound so far (a star import's)."""
        return isinstance(self.get_metadata(ScopeProvider, node, None), (GlobalScope, ClassScope))

    def layer_rule(self, qname: str | None) -> tuple[Rule, str] | None:
        if not qname or "." not in qname:
            return None
        module, cls = qname.rsplit(".", 1)
        rule = self.rs.rule_for(module, cls)
        return (rule, cls) if rule else None

    def import_bindings(self, name: cst.Name) -> list[tuple[cst.ImportFrom, cst.ImportAlias]]:
        """Every `from ... import` that may bind this name (try/except fallbacks bind it twice)."""
        scope = self.get_metadata(ScopeProvider, name, None)
        found = []
        for assignment in scope[name.value] if scope is not None else ():
            if isinstance(assignment, ImportAssignment) and isinstance(assignment.node, cst.ImportFrom) \
                    and not isinstance(assignment.node.names, cst.ImportStar):
                for alias in assignment.node.names:
                    if (alias.evaluated_alias or alias.evaluated_name) == name.value:
                        found.append((assignment.node, alias))
        return found

    def taken(self, where: cst.CSTNode, name: str) -> bool:
        """Whether `name` already means something other than a Keras import where `where` stands."""
        scope = self.get_metadata(ScopeProvider, where, None)
        for assignment in scope[name] if scope is not None else ():
            node = getattr(assignment, "node", None)
            if isinstance(assignment, ImportAssignment) and isinstance(node, (cst.ImportFrom, cst.Import)):
                module = get_full_name_for_node(node.module) if isinstance(node, cst.ImportFrom) and node.module else ""
                if module.split(".")[0] == "keras":
                    continue
            if type(assignment).__name__ == "BuiltinAssignment":
                continue
            return True
        return False

    def record_name(self, func: cst.BaseExpression, new: str, keep_alias: bool) -> None:
        """The imports of the called name must provide `new`."""
        if isinstance(func, cst.Name):
            for imp, _ in self.import_bindings(func):
                self.plans.import_targets.setdefault((id(imp), func.value), set()).add((new, keep_alias))

    def source_call(self, node: cst.BaseExpression) -> str | None:
        """The qualified name of the function this expression calls, if it is a call."""
        if isinstance(node, cst.Call) and isinstance(node.func, (cst.Name, cst.Attribute)):
            return self.qualified(node.func)
        return None

    def check_name(self, node: cst.CSTNode, qname: str) -> None:
        """Never silent: a `keras.` name that no rule rewrites and Keras 3 lacks is reported here."""
        found = findings.of_name(qname, self.rs, self.options, self.removed, self.names_rule, self.handled,
                                 alias=isinstance(node, cst.ImportAlias))
        if found is not None:
            self.diag(node, *found)

    def handled(self, qname: str) -> bool:
        """A rule rewrites or reports this name: it is not the names check's to report."""
        return (self.layer_rule(qname) is not None or qname in self.functions or qname in self.removed
                or qname in self.module_map)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        """`keras.layers.convolutional.X` through any alias: drop the module segment Keras 3 lacks."""
        parent = self.parent(node)
        if not (isinstance(parent, cst.Attribute) and parent.value is node) \
                and not isinstance(parent, (cst.ImportFrom, cst.ImportAlias)):
            qname = self.qualified(node)
            if qname and not self.skipped_by_comment(node):
                self.check_name(node, qname)  # the outermost attribute of a chain (`K.sum`, not `K`)
        if not self.module_map:
            return
        qname = self.qualified(node)
        new = self.module_map.get(qname or "")
        if not new:
            return
        if new == qname.rsplit(".", 1)[0]:
            self.plans.attributes[node] = node.value
        elif get_full_name_for_node(node) == qname:  # written out in full: `keras.engine.training`
            self.plans.attributes[node] = cst.parse_expression(new)

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name) \
                and isinstance(node.value, cst.Call) and self.qualified(node.value.func) in KERAS_MODEL_FACTORIES:
            self.model_targets.add(node.targets[0].target)

    def visit_Comparison(self, node: cst.Comparison) -> None:
        self.comparisons.append(node)


@dataclass
class _Starts(CodegenState):
    """Code generation that keeps only the line and column, and records where the wanted nodes
    start, as PositionProvider does: syntactic positions (inside parentheses) first."""

    wanted: set = field(default_factory=set)
    found: dict = field(default_factory=dict)
    line: int = 1
    column: int = 0

    def add_indent_tokens(self) -> None:
        for token in self.indent_tokens:
            self._advance(token)

    def add_token(self, value: str) -> None:
        self._advance(value)

    def _advance(self, value: str) -> None:
        if "\n" in value or "\r" in value:
            segments = _NEWLINE.split(value)
            self.line += len(segments) - 1
            self.column = len(segments[-1])
        else:
            self.column += len(value)

    def pop_trailing_newline(self) -> None:
        pass  # the end of the file: nothing is wanted after it

    def before_codegen(self, node: cst.CSTNode) -> None:
        if node in self.wanted and node not in self.found:
            self.found[node] = (self.line, self.column)

    @contextmanager
    def record_syntactic_position(self, node: cst.CSTNode, *, start_node=None, end_node=None):
        if node in self.wanted:
            self.found[node] = (self.line, self.column)  # overrides the whitespace-inclusive start
        yield


def _starts(module: cst.Module, nodes: set) -> dict:
    state = _Starts(default_indent=module.default_indent, default_newline=module.default_newline, wanted=nodes)
    module._codegen(state)
    return state.found
