"""Convolution1D and AtrousConvolution1D kernels (Keras 3 Conv1D), in both Keras 1 storage layouts."""

from __future__ import annotations

import numpy as np

from kmigrate.weights.families import correlation
from kmigrate.weights.families.base import Family, bias_filters, check_ndim, decide_flip, fits, flip_spatial
from kmigrate.weights.families.conv import proof_extent, tf_conv
from kmigrate.weights.h5io import BadInput
from kmigrate.weights.layer import Context, LayerPlan

# The layout names here say which Keras version saved the file: 'tf' is Keras 1.1+'s
# (length, 1, in, out), 'th' Keras 1.0.x's (out, in, length, 1).


def conv1d_kernel(w: np.ndarray) -> np.ndarray:
    """Convolution1D / AtrousConvolution1D kernel, Keras 1.1+.

    There is only one layout: Keras 1.1+ expanded the input to (steps, 1, dim) and ran a tf-ordered
    2D convolution whatever the dim_ordering.
    # old: (length, 1, input_dim, filters)
    # new: (length, input_dim, filters)
    """
    check_ndim(w, 4, "Convolution1D kernel")
    if w.shape[1] != 1:
        raise ValueError(f"Convolution1D kernel (length, 1, in, out) expected, got {tuple(w.shape)}")
    return w[:, 0, :, :]


def conv1d_kernel_keras10(w: np.ndarray) -> np.ndarray:
    """Convolution1D kernel as Keras 1.0.x stored it (a th-ordered 2D convolution over (dim, steps, 1)).

    # old: (filters, input_dim, length, 1)
    # new: (length, input_dim, filters)
    """
    check_ndim(w, 4, "Keras 1.0 Convolution1D kernel")
    if w.shape[3] != 1:
        raise ValueError(f"Keras 1.0 Convolution1D kernel (out, in, length, 1) expected, got {tuple(w.shape)}")
    return np.transpose(w[:, :, :, 0], (2, 1, 0))


def layouts_matching(shape: tuple, filters: int | None, in_channels: int | None = None,
                     length: int | None = None) -> list[str]:
    """'tf' = Keras 1.1+ (length, 1, in, out), 'th' = Keras 1.0.x (out, in, length, 1)."""
    want = {"th": (filters, in_channels, length, 1), "tf": (length, 1, in_channels, filters)}
    return [layout for layout in ("th", "tf") if fits(shape, want[layout])]


def reference(x, W, b, backend, keras10=False, subsample_length=1, border_mode="valid", atrous_rate=1):
    """Keras 1 Convolution1D / AtrousConvolution1D on x (batch, steps, dim), from the stored W.

    Keras 1.1+ stored W (length, 1, in, out) and ran a tf-ordered 2D convolution on (steps, 1, dim);
    Keras 1.0.x stored W (out, in, length, 1) and ran a th-ordered one on (dim, steps, 1).
    """
    x4 = x[:, :, None, :]
    rate = (atrous_rate or 1, atrous_rate or 1)
    if not keras10:
        y = correlation.conv(x4, W, b, "tf", backend, (subsample_length, 1), border_mode, rate)
        return y[:, :, 0, :]
    y = correlation.conv(np.moveaxis(x4, -1, 1), W, b, "th", backend, (subsample_length, 1), border_mode, rate)
    return np.moveaxis(y, 1, -1)[:, :, 0, :]


class Conv1D(Family):
    name = "conv1d"
    stored = ("W", "b")
    new = ("kernel", "bias")
    bias_role = "b"
    flips = True

    def plan(self, p: LayerPlan, ctx: Context) -> None:
        shape = p.weights[0].shape
        cfg = p.keras2_config or {}
        filters = bias_filters(p, cfg.get("filters"))
        ks = cfg.get("kernel_size")
        length = (ks if isinstance(ks, int) else ks[0]) if ks is not None else None
        cin = p.input_shape[-1] if p.input_shape else None
        found = layouts_matching(shape, filters, cin, length)
        if not found:
            raise BadInput(f"Convolution1D kernel shape {shape} fits neither Keras 1 layout "
                           f"(length, 1, in, out) nor (out, in, length, 1)", p.old_name)
        if len(found) > 1:
            raise BadInput(f"Convolution1D kernel shape {shape} fits both the Keras 1.1+ and 1.0.x layouts; "
                           "pass --config with the Keras 1 model JSON", p.old_name)
        p.layout, p.layout_source = found[0], "shapes"
        if p.layout == "th":
            p.notes.append("Convolution1D kernel in the Keras 1.0.x layout (out, in, length, 1)")
        decide_flip(p, ctx, (shape[0],) if p.layout == "tf" else (shape[2],))

    def transform(self, p: LayerPlan) -> str:
        parts = ["squeeze axis 1" if p.layout == "tf" else "Keras 1.0 (2,1,0) of [...,0]"]
        if p.flip:
            parts.append("flip spatial (Theano)")
        return ", ".join(parts)

    def convert(self, p, arrays):
        k = conv1d_kernel(arrays["W"]) if p.layout == "tf" else conv1d_kernel_keras10(arrays["W"])
        if p.flip:
            k = flip_spatial(k, 1)
        return [("kernel", k)] + ([("bias", arrays["b"])] if "b" in arrays else [])

    def check(self, p, old, new, rng):
        W = old["W"]
        k1 = p.keras1_config or {}
        k, cin = (W.shape[0], W.shape[2]) if p.layout == "tf" else (W.shape[2], W.shape[1])
        steps = p.input_shape[0] if p.input_shape and None not in p.input_shape else None
        # a short sequence pads as the model's does and pins every tap (conv.proof_extent)
        shape = (proof_extent(steps, k, k1.get("subsample_length", 1), k1.get("atrous_rate", 1)), cin)
        x = rng.standard_normal((2,) + shape)
        backend = p.backend or "tensorflow"
        want = reference(x, W, old.get("b"), backend, keras10=p.layout == "th",
                         subsample_length=k1.get("subsample_length", 1),
                         border_mode=k1.get("border_mode", "valid"), atrous_rate=k1.get("atrous_rate", 1))
        got, notes = tf_conv(p, x, new, p.keras2_config or {}, 1, backend, (steps,) if steps else None)
        return want, got, notes
