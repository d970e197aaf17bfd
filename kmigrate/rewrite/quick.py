"""Read a module with CPython's `ast` the way the libcst engine would, statement by statement.

The libcst engine (engine.py) resolves names with libcst's scope metadata, which costs about ten times
a parse. This reads the module the way the engine does — the same rules, the same argument binding
(binding.py) and the same op pipeline — but over-approximates where it cannot be as exact as libcst's
scopes: a name bound in several ways is read each way, an import is assumed to be visible everywhere,
and a call the engine would skip by a `kmigrate: skip` comment is still read. Wherever any reading
could produce an edit or a diagnostic, the statement is a site the engine reads; a call the engine
only reports on (left as written) is said here in the engine's words when nothing else needs it.
So "nothing to do" is only ever said where the engine would say it too (tests/rewrite/test_quick.py
holds it to that over every fixture), and unread_of chooses what the engine may skip.
"""

from __future__ import annotations

import ast
from typing import Any

from kmigrate.diagnostics import Diagnostic, Severity
from kmigrate.rewrite import findings
from kmigrate.rewrite.binding import (
    Written,
    bind_names,
    changes,
    positionals_differ,
    renamed_name,
)
from kmigrate.spec.loader import RuleSet
from kmigrate.spec.model import KERAS_MODEL_FACTORIES, SKIP_MARKER, Options
from kmigrate.spec.pipeline import NOLIT, Arg, Refuse, Value, Work, run
from kmigrate.spec.special import REGISTRY


class NeedsEngine(Exception):
    """Something here may be rewritten or reported: the libcst engine decides."""


class _Said(NeedsEngine):
    """A call the engine leaves as written and only reports on: what it says, (severity, rule, message)."""

    def __init__(self, said: list) -> None:
        super().__init__()
        self.said = said


class _Deferred(NeedsEngine):
    """A call that is Keras 2 API as written, and gets Keras 1's defaults only in a module with an
    edit elsewhere: read when something else is."""


NOTHING: list = []  # unread_statements' answer for a module that needs no edit and no report

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


class _Facts:
    """What the rules need to know of a ruleset, computed once per ruleset and options."""

    def __init__(self, rs: RuleSet, options: Options) -> None:
        self.rs = rs
        self.options = options
        self.module_map = rs.module_map() if options.enabled("module-paths") else {}
        self.functions = {q: r for r in rs.of_kind("function") for q in r.names}
        self.removed = {m: r for r in rs.of_kind("removed") for q in r.names for m in (q, rs.moved(q))}
        self.methods = rs.method_rules()
        self.names_rule = next((r for r in rs.of_kind("names") if options.enabled(r.id)), None)
        self.seeds = _seeds(rs)
        self.relevant = frozenset(n.encode() for n in self.seeds | set(self.methods) | _MODEL_FACTORIES
                                  | {"batch_size"})
        # the last name of everything a rule reads a call of: a spelling, a function, a removed name, a method
        self.call_names = self.seeds | set(self.methods)


# the identifiers in a run of source lines, as runs of [A-Za-z0-9_] (a token that starts with a digit
# is a number, or an identifier glued to one, which Python reads as a keyword: never a rule's name)
_WORD_BYTES = bytes(c if chr(c).isascii() and (chr(c).isalnum() or c == ord("_")) else ord(" ") for c in range(256))


def _words(source: bytes) -> list[bytes]:
    return source.translate(_WORD_BYTES).split()


def _first_line(stmt: ast.stmt) -> int:
    return min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", ())])


_CACHE: dict[tuple[int, Options], _Facts] = {}


def _facts(rs: RuleSet, options: Options) -> _Facts:
    found = _CACHE.get((id(rs), options))
    if found is None or found.rs is not rs:
        found = _CACHE[(id(rs), options)] = _Facts(rs, options)
    return found


def needs_nothing(tree: ast.Module, text: str, ruleset: RuleSet, options: Options) -> bool:
    """True only if the engine would leave `text` (parsed as `tree`) unchanged and report nothing."""
    m = engine_sites(tree, text, ruleset, options)
    return m is not None and not m.sites and not m.said


# fields that never hold a node worth walking: contexts and operators (leaves), names and numbers
_NOT_WALKED = frozenset({"ctx", "op", "ops", "id", "attr", "arg", "name", "names", "asname", "module", "level",
                         "rest", "kind", "type_comment", "conversion", "is_async", "simple", "tag", "lineno"})
_SHAPES: dict[type, tuple[tuple[str, ...], bool]] = {}


def _shape(t: type) -> tuple[tuple[str, ...], bool]:
    """The fields of a node type that walk() follows, and whether it is a statement."""
    fields = tuple(f for f in t._fields if f not in _NOT_WALKED)
    if t is ast.Constant:
        fields = ()
    _SHAPES[t] = shape = (fields, issubclass(t, ast.stmt))
    return shape


class _Module:
    def __init__(self, tree: ast.Module, text: str, facts: _Facts) -> None:
        self.tree = tree
        self.text = text
        self.f = facts
        self.rs = facts.rs
        self._lines: list[bytes] | None = None
        # name -> qualified names its imports give it; names bound in any other way; names imported
        # below the module level (libcst may see them unbound where they are read)
        self.imported: dict[str, set[str]] = {}
        self.other: set[str] = set()
        self.nested_import: set[str] = set()
        self.keras_imported = False
        self.keras_import_at = (0, 0)  # where the first Keras import stands: method rules apply after it
        self.calls: list[tuple[ast.Call, ast.AST | None, ast.AST | None, list]] = []
        self.attributes: list[tuple[ast.Attribute, bool, ast.stmt | None]] = []
        self.module_context: dict[str, Any] = {}
        # per statement (engine_sites): the innermost statements where the engine may edit or report,
        # and the names of imported Keras 1 names the rewrite renames (every reference counts)
        self.sites: set[ast.stmt] = set()
        self.deferred: set[ast.stmt] = set()
        # what the engine only reports on, at a call, an attribute chain or an import: (statement, node,
        # [(severity, rule id, message)])
        self.said: list[tuple[ast.stmt, ast.AST, list]] = []
        self.renamed: set[str] = set()
        self.renamed_imports: list[tuple[ast.stmt, str]] = []  # (import, name bound) of renamed names
        self.renamed_loads: dict[str, int] = {}  # renamed name -> the last line that reads it
        self.import_count: dict[str, int] = {}  # name -> how many imports bind it
        self.relative: set[str] = set()  # names a relative import binds
        self.stmt: ast.stmt | None = None
        # per statement: (identifiers it writes, names it binds), its blocks' statements not included
        self.own: dict[ast.stmt, tuple[set[str], set[str], set[str]]] = {}
        self.idents: set[str] = set()
        self.bound: set[str] = set()
        self.reads: set[str] = set()  # names read as call arguments or as method receivers
        self.in_args = 0
        self.batch_keyword = False  # some call here is given `batch_size=`
        self.batch_names: set[str] = set()  # names given as `batch_size=`
        self.unwalked: set[int] = set()  # top-level statements walk_relevant left out
        self.any_star = False
        self.star_modules: list[str] = []  # Keras layer modules imported with `*`
        self.import_lines: dict[str, int] = {}  # name -> the last line an import binds it on
        self.import_line = 0
        self.top_level = set(tree.body)

    def need(self, stmt: ast.stmt | None) -> None:
        """The engine must read `stmt` (None: the statement being checked, raised to check())."""
        if stmt is None:
            raise NeedsEngine
        self.sites.add(stmt)

    # -- collect -----------------------------------------------------------------------------------
    def check(self) -> None:
        self.walk_relevant()
        for node, outer, stmt in self.attributes:
            try:
                self.check_attribute(node, outer, stmt)
            except _Said as what:
                self.said.append((stmt, node, what.said))
            except (NeedsEngine, Refuse):
                self.sites.add(stmt)
        for stmt, name in self.renamed_imports:
            # the engine rewrites the import of a renamed name when it renames every reference, or when
            # there is none; a reference it leaves (a call it refuses) keeps the import as it is
            if not (self.renamed_loads.get(name, 0) > self.import_lines.get(name, 0)
                    and self.import_count.get(name) == 1 and name not in self.other
                    and name not in self.nested_import):
                self.sites.add(stmt)
        # in source order, as the engine visits them: what a call records for the module (a renamed
        # weights file) is read by the calls after it
        self.calls.sort(key=lambda c: (c[0].lineno, c[0].col_offset))
        call_names = self.f.call_names
        imported = self.imported
        for node, parent, grand, siblings, stmt in self.calls:
            func = node.func
            if type(func) is ast.Attribute:
                if func.attr not in call_names:
                    continue  # no rule reads a call of that name, whatever the receiver
            elif func.id not in call_names and not any(q.rsplit(".", 1)[-1] in call_names
                                                       for q in imported.get(func.id, ())):
                continue  # nor of a name that is not, and is not imported as, one a rule knows
            try:
                self.check_call(node, parent, grand, siblings)
            except _Deferred:
                self.deferred.add(stmt)
            except _Said as what:
                if self.imported_after(node):
                    self.sites.add(stmt)  # read before its import at the module level: the engine decides
                else:
                    self.said.append((stmt, node, what.said))
            except (NeedsEngine, Refuse):
                self.sites.add(stmt)
        if self.sites:  # the engine reads the module: it says these itself
            self.sites.update(stmt for stmt, _, _ in self.said)
            self.said = []

    def imported_after(self, node: ast.AST) -> bool:
        """A call or attribute whose name an import binds only further down (at the module's level,
        also inside its blocks, libcst then sees it unbound; elsewhere the engine decides too)."""
        root = _root(node.func if type(node) is ast.Call else node)
        return type(root) is ast.Name and self.import_lines.get(root.id, 0) > node.lineno

    def imported_receiver(self, node: ast.Call) -> bool:
        """A method call whose receiver is, or is reached from, a name an import binds (`np.fit`,
        `np.random.fit`, a relative import's object): the engine does not read it as a model's."""
        root = _root(node.func.value)
        return type(root) is ast.Name and (root.id in self.imported or root.id in self.relative)

    def diagnostics(self, path: str) -> list[Diagnostic]:
        """What the engine says of a module whose only findings are calls it leaves as written, at the
        calls' lines and columns (characters, 1-based), in the order of the source."""
        lines = self.byte_lines()
        out = []
        # at one place, a call's findings come before its name's, as the engine visits them
        for _, node, said in sorted(self.said, key=lambda s: (s[1].lineno, s[1].col_offset,
                                                              type(s[1]) is not ast.Call)):
            before = lines[node.lineno - 1][:node.col_offset]
            # libcst does not count form feeds at the start of a line
            col = len(before.decode("utf-8", errors="replace")) - (len(before) - len(before.lstrip(b"\x0c"))) + 1
            out += [Diagnostic(severity, rule, message, node.lineno, col, path) for severity, rule, message in said]
        return out

    def walk_relevant(self) -> None:
        """Walk the imports and every top-level statement that writes an identifier a rule can see (a
        rule's spelling or new name, a method a rule reads, `batch_size`, a model factory, a name a Keras
        import binds); the others are left unwalked (`self.unwalked`): without such an identifier no
        call or attribute in them can be Keras's, and no name they bind can change how one reads."""
        body = self.tree.body
        relevant = set(self.f.relevant)
        lines = self.byte_lines()
        pending = []
        for stmt in body:
            if type(stmt) is ast.Import or type(stmt) is ast.ImportFrom or _holds_import(stmt):
                self.walk(stmt, self.tree, None, 0, body)  # every import the module runs (`try: import x`)
            else:
                pending.append(stmt)
        if self.any_star:  # any name may be the star module's
            for stmt in pending:
                self.walk(stmt, self.tree, None, 0, body)
            pending = []
        while pending:
            relevant |= {name.encode() for name, qnames in self.imported.items()
                         if any(q.split(".")[0] == "keras" for q in qnames)}
            later = []
            for stmt in pending:
                if relevant.isdisjoint(_words(b"".join(lines[_first_line(stmt) - 1:stmt.end_lineno]))):
                    later.append(stmt)
                else:
                    self.walk(stmt, self.tree, None, 0, body)
            if len(later) == len(pending):
                break
            pending = later  # a statement walked now may have imported another Keras name
        self.unwalked = {id(stmt) for stmt in pending}

    def walk(self, node: ast.AST, parent, grand, depth: int, siblings) -> None:
        """One pass over the tree: bindings, imports, calls and attribute chains, in source order; and
        for each statement the identifiers it writes and the names it binds (own, not its blocks')."""
        t = type(node)
        if t is ast.Name:
            self.idents.add(node.id)
            if self.in_args:
                self.reads.add(node.id)
            if type(node.ctx) is not ast.Load:
                self.other.add(node.id)
                self.bound.add(node.id)
            elif node.id in self.renamed:
                self.renamed_loads[node.id] = max(self.renamed_loads.get(node.id, 0), node.lineno)
            return
        if t is ast.Constant:
            return
        if t is ast.Import or t is ast.ImportFrom:
            self.visit_import(node, depth)
            for a in node.names:  # what a nested import binds belongs to the statement holding it
                name = a.asname or a.name.split(".")[0]
                self.idents.add(name)
                self.bound.add(name)
            return
        shape = _SHAPES.get(t)
        if shape is None:
            shape = _shape(t)
        fields, statement = shape
        if statement:
            outer = self.stmt, self.idents, self.bound, self.reads, self.in_args
            self.stmt, self.idents, self.bound, self.reads, self.in_args = node, set(), set(), set(), 0
            self.own[node] = (self.idents, self.bound, self.reads)
        if t is ast.Attribute:
            self.idents.add(node.attr)
            self.attributes.append((node, not (type(parent) is ast.Attribute), self.stmt))
        elif t is ast.Call:
            if type(node.func) in (ast.Name, ast.Attribute):
                self.calls.append((node, parent, grand, siblings, self.stmt))
            if type(node.func) is ast.Attribute and type(node.func.value) is ast.Name:
                self.reads.add(node.func.value.id)  # a method's receiver
            self.walk(node.func, node, parent, depth, siblings)
            self.in_args += 1  # names read as arguments: the engine may follow their bindings
            for item in node.args:
                if type(item) is not ast.Constant:
                    self.walk(item, node, parent, depth, node.args)
            for item in node.keywords:
                self.walk(item, node, parent, depth, node.keywords)
            self.in_args -= 1
            if statement:
                self.stmt, self.idents, self.bound, self.reads, self.in_args = outer
            return
        elif t is ast.keyword:
            if node.arg:
                self.idents.add(node.arg)
                if node.arg == "batch_size":
                    self.batch_keyword = True
                    if type(node.value) is ast.Name:
                        self.batch_names.add(node.value.id)  # calls.batch_size_of follows its binding
        elif t is ast.arg:
            self.idents.add(node.arg)
            self.bound.add(node.arg)
        elif t in _SCOPES:
            if t is not ast.Lambda:
                self.other.add(node.name)
                self.idents.add(node.name)
                self.bound.add(node.name)
            if t is not ast.ClassDef:
                a = node.args
                for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg):
                    if arg is not None:
                        self.other.add(arg.arg)
            depth += 1
        elif t is ast.ExceptHandler:
            if node.name:
                self.other.add(node.name)
                self.idents.add(node.name)
                self.bound.add(node.name)
        elif t is ast.Global or t is ast.Nonlocal:
            self.other.update(node.names)
            self.idents.update(node.names)
            self.bound.update(node.names)
        elif t is ast.MatchAs or t is ast.MatchStar:
            if node.name:
                self.other.add(node.name)
                self.idents.add(node.name)
                self.bound.add(node.name)
        elif t is ast.MatchMapping:
            if node.rest:
                self.other.add(node.rest)
                self.idents.add(node.rest)
                self.bound.add(node.rest)
        for name in fields:  # a constant holds nothing to record: not visited
            value = getattr(node, name, None)
            if type(value) is list:
                for item in value:
                    if isinstance(item, ast.AST) and type(item) is not ast.Constant:
                        self.walk(item, node, parent, depth, value)
            elif isinstance(value, ast.AST) and type(value) is not ast.Constant:
                self.walk(value, node, parent, depth, siblings)
        if statement:
            self.stmt, self.idents, self.bound, self.reads, self.in_args = outer

    def visit_import(self, node, depth: int) -> None:
        f = self.f
        self.import_line = node.lineno
        if type(node) is ast.ImportFrom:
            if any(a.name == "*" for a in node.names):
                self.star_import(node)
                return
            if node.level or node.module is None:
                for a in node.names:
                    self.other.add(a.asname or a.name)  # a relative import: not Keras's
                    self.relative.add(a.asname or a.name)
                return
            module = node.module
            if module.split(".")[0] == "keras":
                self.keras_is_imported(node)
            if module in f.module_map:
                self.need(node)
            for a in node.names:
                qname = f"{module}.{a.name}"
                if qname in f.module_map:
                    self.need(node)
                    self.renamed.add(a.asname or a.name)
                elif renamed_name(self.rs, module, a.name) is not None:
                    self.renamed.add(a.asname or a.name)
                    self.renamed_imports.append((node, a.asname or a.name))
                self.say_name(qname, node, a)
                self.bind(a.asname or a.name, qname, depth)
            return
        for a in node.names:
            if a.name.split(".")[0] == "keras":
                self.keras_is_imported(node)
            if a.name in f.module_map:
                self.need(node)
            self.say_name(a.name, node, a)
            if a.asname:
                self.bind(a.asname, a.name, depth)
            else:
                root = a.name.split(".")[0]
                self.bind(root, root, depth)

    def keras_is_imported(self, node: ast.stmt) -> None:
        at = (node.lineno, node.col_offset)
        if not self.keras_imported or at < self.keras_import_at:
            self.keras_import_at = at
        self.keras_imported = True

    def star_import(self, node: ast.ImportFrom) -> None:
        """`from keras.layers import *` (ImportCollector.visit_ImportFrom): a name nothing else binds
        may be the star module's; every statement is then walked, and unread_of keeps every binding of
        a name the read statements write."""
        self.any_star = True
        if node.level or node.module is None:
            return
        module = node.module
        if module.split(".")[0] == "keras":
            self.keras_is_imported(node)
        if module in self.f.module_map:
            self.need(node)
        if module in self.rs.layer_modules():
            self.star_modules.append(module)
        self.say_name(module, node, node, alias=False)

    def bind(self, name: str, qname: str, depth: int) -> None:
        self.imported.setdefault(name, set()).add(qname)
        self.import_count[name] = self.import_count.get(name, 0) + 1
        self.import_lines[name] = max(self.import_lines.get(name, 0), self.import_line)
        if depth:
            self.nested_import.add(name)

    # -- names -------------------------------------------------------------------------------------
    def readings(self, expr: ast.AST) -> set[str | None]:
        """Every qualified name the engine may give this Name or attribute chain (None: none)."""
        rest = []
        while type(expr) is ast.Attribute:
            rest.append(expr.attr)
            expr = expr.value
        if type(expr) is not ast.Name:
            return {None}
        name = expr.id
        suffix = "".join("." + r for r in reversed(rest))
        out: set[str | None] = {q + suffix for q in self.imported.get(name, ())}
        if not out or name in self.other or name in self.nested_import:
            out.add(None)
            if self.star_modules and not rest:
                out.add(f"{self.star_modules[0]}.{name}")  # unbound where it is read: the star's
        elif self.star_modules and not rest and self.import_lines.get(name, 0) > expr.lineno:
            out.add(f"{self.star_modules[0]}.{name}")  # read before its import: the star's where it runs
        if name in self.other:
            out.add(name + suffix)  # a module-level binding is its own qualified name
        return out

    def finding(self, qname: str, alias: bool = False) -> findings.Finding | None:
        """What the engine's never-silent names check (Collector.check_name) says of `qname`."""
        f = self.f
        return findings.of_name(qname, self.rs, f.options, f.removed, f.names_rule, self.handled, alias)

    def say_name(self, qname: str, stmt: ast.stmt, node: ast.AST, alias: bool = True) -> None:
        """An import's names check, said at the imported name (or the star import)."""
        found = self.finding(qname, alias)
        if found is not None:
            self.said.append((stmt, node, [found]))

    def handled(self, qname: str) -> bool:
        f = self.f
        return (self.layer_rule(qname) is not None or qname in f.functions or qname in f.removed
                or qname in f.module_map)

    def layer_rule(self, qname: str | None):
        if not qname or "." not in qname:
            return None
        module, cls = qname.rsplit(".", 1)
        rule = self.rs.rule_for(module, cls)
        return (rule, cls) if rule else None

    def check_attribute(self, node: ast.Attribute, outer: bool, stmt: ast.stmt | None) -> None:
        """NameResolution.visit_Attribute: a module path that moves is an edit; the outermost attribute of
        a chain (`K.sum`) gets the names check, unless a skip comment is on its lines."""
        said = set()
        inner = node.value
        while type(inner) is ast.Attribute:
            inner = inner.value
        if outer and type(inner) is not ast.Name:
            root = _root(inner)
            if type(root) is ast.Name and any(q.split(".")[0] == "keras" for q in self.imported.get(root.id, ())):
                raise NeedsEngine  # `K.sum(y).attr`: libcst names it through the call (keras.backend.sum.attr)
        readings = self.readings(node)
        for q in readings:
            if q is None:
                continue
            if q in self.f.module_map:
                raise NeedsEngine
            if outer:
                said.add(self.finding(q))
        said.discard(None)
        if not said or self.skip_marked(node):
            return
        if len(readings) > 1 or self.imported_after(node):
            raise NeedsEngine  # which reading it is, is the engine's
        raise _Said(list(said))

    # -- calls -------------------------------------------------------------------------------------
    def check_call(self, node: ast.Call, parent, grand, siblings) -> None:
        deferred = False
        said = []  # what each reading says
        for q in self.readings(node.func):
            try:
                self.check_call_as(node, q, parent, grand, siblings)
                said.append(None)
            except _Deferred:
                deferred = True  # another reading may still need the engine outright
            except _Said as what:
                said.append(what.said)
        if any(said):
            if deferred or said.count(said[0]) != len(said) or self.skip_marked(node):
                raise NeedsEngine  # which reading it is, or whether it is skipped, is the engine's
            raise _Said(said[0])
        if deferred:
            raise _Deferred

    def skip_marked(self, node: ast.AST) -> bool:
        lines = self.byte_lines()
        return any(SKIP_MARKER.encode() in lines[i - 1] for i in range(node.lineno, node.end_lineno + 1))

    def check_call_as(self, node: ast.Call, qname: str | None, parent, grand, siblings) -> None:
        f = self.f
        gone = f.removed.get(qname or "")
        if gone is not None and f.options.enabled(gone.id):
            raise _Said([findings.removed(gone, qname, self.rs)])
        fn_rule = f.functions.get(qname or "")
        if fn_rule is not None:
            if f.options.enabled(fn_rule.id) and not self.skip_marked(node):
                raise NeedsEngine
            return
        found = self.layer_rule(qname)
        # the engine reads method calls only once it has visited a Keras import (Collector.method_rule)
        if found is None and type(node.func) is ast.Attribute and self.keras_imported \
                and (node.lineno, node.col_offset) > self.keras_import_at:
            rule = f.methods.get(node.func.attr)
            if rule is not None:
                found = (rule, node.func.attr)
        if found is None:
            self.keras1_elsewhere(node, qname)
            self.keras1_method(node)
            return
        rule, spelling = found
        if not f.options.enabled(rule.id) or self.skip_marked(node):
            return
        method = rule.kind == "method"
        if method and self.imported_receiver(node):
            raise NeedsEngine  # the engine reads `np.fit(...)` and `keras.x.fit(...)` by the receiver's import
        written = self.written(node)
        try:
            names, warning = bind_names(rule, spelling, written)
        except Refuse as why:  # the engine: left as written, with an error (LayerCalls.visit_Call)
            raise _Said([(Severity.ERROR, rule.id, f"{spelling}(...) left as written: {why}")]) from None
        if warning is not None:
            raise _Said([(Severity.WARNING, rule.id, warning)])
        if names is None:  # deferred by the engine: Keras 2 API unless the module is Keras 1
            positional = sum(1 for w in written if w.keyword is None)
            if positionals_differ(rule, spelling, positional) is not None:
                raise NeedsEngine
            raise _Deferred
        # The engine decides a renamed call (unless the rule refuses it before any renaming), and a
        # method call with an argument that may lead to a generator's `batch_size=` where the rule reads
        # it (calls.batch_size_of, which this reading does not follow); the pipeline still runs here
        # first, so that what it records for the module (a weights file renamed by save_weights, which
        # load_weights then reads) is recorded as the engine records it.
        renamed = rule.names[spelling] != spelling
        follows = method and _reads_batch_size(rule) and any(
            (type(expr) is ast.Name and self.batch_keyword)
            or (type(expr) is ast.Call and any(k.arg == "batch_size" for k in expr.keywords))
            for expr in [*node.args, *(k.value for k in node.keywords)])
        values = [*node.args, *(k.value for k in node.keywords)]
        # a method's receiver may or may not be a model the engine can tell: nothing only if neither matters
        said = None
        for receiver in ((False, True) if method else (False,)):
            args, index = [], set()
            for i, (w, expr) in enumerate(zip(written, values)):
                name = names[i] if w.keyword is None else w.keyword
                if name in index:
                    raise NeedsEngine
                index.add(name)
                args.append(Arg(name, self.value_of(expr, w.lit, i), name, positional=w.keyword is None))
            work = Work(rule=rule, spelling=spelling, args=args, options=f.options,
                        context={"form": self.form(node, parent, grand, siblings), "module": self.module_context,
                                 "model_receiver": receiver})
            try:
                result = run(work)
            except Refuse as why:  # the engine: left as written, with an error (LayerCalls.visit_Call)
                outcome = [(Severity.ERROR, rule.id, f"{spelling}(...) left as written: {why}")]
            else:
                if renamed or follows or result.target != spelling or changes(result, rule, spelling, result.target,
                                                                  len(written)):
                    raise NeedsEngine
                outcome = [(severity, rule.id, message) for severity, message in result.notes]
            if follows or (said is not None and outcome != said):
                raise NeedsEngine
            said = outcome
        if said:
            raise _Said(said)

    def keras1_elsewhere(self, node: ast.Call, qname: str | None) -> None:
        """Collector.warn_if_keras1_elsewhere, read generously: a Keras 1 spelling not bound to Keras."""
        if type(node.func) is not ast.Name or (qname and qname.split(".")[0] == "keras"):
            return
        spelling = node.func.id
        if self.rs.keras1_only(spelling) is not None:
            raise NeedsEngine
        shared = self.rs.by_name.get(spelling)
        if shared is not None:
            k1 = set(shared.all_params) - set(shared.target_params)
            if {k.arg for k in node.keywords if k.arg} & k1:
                raise NeedsEngine

    def keras1_method(self, node: ast.Call) -> None:
        """Collector.warn_if_keras1_method: `model.fit(X, y, nb_epoch=5)` above any Keras import."""
        if type(node.func) is not ast.Attribute or (
                self.keras_imported and (node.lineno, node.col_offset) > self.keras_import_at):
            return
        spelling = node.func.attr
        rule = self.f.methods.get(spelling)
        if rule is None or not self.f.options.enabled(rule.id) or self.skip_marked(node):
            return
        found = findings.method_without_keras(rule, spelling, [k.arg for k in node.keywords if k.arg])
        if found is None:
            return
        root = _root(node.func.value)
        if type(root) is not ast.Name:
            raise NeedsEngine  # `build().fit(...)`: libcst names the receiver by the function it calls
        if self.imported_receiver(node):
            if root.id in self.other or root.id in self.nested_import or self.imported_after(node):
                raise NeedsEngine  # an imported module's function, or not, depending on where it is read
            return  # a function of an imported module (`np.fit`): not a model
        raise _Said([found])

    def written(self, node: ast.Call) -> list[Written]:
        out = []
        for a in node.args:
            if type(a) is ast.Starred:
                raise NeedsEngine  # refused by the engine
            out.append(Written(None, self.literal(a)))
        for k in node.keywords:
            if k.arg is None:
                raise NeedsEngine
            out.append(Written(k.arg, self.literal(k.value)))
        return out

    def value_of(self, expr: ast.AST, lit: Any, i: int) -> Value:
        call = None
        if lit is NOLIT and type(expr) is ast.Call and type(expr.func) in (ast.Name, ast.Attribute):
            readings = self.readings(expr.func)
            known = {q for q in readings if q is not None and "." in q}
            if len(readings) > 1 and known:
                raise NeedsEngine  # which function it calls is not certain here
            call = next(iter(known), None)
        value = Value(lit=lit, payload=i, call=call)
        if type(expr) in (ast.Tuple, ast.List):
            value.facts["arrays"] = Value(lit=True)
        return value

    def form(self, node: ast.Call, parent, grand, siblings) -> str | None:
        """Collector.form: `Layer(...)(x)` or a `model.add(Layer(...))` line of its own."""
        if type(parent) is ast.Call and parent.func is node:
            if len(parent.args) + len(parent.keywords) == 1 and parent.args and type(parent.args[0]) is not ast.Starred:
                return "functional"
            return None
        if type(parent) is ast.Call and len(parent.args) == 1 and parent.args[0] is node and not parent.keywords \
                and type(parent.func) is ast.Attribute and parent.func.attr == "add" and type(grand) is ast.Expr \
                and self.alone_on_its_line(grand):
            return "sequential"
        return None

    def alone_on_its_line(self, stmt: ast.stmt) -> bool:
        """A statement that is its line's only one (libcst's one-statement SimpleStatementLine)."""
        lines = self.byte_lines()
        if lines[stmt.lineno - 1][:stmt.col_offset].strip():
            return False  # after `;` or a compound statement's colon
        tail = lines[stmt.end_lineno - 1][stmt.end_col_offset:].strip()
        if tail.startswith(b";"):
            tail = tail[1:].strip()
        return not tail or tail.startswith(b"#")

    def byte_lines(self) -> list[bytes]:
        if self._lines is None:
            self._lines = self.text.encode("utf-8").splitlines(keepends=True)
        return self._lines

    # -- literals ----------------------------------------------------------------------------------
    def literal(self, node: ast.AST) -> Any:
        """literals.literal_of for an ast expression (the same values, the same refusals)."""
        t = type(node)
        if t is ast.Constant:
            v = node.value
            if v is None or v is True or v is False:
                return v
            if type(v) is int or type(v) is float:
                return v
            if type(v) is str:
                return self.string(node)
            return NOLIT
        if t is ast.UnaryOp and type(node.op) in (ast.USub, ast.UAdd):
            inner = self.literal(node.operand)
            if isinstance(inner, (int, float)) and not isinstance(inner, bool):
                return -inner if type(node.op) is ast.USub else inner
            return NOLIT
        if t is ast.Tuple or t is ast.List:
            items = []
            for el in node.elts:
                if type(el) is ast.Starred:
                    return NOLIT
                v = self.literal(el)
                if v is NOLIT:
                    return NOLIT
                items.append(v)
            return tuple(items)
        if t is ast.Dict:
            out = {}
            for k, v in zip(node.keys, node.values):
                if k is None:
                    return NOLIT
                kl, vl = self.literal(k), self.literal(v)
                if kl is NOLIT or vl is NOLIT or isinstance(kl, (tuple, dict)):
                    return NOLIT
                out[kl] = vl
            return out
        return NOLIT

    def string(self, node: ast.Constant) -> Any:
        """A string literal's value as libcst's reading gives it: a single literal without escapes (or
        raw); implicit concatenations, bytes and escapes are not literals there."""
        lines = self.byte_lines()
        if node.lineno != node.end_lineno:
            seg = b"".join(lines[node.lineno - 1:node.end_lineno])
            seg = seg[node.col_offset:len(seg) - len(lines[node.end_lineno - 1]) + node.end_col_offset]
        else:
            seg = lines[node.lineno - 1][node.col_offset:node.end_col_offset]
        raw = seg.decode("utf-8")
        i = 0
        while i < len(raw) and raw[i] not in "'\"":
            i += 1
        prefix, rest = raw[:i].lower(), raw[i:]
        quote = rest[:3] if rest[:3] in ("'''", '"""') else rest[:1]
        body = rest[len(quote):len(rest) - len(quote)]
        if "b" in prefix or "f" in prefix or not rest.endswith(quote) or len(rest) < 2 * len(quote):
            return NOLIT
        if "\\" in body and "r" not in prefix:
            return NOLIT
        if quote in body:
            raise NeedsEngine  # a concatenation, or a raw string with escaped quotes: the engine reads it
        return body



# -- statements the engine need not read ------------------------------------------------------------

def _seeds(rs: RuleSet) -> frozenset[str]:
    """Identifiers through which a statement can matter to a rule: every rule's spellings and targets,
    method and backend function names, the modules rewritten code imports."""
    out = {"keras", "math"}
    for rule in rs.rules:
        for name, target in rule.names.items():
            out.update(name.split("."))
            if isinstance(target, str) and target.isidentifier():
                out.add(target)
    out.update(_MODEL_FACTORIES)
    return frozenset(out)


def _identifiers(node: ast.AST) -> tuple[set[str], set[str], set[str]]:
    """(every identifier written in the statement, the names it may bind, the names read as call
    arguments or as receivers of method calls)."""
    idents: set[str] = set()
    bound: set[str] = set()
    read: set[str] = set()
    for n in ast.walk(node):
        t = type(n)
        if t is ast.Name:
            idents.add(n.id)
            if type(n.ctx) is not ast.Load:
                bound.add(n.id)
        elif t is ast.Attribute:
            idents.add(n.attr)
        elif t is ast.Call:
            for a in (*n.args, *(k.value for k in n.keywords)):
                read.update(x.id for x in ast.walk(a) if type(x) is ast.Name)
            if type(n.func) is ast.Attribute and type(n.func.value) is ast.Name:
                read.add(n.func.value.id)
            idents.update(k.arg for k in n.keywords if k.arg)
        elif t in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
            idents.add(n.name)
            bound.add(n.name)
        elif t is ast.arg:
            idents.add(n.arg)
            bound.add(n.arg)
        elif t is ast.alias:
            idents.update(n.name.split("."))
            bound.add((n.asname or n.name).split(".")[0])
            if n.asname:
                idents.add(n.asname)
        elif t in (ast.Global, ast.Nonlocal):
            idents.update(n.names)
            bound.update(n.names)
        elif t is ast.ExceptHandler or t is ast.MatchAs or t is ast.MatchStar:
            if n.name:
                idents.add(n.name)
                bound.add(n.name)
        elif t is ast.MatchMapping and n.rest:
            idents.add(n.rest)
            bound.add(n.rest)
    return idents, bound, read


_BLOCK_STATEMENTS = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try,
                     getattr(ast, "TryStar", ast.Try), ast.Match)


def _holds_import(stmt: ast.stmt) -> bool:
    """A statement of the module's own scope (a branch, loop, `with` or `try`, at any depth, not a
    function or class) that holds an import: what it binds is the module's."""
    return isinstance(stmt, _BLOCK_STATEMENTS) and any(
        type(s) is ast.Import or type(s) is ast.ImportFrom or _holds_import(s)
        for block in _blocks(stmt) for s in block)


def _root(expr: ast.AST) -> ast.AST:
    """The name an attribute chain starts from, through calls and subscripts (`np.random.x`, `f(y).z`)."""
    while True:
        t = type(expr)
        if t is ast.Attribute or t is ast.Subscript:
            expr = expr.value
        elif t is ast.Call:
            expr = expr.func
        else:
            return expr


def _reads_batch_size(rule) -> bool:
    """A rule whose specials read the `batch_size=` a generator argument was made with."""
    return any("batch_size" in getattr(REGISTRY.get(name), "facts", ()) for name in rule.special)


def engine_sites(tree: ast.Module, text: str, ruleset: RuleSet, options: Options) -> _Module | None:
    """The module read per statement: `.sites` holds the innermost statements where the engine may
    edit or report, `.renamed` the imported names whose every reference the engine counts. None when
    the module must be read whole (something here only the engine can read)."""
    m = _Module(tree, text, _facts(ruleset, options))
    try:
        m.check()
    except (NeedsEngine, Refuse):
        return None
    return m


_BLOCKS = ("body", "orelse", "finalbody")
_MODEL_FACTORIES = frozenset(q.rsplit(".", 1)[1] for q in KERAS_MODEL_FACTORIES)  # as a statement spells them


def _blocks(stmt: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists a compound statement holds (except and case clauses included)."""
    out = [getattr(stmt, name) for name in _BLOCKS if getattr(stmt, name, None)]
    out += [h.body for h in getattr(stmt, "handlers", ())]
    out += [c.body for c in getattr(stmt, "cases", ())]
    return out


def unread_statements(tree: ast.Module, text: str, ruleset: RuleSet, options: Options,
                      ) -> list[tuple[int, int, str]] | None:
    """unread_of for a module: NOTHING when it needs no edit and no report, None when it must be read
    whole."""
    m = engine_sites(tree, text, ruleset, options)
    if m is None:
        return None
    if not m.sites and not m.said:
        return NOTHING
    return unread_of(m)


def unread_of(m: _Module) -> list[tuple[int, int, str]]:
    """Statements, at any depth, the engine can skip without changing what it writes or reports
    anywhere else: (first line, last line, placeholder for the first line), 1-based and inclusive.

    A statement is read when the ast reading (engine_sites) finds an edit or a report in it, when it
    holds such a statement (its own lines are read, its blocks decided statement by statement), when
    it is an import or the module docstring, when it binds a name a rule knows (a Keras name, a
    rule's new name: shadowing and "already names something else" depend on it), when it mentions
    an imported name the rewrite renames (the import keeps the old name while any reference is
    left), when it binds a name that read code uses as an argument or a method receiver and some
    binding of that name is a model or a generator with `batch_size` (the bindings the engine
    follows), or when it shares a line with a read statement."""
    tree = m.tree
    seeds = set(m.f.seeds)
    for name, qnames in m.imported.items():
        if any(q.split(".")[0] == "keras" for q in qnames):
            seeds.add(name)
    lines = m.byte_lines()
    sites = m.sites | m.deferred | {stmt for stmt, _, _ in m.said}
    renamed = m.renamed
    # libcst also counts a name written in a string (an annotation, `cast("X", y)`) as a reference
    renamed_bytes = {name.encode() for name in renamed}

    units: list[tuple[ast.stmt, tuple[set[str], set[str], set[str]]]] = []  # may be skipped
    keep: set[int] = set()  # ids of units that are read
    read: set[str] = set()
    spans: list[tuple[int, int, ast.stmt, bool, int, int]] = []  # (first, last, statement, on lines of
    # its own, block, index in the block)
    followed: set[str] = set(m.batch_names)  # names with a binding the engine follows (a model, a batch_size)
    # a model factory as this module spells it: its own name, or an alias an import gives it
    factories = _MODEL_FACTORIES | {name for name, qnames in m.imported.items() if qnames & KERAS_MODEL_FACTORIES}

    empty: tuple[set[str], set[str], set[str]] = (set(), set(), set())

    def written(stmt: ast.stmt) -> tuple[set[str], set[str], set[str]]:
        """(identifiers, bound names, names read as arguments or receivers) of a statement and every
        statement inside it; nothing for a statement walk_relevant left out."""
        own = m.own.get(stmt, empty)
        blocks = _blocks(stmt) if stmt in m.own else ()
        if not blocks:
            return own
        idents, bound, reads = set(own[0]), set(own[1]), set(own[2])
        for block in blocks:
            for sub in block:
                i, b, r = written(sub)
                idents |= i
                bound |= b
                reads |= r
        return idents, bound, reads

    def holds_site(stmt: ast.stmt) -> bool:
        if stmt in sites:
            return True
        return stmt in m.own and any(holds_site(s) for block in _blocks(stmt) for s in block)

    def opened(stmt: ast.stmt) -> bool:
        """Read its own lines and decide its blocks statement by statement: it holds a site, or an
        import the module runs (which the engine reads, as it reads every import)."""
        return holds_site(stmt) or _holds_import(stmt)

    def visit(block: list[ast.stmt], top: bool, elif_chain: bool = False) -> None:
        b = id(block)
        for i, stmt in enumerate(block):
            first = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", ())])
            t = type(stmt)
            if top and i == 0 and t is ast.Expr and type(stmt.value) is ast.Constant:
                continue  # the docstring: where a new import goes depends on it
            is_elif = elif_chain and t is ast.If and i == 0 and len(block) == 1 and \
                lines[stmt.lineno - 1].lstrip().startswith(b"elif")
            if is_elif or opened(stmt):
                if not is_elif:
                    idents, bound, reads = m.own.get(stmt, empty)  # its own: the header's
                    read.update(reads)
                    if "batch_size" in idents or idents & factories:
                        followed.update(bound)
                spans.append((first, stmt.lineno, stmt, False, b, i))  # its own lines are read
                for name in _BLOCKS:
                    sub = getattr(stmt, name, None)
                    if sub:
                        visit(sub, False, elif_chain=(t is ast.If and name == "orelse"))
                for h in getattr(stmt, "handlers", ()):
                    visit(h.body, False)
                for c in getattr(stmt, "cases", ()):
                    visit(c.body, False)
                continue
            if t is ast.Import or t is ast.ImportFrom:
                spans.append((first, stmt.end_lineno, stmt, False, b, i))
                continue
            info = written(stmt)
            own = m.alone_on_its_line(stmt)  # its lines hold nothing else (no `;`, no clause header)
            spans.append((first, stmt.end_lineno, stmt, own, b, i))
            units.append((stmt, info))
            if not own or info[1] & seeds or info[0] & renamed or (renamed_bytes and not renamed_bytes.isdisjoint(
                    _words(b"".join(lines[first - 1:stmt.end_lineno])))):
                keep.add(id(stmt))
                read.update(info[2] if stmt in m.own else _identifiers(stmt)[2])

    visit(tree.body, True)
    # the bindings the engine follows: every binding of a read name, when one of them is a model or
    # a generator made with batch_size (receiver_is_model, batch_size_of)
    binders: dict[str, list[int]] = {}
    for stmt, (idents, bound, _) in units:
        for name in bound:
            binders.setdefault(name, []).append(id(stmt))
            if "batch_size" in idents or idents & factories:
                followed.add(name)
    unit_of = {id(stmt): stmt for stmt, _ in units}
    info_of = {id(stmt): info for stmt, info in units}
    if followed and m.unwalked:  # an unwalked statement may bind a followed name: read it then
        wanted = {n.encode() for n in followed}
        for sid in m.unwalked:
            stmt = unit_of.get(sid)
            if stmt is not None and sid not in keep and not wanted.isdisjoint(_words(
                    b"".join(lines[_first_line(stmt) - 1:stmt.end_lineno]))):
                keep.add(sid)
                read.update(_identifiers(stmt)[2])
    todo = list(read)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in followed:
            for sid in binders.get(name, ()):
                if sid not in keep:
                    keep.add(sid)
                    stmt = unit_of[sid]
                    todo.extend(info_of[sid][2] if stmt in m.own else _identifiers(stmt)[2])
    if m.any_star:
        # a name a read statement writes may be the star module's only where nothing binds it: every
        # statement that binds such a name is read too
        written_names: set[str] = set()
        for first, last, stmt, own, block, i in spans:
            if not own or id(stmt) in keep:  # a unit's every identifier; a read header's own
                written_names |= info_of[id(stmt)][0] if id(stmt) in info_of else m.own.get(stmt, empty)[0]
        changed = True
        while changed:
            changed = False
            for stmt, (idents, bound, _) in units:
                if id(stmt) not in keep and bound & written_names:
                    keep.add(id(stmt))
                    written_names |= idents
                    changed = True
    # adjacent skipped statements of one block become one span (with the blank and comment lines
    # between them): the engine then reads one placeholder line for them all
    out: list[list] = []
    previous = None
    for first, last, stmt, own, block, i in spans:
        if not own or id(stmt) in keep:
            previous = None
            continue
        compound = bool(_blocks(stmt))
        if previous is not None and previous == (block, i - 1):
            out[-1][1] = last
            out[-1][2] = out[-1][2] or compound
        else:
            out.append([first, last, compound])
        previous = (block, i)
    result = []
    for first, last, compound in out:
        line = lines[first - 1]
        result.append((first, last, line[:_indent(line)].decode("utf-8") + ("if 1:pass" if compound else "pass")))
    return result


def _indent(line: bytes) -> int:
    return len(line) - len(line.lstrip(b" \t\x0c"))  # a form feed belongs to the indentation
