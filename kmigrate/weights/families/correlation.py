"""Numpy statements of Keras 1's convolution arithmetic, shared by the convolution families' references.

They read Keras 1 arrays the way its backends used them, directly by index (Theano true convolution,
TensorFlow cross-correlation; Theano 'half' padding vs TensorFlow 'SAME'); they never call a transform.
"""

from __future__ import annotations

import itertools

import numpy as np


def pads(n: int, k: int, s: int, d: int, mode: str, backend: str) -> tuple[int, int, int]:
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


def correlate(x: np.ndarray, taps, cin: int, cout: int, ksize, strides, dilation, padding) -> np.ndarray:
    """Channels-first cross-correlation: y[b, o, p] = sum_{c, a} x[b, c, p*s + a*d - pad] * taps(a)[c, o].

    `taps(a)` returns the (cin, cout) matrix that multiplies input offset `a` (a tuple of ints);
    `padding` is one `pads(...)` triple per spatial axis.
    """
    nsp = len(ksize)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pb, pa) for pb, pa, _ in padding])
    outs = [o for _, _, o in padding]
    y = np.zeros((x.shape[0], cout) + tuple(outs))
    for a in itertools.product(*[range(k) for k in ksize]):
        sl = tuple(slice(ai * di, ai * di + (o - 1) * si + 1, si)
                   for ai, di, o, si in zip(a, dilation, outs, strides))
        patch = xp[(slice(None), slice(None)) + sl]
        # sum over c of patch[b, c, ...] * taps[c, o] (tensordot: BLAS, where einsum loops in C)
        y += np.moveaxis(np.tensordot(patch, taps(a), axes=([1], [0])), -1, 1)
    assert y.shape[2:] == tuple(outs) and nsp == len(outs)
    return y


def true_offset(a, ksize, backend):
    """Theano ran true convolution: input offset a meets kernel index k-1-a."""
    return tuple(k - 1 - ai for ai, k in zip(a, ksize)) if backend == "theano" else a


def conv(x, W, b, dim_ordering, backend, subsample=None, border_mode="valid", atrous_rate=None):
    """Keras 1 Convolution2D / AtrousConvolution2D / Convolution3D, in and out in `dim_ordering`.

    th: W (out, in, k...), x (batch, in, n...); tf: W (k..., in, out), x (batch, n..., in).
    """
    from kmigrate.weights.families.base import tup

    nsp = W.ndim - 2
    if dim_ordering == "th":
        cout, cin, ksize = W.shape[0], W.shape[1], W.shape[2:]

        def taps(a):  # W[out, in, k...]
            return W[(slice(None), slice(None)) + true_offset(a, ksize, backend)].T
        xc = x
    else:
        ksize, cin, cout = W.shape[:nsp], W.shape[nsp], W.shape[nsp + 1]

        def taps(a):  # W[k..., in, out]
            return W[true_offset(a, ksize, backend)]
        xc = np.moveaxis(x, -1, 1)
    s, d = tup(subsample, nsp), tup(atrous_rate, nsp)
    padding = [pads(n, k, si, di, border_mode, backend) for n, k, si, di in zip(xc.shape[2:], ksize, s, d)]
    y = correlate(xc, taps, cin, cout, ksize, s, d, padding)
    if b is not None:
        y += b.reshape((1, -1) + (1,) * nsp)
    return y if dim_ordering == "th" else np.moveaxis(y, 1, -1)
