"""Pure array transforms from Keras 1 weight layouts to Keras 2/3 layouts: the only place that knows them.

Two independent questions decide a kernel's conversion:
* the **layout** (`th` or `tf`, the layer's dim_ordering) decides the transpose;
* the **training backend** (Theano ran true convolution, TensorFlow cross-correlation) decides the
  spatial flip.
Keras 2/3 kernel shapes do not depend on `data_format`, so a th kernel is transposed even when the
migrated layer keeps `data_format='channels_first'`.
"""

from __future__ import annotations

import numpy as np

LAYOUTS = ("th", "tf")
BACKENDS = ("theano", "tensorflow")

# Keras 1 class -> weight family. Only these carry weights kmigrate converts.
KINDS = {
    "Convolution1D": "conv1d",
    "AtrousConvolution1D": "conv1d",
    "Convolution2D": "conv",
    "AtrousConvolution2D": "conv",
    "Convolution3D": "conv",
    "Deconvolution2D": "deconv2d",
    "SeparableConvolution2D": "separable",
    "BatchNormalization": "batchnorm",
    "Dense": "dense",
}

# Weight family -> (Keras 1 weight suffixes in save order, Keras 2/3 weight names, required count).
# Keras 1 named each weight `{layer}_{suffix}`; bias is absent when the layer had bias=False.
WEIGHTS = {
    "conv1d": (("W", "b"), ("kernel", "bias"), 1),
    "conv": (("W", "b"), ("kernel", "bias"), 1),
    "deconv2d": (("W", "b"), ("kernel", "bias"), 1),
    "separable": (("depthwise_kernel", "pointwise_kernel", "b"), ("depthwise_kernel", "pointwise_kernel", "bias"), 2),
    # running_std holds the moving *variance* (Keras 1 updated it with the batch variance): copied as is.
    "batchnorm": (("gamma", "beta", "running_mean", "running_std"),
                  ("gamma", "beta", "moving_mean", "moving_variance"), 4),
    "dense": (("W", "b"), ("kernel", "bias"), 1),
}

# Kernel families whose kernels the training backend flips, with their spatial rank (by kernel ndim).
FLIPPED = ("conv1d", "conv", "deconv2d")  # SeparableConvolution2D existed only on TensorFlow


def _check_ndim(w: np.ndarray, ndim: int, what: str) -> None:
    if w.ndim != ndim:
        raise ValueError(f"{what} must be {ndim}-D, got shape {tuple(w.shape)}")


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def conv1d_kernel(w: np.ndarray) -> np.ndarray:
    """Convolution1D / AtrousConvolution1D kernel, Keras 1.1+.

    Layout decides it, and there is only one: Keras 1.1+ expanded the input to (steps, 1, dim) and
    ran a tf-ordered 2D convolution whatever the dim_ordering.
    # old: (length, 1, input_dim, filters)
    # new: (length, input_dim, filters)
    """
    _check_ndim(w, 4, "Convolution1D kernel")
    if w.shape[1] != 1:
        raise ValueError(f"Convolution1D kernel (length, 1, in, out) expected, got {tuple(w.shape)}")
    return w[:, 0, :, :]


def conv1d_kernel_keras10(w: np.ndarray) -> np.ndarray:
    """Convolution1D kernel as Keras 1.0.x stored it (a th-ordered 2D convolution over (dim, steps, 1)).

    # old: (filters, input_dim, length, 1)
    # new: (length, input_dim, filters)
    """
    _check_ndim(w, 4, "Keras 1.0 Convolution1D kernel")
    if w.shape[3] != 1:
        raise ValueError(f"Keras 1.0 Convolution1D kernel (out, in, length, 1) expected, got {tuple(w.shape)}")
    return np.transpose(w[:, :, :, 0], (2, 1, 0))


def conv_kernel(w: np.ndarray, layout: str) -> np.ndarray:
    """Convolution2D / AtrousConvolution2D / Convolution3D kernel (2 or 3 spatial axes).

    Layout decides it.
    # old th: (filters, in, k1, ..., kn)
    # old tf: (k1, ..., kn, in, filters)
    # new:    (k1, ..., kn, in, filters)
    """
    _check_layout(layout)
    if w.ndim not in (4, 5):
        raise ValueError(f"2D/3D convolution kernel must be 4-D or 5-D, got shape {tuple(w.shape)}")
    if layout == "tf":
        return w
    spatial = tuple(range(2, w.ndim))
    return np.transpose(w, spatial + (1, 0))


def deconv2d_kernel(w: np.ndarray, layout: str) -> np.ndarray:
    """Deconvolution2D -> Conv2DTranspose kernel: its own permutation, because Keras 2/3 store the
    transposed convolution's kernel as (r, c, filters, input_channels).

    Layout decides it.
    # old th: (filters, in, r, c)   filters = output channels, in = input channels
    # old tf: (r, c, in, filters)
    # new:    (r, c, filters, in)
    """
    _check_layout(layout)
    _check_ndim(w, 4, "Deconvolution2D kernel")
    if layout == "th":
        return np.transpose(w, (2, 3, 0, 1))
    return np.transpose(w, (0, 1, 3, 2))


def separable_depthwise_kernel(w: np.ndarray, layout: str) -> np.ndarray:
    """SeparableConvolution2D depthwise kernel. Keras 1's TensorFlow backend applied this same
    transpose at run time, so the depthwise channel order (in * multiplier + m) is preserved.

    Layout decides it.
    # old th: (multiplier, in, r, c)
    # old tf: (r, c, in, multiplier)
    # new:    (r, c, in, multiplier)
    """
    _check_layout(layout)
    _check_ndim(w, 4, "depthwise kernel")
    return np.transpose(w, (2, 3, 1, 0)) if layout == "th" else w


def separable_pointwise_kernel(w: np.ndarray, layout: str) -> np.ndarray:
    """SeparableConvolution2D pointwise kernel.

    Layout decides it.
    # old th: (filters, in * multiplier, 1, 1)
    # old tf: (1, 1, in * multiplier, filters)
    # new:    (1, 1, in * multiplier, filters)
    """
    _check_layout(layout)
    _check_ndim(w, 4, "pointwise kernel")
    return np.transpose(w, (2, 3, 1, 0)) if layout == "th" else w


def flip_spatial(kernel: np.ndarray, spatial_axes: int) -> np.ndarray:
    """Reverse the leading `spatial_axes` axes of a kernel already in the Keras 2/3 layout.

    The training backend decides it: Theano's convolution is TensorFlow's cross-correlation with the
    kernel reversed along every spatial axis (also with strides and dilation, and for the transposed
    convolution, its adjoint). Shape unchanged.
    # old: (k1, ..., kn, a, b)   Theano-trained
    # new: (k1, ..., kn, a, b)   correlation kernel
    """
    if not 1 <= spatial_axes <= kernel.ndim - 2:
        raise ValueError(f"cannot flip {spatial_axes} spatial axes of a kernel of shape {tuple(kernel.shape)}")
    return np.flip(kernel, axis=tuple(range(spatial_axes))).copy()


def dense_after_flatten(w: np.ndarray, feature_shape: tuple[int, ...], source: str, target: str) -> np.ndarray:
    """Rows of the first Dense after a Flatten, when the feature map it flattens changes ordering.

    Layout decides it: Keras 1 flattened a th feature map in (c, spatial...) order on every backend.
    `feature_shape` is the flattened feature map's shape in the **source** layout, without batch.
    # old (th source): (c * s1 * ... * sn, units)   rows in (c, s1, ..., sn) order
    # new (tf target): (s1 * ... * sn * c, units)   rows in (s1, ..., sn, c) order
    and the reverse for a tf source with a th target.
    """
    _check_layout(source)
    _check_layout(target)
    _check_ndim(w, 2, "Dense kernel")
    size = int(np.prod(feature_shape))
    if w.shape[0] != size:
        raise ValueError(f"Dense kernel has {w.shape[0]} rows; the flattened feature map {tuple(feature_shape)} "
                         f"has {size}")
    if source == target:
        return w
    n = len(feature_shape)
    units = w.shape[1]
    blocks = w.reshape(tuple(feature_shape) + (units,))
    if source == "th":  # (c, s1..sn, units) -> (s1..sn, c, units)
        order = tuple(range(1, n)) + (0, n)
    else:  # (s1..sn, c, units) -> (c, s1..sn, units)
        order = (n - 1,) + tuple(range(n - 1)) + (n,)
    return np.transpose(blocks, order).reshape(size, units)


def keras1_layouts_matching(kind: str, shapes: list[tuple[int, ...]], filters: int | None,
                            in_channels: int | None = None,
                            kernel_size: tuple[int, ...] | None = None) -> list[str]:
    """The Keras 1 layouts a layer's stored shapes are consistent with (used to detect the layout).

    For `conv1d` the answer is about the Keras version that saved it: 'tf' is the 1.1+ layout
    (length, 1, in, out), 'th' the 1.0.x layout (out, in, length, 1).
    `filters` (from the config or the bias length), `in_channels` and `kernel_size` are what is known;
    None means unknown. An answer with both layouts means the shapes alone cannot decide.
    """
    def fits(actual, want) -> bool:
        return all(w is None or a == w for a, w in zip(actual, want)) and len(actual) == len(want)

    ks = tuple(kernel_size) if kernel_size is not None else None
    main = shapes[0]
    found = []
    for layout in LAYOUTS:
        if kind == "conv1d":
            k = ks if ks is not None else (None,)
            want = ((filters, in_channels) + k + (1,)) if layout == "th" else (k + (1, in_channels, filters))
        elif kind in ("conv", "deconv2d"):
            k = ks if ks is not None else (None,) * (len(main) - 2)
            want = ((filters, in_channels) + k) if layout == "th" else (k + (in_channels, filters))
        elif kind == "separable":
            k = ks if ks is not None else (None, None)
            pw = shapes[1] if len(shapes) > 1 else None
            want = (None, in_channels) + k if layout == "th" else k + (in_channels, None)
            pw_want = (filters, None, 1, 1) if layout == "th" else (1, 1, None, filters)
            if pw is None or not fits(pw, pw_want):
                continue
        else:  # no layout
            return list(LAYOUTS)
        if fits(main, want):
            found.append(layout)
    return found


def convert_array(kind: str, role: str, w: np.ndarray, layout: str | None, flip: bool,
                  dense_permute: tuple | None = None) -> np.ndarray:
    """One stored Keras 1 weight -> its Keras 2/3 array (`role` is the Keras 1 weight suffix)."""
    if kind == "conv1d" and role == "W":
        k = conv1d_kernel(w) if layout == "tf" else conv1d_kernel_keras10(w)
        return flip_spatial(k, 1) if flip else k
    if kind == "conv" and role == "W":
        k = conv_kernel(w, layout)
        return flip_spatial(k, k.ndim - 2) if flip else k
    if kind == "deconv2d" and role == "W":
        k = deconv2d_kernel(w, layout)
        return flip_spatial(k, 2) if flip else k
    if kind == "separable" and role == "depthwise_kernel":
        return separable_depthwise_kernel(w, layout)
    if kind == "separable" and role == "pointwise_kernel":
        return separable_pointwise_kernel(w, layout)
    if kind == "dense" and role == "W" and dense_permute is not None:
        feature_shape, source, target = dense_permute
        return dense_after_flatten(w, feature_shape, source, target)
    # old: (n,) / (in, units)   new: unchanged (biases, BatchNormalization vectors, Dense kernels)
    return w
