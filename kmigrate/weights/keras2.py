"""Keras 2.x files and Keras 2/3 layer configs, read as the Keras 1 ones they convert like.

A Keras 2 file holds the same arrays as a Keras 1 one under other names (`conv2d_1/kernel` for
`convolution2d_1_W`), with kernels in one layout whatever the data format. Each array is given the
name and layout Keras 1 would have stored for the layer's data format, and each config the Keras 1
keys the weight families read, so the file then takes the Keras 1 path: same families, same proof.
The inverse key and class names come from the rule table (its renames read backwards); the array
layouts are the inverse of what the families undo.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import numpy as np

from kmigrate.spec.loader import default_ruleset
from kmigrate.weights import families
from kmigrate.weights.entries import Entry, entries
from kmigrate.weights.h5io import BadInput, K1File, K1Layer, K1Weight
from kmigrate.weights.layer import Settings

BACKENDS = ("theano", "tensorflow")
WRAPPERS = ("Bidirectional", "TimeDistributed")
# Keras 2 config values a Keras 2 file leaves out and Keras 3 defaults otherwise: Keras 2.0-2.1 had no
# reset_after (the reset gate applied before the recurrent matmul, as in Keras 1); 2.2+ defaulted to False
KERAS2_DEFAULTS = {"GRU": {"reset_after": False}}


# Measured in Keras 2.0.8's theano_backend.pool2d: 'same' average pooling is Theano's 'average_inc_pad' (the
# padding counted in each mean), where Keras 1.2.2 used 'average_exc_pad' and Keras 3 leaves the padding out
THEANO_AVERAGE_SAME = ("Keras 2.0 on Theano counted the padding in each 'same' average pooling window "
                       "(Keras 1 and Keras 3 leave it out): not converted")
# Keras 2.0 config keys Keras 3's layers do not take, and why a model computes the same without them
KERAS2_DROPPED = {"implementation": "Keras 2's choice among equivalent recurrent kernels (speed, not results)"}


def keras2_only(cls1: str, view: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Keras 2 layer config's Keras 1 view (`keras1_config`) split into the keys the Keras 1 class had
    (for the rules) and those only Keras 2 had (dilation_rate, use_bias on a recurrent layer, ...), which
    keep their Keras 2 names: the Keras 3 ones."""
    rule = default_ruleset().layer_rule(cls1)
    if rule is None:
        return view, {}
    known = set(rule.all_params)
    return ({k: v for k, v in view.items() if k in known}, {k: v for k, v in view.items() if k not in known})


def reset_after_refused(cls: str, cfg: dict[str, Any], where: str, layer: str) -> None:
    """Keras 1's GRU is Keras 3's GRU(reset_after=False): another placement of the reset gate is not it."""
    inner = cfg.get("layer")
    if cls in WRAPPERS and isinstance(inner, dict):
        reset_after_refused(inner.get("class_name", ""), inner.get("config") or {}, where, layer)
    elif cls == "GRU" and cfg.get("reset_after", KERAS2_DEFAULTS["GRU"]["reset_after"]):
        raise BadInput(f"{where} GRU has reset_after=True, which no Keras 1 GRU computed (nor Keras 2.0): the "
                       "layer must be GRU(..., reset_after=False)", layer)


def keras1_rule(cls: str, cfg: dict[str, Any] | None = None):
    """The rule whose Keras 2/3 target is `cls` (the first in rule-table order), or None. A dilated
    convolution (`cfg` says) was one of Keras 1's Atrous classes, the only ones with a dilation."""
    rules = [rule for rule in default_ruleset().of_kind("layer") if cls in rule.names.values()]
    rate = (cfg or {}).get("dilation_rate", 1)
    if any(d != 1 for d in (rate if isinstance(rate, (list, tuple)) else [rate])):
        rules = [rule for rule in rules if "atrous_rate" in rule.all_params] or rules
    return rules[0] if rules else None


def keras1_class(cls: str, cfg: dict[str, Any] | None = None) -> str:
    """The Keras 1 class a Keras 2/3 class came from (its rule's first spelling); unknown classes keep
    their name (weightless layers only need it for the report)."""
    if _merge_mode(cls, cfg or {}) is not None:
        return "Merge"
    rule = keras1_rule(cls, cfg)
    if rule is None:
        return cls
    return next(k for k, v in rule.names.items() if v == cls)


def _merge_mode(cls: str, cfg: dict[str, Any]) -> str | None:
    """Keras 1's Merge mode of a Keras 2 merge layer (Add -> 'sum', Dot(normalize=True) -> 'cos'), the
    rules' mode table read backwards; None for other classes."""
    from kmigrate.spec.special import MERGE_MODES

    modes = [mode for mode, (target, _) in MERGE_MODES.items() if target == cls]
    if not modes:
        return None
    return "cos" if cls == "Dot" and cfg.get("normalize") and "cos" in MERGE_MODES else modes[0]


def _unwrap(v: Any) -> Any:
    """Keras 2 wrote 1-D sizes as one-element lists; Keras 1 wrote ints."""
    if isinstance(v, (list, tuple)) and len(v) == 1:
        return v[0]
    return v


def keras1_config(cls: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """The Keras 1 view of a Keras 2/3 layer config: its rule's renames and packed arguments read
    backwards (filters -> nb_filter, kernel_size -> nb_row, nb_col, data_format -> dim_ordering th/tf,
    recurrent_activation -> inner_activation, ...); keys no rule renames keep their names."""
    from kmigrate.weights.plan import LAYOUT_OF

    mode = _merge_mode(cls, cfg)
    if mode is not None:  # one Keras 1 Merge layer per Keras 2 merge class
        view = {k: v for k, v in cfg.items() if k not in ("axis", "axes", "normalize")}
        view["mode"] = mode
        if "axis" in cfg:
            view["concat_axis"] = cfg["axis"]
        if "axes" in cfg:
            view["dot_axes"] = cfg["axes"]
        return view
    rule = keras1_rule(cls, cfg)
    back = {new: old for old, new in (rule.rename.items() if rule else ())}
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        if rule is not None and key in rule.pack:
            parts = rule.pack[key]
            value = value if isinstance(value, (list, tuple)) else [value] * len(parts)
            out.update(zip(parts, value))
            continue
        old = back.get(key, key)
        if old == "dim_ordering":
            value = LAYOUT_OF.get(value, value)
        elif old == "layer" and isinstance(value, dict) and "class_name" in value:
            inner = value["class_name"]
            inner_cfg = value.get("config") or {}
            value = {"class_name": keras1_class(inner, inner_cfg), "config": keras1_config(inner, inner_cfg)}
        out[old] = _unwrap(value)
    return out


def keras1_roles(family, names: list[str]) -> list[str] | None:
    """The Keras 1 roles of a Keras 2 layer's weights (`kernel` -> `W`): the family's Keras 3 names are
    Keras 2's; a recurrent family's three arrays are Keras 1's consume_less='gpu' triple."""
    from kmigrate.weights.families.recurrent import Recurrent

    stored = ("W", "U", "b") if isinstance(family, Recurrent) else family.stored
    table = dict(zip(family.new, stored))
    roles = [table.get(n) for n in names]
    return None if None in roles else roles


def _adapter(family_name: str, role: str, layout: str) -> tuple[Callable | None, str]:
    """The Keras 2 array -> the array Keras 1 stored for this layout (the inverse of the family's
    transform), and a phrase for the report."""
    th = layout == "th"
    if family_name == "conv" and role == "W" and th:  # (k..., in, out) -> (out, in, k...)
        return (lambda a: np.transpose(a, (a.ndim - 1, a.ndim - 2) + tuple(range(a.ndim - 2)))), "th"
    if family_name == "conv1d" and role == "W":  # (length, in, out) -> Keras 1.1+'s (length, 1, in, out)
        return (lambda a: a[:, None]), "1.1+"
    if family_name == "conv_transpose" and role == "W":  # (r, c, out, in) -> th (out, in, r, c) / tf (r, c, in, out)
        return ((lambda a: np.transpose(a, (2, 3, 0, 1))) if th else (lambda a: np.transpose(a, (0, 1, 3, 2)))), layout
    if family_name == "separable" and role in ("depthwise_kernel", "pointwise_kernel") and th:
        return (lambda a: np.transpose(a, (3, 2, 0, 1))), "th"  # (r, c, in, m) -> (m, in, r, c)
    return None, ""


def _shape_after(adapt: Callable | None, shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape if adapt is None else tuple(adapt(np.empty(shape, dtype=np.uint8)).shape)


def class_from_weights(layer: str, names: list[str], shapes: list[tuple[int, ...]]) -> str | None:
    """A Keras 2 layer's class from its weight names when no config says it (weights-only files):
    Keras 2 names are the Keras 3 ones, so the family whose names fit decides; the kernel's rank
    separates the convolutions (a 4-D kernel under a name with `transpose` is a Conv2DTranspose)."""
    from kmigrate.weights.families.recurrent import Recurrent

    if not names:
        return None
    n = set(names)
    if {"kernel", "recurrent_kernel"} <= n:
        rank = len(shapes[names.index("kernel")])
        ratio = shapes[names.index("recurrent_kernel")][-1] // max(1, shapes[names.index("recurrent_kernel")][-2])
        if rank == 4:
            return "ConvLSTM2D"
        return {1: "SimpleRNN", 3: "GRU", 4: "LSTM"}.get(ratio)
    if "kernel" in n:
        rank = len(shapes[names.index("kernel")])
        if rank == 4 and "transpose" in layer:
            return "Conv2DTranspose"
        return {2: "Dense", 3: "Conv1D", 4: "Conv2D", 5: "Conv3D"}.get(rank)
    for fam in families.FAMILIES:
        f = families.REGISTRY[fam.name]
        if isinstance(f, Recurrent) or not f.new:
            continue
        if n <= set(f.new) and f.new[0] in n:
            rule = next((r for r in default_ruleset().of_kind("layer") if r.weights == f.name), None)
            return next(iter(rule.names.values())) if rule else None
    return None


def as_keras1(k1: K1File, config: dict[str, Any] | None,
              settings: Settings) -> tuple[K1File, list[Entry], Settings, list[str]]:
    """A Keras 2 file seen as the Keras 1 file it converts like: the layers' entries (Keras 1 class and
    config view, with the real Keras 2 config attached), each weight renamed `{layer}_{role}` and read
    in Keras 1's layout, and the training backend the file records."""
    notes = [f"Keras {k1.keras_version or '2'} file: read as the Keras 1 file it converts like"]
    recorded = k1.backend
    if recorded in BACKENDS:
        if settings.backend and settings.backend != recorded:
            raise BadInput(f"--backend {settings.backend} contradicts the file, which Keras 2 saved with "
                           f"backend='{recorded}' (its kernels follow that backend's convolution)")
        settings = replace(settings, backend=recorded)
    elif recorded:
        notes.append(f"the file records backend='{recorded}'; the kernels are taken as --backend says")
    if settings.template is not None or settings.classes:
        notes.append("--template and --class are not used on a Keras 2 file: its config or weight names give "
                     "every class")
    if config is not None:
        raw = entries(config)
    else:
        raw = []
        for name in k1.layer_names:
            ws = k1.layers[name].weights
            short = [_short(w.name) for w in ws]
            wrap: dict[str, Any] = {}
            if ws and _direction(ws[0].name):  # bidirectional_1/forward_lstm_2/kernel
                half = ws[: len(ws) // 2]
                inner = class_from_weights(name, [_short(w.name) for w in half], [w.shape for w in half])
                cls, wrap = ("Bidirectional", {"layer": {"class_name": inner}}) if inner else (None, {})
            else:
                cls = class_from_weights(name, short, [w.shape for w in ws]) if ws else None
            if ws and cls is None:
                raise BadInput(f"weights {short} fit no Keras layer kmigrate converts", name)
            raw.append(Entry(name, cls or "", wrap, None))
        notes.append("no model config: layer classes come from the Keras 2 weight names; a Keras 2 kernel "
                     "does not depend on data_format, so each is read in the tf layout")
    out_entries: list[Entry] = []
    layers: dict[str, K1Layer] = {}
    for e in raw:
        k2cls = e.class_name
        if config is not None:
            k2cfg = _with_defaults(k2cls, e.config)
            reset_after_refused(k2cls, k2cfg, "the file's", e.name)
            view = keras1_config(k2cls, k2cfg)
        else:  # only the class is known (its kernels read in the tf layout, which needs no transpose)
            k2cfg = e.config
            view = {"dim_ordering": "tf"} if k2cls else {}
            if "layer" in k2cfg:
                view["layer"] = {"class_name": keras1_class(k2cfg["layer"]["class_name"]), "config": None}
        cls1 = keras1_class(k2cls, k2cfg) if k2cls else ""
        # weights-only: no Keras 2 config to build on, the layer is planned like a Keras 1 one without config
        known = (k2cls, k2cfg) if config is not None else None
        out_entries.append(Entry(e.name, cls1, view, e.inbound, keras2=known))
        layer = k1.layers.get(e.name)
        if layer is None:
            continue
        layers[e.name] = _layer_view(layer, k2cls, cls1, k2cfg, view)
    for name in k1.layer_names:
        if name not in layers:
            layers[name] = k1.layers[name]
    return replace(k1, layers=layers), out_entries, settings, notes


def _with_defaults(cls: str, cfg: dict[str, Any]) -> dict[str, Any]:
    out = {**KERAS2_DEFAULTS.get(cls, {}), **cfg}
    inner = out.get("layer")
    if cls in WRAPPERS and isinstance(inner, dict):
        out["layer"] = dict(inner, config=_with_defaults(inner.get("class_name", ""), inner.get("config") or {}))
    return out


def _short(name: str) -> str:
    """`conv2d_1/kernel:0` -> `kernel`."""
    return name.split("/")[-1].split(":")[0]


def _direction(name: str) -> str | None:
    """`forward_` / `backward_` when a Keras 2 Bidirectional stored the array (`bi/forward_lstm_2/kernel`)."""
    parts = name.split("/")
    for d in ("forward_", "backward_"):
        if len(parts) >= 2 and parts[-2].startswith(d):
            return d
    return None


def _layer_view(layer: K1Layer, k2cls: str, cls1: str, k2cfg: dict[str, Any], view: dict[str, Any],
                prefix: bool = False) -> K1Layer:
    if not layer.weights:
        return layer
    if k2cls in WRAPPERS:  # the inner layer's arrays, named as Keras 1 named a wrapped layer's
        inner = k2cfg.get("layer") or {}
        inner_view = view.get("layer") or {}
        inner_k2 = inner.get("class_name", "")
        wrapped = _layer_view(layer, inner_k2, keras1_class(inner_k2, inner.get("config")), inner.get("config") or {},
                              inner_view.get("config") or {}, prefix=True)
        return wrapped
    family = families.for_class(cls1)
    if family is None:
        raise BadInput(f"Keras 2 class `{k2cls}` has weights kmigrate does not convert", layer.name)
    if k2cls == "ConvLSTM2D":
        raise BadInput("a Keras 2 ConvLSTM2D file is not converted yet (Keras 1 stored it per gate)", layer.name)
    if k2cls == "BatchNormalization" and (not k2cfg.get("center", True) or not k2cfg.get("scale", True)):
        raise BadInput("BatchNormalization with center=False or scale=False: Keras 1 had no such layer, "
                       "so it has no Keras 1 path here", layer.name)
    short = [_short(w.name) for w in layer.weights]
    directions = [_direction(w.name) or "" for w in layer.weights] if prefix else [""] * len(short)
    half = len(short) // 2
    if any(directions) and short[:half] == short[half:]:
        short = short[:half]  # forward then backward: the same names twice
    roles = keras1_roles(family, short)
    if roles is not None and len(roles) < len(layer.weights):
        roles = roles * 2
    if roles is None:
        raise BadInput(f"Keras 2 {k2cls} weights {short} are not the ones Keras 2 saved for it "
                       f"({', '.join(family.new)})", layer.name)
    layout = view.get("dim_ordering", "tf")
    weights = []
    for w, role, d in zip(layer.weights, roles, directions):
        adapt, _ = _adapter(family.name, role, layout)
        weights.append(K1Weight(f"{d}{layer.name}_{role}", w.path, _shape_after(adapt, w.shape), w.dtype, adapt))
    return K1Layer(layer.name, weights)
