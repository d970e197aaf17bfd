"""An independent numpy statement of what Keras 1 computed with the ORIGINAL stored arrays.

It never calls the layout functions: it reads each Keras 1 array the way the Keras 1 backend used it
(th (out, in, k...) or tf (k..., in, out); Theano true convolution, TensorFlow cross-correlation;
Theano 'half' padding vs TensorFlow 'SAME'), directly by index. Inputs and outputs are in the Keras 1
layout, with a batch axis, float64.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np


def _tup(v: Any, n: int) -> tuple[int, ...]:
    if v is None:
        return (1,) * n
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    return tuple(int(x) for x in v)


def _pads(n: int, k: int, s: int, d: int, mode: str, backend: str) -> tuple[int, int, int]:
    """(pad before, pad after, output length) of one spatial axis as Keras 1 computed it."""
    eff = d * (k - 1) + 1
    if mode == "valid":
        return 0, 0, (n - eff) // s + 1
    if mode == "full":  # Theano only: every partial overlap
        return eff - 1, eff - 1, (n + eff - 2) // s + 1
    if mode != "same":
        raise ValueError(f"border_mode {mode!r}")
    out = -(-n // s)
    if backend == "theano":  # 'half': eff//2 on both sides; Keras 1 then cut the output to ceil(n/s)
        return eff // 2, eff // 2, out
    total = max((out - 1) * s + eff - n, 0)  # TensorFlow 'SAME': the odd pixel goes after
    return total // 2, total - total // 2, out


def correlate(x: np.ndarray, taps, cin: int, cout: int, ksize, strides, dilation, pads) -> np.ndarray:
    """Channels-first cross-correlation: y[b, o, p] = sum_{c, a} x[b, c, p*s + a*d - pad] * taps(a)[c, o].

    `taps(a)` returns the (cin, cout) matrix that multiplies input offset `a` (a tuple of ints).
    """
    nsp = len(ksize)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pb, pa) for pb, pa, _ in pads])
    outs = [o for _, _, o in pads]
    y = np.zeros((x.shape[0], cout) + tuple(outs))
    for a in itertools.product(*[range(k) for k in ksize]):
        sl = tuple(slice(ai * di, ai * di + (o - 1) * si + 1, si)
                   for ai, di, o, si in zip(a, dilation, outs, strides))
        patch = xp[(slice(None), slice(None)) + sl]
        y += np.einsum("bc...,co->bo...", patch, taps(a))
    assert y.shape[2:] == tuple(outs) and nsp == len(outs)
    return y


def _true(a, ksize, backend):
    """Theano ran true convolution: offset a meets kernel index k-1-a."""
    return tuple(k - 1 - ai for ai, k in zip(a, ksize)) if backend == "theano" else a


def conv(x, W, b, dim_ordering, backend, subsample=None, border_mode="valid", atrous_rate=None):
    """Convolution2D / AtrousConvolution2D / Convolution3D (Keras 1), in and out in `dim_ordering`."""
    nsp = W.ndim - 2
    if dim_ordering == "th":
        cout, cin, ksize = W.shape[0], W.shape[1], W.shape[2:]

        def taps(a):  # W[out, in, k...]
            return W[(slice(None), slice(None)) + _true(a, ksize, backend)].T
        xc = x
    else:
        ksize, cin, cout = W.shape[:nsp], W.shape[nsp], W.shape[nsp + 1]

        def taps(a):  # W[k..., in, out]
            return W[_true(a, ksize, backend)]
        xc = np.moveaxis(x, -1, 1)
    s, d = _tup(subsample, nsp), _tup(atrous_rate, nsp)
    pads = [_pads(n, k, si, di, border_mode, backend) for n, k, si, di in zip(xc.shape[2:], ksize, s, d)]
    y = correlate(xc, taps, cin, cout, ksize, s, d, pads)
    if b is not None:
        y += b.reshape((1, -1) + (1,) * nsp)
    return y if dim_ordering == "th" else np.moveaxis(y, 1, -1)


def conv1d(x, W, b, backend, keras10=False, subsample_length=1, border_mode="valid", atrous_rate=1):
    """Convolution1D / AtrousConvolution1D, x (batch, steps, dim).

    Keras 1.1+ stored W (length, 1, in, out) and ran a tf-ordered 2D convolution on (steps, 1, dim);
    Keras 1.0.x stored W (out, in, length, 1) and ran a th-ordered one on (dim, steps, 1).
    """
    x4 = x[:, :, None, :]
    rate = (atrous_rate or 1, atrous_rate or 1)
    if not keras10:
        y = conv(x4, W, b, "tf", backend, (subsample_length, 1), border_mode, rate)
        return y[:, :, 0, :]
    y = conv(np.moveaxis(x4, -1, 1), W, b, "th", backend, (subsample_length, 1), border_mode, rate)
    return np.moveaxis(y, 1, -1)[:, :, 0, :]


def deconv2d(x, W, b, dim_ordering, backend, output_shape=None, subsample=None, border_mode="valid"):
    """Deconvolution2D: the adjoint of the convolution its kernel defines (Theano: of a true convolution).

    W is (out, in, r, c) for th and (r, c, in, out) for tf, out being the deconvolution's output channels.
    `output_shape` is Keras 1's argument (with batch axis) or None for the natural size.
    """
    s = _tup(subsample, 2)
    if dim_ordering == "th":
        cout, cin, ksize = W.shape[0], W.shape[1], W.shape[2:]
        xc = x

        def tap(a):  # (in, out)
            return W[(slice(None), slice(None)) + _true(a, ksize, backend)].T
    else:
        ksize, cin, cout = W.shape[:2], W.shape[2], W.shape[3]
        xc = np.moveaxis(x, -1, 1)

        def tap(a):
            return W[_true(a, ksize, backend)]
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


def separable2d(x, depthwise, pointwise, b, dim_ordering, subsample=None, border_mode="valid"):
    """SeparableConvolution2D (TensorFlow only, so cross-correlation and 'SAME').

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
    s = _tup(subsample, 2)
    pads = [_pads(n, k, si, 1, border_mode, "tensorflow") for n, k, si in zip(xc.shape[2:], ksize, s)]

    def taps(a):
        m = np.zeros((cin, cin * mult))
        for c in range(cin):
            for j in range(mult):
                m[c, c * mult + j] = dk(a, c, j)
        return m
    z = correlate(xc, taps, cin, cin * mult, ksize, s, (1, 1), pads)
    y = np.einsum("bq...,qo->bo...", z, pw)
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y if dim_ordering == "th" else np.moveaxis(y, 1, -1)


def batchnorm(x, gamma, beta, mean, running_std, axis=-1, epsilon=1e-3):
    """BatchNormalization mode 0 at inference: `running_std` is used as the variance (as Keras 1 did)."""
    shape = [1] * x.ndim
    shape[axis] = -1
    r = lambda v: v.reshape(shape)  # noqa: E731
    return (x - r(mean)) / np.sqrt(r(running_std) + epsilon) * r(gamma) + r(beta)


def dense(x, W, b):
    """Dense on a batch of feature maps in Keras 1 layout: flattened in C order first (as Flatten did)."""
    y = x.reshape(x.shape[0], -1) @ W
    return y + b if b is not None else y
