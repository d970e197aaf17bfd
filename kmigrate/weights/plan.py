"""Decide, for every layer of a Keras 1 file, what the migrated model's layer is and how its weights move.

Nothing is read beyond metadata here. Keras 1 -> 2 argument knowledge comes from the rule table
(`kmigrate.spec.config.convert_layer_config`); array layout knowledge from `layouts`. The two questions
the file cannot answer (layout when neither config nor shapes say it, training backend when a kernel
would be flipped) are answered by the user or stop the plan with a message saying which option to pass.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from kmigrate.spec.config import convert_layer_config
from kmigrate.spec.loader import default_ruleset
from kmigrate.spec.model import Options
from kmigrate.spec.pipeline import Refuse
from kmigrate.weights import layouts
from kmigrate.weights.h5io import BadInput, K1File, K1Weight

# th -> channels_first, tf -> channels_last: the rules' dim_ordering value map, the one place it lives
DATA_FORMAT = default_ruleset().value_maps["dim_ordering"].mapping
LAYOUT_OF = {v: k for k, v in DATA_FORMAT.items()}


@dataclass
class Settings:
    """What the user told us; None = not told."""

    layout: str | None = None  # 'th' | 'tf'
    backend: str | None = None  # 'theano' | 'tensorflow'
    to: str | None = None  # 'channels_first' | 'channels_last' (None: keep each layer's ordering)
    model_config: dict[str, Any] | None = None  # Keras 1 model JSON for weights-only files
    lenient: bool = False  # inspect: record open questions instead of stopping at the first


@dataclass
class LayerPlan:
    old_name: str
    keras1_class: str | None
    new_name: str
    target_class: str | None = None
    keras1_config: dict[str, Any] | None = None
    keras2_config: dict[str, Any] | None = None
    input_shape: tuple | None = None  # Keras 1 layout, no batch axis; None entries = unknown sizes
    output_shape: tuple | None = None
    kind: str | None = None  # weight family (layouts.KINDS), None for weightless layers
    weights: list[K1Weight] = field(default_factory=list)
    roles: tuple[str, ...] = ()  # Keras 1 suffix of each stored weight
    new_weight_names: tuple[str, ...] = ()
    layout: str | None = None
    layout_source: str | None = None  # 'config' | 'shapes' | '--layout'
    flip: bool = False
    backend: str | None = None
    dense_permute: tuple | None = None  # (feature_shape, source layout, target layout)
    notes: list[str] = field(default_factory=list)  # for the report (warnings and facts)
    unknown: list[str] = field(default_factory=list)  # questions the file leaves open (inspect)
    refused: str | None = None  # why the config was not converted
    full_padding: bool = False  # Keras 1 border_mode='full': converted as 'valid' after explicit padding

    @property
    def transform(self) -> str:
        """One phrase for the summary table."""
        if self.kind is None:
            return "-"
        parts = []
        if self.kind == "conv1d":
            parts.append("squeeze axis 1" if self.layout == "tf" else "Keras 1.0 (2,1,0) of [...,0]")
        elif self.kind in ("conv", "separable") and self.layout == "th":
            parts.append("transpose th->" + ("(2,3,4,1,0)" if self.weights[0].shape.__len__() == 5 else "(2,3,1,0)"))
        elif self.kind == "deconv2d":
            parts.append("transpose (2,3,0,1)" if self.layout == "th" else "transpose (0,1,3,2)")
        if self.flip:
            parts.append("flip spatial (Theano)")
        if self.dense_permute:
            fs, src, dst = self.dense_permute
            parts.append(f"rows {src}->{dst} for {tuple(fs)}")
        if self.kind == "batchnorm":
            parts.append("running_std copied as moving_variance")
        return ", ".join(parts) or "copy"


@dataclass
class Plan:
    layers: list[LayerPlan]
    model_layout: str | None
    settings: Settings
    notes: list[str] = field(default_factory=list)  # model-level notes
    has_config: bool = False

    @property
    def weighted(self) -> list[LayerPlan]:
        return [p for p in self.layers if p.kind is not None]


# ---------------------------------------------------------------- model config walking

@dataclass
class _Entry:
    name: str
    class_name: str
    config: dict[str, Any]
    inbound: list[str] | None  # None: sequential predecessor


def _entries(model_config: dict[str, Any]) -> list[_Entry]:
    cls = model_config.get("class_name")
    cfg = model_config.get("config")
    if cls == "Sequential":
        layers = cfg if isinstance(cfg, list) else (cfg or {}).get("layers")
        if not isinstance(layers, list):
            raise BadInput("Sequential model_config has no layer list")
        out = []
        for item in layers:
            if not isinstance(item, dict) or "class_name" not in item:
                raise BadInput("model_config layer entry without class_name")
            c = dict(item.get("config") or {})
            if item["class_name"] in ("Sequential", "Model"):
                raise BadInput("nested models are not supported", c.get("name"))
            out.append(_Entry(c.get("name", ""), item["class_name"], c, None))
        return out
    if cls == "Model":
        out = []
        for item in cfg.get("layers", []):
            c = dict(item.get("config") or {})
            if item.get("class_name") in ("Sequential", "Model"):
                raise BadInput("nested models are not supported", item.get("name"))
            inbound = []
            for node in item.get("inbound_nodes") or []:
                for ref in node:
                    inbound.append(ref[0])
            out.append(_Entry(item.get("name") or c.get("name", ""), item["class_name"], c, inbound))
        return out
    raise BadInput(f"model_config class {cls!r} is not Sequential or Model")


# ---------------------------------------------------------------- shapes (Keras 2 configs)

def _tuple(v, n):
    if isinstance(v, int):
        return (v,) * n
    return tuple(v)


def _conv_len(n, k, s, d, padding):
    if n is None:
        return None
    if padding == "same":
        return -(-n // s)
    return (n - (d * (k - 1) + 1)) // s + 1


def _deconv_len(n, k, s, padding, op):
    if n is None:
        return None
    if op is None:
        return n * s + max(k - s, 0) if padding == "valid" else n * s
    pad = k // 2 if padding == "same" else 0
    return (n - 1) * s + k - 2 * pad + op


def output_shape(cls: str, cfg: dict[str, Any], shape: tuple | None) -> tuple | None:
    """The Keras 2 layer's output shape (no batch axis) for the layers around convolutions."""
    if shape is None:
        return None
    first = cfg.get("data_format") == "channels_first"
    if cls in ("Conv1D", "Conv2D", "Conv3D", "SeparableConv2D", "Conv2DTranspose",
               "MaxPooling1D", "AveragePooling1D", "MaxPooling2D", "AveragePooling2D",
               "MaxPooling3D", "AveragePooling3D"):
        rank = 1 if cls.endswith("1D") else 3 if cls.endswith("3D") else 2
        if cls.endswith("1D"):
            first = False
        if len(shape) != rank + 1:
            return None
        spatial = shape[1:] if first else shape[:-1]
        ch = shape[0] if first else shape[-1]
        if "Pooling" in cls:
            ps = _tuple(cfg.get("pool_size", 2), rank)
            st = _tuple(cfg.get("strides") or ps, rank)
            new = tuple(_conv_len(n, k, s, 1, cfg.get("padding", "valid")) for n, k, s in zip(spatial, ps, st))
        else:
            ks = _tuple(cfg["kernel_size"], rank)
            st = _tuple(cfg.get("strides", 1), rank)
            dl = _tuple(cfg.get("dilation_rate", 1), rank)
            pad = cfg.get("padding", "valid")
            if cls == "Conv2DTranspose":
                op = cfg.get("output_padding")
                op = _tuple(op, rank) if op is not None else (None,) * rank
                new = tuple(_deconv_len(n, k, s, pad, o) for n, k, s, o in zip(spatial, ks, st, op))
            else:
                new = tuple(_conv_len(n, k, s, d, pad) for n, k, s, d in zip(spatial, ks, st, dl))
            ch = cfg["filters"]
        return ((ch,) + new) if first else (new + (ch,))
    if cls.startswith("Global") and "Pooling" in cls:
        return (shape[0],) if (first and not cls.endswith("1D")) else (shape[-1],)
    if cls == "Flatten":
        return (None if None in shape else math.prod(shape),)
    if cls == "Dense":
        return tuple(shape[:-1]) + (cfg["units"],)
    if cls in ("BatchNormalization", "Dropout", "Activation", "SpatialDropout1D", "SpatialDropout2D",
               "SpatialDropout3D", "GaussianNoise", "GaussianDropout"):
        return shape
    if cls in ("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
               "UpSampling1D", "UpSampling2D", "UpSampling3D"):
        rank = int(cls[-2])
        key = "padding" if "Padding" in cls else "cropping" if "Cropping" in cls else "size"
        v = cfg.get(key, 1 if key == "padding" else 2)
        first = first and rank > 1
        spatial = list(shape[1:] if first else shape[:-1])
        if len(spatial) != rank:
            return None
        if key == "size":
            sizes = _tuple(v, rank)
            spatial = [None if n is None else n * s for n, s in zip(spatial, sizes)]
        else:
            pairs = [(v, v)] * rank if isinstance(v, int) else (
                [tuple(v)] if rank == 1 else [_tuple(p, 2) for p in v])
            sign = 1 if key == "padding" else -1
            spatial = [None if n is None else n + sign * (a + b) for n, (a, b) in zip(spatial, pairs)]
        return (shape[0], *spatial) if first else (*spatial, shape[-1])
    return None


# ---------------------------------------------------------------- naming

def _snake(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras1_default(name: str, keras1_class: str | None) -> bool:
    prefix = "input" if keras1_class == "InputLayer" else (keras1_class or "").lower()
    return bool(keras1_class) and re.fullmatch(re.escape(prefix) + r"_\d+", name) is not None


def _class_from_name(name: str) -> str | None:
    """Keras 1 default names are `classname_N` (lower case); weights-only files only have names."""
    m = re.fullmatch(r"([a-z0-9]+)_\d+", name)
    if not m:
        return None
    if m.group(1) == "input":
        return "InputLayer"
    for rule in default_ruleset().of_kind("layer"):
        for spelling in rule.names:
            if spelling.lower() == m.group(1):
                return spelling
    return None


# ---------------------------------------------------------------- the plan

def make_plan(k1: K1File, settings: Settings) -> Plan:
    """Match file layers to model layers and decide each weighted layer's transform (may raise BadInput)."""
    config = k1.model_config or settings.model_config
    if config is not None and "class_name" not in config and "config" in config:
        config = config["config"]
    plans: list[LayerPlan] = []
    notes: list[str] = []
    by_name: dict[str, LayerPlan] = {}
    if config is not None:
        entries = _entries(config)
        names = [e.name for e in entries]
        file_names = [n for n in k1.layer_names if n not in ("",)]
        cfg_weightless_inputs = [n for n in file_names if n not in names]
        if cfg_weightless_inputs:
            raise BadInput(f"the file has layers the model config lacks: {', '.join(cfg_weightless_inputs[:5])}")
    else:
        entries = [_Entry(n, _class_from_name(n) or "", {}, None) for n in k1.layer_names]
        notes.append("no model config: layer classes come from Keras 1 default names, so strides, padding "
                     "and input sizes are unknown (verification uses stride 1, 'valid', small inputs)")
    layout_votes = [e.config.get("dim_ordering") for e in entries if e.config.get("dim_ordering") in ("th", "tf")]
    model_layout = None
    if layout_votes:
        model_layout = max(set(layout_votes), key=layout_votes.count)
        if len(set(layout_votes)) > 1:
            notes.append("layers disagree on dim_ordering; each kernel follows its own layer's")
    elif settings.layout:
        model_layout = settings.layout
    options = Options(default_dim_ordering=model_layout, backend=settings.backend)
    counters: dict[str, int] = {}
    prev_out: tuple | None = None
    prev_name: str | None = None
    for e in entries:
        k1class = e.class_name or None
        layer = k1.layers.get(e.name)
        p = LayerPlan(e.name, k1class, e.name)
        p.weights = list(layer.weights) if layer else []
        p.keras1_config = e.config or None
        # input shape
        inbound = [prev_name] if e.inbound is None and prev_name else (e.inbound or [])
        if e.inbound is None:
            in_shape = prev_out
        elif len(e.inbound) == 1 and e.inbound[0] in by_name:
            in_shape = by_name[e.inbound[0]].output_shape
        else:
            in_shape = None
        bis = e.config.get("batch_input_shape")
        if bis:
            in_shape = tuple(bis[1:])
        p.input_shape = in_shape
        p.inbound = inbound  # type: ignore[attr-defined]
        if k1class == "Lambda":
            p.refused = ("Lambda layer: its function is stored as marshalled bytecode; reported, never "
                         "executed; write it again in the migrated code")
        elif k1class and k1class not in ("InputLayer",) and default_ruleset().layer_rule(k1class) is None:
            p.refused = f"custom or unsupported layer class `{k1class}`: reported, not converted"
        elif k1class and config is not None:
            ctx: dict[str, Any] = {}
            if in_shape is not None:
                ctx["input_shape"] = in_shape
            if model_layout:
                ctx["default_dim_ordering"] = model_layout
            try:
                conv = convert_layer_config(k1class, e.config, options=options, context=ctx)
                p.target_class = conv.target_class
                p.keras2_config = conv.config
                p.notes.extend(f"{sev.value}: {msg}" for sev, msg in conv.notes)
            except Refuse as r:
                if e.config.get("border_mode") == "full" and layouts.KINDS.get(k1class) in layouts.FLIPPED:
                    _convert_full(p, e.config, options, ctx)
                else:
                    p.refused = f"config not converted: {r}"
        elif k1class:
            rule = default_ruleset().layer_rule(k1class)
            p.target_class = rule.names[k1class] if rule else None
        if k1class == "InputLayer" and e.config.get("batch_input_shape"):
            p.output_shape = tuple(e.config["batch_input_shape"][1:])
        elif p.target_class and p.keras2_config is not None:
            p.output_shape = output_shape(p.target_class, p.keras2_config, _full_padded(p, in_shape))
        # Keras 3 name: a Keras 1 default name becomes the Keras 3 default; a chosen name is kept
        if p.target_class and _keras1_default(e.name, k1class):
            prefix = _snake(p.target_class) if k1class != "InputLayer" else "input_layer"
            n = counters.get(prefix, 0)
            counters[prefix] = n + 1
            p.new_name = prefix if n == 0 else f"{prefix}_{n}"
        if p.weights:
            _plan_weights(p, settings, model_layout, config is not None)
        plans.append(p)
        by_name[e.name] = p
        prev_out, prev_name = p.output_shape, e.name
    _plan_dense_after_flatten(plans, by_name, model_layout, settings)
    weighted_file = [n.name for n in k1.weighted]
    weighted_plan = [p.old_name for p in plans if p.weights]
    if weighted_file != weighted_plan:
        raise BadInput("the layers with weights in the file do not follow the model config's order")
    if settings.to and model_layout and DATA_FORMAT[model_layout] != settings.to:
        notes.append(f"--to {settings.to}: the migrated model code must also use data_format='{settings.to}' on "
                     "every convolution, pooling, padding, cropping and upsampling layer, BatchNormalization "
                     f"axis={'-1' if settings.to == 'channels_last' else '1'}, concatenate/merge axes, "
                     "Reshape/Permute targets, and transposed input arrays")
    return Plan(plans, model_layout, settings, notes + list(k1.dropped and ["dropped " + d for d in k1.dropped]),
                config is not None)


def _convert_full(p: LayerPlan, config: dict[str, Any], options: Options, ctx: dict[str, Any]) -> None:
    """Theano's border_mode='full' is ZeroPadding(k-1 on each side) + 'valid': the weights are the same."""
    try:
        conv = convert_layer_config(p.keras1_class, dict(config, border_mode="valid"), options=options, context=ctx)
    except Refuse as r:
        p.refused = f"config not converted: {r}"
        return
    p.target_class, p.keras2_config, p.full_padding = conv.target_class, conv.config, True
    rank = 1 if p.target_class == "Conv1D" else 3 if p.target_class == "Conv3D" else 2
    ks = _tuple(conv.config["kernel_size"], rank)
    d = _tuple(conv.config.get("dilation_rate", 1), rank)
    pads = [di * (k - 1) for k, di in zip(ks, d)]
    spec = pads[0] if rank == 1 else tuple(pads)
    p.notes.append(f"border_mode='full' has no Keras 3 padding: build ZeroPadding{rank}D({spec}) + "
                   f"{p.target_class}(..., padding='valid'); the weights are verified that way")


def _full_padded(p: LayerPlan, shape: tuple | None) -> tuple | None:
    if not p.full_padding or shape is None:
        return shape
    cfg = p.keras2_config
    rank = 1 if p.target_class == "Conv1D" else 3 if p.target_class == "Conv3D" else 2
    ks = _tuple(cfg["kernel_size"], rank)
    d = _tuple(cfg.get("dilation_rate", 1), rank)
    first = cfg.get("data_format") == "channels_first" and rank > 1
    spatial = shape[1:] if first else shape[:-1]
    spatial = tuple(None if n is None else n + 2 * di * (k - 1) for n, k, di in zip(spatial, ks, d))
    return (shape[0],) + spatial if first else spatial + (shape[-1],)


def _kernel_size(p: LayerPlan) -> tuple[int, ...] | None:
    cfg = p.keras2_config
    if not cfg or "kernel_size" not in cfg:
        return None
    rank = {"conv1d": 1, "deconv2d": 2, "separable": 2}.get(p.kind or "", len(p.weights[0].shape) - 2)
    return _tuple(cfg["kernel_size"], rank)


def _in_channels(p: LayerPlan) -> int | None:
    s = p.input_shape
    if not s:
        return None
    if p.kind == "conv1d" or p.kind == "dense":
        return s[-1]
    fmt = (p.keras2_config or {}).get("data_format")
    if fmt == "channels_first":
        return s[0]
    if fmt == "channels_last":
        return s[-1]
    return None


def _plan_weights(p: LayerPlan, settings: Settings, model_layout: str | None, has_config: bool) -> None:
    if p.keras1_class is None or p.keras1_class not in layouts.KINDS:
        what = f"class `{p.keras1_class}`" if p.keras1_class else "an unknown class (not a Keras 1 default name)"
        hint = "" if has_config else "; pass --config with the Keras 1 model JSON"
        raise BadInput(f"has weights but {what} is not a convertible layer{hint}", p.old_name)
    if p.refused:
        raise BadInput(p.refused, p.old_name)
    p.kind = layouts.KINDS[p.keras1_class]
    suffixes, new_names, required = layouts.WEIGHTS[p.kind]
    n = len(p.weights)
    if not required <= n <= len(suffixes):
        raise BadInput(f"{p.keras1_class} has {n} weights; Keras 1 stored {required} to {len(suffixes)}",
                       p.old_name)
    roles = suffixes[:n] if not (p.kind == "separable" and n == 2) else suffixes[:2]
    for w, role in zip(p.weights, roles):
        base = re.sub(r"(_\d+)?(:\d+)?$", "", w.name)
        if _keras1_default(p.old_name, p.keras1_class) and not base.endswith("_" + role):
            raise BadInput(f"weight {w.name!r} is not the expected `{role}` (Keras 1 save order)", p.old_name)
    p.roles = roles
    p.new_weight_names = tuple(f"{nn}:0" for nn in new_names[:n])
    cfg = p.keras2_config or {}
    use_bias = cfg.get("use_bias", True)
    if has_config and p.kind != "batchnorm" and (roles[-1] == "b") != bool(use_bias):
        raise BadInput(f"config says use_bias={use_bias} but the file has {n} weights", p.old_name)
    filters = cfg.get("filters")
    if "b" in roles:
        blen = p.weights[roles.index("b")].shape
        if len(blen) != 1 or (filters is not None and blen[0] != filters):
            raise BadInput(f"bias shape {blen} does not match filters={filters}", p.old_name)
        filters = blen[0]
    if p.kind == "dense":
        w = p.weights[0].shape
        units = cfg.get("units", w[-1] if len(w) == 2 else None)
        if len(w) != 2 or w[1] != units or (p.input_shape and p.input_shape[-1] not in (None, w[0])):
            raise BadInput(f"Dense kernel shape {w} does not match the model (units={units}, input "
                           f"{p.input_shape})", p.old_name)
        return
    if p.kind == "batchnorm":
        shapes = {w.shape for w in p.weights}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise BadInput(f"BatchNormalization weights must share one 1-D shape, got {[w.shape for w in p.weights]}",
                           p.old_name)
        return
    _decide_layout(p, settings, filters)
    _decide_flip(p, settings)


def _decide_layout(p: LayerPlan, settings: Settings, filters: int | None) -> None:
    shapes = [w.shape for w in p.weights]
    cfg_dim = (p.keras1_config or {}).get("dim_ordering")
    ks = _kernel_size(p)
    cin = _in_channels(p)
    fits = layouts.keras1_layouts_matching(p.kind, shapes, filters, cin, ks)
    if p.kind == "conv1d":
        if len(fits) == 1:
            p.layout, p.layout_source = fits[0], "shapes"
            if fits[0] == "th":
                p.notes.append("Convolution1D kernel in the Keras 1.0.x layout (out, in, length, 1)")
            return
        if not fits:
            raise BadInput(f"Convolution1D kernel shape {shapes[0]} fits neither Keras 1 layout "
                           f"(length, 1, in, out) nor (out, in, length, 1)", p.old_name)
        raise BadInput(f"Convolution1D kernel shape {shapes[0]} fits both the Keras 1.1+ and 1.0.x layouts; "
                       "pass --config with the Keras 1 model JSON", p.old_name)
    if cfg_dim in ("th", "tf"):
        if cfg_dim not in fits:
            raise BadInput(f"kernel shape {shapes[0]} does not match dim_ordering={cfg_dim!r} "
                           f"(filters={filters}, kernel_size={ks}, input channels={cin})", p.old_name)
        p.layout, p.layout_source = cfg_dim, "config"
        if settings.layout and settings.layout != cfg_dim:
            p.notes.append(f"--layout {settings.layout} ignored: the config says dim_ordering={cfg_dim!r}")
        return
    if len(fits) == 1:
        p.layout, p.layout_source = fits[0], "shapes"
        if settings.layout and settings.layout != fits[0]:
            raise BadInput(f"--layout {settings.layout} contradicts the kernel shape {shapes[0]}, which only "
                           f"fits {fits[0]!r}", p.old_name)
        return
    if not fits:
        raise BadInput(f"kernel shape {shapes[0]} fits neither th nor tf layout "
                       f"(filters={filters}, kernel_size={ks}, input channels={cin})", p.old_name)
    if settings.layout:
        p.layout, p.layout_source = settings.layout, "--layout"
        return
    p.unknown.append("layout: pass --layout th|tf")
    if settings.lenient:
        return
    raise BadInput(f"kernel shape {shapes[0]} fits both th (out, in, rows, cols) and tf (rows, cols, in, out) "
                   "orderings and no config records dim_ordering: pass --layout th|tf (the transpose depends "
                   "on it)", p.old_name)


def _decide_flip(p: LayerPlan, settings: Settings) -> None:
    if p.kind not in layouts.FLIPPED or p.layout is None:
        if settings.backend == "theano" and p.kind == "separable":
            p.notes.append("SeparableConvolution2D existed only on TensorFlow: not flipped")
        return
    shape = p.weights[0].shape
    if p.kind == "conv1d":
        spatial = (shape[0],) if p.layout == "tf" else (shape[2],)
    else:
        spatial = shape[2:] if p.layout == "th" else shape[:-2]
    if all(k == 1 for k in spatial):
        p.backend = settings.backend
        return  # a 1x1 kernel reads the same flipped
    if settings.backend is None:
        p.unknown.append("backend: pass --backend theano|tensorflow")
        if settings.lenient:
            return
        raise BadInput(f"{'x'.join(map(str, spatial))} kernel: pass --backend theano|tensorflow (Theano "
                       "trained true convolution, so its kernels are flipped; TensorFlow cross-correlation; "
                       "the file does not record which one trained it)", p.old_name)
    p.backend = settings.backend
    p.flip = settings.backend == "theano"


def _plan_dense_after_flatten(plans, by_name, model_layout, settings) -> None:
    for i, p in enumerate(plans):
        if p.kind != "dense":
            continue
        inbound = getattr(p, "inbound", [])
        src = by_name.get(inbound[0]) if len(inbound) == 1 else None
        if src is None or src.keras1_class != "Flatten":
            continue
        # the ordering of the feature map: the nearest layer before the Flatten that has one
        layout = None
        feature = src.input_shape
        j = plans.index(src)
        for q in reversed(plans[:j]):
            d = (q.keras1_config or {}).get("dim_ordering")
            if d in ("th", "tf"):
                layout = d
                break
            if q.kind == "conv1d" or (q.keras1_class or "").endswith("1D"):
                break
        layout = layout or model_layout
        target = LAYOUT_OF.get(settings.to or "", layout)
        if layout is None or layout == target:
            continue
        if feature is None or None in feature:
            raise BadInput(f"--to {settings.to} needs the rows of this Dense permuted, but the shape of the "
                           "feature map before the Flatten is unknown: pass --config with the Keras 1 model JSON "
                           "(with input shapes)", p.old_name)
        if len(feature) >= 2:
            p.dense_permute = (tuple(feature), layout, target)
            p.notes.append(f"first Dense after Flatten: rows reordered from {layout} to {target} for feature map "
                           f"{tuple(feature)}")
