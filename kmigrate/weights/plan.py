"""Decide, for every layer of a Keras 1 file, what the migrated model's layer is and how its weights move.

Nothing is read beyond metadata here. Keras 1 -> 2 argument knowledge comes from the rule table
(`kmigrate.weights.config`); array knowledge from the layer's weight family, which its rule names. The
two questions the file cannot answer (layout when neither config nor shapes say it, training backend when
a kernel would be flipped) are answered by the user or stop the plan with a message saying which option
to pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kmigrate.spec.loader import default_ruleset
from kmigrate.spec.model import Options
from kmigrate.spec.pipeline import Refuse
from kmigrate.weights import families
from kmigrate.weights.config import UnknownKeys, convert_layer_config
from kmigrate.weights.entries import entries, has_models, inline_models
from kmigrate.weights.infer import inferred_entries, template_entries
from kmigrate.weights.keras2 import as_keras1
from kmigrate.weights.h5io import BadInput, K1File
from kmigrate.weights.layer import Context, LayerPlan, Settings
from kmigrate.weights.naming import Keras3Names
from kmigrate.weights.shapes import output_shape, tuple_of

__all__ = ["DATA_FORMAT", "LAYOUT_OF", "LayerPlan", "Plan", "Settings", "make_plan"]

# th -> channels_first, tf -> channels_last: the rules' dim_ordering value map, the one place it lives
DATA_FORMAT = default_ruleset().value_maps["dim_ordering"].mapping
LAYOUT_OF = {v: k for k, v in DATA_FORMAT.items()}


@dataclass
class Plan:
    layers: list[LayerPlan]
    model_layout: str | None
    settings: Settings
    notes: list[str] = field(default_factory=list)  # model-level notes
    has_config: bool = False
    model_config: dict[str, Any] | None = None  # the model config planned (with nested models inlined)

    @property
    def weighted(self) -> list[LayerPlan]:
        return [p for p in self.layers if p.family is not None]


def make_plan(k1: K1File, settings: Settings) -> Plan:
    """Match file layers to model layers and decide each weighted layer's transform (may raise BadInput)."""
    config = k1.model_config or settings.model_config
    if config is not None and "class_name" not in config and "config" in config:
        config = config["config"]
    notes: list[str] = []
    if config is not None and settings.inline_models and not k1.keras2 and has_models(config):
        config, k1 = inline_models(config, k1)
        notes.append("the models used as layers are inlined: their layers are called where they were")
    if k1.keras2:
        k1, layer_entries, settings, more = as_keras1(k1, config, settings)
        notes.extend(more)
    elif config is not None:
        layer_entries = entries(config)
    elif settings.template is not None:
        layer_entries, more = template_entries(k1, settings.template, settings.to is None)
        notes.extend(more)
    else:
        layer_entries, more = inferred_entries(k1, settings)
        notes.extend(more)
    if config is not None:
        names = {e.name for e in layer_entries}
        missing = [n for n in k1.layer_names if n and n not in names]
        if missing:
            raise BadInput(f"the file has layers the model config lacks: {', '.join(missing[:5])}")
    layout_votes = [e.config.get("dim_ordering") for e in layer_entries
                    if e.config.get("dim_ordering") in ("th", "tf")]
    model_layout = None
    if layout_votes:
        model_layout = max(set(layout_votes), key=layout_votes.count)
        if len(set(layout_votes)) > 1:
            notes.append("layers disagree on dim_ordering; each kernel follows its own layer's")
    elif settings.layout:
        model_layout = settings.layout
    options = Options(default_dim_ordering=model_layout, backend=settings.backend)
    has_config = config is not None or settings.template is not None
    ctx = Context(settings, has_config, model_layout, [], {})
    names3 = Keras3Names()
    prev: LayerPlan | None = None
    for e in layer_entries:
        p = _layer(e, k1, prev, ctx.by_name, options, model_layout, has_config)
        p.new_name = names3.name(e.name, p.keras1_class, p.target_class)
        if p.weights:
            plan_weights(p, ctx)
        ctx.previous.append(p)
        ctx.by_name[e.name] = p
        prev = p
    plans = ctx.previous
    weighted_file = [n.name for n in k1.weighted]
    if weighted_file != [p.old_name for p in plans if p.weights]:
        raise BadInput("the layers with weights in the file do not follow the model config's order")
    if settings.to and model_layout and DATA_FORMAT[model_layout] != settings.to:
        notes.append(f"--to {settings.to}: the migrated model code must also use data_format='{settings.to}' on "
                     "every convolution, pooling, padding, cropping and upsampling layer, BatchNormalization "
                     f"axis={'-1' if settings.to == 'channels_last' else '1'}, concatenate/merge axes, "
                     "Reshape/Permute targets, and transposed input arrays")
    return Plan(plans, model_layout, settings, notes + ["dropped " + d for d in k1.dropped], has_config, config)


def _layer(e: Entry, k1: K1File, prev: LayerPlan | None, by_name: dict[str, LayerPlan], options: Options,
           model_layout: str | None, has_config: bool) -> LayerPlan:
    """One entry: its Keras 2 class and config (through the rules), input and output shapes."""
    k1class = e.class_name or None
    layer = k1.layers.get(e.name)
    p = LayerPlan(e.name, k1class, e.name)
    p.weights = list(layer.weights) if layer else []
    p.keras1_config = e.config or None
    p.inbound = [prev.old_name] if e.inbound is None and prev else list(e.inbound or [])
    if e.inbound is None:
        in_shape = prev.output_shape if prev else None
    elif len(e.inbound) == 1 and e.inbound[0] in by_name:
        in_shape = by_name[e.inbound[0]].output_shape
    else:
        in_shape = None
    bis = e.config.get("batch_input_shape")
    if bis:
        in_shape = tuple(bis[1:])
    p.input_shape = in_shape
    rule = default_ruleset().layer_rule(k1class) if k1class else None
    if k1class == "Lambda":
        p.refused = ("Lambda layer: its function is stored as marshalled bytecode; reported, never "
                     "executed; write it again in the migrated code")
    elif e.keras2 is not None and e.keras2[0]:  # a Keras 2 file or a template: the Keras 2 config is known
        p.target_class, p.keras2_config = e.keras2
        if isinstance(p.keras2_config.get("layer"), dict):  # a wrapper: its inner layer's config too
            p.facts["keras2_inner"] = p.keras2_config["layer"]
    elif k1class and k1class != "InputLayer" and rule is None:
        p.refused = f"custom or unsupported layer class `{k1class}`: reported, not converted"
    elif k1class and has_config:
        ctx: dict[str, Any] = {}
        if in_shape is not None:
            ctx["input_shape"] = in_shape
        if model_layout:
            ctx["default_dim_ordering"] = model_layout
        try:
            conv = convert_layer_config(k1class, e.config, options=options, context=ctx)
            p.target_class, p.keras2_config = conv.target_class, conv.config
            p.notes.extend(f"{sev.value}: {msg}" for sev, msg in conv.notes)
        except Refuse as r:
            family = families.for_class(k1class)
            if isinstance(r, UnknownKeys):  # a fork's layer: no Keras release computes what it did
                p.refused, p.fork = f"config not converted: {r}", True
            elif e.config.get("border_mode") == "full" and family is not None and family.flips:
                _convert_full(p, e.config, options, ctx)
            else:
                p.refused = f"config not converted: {r}"
                if rule is not None:
                    p.target_class = rule.names[k1class]
    elif k1class and rule is not None:
        p.target_class = rule.names[k1class]
    if k1class == "InputLayer" and e.config.get("batch_input_shape"):
        p.output_shape = tuple(e.config["batch_input_shape"][1:])
    elif p.target_class and p.keras2_config is not None:
        p.output_shape = output_shape(p.target_class, p.keras2_config, _full_padded(p, in_shape))
    return p


def plan_weights(p: LayerPlan, ctx: Context) -> None:
    """Find the layer's family (its rule names it), match its stored arrays, let the family decide."""
    family = families.for_class(p.keras1_class)
    if family is None:
        what = f"class `{p.keras1_class}`" if p.keras1_class else "an unknown class (not a Keras 1 default name)"
        hint = "" if ctx.has_config else "; pass --config with the Keras 1 model JSON"
        raise BadInput(f"has weights but {what} is not a convertible layer{hint}", p.old_name)
    if p.refused and (p.fork or not family.config_optional):
        raise BadInput(p.refused, p.old_name)
    if p.refused:
        p.notes.append(f"warning: {p.refused}; the weights convert all the same")
        p.refused = None
    p.family = family
    p.roles = family.roles(p, ctx)
    family.plan(p, ctx)
    p.new_weight_names = family.new_names(p)


def _convert_full(p: LayerPlan, config: dict[str, Any], options: Options, ctx: dict[str, Any]) -> None:
    """Theano's border_mode='full' is ZeroPadding(k-1 on each side) + 'valid': the weights are the same."""
    try:
        conv = convert_layer_config(p.keras1_class, dict(config, border_mode="valid"), options=options, context=ctx)
    except Refuse as r:
        p.refused = f"config not converted: {r}"
        return
    p.target_class, p.keras2_config, p.full_padding = conv.target_class, conv.config, True
    rank = 1 if p.target_class == "Conv1D" else 3 if p.target_class == "Conv3D" else 2
    ks = tuple_of(conv.config["kernel_size"], rank)
    d = tuple_of(conv.config.get("dilation_rate", 1), rank)
    pads = [di * (k - 1) for k, di in zip(ks, d)]
    spec = pads[0] if rank == 1 else tuple(pads)
    p.notes.append(f"border_mode='full' has no Keras 3 padding: build ZeroPadding{rank}D({spec}) + "
                   f"{p.target_class}(..., padding='valid'); the weights are verified that way")


def _full_padded(p: LayerPlan, shape: tuple | None) -> tuple | None:
    if not p.full_padding or shape is None:
        return shape
    cfg = p.keras2_config
    rank = 1 if p.target_class == "Conv1D" else 3 if p.target_class == "Conv3D" else 2
    ks = tuple_of(cfg["kernel_size"], rank)
    d = tuple_of(cfg.get("dilation_rate", 1), rank)
    first = cfg.get("data_format") == "channels_first" and rank > 1
    spatial = shape[1:] if first else shape[:-1]
    spatial = tuple(None if n is None else n + 2 * di * (k - 1) for n, k, di in zip(spatial, ks, d))
    return (shape[0],) + spatial if first else spatial + (shape[-1],)
