"""TimeDistributed and Bidirectional: their weights are their inner layer's, converted by the inner
layer's own family.

Keras 1.2.2 stored them in the wrapper's group under the inner layer's names: TimeDistributed(Dense)
as `dense_3_W`, `dense_3_b`; Bidirectional(LSTM) as the forward layer's arrays (`forward_lstm_5_W_i`, ...)
then the backward layer's (`backward_lstm_5_W_i`, ...). Keras 3 loads the same order: the inner layer's
weights, or the forward layer's then the backward layer's.
"""

from __future__ import annotations

import numpy as np

from kmigrate.weights.families.base import Family, keras
from kmigrate.weights.h5io import BadInput
from kmigrate.weights.layer import Context, LayerPlan


def _inner_class(p: LayerPlan, names: list[str]) -> tuple[str | None, dict | None]:
    """The wrapped layer's Keras 1 class and config: the saved config's, else the stored names'."""
    from kmigrate.weights.naming import class_from_name

    layer = (p.keras1_config or {}).get("layer")
    if isinstance(layer, dict) and layer.get("class_name"):
        config = layer.get("config", {})  # None: the class was inferred from the arrays, no config known
        return layer["class_name"], (dict(config or {}) if config is not None else None)
    for n in names:  # `dense_3_W` / `forward_lstm_5_W_i`: the layer name before the role suffix
        stem = n.split(":")[0]
        for prefix in ("forward_", "backward_"):
            stem = stem.removeprefix(prefix)
        parts = stem.split("_")
        for cut in range(len(parts) - 1, 1, -1):
            cls = class_from_name("_".join(parts[:cut]))
            if cls:
                return cls, None
    return None, None


def _inner_plan(p: LayerPlan, ctx: Context, k1class: str, k1config: dict | None, weights, input_shape,
                tag: str) -> LayerPlan:
    """A plan for the wrapped layer with its share of the stored arrays, planned by its own family."""
    from kmigrate.spec.model import Options
    from kmigrate.spec.pipeline import Refuse
    from kmigrate.weights import families
    from kmigrate.weights.config import convert_layer_config

    family = families.for_class(k1class)
    if family is None or isinstance(family, Wrapper):
        raise BadInput(f"wraps `{k1class}`, whose weights kmigrate does not convert", p.old_name)
    sub = LayerPlan(f"{p.old_name} ({tag})", k1class, p.new_name, keras1_config=k1config,
                    input_shape=input_shape)
    sub.weights = list(weights)
    inner = p.facts.get("keras2_inner")
    if inner:  # a Keras 2 file or a template gave the inner layer's Keras 2/3 config: used as it is
        sub.target_class, sub.keras2_config = inner.get("class_name"), dict(inner.get("config") or {})
    elif k1config is not None:
        context = {"input_shape": input_shape} if input_shape else {}
        try:
            conv = convert_layer_config(k1class, k1config, options=Options(
                default_dim_ordering=ctx.model_layout, backend=ctx.settings.backend), context=context)
            sub.target_class, sub.keras2_config = conv.target_class, conv.config
        except Refuse as r:
            if not family.config_optional:
                raise BadInput(f"the wrapped {k1class} config is not converted: {r}", p.old_name) from None
            p.notes.append(f"warning: the wrapped {k1class} config is not converted ({r}); the weights convert "
                           "all the same")
    sub.family = family
    sub.roles = family.roles(sub, ctx)
    family.plan(sub, ctx)
    sub.new_weight_names = family.new_names(sub)
    p.notes.extend(f"{tag}: {n}" for n in sub.notes)
    p.unknown.extend(sub.unknown)
    return sub


class Wrapper(Family):
    """Shared by both wrappers: the stored arrays are split among inner plans (p.facts["wrapped"])."""

    prefixes: tuple[str, ...] = ()

    def roles(self, p: LayerPlan, ctx: Context) -> tuple[str, ...]:
        return tuple(w.name for w in p.weights)  # the inner families name the roles

    def adopt(self, p: LayerPlan) -> None:
        """The wrapper reports what its inner layer decided (layout, training backend, flip)."""
        first = p.facts["wrapped"][0]
        p.layout, p.layout_source, p.backend = first.layout, first.layout_source, first.backend
        p.flip = any(s.flip for s in p.facts["wrapped"])

    def transform(self, p: LayerPlan) -> str:
        subs = p.facts.get("wrapped", [])
        parts = [f"{s.family.name}: {s.family.transform(s)}" for s in subs]
        return parts[0] + (" (forward and backward)" if len(parts) > 1 else "") if len(set(parts)) == 1 \
            else "; ".join(parts)

    def new_names(self, p: LayerPlan) -> tuple[str, ...]:
        return tuple(f"{pre}{n}" for pre, s in zip(self.prefixes, p.facts["wrapped"]) for n in s.new_weight_names)

    def write(self, p, read, progress=None):
        out = []
        for pre, sub in zip(self.prefixes, p.facts["wrapped"]):
            out.extend((pre + n, a) for n, a in sub.family.write(sub, read, progress))
        return out

    def split(self, p: LayerPlan, old: dict[str, np.ndarray], new: dict[str, np.ndarray]):
        """Each inner plan with its Keras 1 arrays (by its roles) and Keras 3 arrays (by its names)."""
        names = [w.name for w in p.weights]
        for pre, sub in zip(self.prefixes, p.facts["wrapped"]):
            mine = {role: old[w.name] for w, role in zip(sub.weights, sub.roles) if w.name in names}
            theirs = {n.split(":")[0]: new[pre + n.split(":")[0]] for n in sub.new_weight_names} if new else {}
            yield sub, mine, theirs


class TimeDistributed(Wrapper):
    name = "time_distributed"
    prefixes = ("",)

    def plan(self, p: LayerPlan, ctx: Context) -> None:
        k1class, k1config = _inner_class(p, [w.name for w in p.weights])
        if k1class is None:
            raise BadInput("the wrapped layer's class is unknown: pass --config with the Keras 1 model JSON",
                           p.old_name)
        inner_shape = tuple(p.input_shape[1:]) if p.input_shape else None
        p.facts["wrapped"] = [_inner_plan(p, ctx, k1class, k1config, p.weights, inner_shape, k1class)]
        self.adopt(p)

    def check(self, p, old, new, rng):
        # TimeDistributed applies the inner layer to every time step independently with the same arrays:
        # the inner layer's own proof on a batch of steps is the wrapper's
        ((sub, mine, theirs),) = self.split(p, old, new)
        return sub.family.check(sub, mine, theirs, rng)


class Bidirectional(Wrapper):
    name = "bidirectional"
    prefixes = ("forward_", "backward_")

    def plan(self, p: LayerPlan, ctx: Context) -> None:
        names = [w.name for w in p.weights]
        k1class, k1config = _inner_class(p, names)
        if k1class is None:
            raise BadInput("the wrapped layer's class is unknown: pass --config with the Keras 1 model JSON",
                           p.old_name)
        half = len(p.weights) // 2
        forward, backward = p.weights[:half], p.weights[half:]
        if len(p.weights) % 2 or not all(w.name.startswith("forward_") for w in forward) or \
                not all(w.name.startswith("backward_") for w in backward):
            raise BadInput("Bidirectional weights must be the forward layer's (forward_...) then the backward "
                           f"layer's (backward_...); got {names}", p.old_name)
        inner_shape = tuple(p.input_shape) if p.input_shape else None
        bw_config = dict(k1config, go_backwards=not k1config.get("go_backwards", False)) if k1config else None
        p.facts["wrapped"] = [_inner_plan(p, ctx, k1class, k1config, forward, inner_shape, "forward"),
                            _inner_plan(p, ctx, k1class, bw_config, backward, inner_shape, "backward")]
        p.facts["merge_mode"] = (p.keras1_config or {}).get("merge_mode", "concat")
        self.adopt(p)

    def reference(self, p: LayerPlan, old: dict[str, np.ndarray], x: np.ndarray, return_sequences: bool = True,
                  mask: np.ndarray | None = None) -> np.ndarray:
        """Keras 1.2.2 Bidirectional.call on `old` (the stored arrays by name): the backward layer runs with
        go_backwards, its sequence is reversed back (only with return_sequences), and the two are merged
        (concat / sum / ave / mul)."""
        (fw, fw_old, _), (bw, bw_old, _) = self.split(p, old, None)
        family = fw.family
        if not hasattr(family, "reference"):
            raise BadInput(f"Bidirectional({fw.keras1_class}) has no proof here", p.old_name)
        backwards = bool((fw.keras1_config or {}).get("go_backwards", False))
        y = family.reference(fw, fw_old, x, backwards, mask)
        y_rev = family.reference(bw, bw_old, x, not backwards, mask)
        y, y_rev = (y, y_rev[:, ::-1]) if return_sequences else (y[:, -1], y_rev[:, -1])
        mode = p.facts["merge_mode"]
        merges = {"concat": lambda a, b: np.concatenate([a, b], axis=-1), "sum": np.add,
                  "ave": lambda a, b: (a + b) / 2, "mul": np.multiply}
        if mode not in merges:
            raise BadInput(f"merge_mode={mode!r} has no proof here", p.old_name)
        return merges[mode](y, y_rev)

    def check(self, p, old, new, rng):
        (fw, fw_old, fw_new), (bw, bw_old, bw_new) = self.split(p, old, new)
        family = fw.family
        if not hasattr(family, "reference"):
            raise BadInput(f"Bidirectional({fw.keras1_class}) has no proof here", p.old_name)
        x = family.sample(fw, fw_old, rng)
        backwards = bool((fw.keras1_config or {}).get("go_backwards", False))
        want = self.reference(p, old, x)
        mode = p.facts["merge_mode"]
        layer = keras().layers.Bidirectional(family.keras3_layer(fw, backwards), merge_mode=mode, dtype="float64")
        layer.build(x.shape)
        layer.set_weights([fw_new[n] for n in family.new] + [bw_new[n] for n in family.new])
        return want, np.asarray(layer(x)), []
