"""Deconvolution2D kernels (Keras 3 Conv2DTranspose): their own permutation, and the Theano alignment."""

from __future__ import annotations

import itertools

import numpy as np

from kmigrate.weights.families import correlation
from kmigrate.weights.families.base import (Family, bias_filters, check_layout, check_ndim, decide_flip,
                                            decide_layout, flip_spatial, tensorflow, tup)
from kmigrate.weights.families.conv import _cl, channels_in, error_text, kernel_size, layouts_matching, pairs_text
from kmigrate.weights.layer import Context, LayerPlan


def deconv2d_kernel(w: np.ndarray, layout: str) -> np.ndarray:
    """Deconvolution2D -> Conv2DTranspose kernel: Keras 2/3 store the transposed convolution's kernel
    as (r, c, filters, input_channels).

    Layout decides it.
    # old th: (filters, in, r, c)   filters = output channels, in = input channels
    # old tf: (r, c, in, filters)
    # new:    (r, c, filters, in)
    """
    check_layout(layout)
    check_ndim(w, 4, "Deconvolution2D kernel")
    if layout == "th":
        return np.transpose(w, (2, 3, 0, 1))
    return np.transpose(w, (0, 1, 3, 2))


def reference(x, W, b, dim_ordering, backend, output_shape=None, subsample=None, border_mode="valid"):
    """Keras 1 Deconvolution2D: the adjoint of the convolution its kernel defines (Theano: of a true
    convolution). W is (out, in, r, c) for th and (r, c, in, out) for tf, out being the deconvolution's
    output channels. `output_shape` is Keras 1's argument (with batch axis) or None for the natural size.
    """
    s = tup(subsample, 2)
    if dim_ordering == "th":
        cout, ksize = W.shape[0], W.shape[2:]
        xc = x

        def tap(a):  # (in, out)
            return W[(slice(None), slice(None)) + correlation.true_offset(a, ksize, backend)].T
    else:
        ksize, cout = W.shape[:2], W.shape[3]
        xc = np.moveaxis(x, -1, 1)

        def tap(a):
            return W[correlation.true_offset(a, ksize, backend)]
    n = xc.shape[2:]
    if output_shape is not None:
        out = tuple(output_shape[2:]) if dim_ordering == "th" else tuple(output_shape[1:3])
    else:
        out = tuple((ni - 1) * si + k if border_mode == "valid" else ni * si for ni, si, k in zip(n, s, ksize))
    before = []
    for o, ni, k, si in zip(out, n, ksize, s):
        if border_mode == "valid":
            before.append(0)
        elif backend == "theano":
            before.append(k // 2)
        else:  # TF 'SAME' of the forward convolution over the output size
            before.append(max((ni - 1) * si + k - o, 0) // 2)
    full = tuple((ni - 1) * si + k for ni, si, k in zip(n, s, ksize))
    big = np.zeros((x.shape[0], cout) + tuple(max(f, bf + o) for f, bf, o in zip(full, before, out)))
    for a in itertools.product(*[range(k) for k in ksize]):
        contrib = np.einsum("bc...,co->bo...", xc, tap(a))
        sl = tuple(slice(ai, ai + (ni - 1) * si + 1, si) for ai, ni, si in zip(a, n, s))
        big[(slice(None), slice(None)) + sl] += contrib
    y = big[(slice(None), slice(None)) + tuple(slice(bf, bf + o) for bf, o in zip(before, out))]
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y if dim_ordering == "th" else np.moveaxis(y, 1, -1)


class ConvTranspose(Family):
    name = "conv_transpose"
    stored = ("W", "b")
    new = ("kernel", "bias")
    bias_role = "b"
    flips = True

    def plan(self, p: LayerPlan, ctx: Context) -> None:
        shape = p.weights[0].shape
        filters = bias_filters(p, (p.keras2_config or {}).get("filters"))
        ks, cin = kernel_size(p, 2), channels_in(p)
        decide_layout(p, ctx, layouts_matching(shape, filters, cin, ks),
                      f"filters={filters}, kernel_size={ks}, input channels={cin}")
        if p.layout is not None:
            decide_flip(p, ctx, shape[2:] if p.layout == "th" else shape[:-2])

    def transform(self, p: LayerPlan) -> str:
        parts = ["transpose (2,3,0,1)" if p.layout == "th" else "transpose (0,1,3,2)"]
        if p.flip:
            parts.append("flip spatial (Theano)")
        return ", ".join(parts)

    def convert(self, p, arrays):
        k = deconv2d_kernel(arrays["W"], p.layout)
        if p.flip:
            k = flip_spatial(k, 2)
        return [("kernel", k)] + ([("bias", arrays["b"])] if "b" in arrays else [])

    def check(self, p, old, new, rng):
        W = old["W"]
        first = p.layout == "th"
        k1 = p.keras1_config or {}
        backend = p.backend or "tensorflow"
        # the input has W's `in` channels: th (out, in, r, c) -> W.shape[1]; tf (r, c, in, out) -> W.shape[2]
        if p.input_shape and None not in p.input_shape:
            shape = tuple(p.input_shape)
        elif first:
            shape = (W.shape[1],) + tuple(2 * k + 3 for k in W.shape[2:])
        else:
            shape = tuple(2 * k + 3 for k in W.shape[:2]) + (W.shape[2],)
        x = rng.standard_normal((2,) + shape)
        want = reference(x, W, old.get("b"), p.layout, backend, k1.get("output_shape"), k1.get("subsample"),
                         k1.get("border_mode", "valid"))
        got, notes = _tf_deconv(p, _cl(x, first), new, p.keras2_config or {}, backend)
        return _cl(want, first), got, notes


def _tf_deconv(p, xcl, new, k2, backend):
    from kmigrate.weights.shapes import output_shape

    tf = tensorflow()
    kernel = new["kernel"]
    ks = kernel.shape[:2]
    s = tup(k2.get("strides"), 2)
    padding = k2.get("padding", "valid")
    n = xcl.shape[1:3]
    cfg = dict(k2)
    cfg.setdefault("kernel_size", ks)
    cfg.setdefault("filters", kernel.shape[2])
    cfg["data_format"] = "channels_last"
    outs = output_shape("Conv2DTranspose", cfg, tuple(n) + (kernel.shape[3],))[:2]
    batch = xcl.shape[0]
    notes: list[str] = []

    def run(pad, size):
        y = tf.nn.conv2d_transpose(xcl, kernel, (batch,) + tuple(size) + (kernel.shape[2],), (1,) + s + (1,),
                                   pad).numpy()
        return y + new["bias"] if "bias" in new else y

    if padding == "same" and backend == "theano":
        tf_before = [max((ni - 1) * si + k - o, 0) // 2 for ni, si, k, o in zip(n, s, ks, outs)]
        th_before = [k // 2 for k in ks]
        if tf_before != th_before:
            full = [(ni - 1) * si + k for ni, si, k in zip(n, s, ks)]
            y = run("VALID", full)
            y = y[(slice(None),) + tuple(slice(b, b + o) for b, o in zip(th_before, outs))]
            same = run("SAME", outs)
            crops = [(b, f - b - o) for b, f, o in zip(th_before, full, outs)]
            notes.append(f"Theano 'same' deconvolution alignment differs from Keras 3 padding='same' here "
                         f"(kernel {tuple(ks)}, strides {s}): {error_text(y, same)}; the weights were verified "
                         f"with the exact construction: Conv2DTranspose(..., padding='valid') + "
                         f"Cropping2D({pairs_text(crops)})")
            return y, notes
    return run(padding.upper(), outs), notes
