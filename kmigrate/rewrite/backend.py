"""Backend calls for the collector: the dim-ordering getter and setter and the literals compared with them."""

from __future__ import annotations

from typing import Any

import libcst as cst

from kmigrate.diagnostics import Severity
from kmigrate.rewrite.literals import literal_of
from kmigrate.rewrite.plans import FunctionPlan
from kmigrate.spec.model import Rule
from kmigrate.spec.pipeline import NOLIT


class BackendCalls:
    """`K.image_dim_ordering()`, `K.set_image_dim_ordering('th')` (mixed into the Collector)."""

    # -- backend functions -----------------------------------------------------------------------
    def plan_function(self, node: cst.Call, rule: Rule, qname: str) -> None:
        vmap = next(iter(rule.value_maps.values()))
        short = qname.rsplit(".", 1)[1]
        first: Any = NOLIT
        mapped = lit = None
        if rule.signature:  # a setter: its one argument is mapped
            (param,) = rule.signature
            if len(node.args) != 1 or node.args[0].keyword is not None and node.args[0].keyword.value != param:
                self.diag(node, Severity.ERROR, rule.id, f"{short}(...) left as written: expected one argument")
                return
            lit = literal_of(node.args[0].value)
            self.module_facts["dim_ordering_set"] = True  # the global ordering changes at run time
            if lit is NOLIT:
                mapped = dict(vmap.mapping)  # exact: Keras 1 raised for any other value, and so does this
            elif lit not in vmap.mapping and lit not in vmap.keep:
                self.diag(node, Severity.ERROR, rule.id, f"{short}(...) left as written: its argument is not "
                          f"{' or '.join(repr(k) for k in vmap.mapping)}")
                return
            else:
                first = vmap.mapping.get(lit, lit)
        new = rule.names[qname]
        keep_alias = isinstance(node.func, cst.Name) and any(
            alias.asname is not None for _, alias in self.import_bindings(node.func))
        if not keep_alias and isinstance(node.func, cst.Name) and self.taken(node, new):
            self.diag(node, Severity.ERROR, rule.id, f"{short}(...) left as written: `{new}` "
                      "already names something else here")
            return
        as_value = None
        if not rule.signature and not self._compared_or_mapped(node):
            # its result is used as a value ('th'/'tf'): keep that value, computed the Keras 2 way
            as_value = {v: k for k, v in vmap.mapping.items()}
        self.plans.calls[node] = FunctionPlan(rule, None if keep_alias else new, first, as_value,
                                              mapped if rule.signature and lit is NOLIT else None)
        self.record_name(node.func, new, keep_alias)
        if isinstance(node.func, cst.Name):
            self.plans.renamed_refs.add(node.func)

    def _compared_or_mapped(self, node: cst.Call) -> bool:
        """The getter's result is compared with literals right here (those get mapped), or is the
        `dim_ordering=` of a layer call that is rewritten (its rule maps it)."""
        parent = self.parent(node)
        if isinstance(parent, cst.Comparison) and parent.left is node:
            return not self.skipped_by_comment(parent)
        if isinstance(parent, cst.ComparisonTarget):
            return not self.skipped_by_comment(parent)
        if isinstance(parent, cst.Arg) and parent.keyword is not None and parent.keyword.value == "dim_ordering":
            call = self.parent(parent)
            return call in self.plans.calls
        return False

    def finish_constants(self) -> None:
        """--default-dim-ordering: the getter's Keras 1 value, written out where nothing here sets it."""
        option = self.options.default_dim_ordering
        if option is not None and not self.module_facts.get("dim_ordering_set"):
            # The project's keras.json said `option` and nothing here changes it: the getter returned it
            # in Keras 1. Keras 3's global must stay channels_last (Flatten would permute under
            # channels_first), so the getter's value is written out instead of read.
            for plan in self.plans.calls.values():
                if isinstance(plan, FunctionPlan) and not plan.rule.signature:
                    vmap = next(iter(plan.rule.value_maps.values()))
                    plan.constant = option if plan.as_keras1_value else vmap.mapping[option]

    def finish_comparisons(self) -> None:
        """Literals compared with a rewritten getter take its new values."""
        for rule in self.rs.of_kind("function"):
            if not self.options.enabled(rule.id):
                continue
            vmap = next(iter(rule.value_maps.values()))
            for comp in self.comparisons:
                operands = [comp.left] + [t.comparator for t in comp.comparisons]
                getters = [o for o in operands if self.source_call(o) in self.getters]
                if not any(g in self.plans.calls for g in getters):
                    continue  # not rewritten (skipped, disabled or refused): its literals stay too
                for o in operands:
                    for s in _strings(o):
                        lit = literal_of(s)
                        if lit in vmap.mapping:
                            self.plans.strings[s] = vmap.mapping[lit]


def _strings(node: cst.BaseExpression) -> list[cst.SimpleString]:
    if isinstance(node, cst.SimpleString):
        return [node]
    if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
        return [e.value for e in node.elements if isinstance(e.value, cst.SimpleString)]
    return []
