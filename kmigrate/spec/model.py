"""The rule model: what a rule file may say, as typed values (loading and validation live in loader.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SKIP_MARKER = "kmigrate: skip"  # a comment on a call's lines that leaves the call as written

# Calls that return a Keras model: a name bound only to one of these is a Keras model, so its `fit`
# is Keras's (a `fit` on anything else may be scikit-learn's).
KERAS_MODEL_FACTORIES = frozenset({
    "keras.models.Sequential", "keras.models.Model", "keras.models.load_model", "keras.models.model_from_json",
    "keras.models.model_from_yaml", "keras.Sequential", "keras.Model", "keras.engine.training.Model"})

# Keras 1 `Layer.__init__` keyword arguments every layer accepted (keras/engine/topology.py @ 1.2.2).
LAYER_KWARGS = ("input_shape", "batch_input_shape", "input_dtype", "name", "trainable", "create_input_layer")

# Keyword arguments every Keras 3 layer accepts (keras/src/layers/layer.py @ 3.15): the base of every
# target signature, so an emitted `name=`/`dtype=`/`input_shape=` is never an unknown keyword.
TARGET_LAYER_KWARGS = ("name", "trainable", "dtype", "input_shape", "input_dim", "autocast", "activity_regularizer")


@dataclass(frozen=True)
class ValueMap:
    """How the literal values of one Keras 1 argument become Keras 2 values."""

    name: str
    mapping: dict[Any, Any]
    drop: tuple[Any, ...] = ()  # values that mean "the global default": the argument is dropped
    keep: tuple[Any, ...] = ()  # values already in the Keras 2 domain: passed through unchanged
    refuse: dict[Any, str] = field(default_factory=dict)  # values with no Keras 2 equivalent: why
    warn: dict[Any, str] = field(default_factory=dict)  # values kept whose meaning changed: how
    others: str = "refuse"  # any other literal: "refuse" or "keep"
    nonliteral: str = "refuse"  # "refuse" (leave the call, say why) or "pass" (keep the expression)
    calls: tuple[str, ...] = ()  # qualified calls whose result another rule maps into the new domain
    option: str | None = None  # an Options field that, when set, stands in for a missing/dropped value


@dataclass(frozen=True)
class Rule:
    """One Keras 1 layer family (or backend function / module path) and how it becomes Keras 2 API."""

    id: str
    file: str
    kind: str  # "layer" | "method" | "function" | "module" | "json" | "removed" (names Keras 3 lacks: reported)
    summary: str
    names: dict[str, str]  # Keras 1 spelling -> Keras 2/3 name
    dual: tuple[str, ...] = ()  # spellings that are also Keras 2/3 names with another signature
    modules: tuple[str, ...] = ()  # where the names are imported from (default: the Keras layer modules)
    signature: tuple[str, ...] = ()  # Keras 1 positional order
    keywords: tuple[str, ...] = ()  # Keras 1 parameters accepted only by keyword (through **kwargs)
    defaults: dict[str, Any] = field(default_factory=dict)  # Keras 1 defaults that matter here
    layer_kwargs: bool = True  # accepts Keras 1 base-layer keyword arguments
    target_params: tuple[str, ...] = ()  # Keras 2 API parameters of the target (checked against Keras 3)
    positional: int = 0  # leading target params that may stay positional; the rest become keywords
    kernel_dims: tuple[str, ...] = ()  # int literals bound here mark a dual spelling as Keras 1
    value_maps: dict[str, ValueMap] = field(default_factory=dict)  # Keras 1 param -> value map
    pack: dict[str, tuple[str, ...]] = field(default_factory=dict)  # new param <- Keras 1 params
    rename: dict[str, str] = field(default_factory=dict)
    drop: dict[str, str] = field(default_factory=dict)  # param -> warning ("" = silent)
    refuse: dict[str, str] = field(default_factory=dict)  # param present -> leave call, say why
    explicit: tuple[str, ...] = ()  # target params always emitted (from `defaults` when missing)
    special: tuple[str, ...] = ()  # named functions in kmigrate.spec.special, run before the ops
    weights: str | None = None  # the weight family (kmigrate.weights) that converts this layer's arrays

    @property
    def all_params(self) -> tuple[str, ...]:
        return self.signature + self.keywords + (LAYER_KWARGS if self.layer_kwargs else ())


@dataclass(frozen=True)
class Options:
    """User choices that change what a rewrite emits."""

    default_dim_ordering: str | None = None  # "th" | "tf": what `dim_ordering='default'` meant
    backend: str | None = None  # "theano" | "tensorflow": what trained the model (Theano padded 'same' its own way)
    only: frozenset[str] | None = None
    skip: frozenset[str] = frozenset()

    def enabled(self, rule_id: str) -> bool:
        if self.only is not None and rule_id not in self.only:
            return False
        return rule_id not in self.skip
