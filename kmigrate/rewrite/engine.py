"""Rewrite one module: Keras 1 layer calls, backend dim-ordering calls and Keras 1 import paths.

Collect, then edit: a metadata-aware visitor resolves every call to a qualified name (scope-aware:
shadowing, aliases, attribute access, star imports), binds its arguments to Keras 1 parameter names
and runs the shared op pipeline; a plain transformer then applies the plans to the tree, reusing the
original argument nodes so comments and formatting survive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import libcst as cst
from libcst import MaybeSentinel
from libcst.helpers import get_full_name_for_node
from libcst.metadata import (
    ImportAssignment,
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from kmigrate.diagnostics import Diagnostic, Severity
from kmigrate.rewrite.literals import literal_of, render_node
from kmigrate.spec.loader import RuleSet
from kmigrate.spec.model import TARGET_LAYER_KWARGS, Options, Rule
from kmigrate.spec.pipeline import NOLIT, Arg, Refuse, Value, Work, run

SKIP_MARKER = "kmigrate: skip"
# Calls that return a Keras model: a name bound only to one of these is a Keras model, so its `fit`
# is Keras's (a `fit` on anything else may be scikit-learn's).
KERAS_MODEL_FACTORIES = {"keras.models.Sequential", "keras.models.Model", "keras.models.load_model",
                         "keras.models.model_from_json", "keras.models.model_from_yaml", "keras.Sequential",
                         "keras.Model", "keras.engine.training.Model"}
NO_EQUAL_SPACE = dict(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))


@dataclass
class LayerPlan:
    rule: Rule
    args: list[Arg]
    index: dict[str, int]  # Keras 1 parameter -> index of the written argument
    new_func_name: str | None  # rename the called name/attribute to this (None: keep, it is an alias)
    before: list = field(default_factory=list)  # extra layers of an exact construction
    after: list = field(default_factory=list)
    wrap: str | None = None  # the new call becomes this expression ({call} stands for it)


@dataclass
class FunctionPlan:
    rule: Rule
    new_name: str | None  # None: the call goes through an `as` alias that keeps its name
    first_arg: Any = NOLIT  # new literal for the first argument (the setter), if any
    as_keras1_value: dict | None = None  # {'channels_first': 'th', ...}: keep the Keras 1 result
    mapped_arg: dict | None = None  # a setter's non-literal argument goes through this mapping
    constant: Any = NOLIT  # the getter's value is known (--default-dim-ordering): the call becomes it


@dataclass
class ImportPlan:
    rewritten: int = 0
    total: int = 0


@dataclass
class ModulePlans:
    calls: dict[cst.Call, LayerPlan | FunctionPlan] = field(default_factory=dict)
    strings: dict[cst.SimpleString, str] = field(default_factory=dict)
    attributes: dict[cst.Attribute, cst.BaseExpression] = field(default_factory=dict)
    renamed_refs: set[cst.CSTNode] = field(default_factory=set)
    # where a construction's extra layers go: the applying call `Layer(...)(x)` or `model.add(...)` line
    wraps: dict[cst.CSTNode, cst.Call] = field(default_factory=dict)
    imports: dict[tuple[int, str], ImportPlan] = field(default_factory=dict)
    # names each import binding must provide for the rewritten calls: (name, keeps the `as` alias)
    import_targets: dict[tuple[int, str], set[tuple[str, bool]]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    imports_change: bool = False  # an import names a Keras 1 module path or a renamed name
    modules_needed: set[str] = field(default_factory=set)  # `import X` the new code needs (math, keras)

    @property
    def empty(self) -> bool:
        return not (self.calls or self.strings or self.attributes or self.imports_change or self.modules_needed)


class Collector(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (QualifiedNameProvider, PositionProvider, ScopeProvider, ParentNodeProvider)

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

    # -- helpers ---------------------------------------------------------------------------------
    def diag(self, node: cst.CSTNode, severity: Severity, rule: str, message: str) -> None:
        pos = self.get_metadata(PositionProvider, node)
        self.plans.diagnostics.append(
            Diagnostic(severity, rule, message, pos.start.line, pos.start.column + 1, self.path))

    def skipped_by_comment(self, node: cst.CSTNode) -> bool:
        pos = self.get_metadata(PositionProvider, node)
        return any(SKIP_MARKER in self.lines[i - 1] for i in range(pos.start.line, pos.end.line + 1)
                   if 0 < i <= len(self.lines))

    def qualified(self, node: cst.BaseExpression) -> str | None:
        names = {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}
        if not names and isinstance(node, cst.Name) and self.star_modules:
            if self._unbound(node):
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

    # -- visitors --------------------------------------------------------------------------------
    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            self.any_star = True
        if node.relative or node.module is None:
            return
        module = get_full_name_for_node(node.module)
        if module.split(".")[0] == "keras":
            self.keras_imported = True
        if module in self.module_map:
            self.plans.imports_change = True
            self.keras1_evidence = True
        if not isinstance(node.names, cst.ImportStar) and any(
                f"{module}.{get_full_name_for_node(a.name)}" in self.module_map for a in node.names):
            self.plans.imports_change = True  # `from keras.layers import convolutional`
        if isinstance(node.names, cst.ImportStar):
            if module in self.layer_modules:
                self.star_modules.append(module)
            self.check_name(node, module)
        else:
            self.imports.append(node)
            for alias in node.names:
                self.check_name(alias, f"{module}.{get_full_name_for_node(alias.name)}")

    def visit_Import(self, node: cst.Import) -> None:
        if any(get_full_name_for_node(a.name).split(".")[0] == "keras" for a in node.names):
            self.keras_imported = True
        if any(get_full_name_for_node(a.name) in self.module_map for a in node.names):
            self.plans.imports_change = True
        for alias in node.names:
            self.check_name(alias, get_full_name_for_node(alias.name))

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name) \
                and isinstance(node.value, cst.Call) and self.qualified(node.value.func) in KERAS_MODEL_FACTORIES:
            self.model_targets.add(node.targets[0].target)

    def visit_Comparison(self, node: cst.Comparison) -> None:
        self.comparisons.append(node)

    def check_name(self, node: cst.CSTNode, qname: str) -> None:
        """Never silent: a `keras.` name that no rule rewrites and Keras 3 lacks is reported here."""
        gone = self.removed.get(qname)
        if gone is not None and isinstance(node, cst.ImportAlias) and self.options.enabled(gone.id):
            self.diag(node, Severity.WARNING, gone.id, f"`{qname.rsplit('.', 1)[1]}` does not exist in Keras 3: "
                      f"{_advice(gone, qname, self.rs)}")  # its calls are reported where they are
            return
        if self.names_rule is None or qname.split(".")[0] != "keras" or self.handled(qname):
            return
        missing = self.rs.keras3_lacks(qname)
        if missing is None:
            return
        hint = ""
        for module, elsewhere in self.names_rule.names.items():
            if missing.startswith(module + ".") and f"{elsewhere}{missing[len(module):]}" in self.rs.keras3:
                hint = f": use {elsewhere}{missing[len(module):]}"
        if missing == qname:
            message = f"`{qname}` is not in Keras 3{hint}"
        else:
            message = f"`{qname}`: Keras 3 has no `{missing}`{hint}"
        self.diag(node, Severity.WARNING, self.names_rule.id, message)

    def handled(self, qname: str) -> bool:
        """A rule rewrites or reports this name: it is not the names check's to report."""
        return (self.layer_rule(qname) is not None or qname in self.functions or qname in self.removed
                or qname in self.module_map)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        """`keras.layers.convolutional.X` through any alias: drop the module segment Keras 3 lacks."""
        parent = self.get_metadata(ParentNodeProvider, node, None)
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

    def visit_Call(self, node: cst.Call) -> None:
        if not isinstance(node.func, (cst.Name, cst.Attribute)):
            return  # `Layer(...)(x)`: the outer call applies a layer, it does not build one
        qname = self.qualified(node.func)
        gone = self.removed.get(qname or "")
        if gone is not None and self.options.enabled(gone.id):
            short = qname.rsplit(".", 1)[1]  # the same message before and after module paths move
            self.diag(node, Severity.WARNING, gone.id, f"`{short}` does not exist in Keras 3: {_advice(gone, qname, self.rs)}")
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
        sources = self.get_metadata(QualifiedNameProvider, node.func, set())
        if any(q.name.startswith(".") for q in sources):
            where = "comes from a relative import, not from Keras"
        elif not sources and self._unbound(node.func):
            where = "only a star import may bind it" if self.any_star else "nothing in this file binds it"
        else:
            return
        if self.options.enabled(rule.id) and not self.skipped_by_comment(node):
            self.diag(node, Severity.WARNING, rule.id, f"`{spelling}` looks like Keras 1's but {where}: if it is "
                      "Keras's, import it from keras and run kmigrate again")

    def keep_plan(self, node: cst.Call, plan: LayerPlan) -> None:
        self.plans.calls[node] = plan
        if isinstance(node.func, cst.Name):
            self.plans.renamed_refs.add(node.func)
        for arg in plan.args:
            self.plans.modules_needed.update(_imports_of(arg.value))

    def method_rule(self, node: cst.Call) -> tuple[Rule, str] | None:
        """`model.fit(...)`, `model.fit_generator(...)`: a method of a receiver that is not known to be
        something other than Keras, in a module that imports Keras."""
        if not isinstance(node.func, cst.Attribute) or not self.keras_imported:
            return None
        rule = self.methods.get(node.func.attr.value)
        if rule is None:
            return None
        sources = self.get_metadata(QualifiedNameProvider, node.func.value, set())
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
        target = self.get_metadata(ParentNodeProvider, bindings[0].node, None)
        assign = self.get_metadata(ParentNodeProvider, target, None) if target is not None else None
        if isinstance(target, cst.AssignTarget) and isinstance(assign, cst.Assign) and len(assign.targets) == 1:
            return assign.value
        return None

    # -- layer calls -----------------------------------------------------------------------------
    def plan_layer(self, node: cst.Call, rule: Rule, spelling: str, force: bool = False) -> LayerPlan | None:
        """Bind, run the rule and plan the edit; None when the call is (or may be) Keras 2 API already.
        `force`: the module is certainly Keras 1, so a dual spelling is read with Keras 1's defaults."""
        for a in node.args:
            if a.star:
                raise Refuse(f"`{a.star}` arguments hide which Keras 1 parameters are passed")
        positional = [a for a in node.args if a.keyword is None]
        if len(positional) > len(rule.signature):
            raise Refuse(f"{len(positional)} positional arguments; Keras 1 `{spelling}` takes at most "
                         f"{len(rule.signature)}")
        k1 = set(rule.all_params)
        k2 = set(rule.target_params) | set(TARGET_LAYER_KWARGS)
        keywords = [a.keyword.value for a in node.args if a.keyword is not None]
        unknown = [k for k in keywords if k not in k1 and k not in k2]
        if unknown:
            raise Refuse(f"unknown keyword `{unknown[0]}` for Keras 1 `{spelling}`")
        k1_keywords = [k for k in keywords if k in k1 and k not in k2]
        k2_keywords = [k for k in keywords if k not in k1]
        k1_positional = []  # an integer where Keras 1 had a kernel dimension and Keras 2 has strides
        for dim in rule.kernel_dims:
            i = rule.signature.index(dim)
            if i < len(positional):
                lit = literal_of(positional[i].value)
                if isinstance(lit, int) and not isinstance(lit, bool):
                    k1_positional.append(f"integer positional argument {i + 1}, `{dim}`")
                elif lit is NOLIT and not k2_keywords and spelling in rule.dual:
                    self.diag(node, Severity.WARNING, rule.id,
                              f"{spelling}(...) left as written: positional argument {i + 1} is "
                              f"`{dim}` in Keras 1 but `strides` in Keras 2/3 and is not a literal")
                    return None
        for i, a in enumerate(positional[:len(rule.signature)]):
            vmap = rule.value_maps.get(rule.signature[i])  # `SpatialDropout2D(0.2, 'th')`: a Keras 1 value
            lit = literal_of(a.value)
            if vmap is not None and lit is not NOLIT and isinstance(lit, str) and (lit in vmap.mapping or lit in vmap.drop):
                k1_positional.append(f"positional argument {i + 1}, `{rule.signature[i]}={lit!r}`")
        if k1_positional and k2_keywords:
            raise Refuse(f"it mixes Keras 1 ({k1_positional[0]}) and Keras 2 (`{k2_keywords[0]}`) arguments")
        # Keras 2 positionals (a kernel_size tuple) or Keras 2 keywords: bind in the Keras 2 order and
        # rename only the Keras 1 keywords, as Keras 2.0's own shim did.
        keras2_form = bool(k2_keywords) or self._kernel_tuple(rule, positional)
        if keras2_form:
            if not k1_keywords and spelling in rule.dual and not force:
                return None  # already Keras 2 API
            if len(positional) > rule.positional:
                raise Refuse(f"{len(positional)} positional arguments in the Keras 2 form: which parameters "
                             "they are is not certain")
            keras1_of = {new: old for old, new in rule.rename.items()}
            names = [keras1_of.get(t, t) for t in rule.target_params[:len(positional)]]
        else:
            if spelling in rule.dual and not (k1_keywords or k1_positional) and not force:
                return None  # Keras 2 API, or not certainly Keras 1: decided when the module is seen
            names = list(rule.signature[:len(positional)])

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
        changes = (new_name not in (None, spelling) or result.before or result.after or result.wrap
                   or len(result.args) != len(node.args)
                   or any(a.value.changed or a.name != a.source or (a.positional and i >= rule.positional)
                          for i, a in enumerate(result.args)))
        if not changes:
            return None if force else LayerPlan(rule, result.args, index, new_name)
        for module in {m for a in result.args for m in _imports_of(a.value)}:
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
        """A name Keras 1 and Keras 3 share, with positionals whose meaning differs between them
        (`Dense(10, 'he_normal')`: init in Keras 1, activation in Keras 3): say so, change nothing."""
        if rule.kernel_dims:
            return  # told apart by the kernel dimensions
        packed = {m: new for new, members in rule.pack.items() for m in members}
        for i in range(len(positional)):
            old = rule.signature[i] if i < len(rule.signature) else None
            new = packed.get(old) or rule.rename.get(old, old)
            if i >= len(rule.target_params) or new != rule.target_params[i]:
                self.diag(node, Severity.WARNING, rule.id,
                          f"{spelling}(...) left as written: positional argument {i + 1} is `{old}` in Keras 1 "
                          f"but `{rule.target_params[i] if i < len(rule.target_params) else '?'}` in Keras 2/3; "
                          "pass it by keyword")
                return

    @staticmethod
    def _kernel_tuple(rule: Rule, positional: list[cst.Arg]) -> bool:
        """A literal tuple where Keras 1 had its first kernel dimension: the Keras 2 `kernel_size`."""
        first = rule.pack.get("kernel_size", ("",))[0]
        if first not in rule.signature:
            return False
        i = rule.signature.index(first)
        return i < len(positional) and isinstance(literal_of(positional[i].value), tuple)

    def form(self, node: cst.Call) -> tuple[str | None, cst.CSTNode | None]:
        """Where extra layers could go: `Layer(...)(x)` or a `model.add(Layer(...))` statement."""
        parent = self.get_metadata(ParentNodeProvider, node, None)
        if isinstance(parent, cst.Call) and parent.func is node and len(parent.args) == 1 \
                and parent.args[0].keyword is None and not parent.args[0].star:
            return "functional", parent
        if isinstance(parent, cst.Arg) and parent.keyword is None and not parent.star:
            add = self.get_metadata(ParentNodeProvider, parent, None)
            expr = self.get_metadata(ParentNodeProvider, add, None) if add is not None else None
            line = self.get_metadata(ParentNodeProvider, expr, None) if expr is not None else None
            if isinstance(add, cst.Call) and isinstance(add.func, cst.Attribute) and add.func.attr.value == "add" \
                    and len(add.args) == 1 and isinstance(expr, cst.Expr) \
                    and isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1:
                return "sequential", line
        return None, None

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
        parent = self.get_metadata(ParentNodeProvider, node, None)
        if isinstance(parent, cst.Comparison) and parent.left is node:
            return not self.skipped_by_comment(parent)
        if isinstance(parent, cst.ComparisonTarget):
            return not self.skipped_by_comment(parent)
        if isinstance(parent, cst.Arg) and parent.keyword is not None and parent.keyword.value == "dim_ordering":
            call = self.get_metadata(ParentNodeProvider, parent, None)
            return call in self.plans.calls
        return False

    def _renamed_elsewhere(self, imp: cst.ImportFrom, alias: cst.ImportAlias) -> bool:
        return _renamed_name(self.rs, get_full_name_for_node(imp.module), get_full_name_for_node(alias.name)) is not None

    def leave_Module(self, original_node: cst.Module) -> None:
        """Work that needs the whole module seen: deferred calls, compared literals, import bindings."""
        option = self.options.default_dim_ordering
        if option is not None and not self.module_facts.get("dim_ordering_set"):
            # The project's keras.json said `option` and nothing here changes it: the getter returned it
            # in Keras 1. Keras 3's global must stay channels_last (Flatten would permute under
            # channels_first), so the getter's value is written out instead of read.
            for plan in self.plans.calls.values():
                if isinstance(plan, FunctionPlan) and not plan.rule.signature:
                    vmap = next(iter(plan.rule.value_maps.values()))
                    plan.constant = option if plan.as_keras1_value else vmap.mapping[option]
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
        for imp in self.imports:
            for alias in imp.names:
                bound = alias.evaluated_alias or alias.evaluated_name
                plan = ImportPlan()
                scope = self.get_metadata(ScopeProvider, imp, None)
                if scope is None:
                    continue
                for assignment in scope[bound]:
                    if isinstance(assignment, ImportAssignment) and assignment.node is imp:
                        for ref in assignment.references:
                            plan.total += 1
                            if ref.node in self.plans.renamed_refs:
                                plan.rewritten += 1
                                self.plans.imports_change = True
                if plan.total == 0 and self._renamed_elsewhere(imp, alias):
                    self.plans.imports_change = True  # an unused Keras 1 name: import what Keras 3 has
                self.plans.imports[(id(imp), bound)] = plan


def _advice(rule: Rule, qname: str, rs: RuleSet) -> str:
    return rule.names.get(qname) or next(a for q, a in rule.names.items() if rs.moved(q) == qname)


def _imports_of(value: Value) -> set[str]:
    found = set(value.imports)
    for part in value.parts or ():
        found |= _imports_of(part)
    return found


def _renamed_name(rs: RuleSet, module: str, imported: str) -> str | None:
    """The Keras 2/3 name of a name imported from `module`, if it changes."""
    rule = rs.rule_for(module, imported)
    if rule is not None:
        target = rule.names[imported]
        return target if target != imported else None
    for fn in rs.of_kind("function"):
        if f"{module}.{imported}" in fn.names:
            return fn.names[f"{module}.{imported}"]
    return None


def _strings(node: cst.BaseExpression) -> list[cst.SimpleString]:
    if isinstance(node, cst.SimpleString):
        return [node]
    if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
        return [e.value for e in node.elements if isinstance(e.value, cst.SimpleString)]
    return []


class Applier(cst.CSTTransformer):
    """Apply the collected plans; everything not planned is left byte for byte."""

    def __init__(self, plans: ModulePlans, ruleset: RuleSet, options: Options) -> None:
        super().__init__()
        self.plans = plans
        self.extras: dict[cst.Call, tuple[list[cst.Call], list[cst.Call]]] = {}
        self.rs = ruleset
        self.module_map = ruleset.module_map() if options.enabled("module-paths") else {}

    def leave_SimpleString(self, original: cst.SimpleString, updated: cst.SimpleString) -> cst.BaseExpression:
        new = self.plans.strings.get(original)
        return render_node(new, like=original) if new is not None else updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        new = self.plans.attributes.get(original)
        if new is None:
            return updated
        return updated.value if new is original.value else new

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        wrapped = self.plans.wraps.get(original)
        if wrapped is not None:  # `Layer(...)(x)` -> `Crop(...)(Layer(...)(Pad(...)(x)))`
            before, after = self.extras[wrapped]
            arg = updated.args[0]
            value = arg.value
            for layer in before:
                value = cst.Call(func=layer, args=[cst.Arg(value)])
            result: cst.BaseExpression = updated.with_changes(args=[arg.with_changes(value=value)])
            for layer in after:
                result = cst.Call(func=layer, args=[cst.Arg(result)])
            return result
        plan = self.plans.calls.get(original)
        if plan is None:
            return updated
        if isinstance(plan, FunctionPlan):
            if plan.constant is not NOLIT:
                return render_node(plan.constant)
            args = list(updated.args)
            if plan.mapped_arg is not None:  # K.set_image_data_format({'th': 'channels_first', ...}[x])
                mapping = cst.parse_expression(repr(plan.mapped_arg))
                args[0] = args[0].with_changes(value=cst.Subscript(
                    mapping, [cst.SubscriptElement(cst.Index(args[0].value))]))
                keyword = args[0].keyword
                if keyword is not None and keyword.value in plan.rule.rename:
                    args[0] = args[0].with_changes(keyword=keyword.with_changes(value=plan.rule.rename[keyword.value]))
            if plan.first_arg is not NOLIT:
                args[0] = args[0].with_changes(value=render_node(plan.first_arg, like=args[0].value))
                keyword = args[0].keyword
                if keyword is not None and keyword.value in plan.rule.rename:
                    args[0] = args[0].with_changes(keyword=keyword.with_changes(value=plan.rule.rename[keyword.value]))
            call = updated.with_changes(func=_renamed(updated.func, plan.new_name) if plan.new_name else updated.func,
                                        args=args)
            if plan.as_keras1_value:
                (first, old_first), (_, old_other) = sorted(plan.as_keras1_value.items())
                # ('th' if K.image_data_format() == 'channels_first' else 'tf')
                return cst.IfExp(
                    test=cst.Comparison(call, [cst.ComparisonTarget(cst.Equal(), render_node(first))]),
                    body=render_node(old_first), orelse=render_node(old_other),
                    lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
            return call
        return self.emit(original, plan, updated)

    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine,
                                  updated: cst.SimpleStatementLine):
        wrapped = self.plans.wraps.get(original)
        if wrapped is None:
            return updated
        before, after = self.extras[wrapped]
        add_call = updated.body[0].value

        def line(layer: cst.Call) -> cst.SimpleStatementLine:
            arg = add_call.args[0].with_changes(value=layer)
            return updated.with_changes(body=[updated.body[0].with_changes(value=add_call.with_changes(args=[arg]))],
                                        leading_lines=(), trailing_whitespace=cst.TrailingWhitespace())
        lines = [line(layer) for layer in before] + [updated.with_changes(leading_lines=())] + \
            [line(layer) for layer in after]
        lines[0] = lines[0].with_changes(leading_lines=updated.leading_lines)
        return cst.FlattenSentinel(lines)

    def emit(self, original: cst.Call, plan: LayerPlan, call: cst.Call) -> cst.Call:
        written = list(call.args)
        if plan.before or plan.after:
            self.extras[original] = ([self.extra_layer(call.func, *b, written) for b in plan.before],
                                     [self.extra_layer(call.func, *a, written) for a in plan.after])
        out: list[cst.Arg] = []
        positional_ok = True
        for i, a in enumerate(plan.args):
            base = written[plan.index[a.source]] if a.source in plan.index else None
            node = self.value_node(a.value, written)
            positional = positional_ok and i < plan.rule.positional and a.positional and base is not None
            positional_ok = positional
            if base is not None and a.comma_from in plan.index:
                base = base.with_changes(comma=written[plan.index[a.comma_from]].comma)
            if base is None:
                out.append(cst.Arg(value=node, keyword=cst.Name(a.name), equal=cst.AssignEqual(**NO_EQUAL_SPACE)))
                continue
            if positional:
                out.append(base.with_changes(value=node, keyword=None, equal=MaybeSentinel.DEFAULT))
            else:
                equal = base.equal if base.keyword is not None else cst.AssignEqual(**NO_EQUAL_SPACE)
                out.append(base.with_changes(value=node, keyword=cst.Name(a.name), equal=equal))
        if written and out:
            # Whatever ends the call now takes the written call's closing comma (or none); an
            # argument that was last and moved inward, or a new one, takes a written separator.
            separator = written[-2].comma if len(written) > 1 else MaybeSentinel.DEFAULT
            for j, arg in enumerate(out[:-1]):
                if arg.comma is written[-1].comma:
                    out[j] = arg.with_changes(comma=separator)
            own, closing = out[-1].comma, written[-1].comma
            if closing is MaybeSentinel.DEFAULT or own is MaybeSentinel.DEFAULT:
                out[-1] = out[-1].with_changes(comma=closing)
            elif isinstance(own.whitespace_after, cst.ParenthesizedWhitespace) and \
                    isinstance(closing.whitespace_after, cst.ParenthesizedWhitespace):
                # keep this argument's own comment, but indent the closing bracket as written
                ws = own.whitespace_after.with_changes(indent=closing.whitespace_after.indent,
                                                       last_line=closing.whitespace_after.last_line)
                out[-1] = out[-1].with_changes(comma=own.with_changes(whitespace_after=ws))
        func = _renamed(call.func, plan.new_func_name) if plan.new_func_name else call.func
        new = call.with_changes(func=func, args=out)
        if plan.wrap:
            return cst.parse_expression(plan.wrap.format(call=cst.Module([]).code_for_node(new)))
        return new

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        """`import math` / `import keras` for what the new code calls, after the last top-level import."""
        body = list(updated.body)
        have = {get_full_name_for_node(a.name) for stmt in body if isinstance(stmt, cst.SimpleStatementLine)
                for small in stmt.body if isinstance(small, cst.Import) for a in small.names if a.asname is None}
        missing = sorted(self.plans.modules_needed - have)
        if not missing:
            return updated
        at = 0
        for i, stmt in enumerate(body):
            if isinstance(stmt, cst.SimpleStatementLine) and (
                    isinstance(stmt.body[0], (cst.Import, cst.ImportFrom))
                    or (i == 0 and isinstance(stmt.body[0], cst.Expr) and isinstance(stmt.body[0].value, cst.SimpleString))):
                at = i + 1
            elif not isinstance(stmt, cst.SimpleStatementLine) and at:
                break
        new = [cst.parse_statement(f"import {m}\n") for m in missing]
        return updated.with_changes(body=body[:at] + new + body[at:])

    def extra_layer(self, func: cst.BaseExpression, cls: str, kwargs: dict, written: list[cst.Arg]) -> cst.Call:
        """`ZeroPadding2D(padding=..., data_format=...)`, spelled like the call it accompanies."""
        name = func.with_changes(attr=cst.Name(cls)) if isinstance(func, cst.Attribute) else cst.Name(cls)
        args = [cst.Arg(value=self.value_node(v, written), keyword=cst.Name(k), equal=cst.AssignEqual(**NO_EQUAL_SPACE))
                for k, v in kwargs.items()]
        return cst.Call(func=name, args=args)

    def value_node(self, value: Value, written: list[cst.Arg]) -> cst.BaseExpression:
        if value.template is not None:
            parts = [_as_operand(self.value_node(p, written)) for p in value.parts or ()]
            return cst.parse_expression(value.template.format(*parts))
        if value.parts is not None:
            return cst.Tuple([cst.Element(self.value_node(p, written)) for p in value.parts])
        if isinstance(value.payload, cst.CSTNode):
            return value.payload
        like = written[value.payload].value if value.payload is not None else None
        if value.changed:
            return render_node(value.lit, like=like)
        return like

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
        if original.relative or original.module is None:
            return updated
        module = get_full_name_for_node(original.module)
        if not isinstance(updated.names, cst.ImportStar) and len(updated.names) == 1:
            alias = updated.names[0]
            moved = self.module_map.get(f"{module}.{get_full_name_for_node(alias.name)}")
            if moved:  # `from keras.layers import convolutional` -> `from keras import layers as convolutional`
                parent, last = moved.rsplit(".", 1)
                bound = alias.evaluated_alias or get_full_name_for_node(alias.name)
                return updated.with_changes(module=cst.parse_expression(parent), names=[cst.ImportAlias(
                    name=cst.Name(last), asname=None if bound == last else cst.AsName(name=cst.Name(bound)))])
        new_module = self.module_map.get(module)
        if new_module:
            updated = updated.with_changes(module=cst.parse_expression(new_module))
        if isinstance(updated.names, cst.ImportStar):
            return updated
        names: list[cst.ImportAlias] = []
        seen: set[str] = set()
        for alias in updated.names:
            imported = get_full_name_for_node(alias.name)
            bound = alias.evaluated_alias or imported
            key = (id(original), bound)
            plan = self.plans.imports.get(key, ImportPlan())
            wanted = sorted(self.plans.import_targets.get(key, set()))
            target = self._target_name(module, imported)
            if plan.rewritten < plan.total or (target is None and not wanted):
                wanted.insert(0, (imported, True))  # still used as written
            if not wanted and plan.total == 0 and target is not None:
                wanted = [(target, True)]  # unused: name what Keras 3 has
            for name, keep_alias in wanted:
                asname = alias.asname if keep_alias else None
                if (asname and asname.name.value in seen) or (not asname and name in seen):
                    continue  # one alias cannot name two things; a name is imported once
                seen.add(asname.name.value if asname else name)
                names.append(alias.with_changes(name=cst.Name(name), asname=asname)
                             if (name, asname) != (imported, alias.asname) else alias)
        if not names:
            return updated  # never an empty import
        if names:
            names[-1] = names[-1].with_changes(comma=updated.names[-1].comma)
            for j in range(len(names) - 1):
                if names[j].comma is MaybeSentinel.DEFAULT or names[j].comma is updated.names[-1].comma:
                    names[j] = names[j].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        return updated.with_changes(names=names)

    def _target_name(self, module: str, imported: str) -> str | None:
        return _renamed_name(self.rs, module, imported)

    def leave_Import(self, original: cst.Import, updated: cst.Import) -> cst.Import:
        if not self.module_map:
            return updated
        names = []
        for alias in updated.names:
            full = get_full_name_for_node(alias.name)
            new = self.module_map.get(full)
            names.append(alias.with_changes(name=cst.parse_expression(new)) if new else alias)
        return updated.with_changes(names=names)


def _as_operand(node: cst.BaseExpression) -> str:
    """Source of an expression, parenthesised unless it is an atom (`n + 1` inside `ceil({0} / 2)`)."""
    code = cst.Module([]).code_for_node(node)
    atoms = (cst.Name, cst.Attribute, cst.Integer, cst.Float, cst.SimpleString, cst.Call, cst.Subscript,
             cst.Tuple, cst.List, cst.Dict)
    return code if isinstance(node, atoms) or node.lpar else f"({code})"


def _renamed(func: cst.BaseExpression, name: str) -> cst.BaseExpression:
    if isinstance(func, cst.Name):
        return func.with_changes(value=name)
    if isinstance(func, cst.Attribute):
        return func.with_changes(attr=func.attr.with_changes(value=name))
    return func


def rewrite_module(module: cst.Module, ruleset: RuleSet, options: Options, path: str,
                   text: str) -> tuple[cst.Module, list[Diagnostic]]:
    """Rewrite a parsed module; returns the new module and the diagnostics (positions in the input)."""
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    collector = Collector(ruleset, options, path, text.splitlines())
    wrapper.visit(collector)
    plans = collector.plans
    if plans.empty:
        return module, plans.diagnostics  # nothing to change: skip the transform pass
    new = wrapper.module.visit(Applier(plans, ruleset, options))
    return new, plans.diagnostics
