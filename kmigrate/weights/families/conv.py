"""Convolution2D, AtrousConvolution2D and Convolution3D kernels (Keras 3 Conv2D / Conv3D)."""

from __future__ import annotations

import numpy as np

from kmigrate.weights.families import correlation
from kmigrate.weights.families.base import (LAYOUTS, Family, bias_filters, check_layout, decide_flip, decide_layout,
                                            fits, flip_spatial, tensorflow, tup)
from kmigrate.weights.layer import Context, LayerPlan


def conv_kernel(w: np.ndarray, layout: str) -> np.ndarray:
    """Convolution2D / AtrousConvolution2D / Convolution3D kernel (2 or 3 spatial axes).

    Layout decides it; Keras 2/3 kernels do not depend on data_format.
    # old th: (filters, in, k1, ..., kn)
    # old tf: (k1, ..., kn, in, filters)
    # new:    (k1, ..., kn, in, filters)
    """
    check_layout(layout)
    if w.ndim not in (4, 5):
        raise ValueError(f"2D/3D convolution kernel must be 4-D or 5-D, got shape {tuple(w.shape)}")
    if layout == "tf":
        return w
    spatial = tuple(range(2, w.ndim))
    return np.transpose(w, spatial + (1, 0))


def layouts_matching(shape: tuple, filters: int | None, in_channels: int | None = None,
                     kernel_size: tuple | None = None) -> list[str]:
    """The Keras 1 layouts a kernel shape is consistent with; both = the shape alone cannot decide."""
    k = tuple(kernel_size) if kernel_size is not None else (None,) * (len(shape) - 2)
    want = {"th": (filters, in_channels) + k, "tf": k + (in_channels, filters)}
    return [layout for layout in LAYOUTS if fits(shape, want[layout])]


def kernel_size(p: LayerPlan, rank: int) -> tuple[int, ...] | None:
    cfg = p.keras2_config
    if not cfg or "kernel_size" not in cfg:
        return None
    return tup(cfg["kernel_size"], rank)


def channels_in(p: LayerPlan) -> int | None:
    """Input channels from the model's shapes, when the layer's data format says where they are."""
    s = p.input_shape
    fmt = (p.keras2_config or {}).get("data_format")
    if not s or fmt not in ("channels_first", "channels_last"):
        return None
    return s[0] if fmt == "channels_first" else s[-1]


class Conv(Family):
    name = "conv"
    stored = ("W", "b")
    new = ("kernel", "bias")
    bias_role = "b"
    flips = True

    def plan(self, p: LayerPlan, ctx: Context) -> None:
        shape = p.weights[0].shape
        filters = bias_filters(p, (p.keras2_config or {}).get("filters"))
        ks, cin = kernel_size(p, len(shape) - 2), channels_in(p)
        decide_layout(p, ctx, layouts_matching(shape, filters, cin, ks),
                      f"filters={filters}, kernel_size={ks}, input channels={cin}")
        if p.layout is not None:
            decide_flip(p, ctx, shape[2:] if p.layout == "th" else shape[:-2])

    def transform(self, p: LayerPlan) -> str:
        parts = []
        if p.layout == "th":
            parts.append("transpose th->" + ("(2,3,4,1,0)" if len(p.weights[0].shape) == 5 else "(2,3,1,0)"))
        if p.flip:
            parts.append("flip spatial (Theano)")
        return ", ".join(parts) or "copy"

    def convert(self, p, arrays):
        k = conv_kernel(arrays["W"], p.layout)
        if p.flip:
            k = flip_spatial(k, k.ndim - 2)
        return [("kernel", k)] + ([("bias", arrays["b"])] if "b" in arrays else [])

    def check(self, p, old, new, rng):
        W = old["W"]
        first = p.layout == "th"
        nsp = W.ndim - 2
        k1, k2 = p.keras1_config or {}, p.keras2_config or {}
        x = rng.standard_normal((2,) + sample_shape(p, W))
        backend = p.backend or "tensorflow"
        want = correlation.conv(x, W, old.get("b"), p.layout, backend, k1.get("subsample"),
                                k1.get("border_mode", "valid"), k1.get("atrous_rate"))
        got, notes = tf_conv(p, _cl(x, first), new, k2, nsp, backend, model_input(p, first))
        return _cl(want, first), got, notes


def proof_extent(n: int | None, k: int, s: int = 1, d: int = 1) -> int:
    """A spatial length for the proof's input: small, yet every kernel tap meets several output positions
    and both sides pad exactly as at the model's length `n` (past the dilated kernel, Theano's and
    TensorFlow's padding and Keras 1's cut depend on n only modulo the stride). Unknown `n`: 2k + 3."""
    eff = d * (k - 1) + 1
    if n is None:
        return 2 * eff + 3
    least = eff + 2 * s
    return n if n <= least else least + (n - least) % s


def sample_shape(p: LayerPlan, W: np.ndarray) -> tuple[int, ...]:
    """The Keras 1 layout input (no batch): the model's channels, spatial lengths cut by `proof_extent`
    (a full-size image costs the numpy reference seconds and pins no more weights)."""
    first = p.layout == "th"
    nsp = W.ndim - 2
    k1 = p.keras1_config or {}
    ks = W.shape[2:] if first else W.shape[:-2]
    s, d = tup(k1.get("subsample"), nsp), tup(k1.get("atrous_rate"), nsp)
    known = p.input_shape if p.input_shape and None not in p.input_shape else None
    n = (known[1:] if first else known[:-1]) if known else (None,) * nsp
    cin = (known[0] if first else known[-1]) if known else (W.shape[1] if first else W.shape[-2])
    spatial = tuple(proof_extent(ni, ki, si, di) for ni, ki, si, di in zip(n, ks, s, d))
    return (cin,) + spatial if first else spatial + (cin,)


def _cl(x: np.ndarray, first: bool) -> np.ndarray:
    """Channels-last view of a channels-first batch (test harness, not a weight transform)."""
    return np.moveaxis(x, 1, -1) if first else x


def theano_same_mismatch(n, ks, s, d) -> list[int]:
    """Dims where Theano's 'half' padding (eff//2 before) differs from TensorFlow's 'SAME' (total//2)."""
    bad = []
    for i, (ni, k, si, di) in enumerate(zip(n, ks, s, d)):
        eff = di * (k - 1) + 1
        out = -(-ni // si)
        if max((out - 1) * si + eff - ni, 0) // 2 != eff // 2:
            bad.append(i)
    return bad


def pairs_text(pairs) -> str:
    if len(pairs) == 1:
        return repr(tuple(pairs[0]))
    return repr(tuple(tuple(pr) for pr in pairs))


def error_text(exact, same) -> str:
    if exact.shape != same.shape:
        return f"padding='same' gives shape {same.shape[1:]} instead of {exact.shape[1:]}"
    return f"with padding='same' the output is off by up to {float(np.max(np.abs(exact - same))):.3g}"


def model_input(p: LayerPlan, first: bool) -> tuple | None:
    """The model's spatial input lengths, when known (the padding note names them)."""
    s = p.input_shape
    if not s or None in s:
        return None
    return tuple(s[1:]) if first else tuple(s[:-1])


def tf_conv(p: LayerPlan, xcl, new, k2, nsp: int, backend: str, model_n: tuple | None = None):
    """TensorFlow's convolution with the converted kernel; where Keras 1 Theano padded 'same' its own way,
    the exact Keras 3 construction (ZeroPadding + 'valid' + Cropping), reported in a note. `xcl` may be
    shorter than the model's input `model_n` (`proof_extent`): the padding and the construction are the
    same, the note names the model's lengths."""
    tf = tensorflow()
    kernel = new["kernel"]
    ks = kernel.shape[:nsp]
    s, d = tup(k2.get("strides"), nsp), tup(k2.get("dilation_rate"), nsp)
    padding = k2.get("padding", "valid")
    n = xcl.shape[1:-1]
    notes: list[str] = []

    def run(x, pad):
        y = tf.nn.convolution(x, kernel, strides=s, padding=pad, dilations=d).numpy()
        return y + new["bias"] if "bias" in new else y

    if p.full_padding:  # Keras 1 'full' = pad eff-1 on each side, then 'valid'
        full = [di * (k - 1) for k, di in zip(ks, d)]
        return run(np.pad(xcl, [(0, 0)] + [(f, f) for f in full] + [(0, 0)]), "VALID"), notes
    if padding == "same" and backend == "theano" and theano_same_mismatch(n, ks, s, d):
        # Theano padded eff//2 on both sides and Keras 1 cut the end; Keras 3's 'same' cannot say that
        half = [(di * (k - 1) + 1) // 2 for k, di in zip(ks, d)]
        xp = np.pad(xcl, [(0, 0)] + [(h, h) for h in half] + [(0, 0)])
        y = run(xp, "VALID")
        outs = [-(-ni // si) for ni, si in zip(n, s)]
        crops = [yi - o for yi, o in zip(y.shape[1:-1], outs)]
        y = y[(slice(None),) + tuple(slice(0, o) for o in outs)]
        same = run(xcl, "SAME")
        cls = {1: "1D", 2: "2D", 3: "3D"}[nsp]
        construction = (f"ZeroPadding{cls}({pairs_text([(h, h) for h in half])}) + "
                        f"{p.target_class or 'Conv' + cls}(..., padding='valid')")
        if any(crops):
            construction += f" + Cropping{cls}({pairs_text([(0, c) for c in crops])})"
        notes.append(f"Theano 'same' padding differs from Keras 3 padding='same' here (kernel {tuple(ks)}, "
                     f"strides {s}, input {tuple(model_n or n)}): {error_text(y, same)}; the weights were "
                     f"verified with the exact construction: {construction}")
        return y, notes
    return run(xcl, padding.upper()), notes
