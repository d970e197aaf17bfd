"""PReLU (Keras 3 PReLU): Keras 1 stored `{name}_alphas`, shaped like its input without the batch axis
(1 on shared axes); Keras 3's `alpha` has the same shape in the same ordering."""

from __future__ import annotations

import numpy as np

from kmigrate.weights.families.base import Family, check_layout, keras
from kmigrate.weights.layer import Context, LayerPlan


def alphas_to(a: np.ndarray, source: str, target: str) -> np.ndarray:
    """Alphas of a feature map whose ordering changes (--to): the channel axis moves.

    Layout decides it.
    # old th: (c, s1, ..., sn)   new tf: (s1, ..., sn, c)   (and the reverse)
    """
    check_layout(source)
    check_layout(target)
    if source == target or a.ndim < 2:
        return a
    return np.moveaxis(a, 0, -1) if source == "th" else np.moveaxis(a, -1, 0)


def reference(alphas: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Keras 1.2.2 PReLU: relu(x) + alphas * (x - |x|) * 0.5, alphas broadcast over the batch (and the
    shared axes, where they have size 1)."""
    return np.maximum(x, 0) + alphas * (x - np.abs(x)) * 0.5


class PReLU(Family):
    name = "prelu"
    stored = ("alphas",)
    new = ("alpha",)
    config_optional = True  # the proof needs only what the Keras 1 config says

    def plan(self, p: LayerPlan, ctx: Context) -> None:
        from kmigrate.weights.plan import LAYOUT_OF

        shape = p.weights[0].shape
        source = ctx.model_layout
        target = LAYOUT_OF.get(ctx.settings.to or "", source)
        if len(shape) >= 2 and source and target != source:
            p.facts["move"] = (source, target)
            p.notes.append(f"alphas of a {source} feature map reordered for {target}")

    def transform(self, p: LayerPlan) -> str:
        if "move" in p.facts:
            return "channel axis {}->{}".format(*p.facts["move"])
        return "copy"

    def convert(self, p, arrays):
        a = arrays["alphas"]
        if "move" in p.facts:
            a = alphas_to(a, *p.facts["move"])
        return [("alpha", a)]

    def check(self, p, old, new, rng):
        a = old["alphas"]
        shape = a.shape  # shared axes (size 1 in alphas) take the model's size when it is known
        if p.input_shape and len(p.input_shape) == a.ndim and None not in p.input_shape:
            shape = tuple(p.input_shape)
        x = rng.standard_normal((2,) + shape) * 2
        want = reference(a, x)
        xt = x
        if "move" in p.facts:
            source, _ = p.facts["move"]
            xt = np.moveaxis(x, 1, -1) if source == "th" else np.moveaxis(x, -1, 1)
        alpha = new["alpha"]
        shared = [i + 1 for i, n in enumerate(alpha.shape) if n == 1 and xt.shape[i + 1] != 1] or None
        layer = keras().layers.PReLU(shared_axes=shared, dtype="float64")
        layer.build(xt.shape)
        layer.set_weights([alpha])
        got = np.asarray(layer(xt))
        if "move" in p.facts:
            got = np.moveaxis(got, -1, 1) if p.facts["move"][0] == "th" else np.moveaxis(got, 1, -1)
        return want, got, []
