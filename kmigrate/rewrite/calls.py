"""Layer and method calls for the collector: bind the written arguments, run the rule's op pipeline,
plan the edit (extra layers of a construction, renames through aliases, deferred dual spellings)."""

from __future__ import annotations

from typing import Any

import libcst as cst
from libcst.metadata import (
    ImportAssignment,
    ScopeProvider,
)

from kmigrate.diagnostics import Severity
from kmigrate.rewrite import findings
from kmigrate.rewrite.binding import Written, bind_names, changes, positionals_differ
from kmigrate.rewrite.literals import literal_of
from kmigrate.rewrite.plans import LayerPlan, imports_of
from kmigrate.spec.model import Rule
from kmigrate.spec.pipeline import NOLIT, Arg, Refuse, Value, Work, run


class LayerCalls:
    """`Convolution2D(...)`, `model.fit(...)`: planned from the rule of the name they call (mixed into the Collector)."""

    def visit_Call(self, node: cst.Call) -> None:
        if not isinstance(node.func, (cst.Name, cst.Attribute)):
            return  # `Layer(...)(x)`: the outer call applies a layer, it does not build one
        qname = self.qualified(node.func)
        gone = self.removed.get(qname or "")
        if gone is not None and self.options.enabled(gone.id):
            self.diag(node, *findings.removed(gone, qname, self.rs))
            return
        fn_rule = self.functions.get(qname or "")
        if fn_rule is not None:
            if self.options.enabled(fn_rule.id) and not self.skipped_by_comment(node):
                self.plan_function(node, fn_rule, qname)
            return
        found = self.layer_rule(qname)
        if found is None:
            found = self.method_rule(node)
        if found is None:
            self.warn_if_keras1_elsewhere(node, qname)
            self.warn_if_keras1_method(node)
            return
        rule, spelling = found
        if not self.options.enabled(rule.id) or self.skipped_by_comment(node):
            return
        try:
            plan = self.plan_layer(node, rule, spelling)
            if plan is None and spelling in rule.dual and node not in self.plans.calls:
                self.deferred.append((node, rule, spelling))
        except Refuse as why:
            self.diag(node, Severity.ERROR, rule.id, f"{spelling}(...) left as written: {why}")
            return
        if plan is not None:
            self.keep_plan(node, plan)

    def warn_if_keras1_elsewhere(self, node: cst.Call, qname: str | None) -> None:
        """`Convolution2D(...)` from a relative import (a package that vendors Keras) or from nowhere (an
        unresolved star import): probably Keras 1, but not certainly Keras's, so said and not rewritten.
        A name the module binds itself (its own class) stays silent."""
        if not isinstance(node.func, cst.Name) or (qname and qname.split(".")[0] == "keras"):
            return
        spelling = node.func.value
        rule = self.rs.keras1_only(spelling)
        keywords = {a.keyword.value for a in node.args if a.keyword is not None}
        if rule is None:
            shared = self.rs.by_name.get(spelling)  # `Dense(output_dim=...)`: a Keras 1 keyword on a Keras name
            k1 = set(shared.all_params) - set(shared.target_params) if shared is not None else set()
            if not keywords & k1:
                return
            rule = shared
        sources = self.qnames(node.func)
        if any(q.name.startswith(".") for q in sources):
            where = "comes from a relative import, not from Keras"
        elif not sources and self._unbound(node.func):
            where = "only a star import may bind it" if self.any_star else "nothing in this file binds it"
        else:
            return
        if self.options.enabled(rule.id) and not self.skipped_by_comment(node):
            self.diag(node, Severity.WARNING, rule.id, f"`{spelling}` looks like Keras 1's but {where}: if it is "
                      "Keras's, import it from keras and run kmigrate again")

    def warn_if_keras1_method(self, node: cst.Call) -> None:
        """`model.fit(X, y, nb_epoch=5)` before any Keras import (a training script that gets its model
        from a module of its own): said, not rewritten. A function of an imported module is not a model."""
        if self.keras_imported or not isinstance(node.func, cst.Attribute):
            return
        spelling = node.func.attr.value
        rule = self.methods.get(spelling)
        if rule is None or not self.options.enabled(rule.id) or self.skipped_by_comment(node):
            return
        found = findings.method_without_keras(rule, spelling, [a.keyword.value for a in node.args if a.keyword])
        if found is not None and not any(q.source.name == "IMPORT" for q in self.qnames(node.func.value)):
            self.diag(node, *found)

    def keep_plan(self, node: cst.Call, plan: LayerPlan) -> None:
        self.plans.calls[node] = plan
        if isinstance(node.func, cst.Name):
            self.plans.renamed_refs.add(node.func)
        for arg in plan.args:
            self.plans.modules_needed.update(imports_of(arg.value))

    def method_rule(self, node: cst.Call) -> tuple[Rule, str] | None:
        """`model.fit(...)`, `model.fit_generator(...)`: a method of a receiver that is not known to be
        something other than Keras, in a module that imports Keras."""
        if not isinstance(node.func, cst.Attribute) or not self.keras_imported:
            return None
        rule = self.methods.get(node.func.attr.value)
        if rule is None:
            return None
        sources = self.qnames(node.func.value)
        if any(q.source.name == "IMPORT" and q.name.split(".")[0] != "keras" for q in sources):
            return None  # `np.save_weights`, `sklearn_module.fit`: not a Keras model
        return rule, node.func.attr.value

    def receiver_is_model(self, node: cst.Call) -> bool:
        """Every binding of the receiver name here is a Keras model construction."""
        receiver = node.func.value if isinstance(node.func, cst.Attribute) else None
        if not isinstance(receiver, cst.Name):
            return False
        scope = self.get_metadata(ScopeProvider, receiver, None)
        bindings = list(scope[receiver.value]) if scope is not None else []
        return bool(bindings) and all(getattr(b, "node", None) in self.model_targets for b in bindings)

    def value_of(self, expr: cst.BaseExpression, payload: Any) -> Value:
        """A written argument as the pipeline sees it, with what can be known of it here."""
        lit = literal_of(expr)
        value = Value(lit=lit, payload=payload, call=self.source_call(expr) if lit is NOLIT else None)
        if isinstance(expr, (cst.Tuple, cst.List)):
            value.facts["arrays"] = Value(lit=True)  # `validation_data=(X, y)`: data, not a generator
        batch = self.batch_size_of(expr)
        if batch is not None:
            value.facts["batch_size"] = batch
        return value

    def batch_size_of(self, expr: cst.BaseExpression, follow: bool = True) -> Value | None:
        """The `batch_size=` a generator was made with: `datagen.flow(X, y, batch_size=32)`, or a name
        bound once to such a call (Keras 1 counted generator samples; Keras 3 counts its batches)."""
        if isinstance(expr, cst.Call):
            for a in expr.args:
                if a.keyword is not None and a.keyword.value == "batch_size":
                    lit = literal_of(a.value)
                    if lit is not NOLIT:
                        return Value(lit=lit, changed=True)
                    if isinstance(a.value, cst.Name) and self._single_binding(a.value) is not None:
                        return Value(payload=a.value)
            return None
        if follow and isinstance(expr, cst.Name):
            value = self._single_binding(expr)
            return self.batch_size_of(value, follow=False) if value is not None else None
        return None

    def _single_binding(self, name: cst.Name) -> cst.BaseExpression | None:
        """The value of a name bound exactly once, by `name = value`, in the scope it is read from."""
        scope = self.get_metadata(ScopeProvider, name, None)
        bindings = list(scope[name.value]) if scope is not None else []
        if len(bindings) != 1 or not isinstance(getattr(bindings[0], "node", None), cst.Name):
            return None
        if self._assigns is None:  # the binding may come later in the file: index every `name = value`
            self._assigns = {}
            _index_assigns(self.wrapper.module, self._assigns)
        assign = self._assigns.get(bindings[0].node)
        return assign.value if assign is not None else None

    # -- layer calls -----------------------------------------------------------------------------
    def plan_layer(self, node: cst.Call, rule: Rule, spelling: str, force: bool = False) -> LayerPlan | None:
        """Bind, run the rule and plan the edit; None when the call is (or may be) Keras 2 API already.
        `force`: the module is certainly Keras 1, so a dual spelling is read with Keras 1's defaults."""
        written = [Written(a.keyword.value if a.keyword is not None else None, literal_of(a.value), a.star)
                   for a in node.args]
        names, warning = bind_names(rule, spelling, written, force)
        if warning is not None:
            self.diag(node, Severity.WARNING, rule.id, warning)
            return None
        if names is None:
            return None
        args: list[Arg] = []
        index: dict[str, int] = {}
        for i, a in enumerate(node.args):
            name = names[i] if a.keyword is None else a.keyword.value
            if name in index:
                raise Refuse(f"`{name}` is given twice")
            index[name] = i
            args.append(Arg(name, self.value_of(a.value, i), name, positional=a.keyword is None))
        form, anchor = self.form(node)
        work = Work(rule=rule, spelling=spelling, args=args, options=self.options,
                    context={"form": form,  # code: None when the call has no place for extra layers
                             "module": self.module_facts,  # what specials learn about the whole module
                             "model_receiver": rule.kind == "method" and self.receiver_is_model(node)})
        result = run(work)
        for severity, message in result.notes:
            self.diag(node, severity, rule.id, message)
        new_name = None
        if isinstance(node.func, cst.Attribute):
            new_name = result.target
        elif isinstance(node.func, cst.Name):
            bindings = self.import_bindings(node.func)
            keep_alias = any(alias.asname is not None for _, alias in bindings) \
                and result.target == rule.names[spelling]
            if not keep_alias:
                new_name = result.target
            for name in ([] if keep_alias else [result.target]) + [e for e, _ in result.before + result.after]:
                if name != node.func.value and self.taken(node, name):
                    raise Refuse(f"`{name}` already names something else here: import it under another "
                                 "name and call that")
            self.record_name(node.func, result.target, keep_alias)
            for extra, _ in result.before + result.after:
                self.record_name(node.func, extra, False)
        if result.before or result.after:
            self.plans.wraps[anchor] = node
        if not changes(result, rule, spelling, new_name, len(node.args)):
            return None if force else LayerPlan(rule, result.args, index, new_name)
        for module in {m for a in result.args for m in imports_of(a.value)}:
            if self.taken(node, module) and not self._imports_module(node, module):
                raise Refuse(f"the rewrite needs `import {module}`, but `{module}` names something else here")
        if not force:
            self.keras1_evidence = True
        return LayerPlan(rule, result.args, index, new_name, result.before, result.after, result.wrap)

    def _imports_module(self, where: cst.CSTNode, module: str) -> bool:
        scope = self.get_metadata(ScopeProvider, where, None)
        return all(isinstance(a, ImportAssignment) and isinstance(a.node, cst.Import)
                   for a in (scope[module] if scope is not None else ()))

    def _warn_if_positionals_differ(self, node: cst.Call, rule: Rule, spelling: str, positional) -> None:
        warning = positionals_differ(rule, spelling, len(positional))
        if warning is not None:
            self.diag(node, Severity.WARNING, rule.id, warning)

    def form(self, node: cst.Call) -> tuple[str | None, cst.CSTNode | None]:
        """Where extra layers could go: `Layer(...)(x)` or a `model.add(Layer(...))` statement."""
        parent = self.parent(node)
        if isinstance(parent, cst.Call) and parent.func is node and len(parent.args) == 1 \
                and parent.args[0].keyword is None and not parent.args[0].star:
            return "functional", parent
        if isinstance(parent, cst.Arg) and parent.keyword is None and not parent.star:
            add = self.parent(parent)
            expr = self.parent(add) if add is not None else None
            line = self.parent(expr) if expr is not None else None
            if isinstance(add, cst.Call) and isinstance(add.func, cst.Attribute) and add.func.attr.value == "add" \
                    and len(add.args) == 1 and isinstance(expr, cst.Expr) \
                    and isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1:
                return "sequential", line
        return None, None

    def finish_deferred(self) -> None:
        """Dual spellings seen before the module proved to be Keras 1: planned now, or their positionals warned about."""
        for node, rule, spelling in self.deferred if not self.keras1_evidence else ():
            self._warn_if_positionals_differ(node, rule, spelling, [a for a in node.args if a.keyword is None])
        if self.keras1_evidence:
            for node, rule, spelling in self.deferred:
                said = len(self.plans.diagnostics)
                try:
                    plan = self.plan_layer(node, rule, spelling, force=True)
                except Refuse:
                    plan = None  # as written it is valid Keras 3; only Keras 1's defaults were to be added
                if plan is None:
                    del self.plans.diagnostics[said:]
                else:
                    self.keep_plan(node, plan)


_CONTAINERS = (cst.BaseCompoundStatement, cst.BaseSuite, cst.Else, cst.ExceptHandler, cst.ExceptStarHandler,
               cst.Finally, cst.MatchCase)


def _index_assigns(node: cst.CSTNode, out: dict) -> None:
    """Single-target `name = value` statements by their target Name node, visiting statements only."""
    for child in node.children:
        if isinstance(child, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            for small in child.body:
                if isinstance(small, cst.Assign) and len(small.targets) == 1 \
                        and isinstance(small.targets[0].target, cst.Name):
                    out[small.targets[0].target] = small
        elif isinstance(child, _CONTAINERS):
            _index_assigns(child, out)
