"""Numerical proof of a conversion: the Keras 1 semantics (numpy, original arrays) against TensorFlow's
ops (converted arrays), per layer, on random inputs. TensorFlow is imported here and only here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kmigrate.weights import reference as ref
from kmigrate.weights.plan import LayerPlan, output_shape


@dataclass(frozen=True)
class Tolerance:
    """A layer passes when max|ref - tf| <= atol + rtol * max|ref| (both sides computed in float64)."""

    rtol: float = 1e-6
    atol: float = 1e-9


TOLERANCE = Tolerance()
BATCH = 2


@dataclass
class LayerCheck:
    layer: str
    max_abs: float
    max_rel: float
    ok: bool
    notes: list[str] = field(default_factory=list)
    message: str | None = None


def tensorflow_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


def _tf():
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def _tup(v: Any, n: int) -> tuple[int, ...]:
    if v is None:
        return (1,) * n
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    return tuple(int(x) for x in v)


def _cl(x: np.ndarray, first: bool) -> np.ndarray:
    """Channels-last view of a channels-first batch (test harness, not a weight transform)."""
    return np.moveaxis(x, 1, -1) if first else x


def _compare(layer: str, want: np.ndarray, got: np.ndarray, tol: Tolerance = TOLERANCE) -> LayerCheck:
    if want.shape != got.shape:
        return LayerCheck(layer, float("inf"), float("inf"), False,
                          message=f"output shape {got.shape} differs from Keras 1's {want.shape}")
    err = float(np.max(np.abs(want - got))) if want.size else 0.0
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    rel = err / scale if scale else err
    ok = err <= tol.atol + tol.rtol * scale
    msg = None if ok else (f"converted weights do not reproduce Keras 1: max abs error {err:.3g} "
                           f"(relative {rel:.3g}, tolerance rtol={tol.rtol:g})")
    return LayerCheck(layer, err, rel, ok, message=msg)


def _input_shape(p: LayerPlan, arrays: dict[str, np.ndarray]) -> tuple[int, ...]:
    """The Keras 1 layout input (no batch) for this layer: the model's when known, else a small one."""
    known = p.input_shape if p.input_shape and None not in p.input_shape else None
    W = arrays.get("W", arrays.get("depthwise_kernel"))
    if p.kind == "dense":
        if p.dense_permute:
            return tuple(p.dense_permute[0])
        return (W.shape[0],)
    if p.kind == "batchnorm":
        if known:
            return tuple(known)
        return (arrays["gamma"].shape[0],)
    if known:
        return tuple(known)
    if p.kind == "conv1d":
        k, cin = (W.shape[0], W.shape[2]) if p.layout == "tf" else (W.shape[2], W.shape[1])
        return (2 * k + 3, cin)
    nsp = W.ndim - 2
    if p.layout == "th":
        ks, cin = W.shape[2:], W.shape[1]
        return (cin,) + tuple(2 * k + 3 for k in ks)
    ks = W.shape[:nsp]
    cin = W.shape[2] if p.kind in ("deconv2d", "separable") else W.shape[nsp]
    return tuple(2 * k + 3 for k in ks) + (cin,)


def check_layer(p: LayerPlan, old: dict[str, np.ndarray], new: dict[str, np.ndarray], seed: int = 0,
                tol: Tolerance = TOLERANCE) -> LayerCheck:
    """Run `old` (Keras 1 arrays by suffix) through the reference and `new` (Keras 3 arrays by name)
    through TensorFlow; compare."""
    rng = np.random.default_rng(seed)
    old = {k: np.asarray(v, dtype=np.float64) for k, v in old.items()}
    new = {k: np.asarray(v, dtype=np.float64) for k, v in new.items()}
    x = rng.standard_normal((BATCH,) + _input_shape(p, old))
    k1 = p.keras1_config or {}
    k2 = p.keras2_config or {}
    backend = p.backend or "tensorflow"
    notes: list[str] = []
    if p.kind == "dense":
        want = ref.dense(x, old["W"], old.get("b"))
        xt = x
        if p.dense_permute:
            _, src, dst = p.dense_permute
            xt = np.moveaxis(x, 1, -1) if src == "th" else np.moveaxis(x, -1, 1)
        tf = _tf()
        got = tf.matmul(xt.reshape(BATCH, -1), new["kernel"]).numpy()
        if "bias" in new:
            got = got + new["bias"]
        return _compare(p.old_name, want, got, tol)
    if p.kind == "batchnorm":
        axis = k1.get("axis", -1)
        eps = k1.get("epsilon", 1e-3)
        want = ref.batchnorm(x, old["gamma"], old["beta"], old["running_mean"], old["running_std"], axis, eps)
        tf = _tf()
        shape = [1] * x.ndim
        shape[axis] = -1
        r = lambda v: v.reshape(shape)  # noqa: E731
        got = tf.nn.batch_normalization(x, r(new["moving_mean"]), r(new["moving_variance"]), r(new["beta"]),
                                        r(new["gamma"]), k2.get("epsilon", eps)).numpy()
        return _compare(p.old_name, want, got, tol)
    if p.kind == "conv1d":
        want = ref.conv1d(x, old["W"], old.get("b"), backend, keras10=p.layout == "th",
                          subsample_length=k1.get("subsample_length", 1),
                          border_mode=k1.get("border_mode", "valid"), atrous_rate=k1.get("atrous_rate", 1))
        got, notes = _tf_conv(p, x, new, k2, first=False, nsp=1, backend=backend)
    elif p.kind == "conv":
        first = p.layout == "th"
        want = ref.conv(x, old["W"], old.get("b"), p.layout, backend, k1.get("subsample"),
                        k1.get("border_mode", "valid"), k1.get("atrous_rate"))
        got, notes = _tf_conv(p, _cl(x, first), new, k2, first=first, nsp=old["W"].ndim - 2, backend=backend)
        want = _cl(want, first)
    elif p.kind == "deconv2d":
        first = p.layout == "th"
        want = ref.deconv2d(x, old["W"], old.get("b"), p.layout, backend, k1.get("output_shape"),
                            k1.get("subsample"), k1.get("border_mode", "valid"))
        got, notes = _tf_deconv(p, _cl(x, first), new, k2, first, backend)
        want = _cl(want, first)
    elif p.kind == "separable":
        first = p.layout == "th"
        want = ref.separable2d(x, old["depthwise_kernel"], old["pointwise_kernel"], old.get("b"), p.layout,
                               k1.get("subsample"), k1.get("border_mode", "valid"))
        tf = _tf()
        s = _tup(k2.get("strides"), 2)
        z = tf.nn.depthwise_conv2d(_cl(x, first), new["depthwise_kernel"], (1,) + s + (1,),
                                   k2.get("padding", "valid").upper())
        got = tf.nn.conv2d(z, new["pointwise_kernel"], 1, "VALID").numpy()
        if "bias" in new:
            got = got + new["bias"]
        want = _cl(want, first)
    else:
        raise ValueError(f"no check for {p.kind}")
    check = _compare(p.old_name, want, got, tol)
    check.notes.extend(notes)
    return check


def _theano_same_mismatch(n, ks, s, d) -> list[int]:
    """Dims where Theano's 'half' padding (eff//2 before) differs from TensorFlow's 'SAME' (total//2)."""
    bad = []
    for i, (ni, k, si, di) in enumerate(zip(n, ks, s, d)):
        eff = di * (k - 1) + 1
        out = -(-ni // si)
        if max((out - 1) * si + eff - ni, 0) // 2 != eff // 2:
            bad.append(i)
    return bad


def _tf_conv(p, xcl, new, k2, first, nsp, backend):
    tf = _tf()
    kernel = new["kernel"]
    ks = kernel.shape[:nsp]
    s, d = _tup(k2.get("strides"), nsp), _tup(k2.get("dilation_rate"), nsp)
    padding = k2.get("padding", "valid")
    n = xcl.shape[1:-1]
    notes: list[str] = []

    def run(x, pad):
        y = tf.nn.convolution(x, kernel, strides=s, padding=pad, dilations=d).numpy()
        return y + new["bias"] if "bias" in new else y

    if p.full_padding:  # Keras 1 'full' = pad eff-1 on each side, then 'valid'
        full = [di * (k - 1) for k, di in zip(ks, d)]
        return run(np.pad(xcl, [(0, 0)] + [(f, f) for f in full] + [(0, 0)]), "VALID"), notes
    if padding == "same" and backend == "theano" and _theano_same_mismatch(n, ks, s, d):
        # Theano padded eff//2 on both sides and Keras 1 cut the end; Keras 3's 'same' cannot say that
        half = [(di * (k - 1) + 1) // 2 for k, di in zip(ks, d)]
        xp = np.pad(xcl, [(0, 0)] + [(h, h) for h in half] + [(0, 0)])
        y = run(xp, "VALID")
        outs = [-(-ni // si) for ni, si in zip(n, s)]
        crops = [yi - o for yi, o in zip(y.shape[1:-1], outs)]
        y = y[(slice(None),) + tuple(slice(0, o) for o in outs)]
        same = run(xcl, "SAME")
        cls = {1: "1D", 2: "2D", 3: "3D"}[nsp]
        pad_s = _pairs([(h, h) for h in half])
        crop_s = _pairs([(0, c) for c in crops])
        construction = f"ZeroPadding{cls}({pad_s}) + {p.target_class or 'Conv' + cls}(..., padding='valid')"
        if any(crops):
            construction += f" + Cropping{cls}({crop_s})"
        notes.append(f"Theano 'same' padding differs from Keras 3 padding='same' here (kernel {tuple(ks)}, "
                     f"strides {s}, input {tuple(n)}): {_err_text(y, same)}; the weights were verified with the "
                     f"exact construction: {construction}")
        return y, notes
    return run(xcl, padding.upper()), notes


def _pairs(pairs):
    if len(pairs) == 1:
        return repr(tuple(pairs[0]))
    return repr(tuple(tuple(pr) for pr in pairs))


def _err_text(exact, same) -> str:
    if exact.shape != same.shape:
        return f"padding='same' gives shape {same.shape[1:]} instead of {exact.shape[1:]}"
    return f"with padding='same' the output is off by up to {float(np.max(np.abs(exact - same))):.3g}"


def _tf_deconv(p, xcl, new, k2, first, backend):
    tf = _tf()
    kernel = new["kernel"]
    ks = kernel.shape[:2]
    s = _tup(k2.get("strides"), 2)
    padding = k2.get("padding", "valid")
    n = xcl.shape[1:3]
    cfg = dict(k2)
    cfg.setdefault("kernel_size", ks)
    cfg.setdefault("filters", kernel.shape[2])
    cfg["data_format"] = "channels_last"
    out_shape = output_shape("Conv2DTranspose", cfg, tuple(n) + (kernel.shape[3],))
    outs = out_shape[:2]
    notes: list[str] = []

    def run(pad, size):
        y = tf.nn.conv2d_transpose(xcl, kernel, (BATCH,) + tuple(size) + (kernel.shape[2],), (1,) + s + (1,),
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
                         f"(kernel {tuple(ks)}, strides {s}): {_err_text(y, same)}; the weights were verified "
                         f"with the exact construction: Conv2DTranspose(..., padding='valid') + "
                         f"Cropping2D({_pairs(crops)})")
            return y, notes
    return run(padding.upper(), outs), notes
