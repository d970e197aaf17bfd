"""Keras 1.2.2's forward pass of a whole saved model, in numpy, on the arrays as the Keras 1 file stores them.

It is the judge of `kmigrate model convert`: it never looks at a Keras 3 layer, a translated config or a
converted array. Each layer is Keras 1.2.2's own statement, read from its Keras 1 config: a weighted layer
calls its weight family's numpy reference (the one the per-layer proof uses: the fact lives there), the
weightless ones are stated here. Theano's 'same' pooling is restated in Keras 1's terms rather than shared
with the construction that reproduces it (kmigrate.model.build), so that the construction is judged.
No TensorFlow, Keras or h5py here.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from kmigrate.model.graph import sequential_input
from kmigrate.weights.families import batchnorm, conv1d, conv_lstm2d, conv_transpose, correlation, dense, embedding
from kmigrate.weights.families import prelu, separable
from kmigrate.weights.families.recurrent import ACTIVATIONS
from kmigrate.weights.layer import LayerPlan


KERAS_EPSILON = 1e-7  # keras.json's default `epsilon`, K.epsilon()


class NoReference(Exception):
    """A layer (or a setting of one) that has no numpy statement here: the model cannot be proven end to end."""

    def __init__(self, message: str, layer: str):
        super().__init__(message)
        self.layer = layer


Call = tuple[str, int]  # (Keras 1 layer, call): a shared layer is called more than once


def forward(layers: list[LayerPlan], calls: list[tuple[str, int, list[Call] | None]], arrays: dict[str, np.ndarray],
            feeds: dict[str, np.ndarray], backend: str | None, model_layout: str | None) -> dict[Call, np.ndarray]:
    """The output of every call of every Keras 1 layer, by (layer, call).

    `layers` is the plan of the file (Keras 1 classes, configs, the weight families' decisions); `calls`
    the model's calls in an order that makes each input first (kmigrate.model.graph: each is (layer,
    call, the (layer, call) of each input, or None for a Sequential's first layer)); `arrays` the stored
    arrays by weight name; `feeds` the model's inputs by Input name (an InputLayer's name, or
    `sequential_input(first layer)`). `backend` is the one that trained the model (None: TensorFlow's
    arithmetic); `model_layout` the ordering of layers whose config lost it."""
    run = _Run(backend or "tensorflow", model_layout or "tf", arrays)
    plans = {p.old_name: p for p in layers}
    values: dict[Call, np.ndarray] = {}
    masks: dict[Call, np.ndarray | None] = {}
    for name, j, refs in calls:
        p = plans[name]
        if p.keras1_class == "InputLayer":
            values[name, j], masks[name, j] = np.asarray(feeds[name]), None
            continue
        if refs is None:
            xs, ms = [np.asarray(feeds[sequential_input(name)])], [None]
        else:
            xs, ms = [values[r] for r in refs], [masks[r] for r in refs]
        values[name, j], masks[name, j] = run.layer(p, p.keras1_class, p.keras1_config or {}, xs, ms)
    return values


class _Run:
    def __init__(self, backend: str, model_layout: str, arrays: dict[str, np.ndarray]):
        self.backend = backend
        self.model_layout = model_layout
        self.arrays = arrays

    def ordering(self, cfg: dict[str, Any]) -> str:
        """A layer's dim_ordering: its config's, else the model's (Keras 1.2.2 did not save it for the
        padding, cropping and upsampling layers; they took keras.json's)."""
        d = cfg.get("dim_ordering")
        return d if d in ("th", "tf") else self.model_layout

    def old(self, p: LayerPlan) -> dict[str, np.ndarray]:
        """The layer's stored arrays by its family's roles."""
        return {role: np.asarray(self.arrays[w.name], np.float64) for w, role in zip(p.weights, p.roles)}

    def layer(self, p: LayerPlan, cls: str | None, cfg: dict[str, Any], xs: list[np.ndarray],
              masks: list[np.ndarray | None]):
        """(output, output mask) of one Keras 1 layer."""
        fn = _LAYERS.get(cls or "")
        if fn is None:
            raise NoReference(f"no numpy statement of Keras 1's {cls or 'unknown class'}", p.old_name)
        if cls == "Merge":
            return fn(self, p, cfg, xs, masks)
        if len(xs) != 1:
            raise NoReference(f"{cls} called on {len(xs)} inputs", p.old_name)
        x = xs[0] if cls in ("Embedding",) else np.asarray(xs[0], np.float64)
        return fn(self, p, cfg, x, masks[0])


# ---------------------------------------------------------------------- helpers

def _act(name: str | None, layer: str) -> Callable[[np.ndarray], np.ndarray]:
    fn = ACTIVATIONS.get(name or "linear")
    if fn is None:
        raise NoReference(f"no numpy statement of Keras 1's activation {name!r}", layer)
    return fn


def _tup(v, n: int) -> tuple[int, ...]:
    return (int(v),) * n if isinstance(v, (int, np.integer)) else tuple(int(a) for a in v)


def _spatial_axes(ndim: int, ordering: str) -> list[int]:
    return list(range(2, ndim)) if ordering == "th" else list(range(1, ndim - 1))


# ---------------------------------------------------------------------- weighted layers (the families' references)

def _dense(run, p, cfg, x, mask):
    old = run.old(p)
    return _act(cfg.get("activation"), p.old_name)(dense.reference(x, old["W"], old.get("b"))), mask


def _conv(run, p, cfg, x, mask):
    old = run.old(p)
    y = correlation.conv(x, old["W"], old.get("b"), p.layout, run.backend, cfg.get("subsample"),
                         cfg.get("border_mode", "valid"), cfg.get("atrous_rate"))
    return _act(cfg.get("activation"), p.old_name)(y), mask


def _conv1d(run, p, cfg, x, mask):
    old = run.old(p)
    y = conv1d.reference(x, old["W"], old.get("b"), run.backend, keras10=p.layout == "th",
                         subsample_length=cfg.get("subsample_length", 1), border_mode=cfg.get("border_mode", "valid"),
                         atrous_rate=cfg.get("atrous_rate", 1))
    return _act(cfg.get("activation"), p.old_name)(y), mask


def _deconv(run, p, cfg, x, mask):
    old = run.old(p)
    y = conv_transpose.reference(x, old["W"], old.get("b"), p.layout, run.backend, cfg.get("output_shape"),
                                 cfg.get("subsample"), cfg.get("border_mode", "valid"))
    return _act(cfg.get("activation"), p.old_name)(y), mask


def _separable(run, p, cfg, x, mask):
    old = run.old(p)
    y = separable.reference(x, old["depthwise_kernel"], old["pointwise_kernel"], old.get("b"), p.layout,
                            cfg.get("subsample"), cfg.get("border_mode", "valid"))
    return _act(cfg.get("activation"), p.old_name)(y), mask


def _batchnorm(run, p, cfg, x, mask):
    old = run.old(p)
    y = batchnorm.reference(x, old["gamma"], old["beta"], old["running_mean"], old["running_std"],
                            cfg.get("axis", -1), cfg.get("epsilon", 1e-3), cfg.get("mode", 0))
    return y, mask


def _embedding(run, p, cfg, x, mask):
    idx = np.asarray(x).astype(np.int64)  # Keras 1 cast the indices to int32 (K.gather)
    y = embedding.reference(run.old(p)["W"].astype(np.float64), idx)
    return y, (idx != 0 if cfg.get("mask_zero") else None)


def _prelu(run, p, cfg, x, mask):
    return prelu.reference(run.old(p)["alphas"], x), mask


def _recurrent(run, p, cfg, x, mask):
    """SimpleRNN / GRU / LSTM: the family's Keras 1 step loop; the last output without return_sequences."""
    y = p.family.reference(p, run.old(p), x, bool(cfg.get("go_backwards", False)), mask)
    if cfg.get("return_sequences", False):
        return y, mask
    return y[:, -1], None


def _conv_lstm2d(run, p, cfg, x, mask):
    if mask is not None:
        raise NoReference("a masked ConvLSTM2D", p.old_name)
    y = conv_lstm2d.reference(run.old(p), x, p.layout, run.backend, cfg.get("activation", "tanh"),
                              p.facts["inner"], cfg.get("border_mode", "valid"), cfg.get("subsample", (1, 1)),
                              bool(cfg.get("go_backwards", False)), p.old_name)
    return (y, mask) if cfg.get("return_sequences", False) else (y[:, -1], None)


def _bidirectional(run, p, cfg, x, mask):
    old = {w.name: np.asarray(run.arrays[w.name], np.float64) for w in p.weights}
    rs = bool(((cfg.get("layer") or {}).get("config") or {}).get("return_sequences", False))
    return p.family.reference(p, old, x, rs, mask), (mask if rs else None)


def _time_distributed(run, p, cfg, x, mask):
    """The wrapped layer on every time step at once (Keras 1.2.2 reshaped (batch, time, ...) to
    (batch * time, ...) and back)."""
    inner = cfg.get("layer") or {}
    sub = p.facts["wrapped"][0] if p.facts.get("wrapped") else p
    b, t = x.shape[:2]
    y, _ = run.layer(sub, inner.get("class_name"), dict(inner.get("config") or {}),
                     [x.reshape((b * t,) + x.shape[2:])], [None])
    return y.reshape((b, t) + y.shape[1:]), mask


# ---------------------------------------------------------------------- weightless layers

def _identity(run, p, cfg, x, mask):
    """Dropout and noise layers: the identity at inference (Keras 1's K.in_train_phase)."""
    return x, mask


def _activation(run, p, cfg, x, mask):
    return _act(cfg.get("activation"), p.old_name)(x), mask


def _leaky_relu(run, p, cfg, x, mask):
    return np.where(x > 0, x, cfg.get("alpha", 0.3) * x), mask


def _elu(run, p, cfg, x, mask):
    return np.where(x > 0, x, cfg.get("alpha", 1.0) * np.expm1(np.minimum(x, 0))), mask


def _thresholded_relu(run, p, cfg, x, mask):
    return x * (x > cfg.get("theta", 1.0)), mask


def _masking(run, p, cfg, x, mask):
    keep = np.any(x != cfg.get("mask_value", 0.0), axis=-1)
    return x * keep[..., None], keep


def _flatten(run, p, cfg, x, mask):
    return x.reshape(x.shape[0], -1), None  # C order of the Keras 1 layout, whatever the backend


def _reshape(run, p, cfg, x, mask):
    return x.reshape((x.shape[0],) + tuple(cfg["target_shape"])), None


def _permute(run, p, cfg, x, mask):
    return np.transpose(x, (0,) + tuple(cfg["dims"])), None


def _repeat_vector(run, p, cfg, x, mask):
    return np.repeat(x[:, None], cfg["n"], axis=1), None


def _upsampling(rank: int):
    def up(run, p, cfg, x, mask):
        size = _tup(cfg.get("length", 2), 1) if rank == 1 else _tup(cfg.get("size", 2), rank)
        axes = [1] if rank == 1 else _spatial_axes(x.ndim, run.ordering(cfg))
        for a, s in zip(axes, size):
            x = np.repeat(x, s, axis=a)
        return x, None
    return up


def _padding(rank: int):
    def pad(run, p, cfg, x, mask):
        v = cfg.get("padding", 1)
        if isinstance(v, dict):  # ZeroPadding1D {left_pad, right_pad}, 2D {top_pad, bottom_pad, left_pad, right_pad}
            keys = (("left_pad", "right_pad"),) if rank == 1 else (("top_pad", "bottom_pad"), ("left_pad", "right_pad"))
            pairs = [(v.get(a, 0), v.get(b, 0)) for a, b in keys]
        elif rank == 1:
            pairs = [(v, v)] if isinstance(v, int) else [tuple(v)]
        elif rank == 2 and len(v) == 4:  # (top, bottom, left, right)
            pairs = [(v[0], v[1]), (v[2], v[3])]
        else:  # one symmetric amount per axis
            pairs = [(a, a) for a in _tup(v, rank)]
        axes = [1] if rank == 1 else _spatial_axes(x.ndim, run.ordering(cfg))
        width = [(0, 0)] * x.ndim
        for a, pr in zip(axes, pairs):
            width[a] = tuple(pr)
        return np.pad(x, width), None
    return pad


def _cropping(rank: int):
    def crop(run, p, cfg, x, mask):
        c = cfg.get("cropping")
        pairs = [tuple(c)] if rank == 1 else [tuple(pr) for pr in c]
        axes = [1] if rank == 1 else _spatial_axes(x.ndim, run.ordering(cfg))
        index = [slice(None)] * x.ndim
        for a, (lo, hi) in zip(axes, pairs):
            index[a] = slice(lo, x.shape[a] - hi)
        return x[tuple(index)], None
    return crop


def _pool_windows(x: np.ndarray, axes: list[int], pool, strides, border_mode: str, backend: str, mode: str):
    """Keras 1 pooling over `axes`. 'valid': windows inside the input. TensorFlow 'same': SAME padding
    (the odd cell after), padded cells ignored. Theano 'same': p = k - 1 (even k) or k - 2 (odd k > 2)
    cells before and after, windows inside the padded input (ignore_border), the first ceil(n / s)
    kept; padded cells ignored (max: -inf; average: 'average_exc_pad')."""
    width = [(0, 0)] * x.ndim
    keep = []
    for a, k, s in zip(axes, pool, strides):
        n = x.shape[a]
        if border_mode == "valid":
            continue
        if border_mode != "same":
            raise ValueError(f"border_mode {border_mode!r}")
        out = -(-n // s)
        if backend == "theano":
            pad = k - 2 if k > 2 and k % 2 else k - 1
            width[a] = (pad, pad)
            keep.append((a, out))
        else:
            total = max((out - 1) * s + k - n, 0)
            width[a] = (total // 2, total - total // 2)
    valid = np.pad(np.ones(x.shape, bool), width, constant_values=False)
    xp = np.pad(x, width)
    win = np.lib.stride_tricks.sliding_window_view
    for a, k, s in zip(axes, pool, strides):
        xp = win(xp, k, axis=a)
        valid = win(valid, k, axis=a)
        index = [slice(None)] * x.ndim
        index[a] = slice(None, None, s)
        xp, valid = xp[tuple(index)], valid[tuple(index)]
    wax = tuple(range(x.ndim, xp.ndim))  # the window axes sliding_window_view appended
    if mode == "max":
        y = np.where(valid, xp, -np.inf).max(axis=wax)
    else:
        y = np.where(valid, xp, 0.0).sum(axis=wax) / valid.sum(axis=wax)
    index = [slice(None)] * x.ndim
    for a, out in keep:
        index[a] = slice(0, out)
    return y[tuple(index)]


def _pooling(rank: int, mode: str):
    def pool(run, p, cfg, x, mask):
        if rank == 1:  # Keras 1 pooled (batch, steps, 1, dim) with a (k, 1) window, tf ordering
            k = cfg.get("pool_length", 2)
            sizes, strides, axes = (k,), (cfg.get("stride") or k,), [1]
        else:
            sizes = _tup(cfg.get("pool_size", 2), rank)
            strides = _tup(cfg.get("strides") or sizes, rank)
            axes = _spatial_axes(x.ndim, run.ordering(cfg))
        return _pool_windows(x, axes, sizes, strides, cfg.get("border_mode", "valid"), run.backend, mode), None
    return pool


def _global_pooling(rank: int, mode: str):
    def pool(run, p, cfg, x, mask):
        axes = (1,) if rank == 1 else tuple(_spatial_axes(x.ndim, run.ordering(cfg)))
        return (x.max(axis=axes) if mode == "max" else x.mean(axis=axes)), None
    return pool


def _merge(run, p, cfg, xs, masks):
    """Keras 1.2.2 Merge (and merge()): sum, mul, ave, max, concat on concat_axis; dot and cos of two 2-D inputs."""
    mode = cfg.get("mode", "sum")
    xs = [np.asarray(x, np.float64) for x in xs]
    if mode in ("sum", "mul", "ave", "max"):
        y = xs[0]
        for x in xs[1:]:
            y = y * x if mode == "mul" else np.maximum(y, x) if mode == "max" else y + x
        y = y / len(xs) if mode == "ave" else y
        present = [m for m in masks if m is not None]
        mask = np.all(present, axis=0) if present and mode != "max" else None
        return y, mask
    if mode == "concat":
        if any(m is not None for m in masks):
            raise NoReference("a masked concat merge", p.old_name)
        return np.concatenate(xs, axis=cfg.get("concat_axis", -1)), None
    axes = cfg.get("dot_axes", -1)
    if mode in ("dot", "cos") and len(xs) == 2 and all(x.ndim == 2 for x in xs) and \
            all(a in (1, -1) for a in (axes if isinstance(axes, (list, tuple)) else [axes])):
        # K.batch_dot of two (batch, n) over their features: (batch,), made (batch, 1)
        a, b = xs
        dot = np.sum(a * b, axis=1, keepdims=True)
        if mode == "dot":
            return dot, None
        # cos: over max(sqrt(a.a * b.b), K.epsilon()), keras.json's epsilon (the file does not record it;
        # 1e-7 by default), then K.expand_dims(., 1): (batch, 1, 1)
        norms = np.sqrt(np.sum(a * a, axis=1, keepdims=True) * np.sum(b * b, axis=1, keepdims=True))
        return (dot / np.maximum(norms, KERAS_EPSILON))[:, None], None
    raise NoReference(f"no numpy statement of Keras 1's Merge mode {mode!r} on these inputs", p.old_name)


_LAYERS: dict[str, Callable] = {
    "Dense": _dense, "Convolution2D": _conv, "AtrousConvolution2D": _conv, "Convolution3D": _conv,
    "Convolution1D": _conv1d, "AtrousConvolution1D": _conv1d, "Deconvolution2D": _deconv,
    "SeparableConvolution2D": _separable, "BatchNormalization": _batchnorm, "Embedding": _embedding,
    "PReLU": _prelu, "SimpleRNN": _recurrent, "GRU": _recurrent, "LSTM": _recurrent, "ConvLSTM2D": _conv_lstm2d,
    "Bidirectional": _bidirectional, "TimeDistributed": _time_distributed,
    "Dropout": _identity, "SpatialDropout1D": _identity, "SpatialDropout2D": _identity,
    "SpatialDropout3D": _identity, "GaussianNoise": _identity, "GaussianDropout": _identity,
    "ActivityRegularization": _identity,
    "Activation": _activation, "LeakyReLU": _leaky_relu, "ELU": _elu, "ThresholdedReLU": _thresholded_relu,
    "Masking": _masking, "Flatten": _flatten, "Reshape": _reshape, "Permute": _permute,
    "RepeatVector": _repeat_vector, "Merge": _merge,
    **{f"UpSampling{r}D": _upsampling(r) for r in (1, 2, 3)},
    **{f"ZeroPadding{r}D": _padding(r) for r in (1, 2, 3)},
    **{f"Cropping{r}D": _cropping(r) for r in (1, 2, 3)},
    **{f"MaxPooling{r}D": _pooling(r, "max") for r in (1, 2, 3)},
    **{f"AveragePooling{r}D": _pooling(r, "avg") for r in (1, 2, 3)},
    **{f"GlobalMaxPooling{r}D": _global_pooling(r, "max") for r in (1, 2, 3)},
    **{f"GlobalAveragePooling{r}D": _global_pooling(r, "avg") for r in (1, 2, 3)},
}
