"""Settings a Keras 1.2.2 model config does not hold: given with `--set LAYER.KEY=VALUE`, or inferred where
the file's stored weights leave exactly one choice.

Keras 1.2.2's `ConvLSTM2D.get_config()` leaves out `subsample` (measured: Keras 1.2.2's own `load_model`
rebuilds such a model with strides (1, 1), and its `predict` then fails on the first Dense whose kernel no
longer fits). The stride decides the layer's output size; a weighted layer downstream (a Dense after
Flatten, a BatchNormalization) stores arrays whose size is that output's, so the file may pin it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

from kmigrate.weights.entries import CONTAINERS
from kmigrate.weights.h5io import BadInput
from kmigrate.weights.plan import Plan
from kmigrate.weights.shapes import conv_len, output_shape

# the Keras 1 class -> the config key its Keras 1.2.2 get_config() did not save (the one place it lives)
UNSAVED = {"ConvLSTM2D": "subsample"}
# a search this large means many unsaved strides and few pins: the user is asked instead
MAX_TRIALS = 100_000

_SETTING = re.compile(r"^([^=]+)\.(\w+)=(.+)$")


def parse_setting(text: str) -> tuple[str, str, Any]:
    """`LAYER.KEY=VALUE` -> (layer, key, value); VALUE is a number, comma-separated numbers (a tuple),
    true/false/none, or else a string."""
    m = _SETTING.match(text.strip())
    if not m:
        raise BadInput(f"--set {text!r}: expected LAYER.KEY=VALUE (e.g. convlstm2d_1.subsample=2,2)")
    layer, key, raw = m.groups()
    parts = [_scalar(v.strip()) for v in raw.split(",")] if "," in raw else None
    return layer, key, tuple(parts) if parts is not None else _scalar(raw.strip())


def _scalar(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def layer_configs(model_config: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(name, class, config) of each layer of a Keras 1 model config, those of the models used as layers
    too; the config dicts are the model config's own, so a setting given to them is in the model config."""
    cfg = model_config.get("config")
    items = cfg if isinstance(cfg, list) else (cfg or {}).get("layers") or []
    for item in items:
        if isinstance(item, dict) and item.get("class_name") in CONTAINERS:
            yield from layer_configs(item)
        elif isinstance(item, dict) and isinstance(item.get("config"), dict):
            c = item["config"]
            yield item.get("name") or c.get("name", ""), item.get("class_name", ""), c


def apply_settings(model_config: dict[str, Any], given: list[tuple[str, str, Any]]) -> list[str]:
    """Write each `--set` into its layer's Keras 1 config. Only what the file does not hold may be given:
    a saved value is what the model was trained with. Returns notes saying what was used."""
    layers = {name: (cls, cfg) for name, cls, cfg in layer_configs(model_config)}
    notes = []
    for layer, key, value in given:
        if layer not in layers:
            raise BadInput(f"--set {layer}.{key}: the model has no layer named {layer!r}")
        cls, cfg = layers[layer]
        if key in cfg:
            raise BadInput(f"--set {layer}.{key}: the file saved {key}={cfg[key]!r}; only a setting it does not "
                           "hold can be given", layer)
        cfg[key] = list(value) if isinstance(value, tuple) else value
        notes.append(f"{layer}: {cls} built with {key}={value!r} (given with --set)")
    return notes


def infer_unsaved(plan: Plan) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The unsaved strides the stored weights pin: {layer: {"subsample": (rows, cols)}} and a note for each
    saying from what. Raises BadInput naming the layer when none or several fit, or when a stride given
    with --set does not fit."""
    subjects = [p for p in plan.layers if p.keras1_class in UNSAVED]
    unknown = [p.old_name for p in subjects if UNSAVED[p.keras1_class] not in (p.keras1_config or {})]
    if not subjects:
        return {}, []
    fits: list[tuple[dict[str, tuple], list[str]]] = []
    state = {"trials": 0, "rejected": []}
    key = "subsample"
    names = ", ".join(unknown)
    ask = f"give it with --set {unknown[0] if unknown else 'LAYER'}.{key}=ROWS,COLS" + (
        " (one per layer)" if len(unknown) > 1 else "")
    try:
        _walk(plan, 0, {}, {}, [], fits, state)
    except _Unknowable as e:
        raise BadInput(f"Keras 1.2.2 did not save ConvLSTM2D's {key} and the config does not give the size of "
                       f"its input, so the stored weights cannot pin it: {ask}", str(e)) from None
    if not unknown:  # every stride was given: they must fit what the file stores
        if not fits and state["trials"] <= MAX_TRIALS:
            against = ", ".join(dict.fromkeys(state["rejected"])) or "the layers after it"
            raise BadInput(f"the {key} given does not fit {against}", subjects[0].old_name)
        return {}, []
    if state["trials"] > MAX_TRIALS:
        raise BadInput(f"Keras 1.2.2 did not save ConvLSTM2D's {key} and too many strides are possible for "
                       f"{names}: {ask}", unknown[0])
    if not fits:
        raise BadInput(f"Keras 1.2.2 did not save ConvLSTM2D's {key}, and no stride of {names} fits "
                       f"{', '.join(dict.fromkeys(state['rejected']))}: {ask}", unknown[0])
    if len(fits) > 1:
        shown = "; ".join(" ".join(f"{n}={c[n]}" for n in unknown) for c, _ in fits[:4])
        more = f" and {len(fits) - 4} more" if len(fits) > 4 else ""
        pinned = "no stored weight after it pins its output size" if not any(p for _, p in fits) else \
            f"{len(fits)} choices fit the stored weights ({shown}{more})"
        raise BadInput(f"Keras 1.2.2 did not save ConvLSTM2D's {key} of {names} and {pinned}: {ask}", unknown[0])
    chosen, pins = fits[0]
    by = ", ".join(dict.fromkeys(pins))
    notes = [f"{n}: {key} {chosen[n]} inferred (Keras 1.2.2 did not save it): the only stride for which "
             f"{by} fit{'s' if len(set(pins)) == 1 else ''}" for n in unknown]
    return {n: {key: chosen[n]} for n in unknown}, notes


def _walk(plan: Plan, i: int, shapes: dict[str, tuple[tuple | None, bool]], chosen: dict[str, tuple],
          pins: list[str], fits: list, state: dict[str, Any]) -> None:
    """Depth first through the layers in file order, trying each candidate stride of each unsaved one.
    A shape is (shape without batch axis or None, whether it depends on a stride being tried): only those
    are checked against stored weights (the rest the plan computed once, and the weights convert proves)."""
    state["trials"] += 1
    if state["trials"] > MAX_TRIALS:
        return
    if i == len(plan.layers):
        fits.append((dict(chosen), list(pins)))
        return
    p = plan.layers[i]
    cfg = p.keras1_config or {}
    ins = [shapes.get(n, (None, False)) for n in p.inbound]
    if cfg.get("batch_input_shape") or (not p.inbound and p.keras1_class != "InputLayer"):
        shape, dep = (tuple(cfg["batch_input_shape"][1:]) if cfg.get("batch_input_shape") else None), False
    elif len(ins) == 1:
        shape, dep = ins[0]
    else:
        shape, dep = None, any(d for _, d in ins)
    if p.keras1_class == "InputLayer":
        shapes = {**shapes, p.old_name: (shape, False)}
        return _walk(plan, i + 1, shapes, chosen, pins, fits, state)
    if p.keras1_class in UNSAVED:
        saved = cfg.get(UNSAVED[p.keras1_class])
        options = [tuple(saved)] if saved is not None else _candidates(p, shape, plan.model_layout)
        for s in options:
            out = _conv_lstm_output(p, shape, s, plan.model_layout)
            if out is not None and any(n is not None and n < 1 for n in out):
                continue  # the convolution has no output: not a stride Keras 1 could build
            more = {} if saved is not None else {p.old_name: s}
            # a given stride is checked like a tried one: a wrong --set is refused here, by name
            _walk(plan, i + 1, {**shapes, p.old_name: (out, True)}, {**chosen, **more}, pins, fits, state)
        return
    if not dep:  # nothing tried upstream: the plan's own shape arithmetic holds
        out = p.output_shape
    elif shape is None or p.full_padding or not (p.target_class and p.keras2_config is not None):
        out = None
    else:
        out = output_shape(p.target_class, p.keras2_config, shape)
        if out is not None and any(n is not None and n < 1 for n in out):
            return
    if dep and shape is not None:
        pin = _pin(p, shape)
        if pin is False:
            state["rejected"].append(f"{p.old_name}'s stored {_role(p)} {tuple(p.weights[0].shape)}")
            return
        if pin:
            pins = pins + [pin]
    _walk(plan, i + 1, {**shapes, p.old_name: (out, dep)}, chosen, pins, fits, state)


class _Unknowable(Exception):
    """An unsaved stride whose input size the config does not give: no candidate can be tried."""


def _pin(p, shape: tuple) -> str | bool | None:
    """Whether the layer's stored arrays fit an input of this shape: a description of what was checked
    when they do, False when they do not, None when its arrays do not depend on the input's size."""
    if not p.weights:
        return None
    stored = tuple(p.weights[0].shape)
    what = f"{p.old_name}'s stored {_role(p)} {stored}"
    if p.keras1_class == "Dense" and len(stored) == 2 and shape[-1] is not None:  # W: (input_dim, output_dim)
        return what if stored[0] == shape[-1] else False
    if p.keras1_class == "BatchNormalization" and len(stored) == 1:  # gamma: the size of the feature axis
        axis = (p.keras1_config or {}).get("axis", -1)
        index = axis - 1 if axis > 0 else axis  # Keras 1 axes count the batch axis
        if isinstance(axis, int) and axis != 0 and -len(shape) <= index < len(shape) and shape[index] is not None:
            return what if stored[0] == shape[index] else False
    return None


def _role(p) -> str:
    return "gamma" if p.keras1_class == "BatchNormalization" else "kernel"


def _ordering(p, layout: str | None) -> str:
    ordering = (p.keras1_config or {}).get("dim_ordering") or "default"
    return (layout or "tf") if ordering == "default" else ordering


def _candidates(p, shape: tuple | None, layout: str | None) -> list[tuple[int, int]]:
    """Every stride (rows, cols) that computes something different on this input: 1, 2, ... up to the
    first that leaves a single output position (a larger one computes the same single position)."""
    if shape is None or len(shape) != 4:
        raise _Unknowable(p.old_name)
    cfg = p.keras1_config or {}
    sizes = shape[2:] if _ordering(p, layout) == "th" else shape[1:3]
    per_axis = []
    for n, k in zip(sizes, (cfg.get("nb_row"), cfg.get("nb_col"))):
        if not isinstance(n, int) or not isinstance(k, int):
            raise _Unknowable(p.old_name)
        axis = []
        for s in range(1, max(n, 1) + 1):
            axis.append(s)
            if conv_len(n, k, s, 1, cfg.get("border_mode", "valid")) <= 1:
                break
        per_axis.append(axis)
    return list(itertools.product(*per_axis))


def _conv_lstm_output(p, shape: tuple | None, strides, layout: str | None) -> tuple | None:
    """Keras 1 ConvLSTM2D: (time, channels, rows, cols) under th, (time, rows, cols, channels) under tf;
    the time axis stays with return_sequences."""
    if shape is None or len(shape) != 4:
        return None
    cfg = p.keras1_config or {}
    th = _ordering(p, layout) == "th"
    sizes = shape[2:] if th else shape[1:3]
    mode = cfg.get("border_mode", "valid")
    new = tuple(conv_len(n, k, s, 1, mode) for n, k, s in zip(sizes, (cfg.get("nb_row"), cfg.get("nb_col")),
                                                               tuple(strides)))
    filters = cfg.get("nb_filter")
    frame = (filters, *new) if th else (*new, filters)
    return ((shape[0], *frame) if cfg.get("return_sequences") else frame)


__all__ = ["UNSAVED", "apply_settings", "infer_unsaved", "layer_configs", "parse_setting"]
