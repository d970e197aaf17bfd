"""SeparableConvolution2D's depthwise and pointwise kernels (Keras 3 SeparableConv2D).

Keras 1 ran it on TensorFlow only, so it is never flipped.
"""

from __future__ import annotations

import numpy as np

from kmigrate.weights.families import correlation
from kmigrate.weights.families.base import (LAYOUTS, Family, bias_filters, check_layout, check_ndim, decide_layout,
                                            fits, tensorflow, tup)
from kmigrate.weights.families.conv import _cl, channels_in, kernel_size, proof_extent
from kmigrate.weights.layer import Context, LayerPlan


def depthwise_kernel(w: np.ndarray, layout: str) -> np.ndarray:
    """Depthwise kernel. Keras 1's TensorFlow backend applied this same transpose at run time, so the
    depthwise channel order (in * multiplier + m) is preserved.

    Layout decides it.
    # old th: (multiplier, in, r, c)
    # old tf: (r, c, in, multiplier)
    # new:    (r, c, in, multiplier)
    """
    check_layout(layout)
    check_ndim(w, 4, "depthwise kernel")
    return np.transpose(w, (2, 3, 1, 0)) if layout == "th" else w


def pointwise_kernel(w: np.ndarray, layout: str) -> np.ndarray:
    """Pointwise kernel.

    Layout decides it.
    # old th: (filters, in * multiplier, 1, 1)
    # old tf: (1, 1, in * multiplier, filters)
    # new:    (1, 1, in * multiplier, filters)
    """
    check_layout(layout)
    check_ndim(w, 4, "pointwise kernel")
    return np.transpose(w, (2, 3, 1, 0)) if layout == "th" else w


def layouts_matching(shapes: list[tuple], filters: int | None, in_channels: int | None = None,
                     ksize: tuple | None = None) -> list[str]:
    k = tuple(ksize) if ksize is not None else (None, None)
    dw = {"th": (None, in_channels) + k, "tf": k + (in_channels, None)}
    pw = {"th": (filters, None, 1, 1), "tf": (1, 1, None, filters)}
    return [layout for layout in LAYOUTS
            if len(shapes) > 1 and fits(shapes[0], dw[layout]) and fits(shapes[1], pw[layout])]


def reference(x, depthwise, pointwise, b, dim_ordering, subsample=None, border_mode="valid"):
    """Keras 1 SeparableConvolution2D (TensorFlow only, so cross-correlation and 'SAME').

    Depthwise output channel c*mult + j reads input channel c with depthwise kernel j.
    th: depthwise (mult, in, r, c), pointwise (out, in*mult, 1, 1); tf: (r, c, in, mult), (1, 1, in*mult, out).
    """
    if dim_ordering == "th":
        mult, cin, ksize = depthwise.shape[0], depthwise.shape[1], depthwise.shape[2:]
        dk = lambda a, c, j: depthwise[j, c][a]  # noqa: E731
        pw = pointwise[:, :, 0, 0].T  # (in*mult, out)
        xc = x
    else:
        ksize, cin, mult = depthwise.shape[:2], depthwise.shape[2], depthwise.shape[3]
        dk = lambda a, c, j: depthwise[a][c, j]  # noqa: E731
        pw = pointwise[0, 0]
        xc = np.moveaxis(x, -1, 1)
    s = tup(subsample, 2)
    padding = [correlation.pads(n, k, si, 1, border_mode, "tensorflow") for n, k, si in zip(xc.shape[2:], ksize, s)]

    def taps(a):
        m = np.zeros((cin, cin * mult))
        for c in range(cin):
            for j in range(mult):
                m[c, c * mult + j] = dk(a, c, j)
        return m
    z = correlation.correlate(xc, taps, cin, cin * mult, ksize, s, (1, 1), padding)
    y = np.einsum("bq...,qo->bo...", z, pw)
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y if dim_ordering == "th" else np.moveaxis(y, 1, -1)


class Separable(Family):
    name = "separable"
    stored = ("depthwise_kernel", "pointwise_kernel", "b")
    required = 2
    new = ("depthwise_kernel", "pointwise_kernel", "bias")
    bias_role = "b"

    def plan(self, p: LayerPlan, ctx: Context) -> None:
        filters = bias_filters(p, (p.keras2_config or {}).get("filters"))
        ks, cin = kernel_size(p, 2), channels_in(p)
        shapes = [w.shape for w in p.weights]
        decide_layout(p, ctx, layouts_matching(shapes, filters, cin, ks),
                      f"filters={filters}, kernel_size={ks}, input channels={cin}")
        p.backend = ctx.settings.backend
        if ctx.settings.backend == "theano":
            p.notes.append("SeparableConvolution2D existed only on TensorFlow: not flipped")

    def transform(self, p: LayerPlan) -> str:
        return "transpose th->(2,3,1,0)" if p.layout == "th" else "copy"

    def convert(self, p, arrays):
        out = [("depthwise_kernel", depthwise_kernel(arrays["depthwise_kernel"], p.layout)),
               ("pointwise_kernel", pointwise_kernel(arrays["pointwise_kernel"], p.layout))]
        return out + ([("bias", arrays["b"])] if "b" in arrays else [])

    def check(self, p, old, new, rng):
        dw = old["depthwise_kernel"]
        first = p.layout == "th"
        k1, k2 = p.keras1_config or {}, p.keras2_config or {}
        known = p.input_shape if p.input_shape and None not in p.input_shape else None
        ks = dw.shape[2:] if first else dw.shape[:2]
        n = ((known[1:] if first else known[:-1]) if known else (None, None))
        cin = dw.shape[1] if first else dw.shape[2]
        # small spatial lengths that pad as the model's do and pin every tap (conv.proof_extent)
        spatial = tuple(proof_extent(ni, ki, si) for ni, ki, si in zip(n, ks, tup(k1.get("subsample"), 2)))
        x = rng.standard_normal((2,) + ((cin,) + spatial if first else spatial + (cin,)))
        want = reference(x, dw, old["pointwise_kernel"], old.get("b"), p.layout, k1.get("subsample"),
                         k1.get("border_mode", "valid"))
        tf = tensorflow()
        s = tup(k2.get("strides"), 2)
        z = tf.nn.depthwise_conv2d(_cl(x, first), new["depthwise_kernel"], (1,) + s + (1,),
                                   k2.get("padding", "valid").upper())
        got = tf.nn.conv2d(z, new["pointwise_kernel"], 1, "VALID").numpy()
        if "bias" in new:
            got = got + new["bias"]
        return _cl(want, first), got, []
