"""What the collector plans for one module and the applier carries out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from kmigrate.diagnostics import Diagnostic
from kmigrate.spec.model import (  # noqa: F401 - the engine's modules import these from here
    KERAS_MODEL_FACTORIES,
    SKIP_MARKER,
    Rule,
)
from kmigrate.spec.pipeline import NOLIT, Arg, Value


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


def imports_of(value: Value) -> set[str]:
    """Modules the new code of a value needs imported (`math` for `math.ceil(...)`)."""
    found = set(value.imports)
    for part in value.parts or ():
        found |= imports_of(part)
    return found
