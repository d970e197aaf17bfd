"""The op pipeline shared by the code rewriter and the model-config rewriter.

A consumer binds one Keras 1 call (or one saved layer config) to Keras 1 parameter names, hands the
bound arguments to `run`, and emits what comes back. The engine owns the order of operations:
refusals -> named special functions -> value maps -> packs -> renames -> drops -> explicit defaults.
Rule authors never order operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kmigrate.diagnostics import Severity
from kmigrate.spec.model import Options, Rule


class _NoLit:
    def __repr__(self) -> str:
        return "NOLIT"


NOLIT: Any = _NoLit()  # the value is an expression whose result is not statically known


class Refuse(Exception):
    """Leave the call as written; the message says why (an error diagnostic)."""


@dataclass
class Value:
    """One argument value. `lit` is the Python literal when known; `payload` is the consumer's own
    representation (a libcst expression) and is passed through untouched; `parts` builds a tuple from
    other values (a pack of non-literal expressions)."""

    lit: Any = NOLIT
    payload: Any = None
    parts: tuple["Value", ...] | None = None
    call: str | None = None  # qualified name when the expression is a call of a known function
    changed: bool = False
    # an expression built from `parts`: Python source with {0}, {1}, ... standing for them
    # ("math.ceil({0} / {1})"), and the modules it needs imported
    template: str | None = None
    imports: tuple[str, ...] = ()
    facts: dict[str, "Value"] = field(default_factory=dict)  # what the consumer knows of it ("batch_size")

    @classmethod
    def of(cls, lit: Any) -> "Value":
        return cls(lit=lit, changed=True)

    @classmethod
    def expr(cls, template: str, *parts: "Value", imports: tuple[str, ...] = ()) -> "Value":
        return cls(template=template, parts=parts, imports=imports, changed=True)

    @property
    def known(self) -> bool:
        return self.lit is not NOLIT


@dataclass
class Arg:
    name: str
    value: Value
    source: str | None  # the Keras 1 parameter this came from as written (None: added by a rule)
    positional: bool = False  # was written positionally
    comma_from: str | None = None  # a pack ends where its last member was written


@dataclass
class Work:
    """The bound call as the ops transform it."""

    rule: Rule
    spelling: str
    args: list[Arg]
    options: Options
    notes: list[tuple[Severity, str]] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)  # consumer facts (e.g. known input shape)
    target: str | None = None  # set by a special when the Keras 2 name depends on an argument
    wrap: str | None = None  # the new call becomes this expression, with {call} standing for it
    # extra layers around this one (an exact construction): (Keras 2 class, {param: Value})
    before: list[tuple[str, dict[str, "Value"]]] = field(default_factory=list)
    after: list[tuple[str, dict[str, "Value"]]] = field(default_factory=list)

    def index(self, name: str) -> int:
        for i, a in enumerate(self.args):
            if a.name == name:
                return i
        return -1

    def has(self, name: str) -> bool:
        return self.index(name) >= 0

    def get(self, name: str) -> Value | None:
        i = self.index(name)
        return self.args[i].value if i >= 0 else None

    def pop(self, name: str) -> Arg | None:
        i = self.index(name)
        return self.args.pop(i) if i >= 0 else None

    def set(self, name: str, value: Value, *, after: str | None = None) -> None:
        """Replace `name` in place, else insert it where `after` was (or append)."""
        i = self.index(name)
        if i >= 0:
            self.args[i].value = value
            return
        j = self.index(after) if after else -1
        arg = Arg(name, value, self.args[j].source if j >= 0 else None,
                  self.args[j].positional if j >= 0 else False)
        if j >= 0:
            self.args.insert(j, arg)
        else:
            self.args.append(arg)

    def rename(self, old: str, new: str) -> None:
        i = self.index(old)
        if i < 0:
            return
        if self.has(new):
            raise Refuse(f"both `{old}` and its Keras 2 name `{new}` are given")
        self.args[i].name = new

    def note(self, severity: Severity, message: str) -> None:
        self.notes.append((severity, message))

    def warn(self, message: str) -> None:
        self.note(Severity.WARNING, message)


@dataclass
class Result:
    target: str
    args: list[Arg]
    notes: list[tuple[Severity, str]]
    before: list[tuple[str, dict[str, Value]]] = field(default_factory=list)
    after: list[tuple[str, dict[str, Value]]] = field(default_factory=list)
    wrap: str | None = None


def run(work: Work) -> Result:
    """Apply the rule's ops in the engine's fixed order; raises Refuse to leave the call as written."""
    from kmigrate.spec.special import REGISTRY

    rule = work.rule
    for param, why in rule.refuse.items():
        value = work.get(param)
        if value is not None and value.known and (value.lit is None or value.lit == {}):
            work.pop(param)  # the default, spelled out (Keras 1 saved `"arguments": {}`): nothing to carry over
        elif value is not None:
            raise Refuse(f"`{param}=` {why}")
    for name in rule.special:
        REGISTRY[name](work)
    for param, vmap in rule.value_maps.items():
        _apply_value_map(work, param, vmap)
    for new, members in rule.pack.items():
        _pack(work, new, members)
    for old, new in rule.rename.items():
        work.rename(old, new)
    for param, why in rule.drop.items():
        arg = work.pop(param)
        if arg is not None and why and not (arg.value.known and (arg.value.lit is None or (
                param in rule.defaults and arg.value.lit == rule.defaults[param]))):
            work.warn(f"`{param}` dropped: {why}")  # Keras 1's default value, spelled out, says nothing
    for param in rule.explicit:
        if not work.has(param):
            keras1 = _keras1_name(rule, param)
            if keras1 not in rule.defaults:
                raise Refuse(f"no Keras 1 default known for `{param}`")
            work.set(param, Value.of(rule.defaults[keras1]))
    return Result(target=work.target or rule.names[work.spelling], args=work.args, notes=work.notes,
                  before=work.before, after=work.after, wrap=work.wrap)


def _keras1_name(rule: Rule, target: str) -> str:
    for old, new in rule.rename.items():
        if new == target:
            return old
    return target


def _apply_value_map(work: Work, param: str, vmap) -> None:
    value = work.get(param)
    option_value = getattr(work.options, vmap.option) if vmap.option else None
    if value is None:
        if option_value is not None:
            work.set(param, Value.of(vmap.mapping[option_value]))
        return
    if not value.known:
        if value.call in vmap.calls or vmap.nonliteral == "pass":
            return
        raise Refuse(f"`{param}` is not a literal, so its Keras 2 value is not certain")
    lit = value.lit
    if isinstance(lit, (dict, list)):  # e.g. a saved config's {"name": "MaxNorm", ...}
        if vmap.others == "keep":
            return
        raise Refuse(f"`{param}` is not one of the values kmigrate can map")
    if lit in vmap.refuse:
        raise Refuse(f"`{param}={lit!r}` {vmap.refuse[lit]}")
    if lit in vmap.drop:
        if option_value is not None:
            value.lit, value.changed = vmap.mapping[option_value], True
        else:
            work.pop(param)
        return
    if lit in vmap.warn:
        work.warn(f"`{param}={lit!r}` {vmap.warn[lit]}")
        return
    if lit in vmap.keep or (vmap.others == "keep" and lit not in vmap.mapping):
        return
    if lit in vmap.mapping:
        value.lit, value.changed = vmap.mapping[lit], True
        return
    allowed = list(vmap.mapping) + list(vmap.drop) + list(vmap.keep)
    raise Refuse(f"`{param}={lit!r}` is not one of {', '.join(repr(a) for a in allowed)}")


def _pack(work: Work, new: str, members: tuple[str, ...]) -> None:
    present = [m for m in members if work.has(m)]
    if not present:
        return
    if len(present) != len(members):
        missing = [m for m in members if m not in present]
        raise Refuse(f"`{new}` needs {', '.join(members)}; missing {', '.join(missing)}")
    if len(members) == 1:
        work.rename(members[0], new)
        return
    values = [work.get(m) for m in members]
    if all(v.known for v in values):
        packed = Value(lit=tuple(v.lit for v in values), changed=True)
    else:
        packed = Value(parts=tuple(values), changed=True)
    first = work.index(members[0])
    work.args[first].name = new
    work.args[first].value = packed
    work.args[first].comma_from = work.args[work.index(members[-1])].source
    for m in members[1:]:
        work.pop(m)
