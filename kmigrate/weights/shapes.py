"""Shape arithmetic: the output shape (no batch axis) of a Keras 2 layer config, so each layer knows its input."""

from __future__ import annotations

import math
from typing import Any


def tuple_of(v, n):
    """An int or a sequence as an n-tuple."""
    if isinstance(v, int):
        return (v,) * n
    return tuple(v)


def conv_len(n, k, s, d, padding):
    if n is None:
        return None
    if padding == "same":
        return -(-n // s)
    return (n - (d * (k - 1) + 1)) // s + 1


def deconv_len(n, k, s, padding, op):
    if n is None:
        return None
    if op is None:
        return n * s + max(k - s, 0) if padding == "valid" else n * s
    pad = k // 2 if padding == "same" else 0
    return (n - 1) * s + k - 2 * pad + op


def output_shape(cls: str, cfg: dict[str, Any], shape: tuple | None) -> tuple | None:
    """The Keras 2 layer's output shape (no batch axis) for the layers around convolutions."""
    if shape is None:
        return None
    first = cfg.get("data_format") == "channels_first"
    if cls in ("Conv1D", "Conv2D", "Conv3D", "SeparableConv2D", "Conv2DTranspose",
               "MaxPooling1D", "AveragePooling1D", "MaxPooling2D", "AveragePooling2D",
               "MaxPooling3D", "AveragePooling3D"):
        rank = 1 if cls.endswith("1D") else 3 if cls.endswith("3D") else 2
        if cls.endswith("1D"):
            first = False
        if len(shape) != rank + 1:
            return None
        spatial = shape[1:] if first else shape[:-1]
        ch = shape[0] if first else shape[-1]
        if "Pooling" in cls:
            ps = tuple_of(cfg.get("pool_size", 2), rank)
            st = tuple_of(cfg.get("strides") or ps, rank)
            new = tuple(conv_len(n, k, s, 1, cfg.get("padding", "valid")) for n, k, s in zip(spatial, ps, st))
        else:
            ks = tuple_of(cfg["kernel_size"], rank)
            st = tuple_of(cfg.get("strides", 1), rank)
            dl = tuple_of(cfg.get("dilation_rate", 1), rank)
            pad = cfg.get("padding", "valid")
            if cls == "Conv2DTranspose":
                op = cfg.get("output_padding")
                op = tuple_of(op, rank) if op is not None else (None,) * rank
                new = tuple(deconv_len(n, k, s, pad, o) for n, k, s, o in zip(spatial, ks, st, op))
            else:
                new = tuple(conv_len(n, k, s, d, pad) for n, k, s, d in zip(spatial, ks, st, dl))
            ch = cfg["filters"]
        return ((ch,) + new) if first else (new + (ch,))
    if cls.startswith("Global") and "Pooling" in cls:
        return (shape[0],) if (first and not cls.endswith("1D")) else (shape[-1],)
    if cls == "Flatten":
        return (None if None in shape else math.prod(shape),)
    if cls == "Dense":
        return tuple(shape[:-1]) + (cfg["units"],)
    if cls in ("BatchNormalization", "Dropout", "Activation", "SpatialDropout1D", "SpatialDropout2D",
               "SpatialDropout3D", "GaussianNoise", "GaussianDropout"):
        return shape
    if cls in ("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
               "UpSampling1D", "UpSampling2D", "UpSampling3D"):
        rank = int(cls[-2])
        key = "padding" if "Padding" in cls else "cropping" if "Cropping" in cls else "size"
        v = cfg.get(key, 1 if key == "padding" else 2)
        first = first and rank > 1
        spatial = list(shape[1:] if first else shape[:-1])
        if len(spatial) != rank:
            return None
        if key == "size":
            sizes = tuple_of(v, rank)
            spatial = [None if n is None else n * s for n, s in zip(spatial, sizes)]
        else:
            pairs = [(v, v)] * rank if isinstance(v, int) else (
                [tuple(v)] if rank == 1 else [tuple_of(p, 2) for p in v])
            sign = 1 if key == "padding" else -1
            spatial = [None if n is None else n + sign * (a + b) for n, (a, b) in zip(spatial, pairs)]
        return (shape[0], *spatial) if first else (*spatial, shape[-1])
    if cls in ("SimpleRNN", "GRU", "LSTM") and len(shape) == 2:
        return (shape[0], cfg["units"]) if cfg.get("return_sequences") else (cfg["units"],)
    if cls == "Embedding":
        return tuple(shape) + (cfg["output_dim"],)
    if cls in ("PReLU", "LeakyReLU", "ELU", "ReLU", "Masking"):
        return shape
    return None

