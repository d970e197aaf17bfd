"""Deterministic Keras 1 files for the weights tests, written exactly as Keras 1.2.2 laid them out.

Every case is a small model (one weighted layer of interest, then Flatten -> Dense) given by its Keras 1
config, its arrays in the Keras 1 layout, how to build the migrated Keras 3 model (Keras 2 API code as
`kmigrate rewrite` emits it) and an independent numpy forward pass of the Keras 1 model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

import h5py
import numpy as np

from kmigrate.weights.families import batchnorm, conv1d, conv_transpose, correlation, dense, separable

# the families' numpy statements of Keras 1, by the names the cases use
ref = SimpleNamespace(conv=correlation.conv, conv1d=conv1d.reference, deconv2d=conv_transpose.reference,
                      separable2d=separable.reference, batchnorm=batchnorm.reference, dense=dense.reference)

CONV_BASE = {"init": "glorot_uniform", "activation": "linear", "W_regularizer": None, "b_regularizer": None,
             "activity_regularizer": None, "W_constraint": None, "b_constraint": None, "bias": True,
             "trainable": True}


def write_keras1(path, layers, *, model_config=None, tf_names=False, training=False, weights_only=None):
    """layers: [(name, [(suffix, array)])]; a full-model file when model_config is given."""
    with h5py.File(path, "w") as f:
        root = f
        if model_config is not None and not weights_only:
            f.attrs["keras_version"] = b"1.2.2"
            f.attrs["model_config"] = json.dumps(model_config).encode("utf8")
            if training:
                f.attrs["training_config"] = json.dumps({"optimizer_config": {"class_name": "SGD"}}).encode()
                g = f.create_group("optimizer_weights")
                g.attrs["weight_names"] = np.array([b"param_0"])
                g.create_dataset("param_0", data=np.zeros(3, np.float32))
            root = f.create_group("model_weights")
        root.attrs["layer_names"] = np.array([n.encode() for n, _ in layers], dtype="S")
        for name, ws in layers:
            g = root.create_group(name)
            names = [f"{name}_{s}" + (":0" if tf_names else "") for s, _ in ws]
            if names:
                g.attrs["weight_names"] = np.array([n.encode() for n in names], dtype="S")
            else:
                g.attrs["weight_names"] = np.array([], dtype=np.float64)
            for n, (_, a) in zip(names, ws):
                g.create_dataset(n, data=np.asarray(a, np.float32))


@dataclass
class Case:
    id: str
    layers: list  # [(name, [(suffix, array)])]
    config: dict  # Keras 1 model config
    build: Callable[[], Any]  # migrated Keras 3 model
    forward: Callable[[np.ndarray], np.ndarray]  # numpy Keras 1 forward pass on the original arrays
    input_shape: tuple  # Keras 1 input (no batch)
    backend: str = "tensorflow"
    layout: str | None = None
    to: str | None = None
    keras3_input: Callable[[np.ndarray], np.ndarray] = lambda x: x
    extra: dict = field(default_factory=dict)


def _seq(*layers):
    return {"class_name": "Sequential", "config": [{"class_name": c, "config": cfg} for c, cfg in layers]}


def _flatten_dense(rng, name_n, feat, units=3):
    W = rng.standard_normal((feat, units)).astype(np.float32) * 0.2
    b = rng.standard_normal(units).astype(np.float32)
    dense_cfg = dict(CONV_BASE, name=f"dense_{name_n}", output_dim=units, input_dim=None)
    return W, b, ("Flatten", {"name": f"flatten_{name_n}", "trainable": True}), ("Dense", dense_cfg)


def _k():
    import keras

    return keras


def conv2d_case(layout, backend, *, kernel=(3, 3), strides=(1, 1), border="same", atrous=None, n=8, cin=2,
                filters=3, seed=0, to=None) -> Case:
    rng = np.random.default_rng(seed)
    r, c = kernel
    W = rng.standard_normal((filters, cin, r, c) if layout == "th" else (r, c, cin, filters)).astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    shape = (cin, n, n) if layout == "th" else (n, n, cin)
    cls = "AtrousConvolution2D" if atrous else "Convolution2D"
    lname = cls.lower() + "_1"
    cfg = dict(CONV_BASE, name=lname, nb_filter=filters, nb_row=r, nb_col=c, border_mode=border,
               subsample=list(strides), dim_ordering=layout, batch_input_shape=[None, *shape], input_dtype="float32")
    if atrous:
        cfg["atrous_rate"] = list(atrous)
    y = ref.conv(np.zeros((1,) + shape), W, b, layout, backend, strides, border, atrous)
    feat = int(np.prod(y.shape[1:]))
    Wd, bd, flat, dense = _flatten_dense(rng, 1, feat)
    config = _seq((cls, cfg), flat, dense)

    def forward(x):
        return ref.dense(ref.conv(x, W, b, layout, backend, strides, border, atrous), Wd, bd)

    fmt = "channels_first" if layout == "th" else "channels_last"
    target = to or fmt

    def build():
        keras = _k()
        inp = shape if target == fmt else (shape[1:] + shape[:1] if layout == "th" else shape[-1:] + shape[:-1])
        kw = {"dilation_rate": tuple(atrous)} if atrous else {}
        return keras.Sequential([
            keras.layers.Conv2D(filters, (r, c), padding=border, strides=tuple(strides), data_format=target,
                                input_shape=inp, **kw),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ])

    def k3_input(x):
        if target == fmt:
            return x
        return np.moveaxis(x, 1, -1) if layout == "th" else np.moveaxis(x, -1, 1)

    return Case(f"{cls}-{layout}-{backend}" + (f"-to-{to}" if to else ""),
                [(lname, [("W", W), ("b", b)]), ("flatten_1", []), ("dense_1", [("W", Wd), ("b", bd)])],
                config, build, forward, shape, backend, layout, to, k3_input)


def conv1d_case(backend, *, keras10=False, atrous=None, filters=4, L=3, dim=3, steps=10, border="valid",
                seed=1) -> Case:
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((filters, dim, L, 1) if keras10 else (L, 1, dim, filters)).astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    cls = "AtrousConvolution1D" if atrous else "Convolution1D"
    lname = cls.lower() + "_1"
    cfg = dict(CONV_BASE, name=lname, nb_filter=filters, filter_length=L, border_mode=border,
               subsample_length=1, batch_input_shape=[None, steps, dim], input_dtype="float32")
    if atrous:
        cfg["atrous_rate"] = atrous
    else:
        cfg.update(input_dim=dim, input_length=steps)
    fw = lambda x: ref.conv1d(x, W, b, backend, keras10, 1, border, atrous or 1)  # noqa: E731
    feat = int(np.prod(fw(np.zeros((1, steps, dim))).shape[1:]))
    Wd, bd, flat, dense = _flatten_dense(rng, 1, feat)

    def build():
        keras = _k()
        kw = {"dilation_rate": atrous} if atrous else {}
        return keras.Sequential([keras.layers.Conv1D(filters, L, padding=border, input_shape=(steps, dim), **kw),
                                 keras.layers.Flatten(), keras.layers.Dense(3)])

    return Case(f"{cls}{'-keras1.0' if keras10 else ''}-{backend}",
                [(lname, [("W", W), ("b", b)]), ("flatten_1", []), ("dense_1", [("W", Wd), ("b", bd)])],
                _seq((cls, cfg), flat, dense), build, lambda x: ref.dense(fw(x), Wd, bd), (steps, dim), backend)


def deconv2d_case(layout, backend, *, kernel=(3, 3), strides=(2, 2), border="valid", n=4, cin=2, filters=3,
                  seed=2) -> Case:
    rng = np.random.default_rng(seed)
    r, c = kernel
    W = rng.standard_normal((filters, cin, r, c) if layout == "th" else (r, c, cin, filters)).astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    shape = (cin, n, n) if layout == "th" else (n, n, cin)
    o = [(n - 1) * s + k if border == "valid" else n * s for s, k in zip(strides, kernel)]
    out_shape = [None, filters, *o] if layout == "th" else [None, *o, filters]
    cfg = dict(CONV_BASE, name="deconvolution2d_1", nb_filter=filters, nb_row=r, nb_col=c, output_shape=out_shape,
               border_mode=border, subsample=list(strides), dim_ordering=layout,
               batch_input_shape=[None, *shape], input_dtype="float32")
    fw = lambda x: ref.deconv2d(x, W, b, layout, backend, out_shape, strides, border)  # noqa: E731
    feat = filters * o[0] * o[1]
    Wd, bd, flat, dense = _flatten_dense(rng, 1, feat)
    fmt = "channels_first" if layout == "th" else "channels_last"

    def build():
        keras = _k()
        return keras.Sequential([
            keras.layers.Conv2DTranspose(filters, (r, c), strides=tuple(strides), padding=border, data_format=fmt,
                                         input_shape=shape),
            keras.layers.Flatten(), keras.layers.Dense(3)])

    return Case(f"Deconvolution2D-{layout}-{backend}",
                [("deconvolution2d_1", [("W", W), ("b", b)]), ("flatten_1", []),
                 ("dense_1", [("W", Wd), ("b", bd)])],
                _seq(("Deconvolution2D", cfg), flat, dense), build, lambda x: ref.dense(fw(x), Wd, bd), shape,
                backend, layout)


def separable_case(layout, *, mult=2, cin=2, filters=3, n=7, border="valid", seed=3,
                   backend="tensorflow") -> Case:
    rng = np.random.default_rng(seed)
    dw = rng.standard_normal((mult, cin, 3, 3) if layout == "th" else (3, 3, cin, mult)).astype(np.float32)
    pw = rng.standard_normal((filters, cin * mult, 1, 1) if layout == "th" else (1, 1, cin * mult, filters))
    pw = pw.astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    shape = (cin, n, n) if layout == "th" else (n, n, cin)
    cfg = dict(CONV_BASE, name="separableconvolution2d_1", nb_filter=filters, nb_row=3, nb_col=3,
               border_mode=border, subsample=[1, 1], depth_multiplier=mult, dim_ordering=layout,
               batch_input_shape=[None, *shape], input_dtype="float32")
    for k in ("W_regularizer", "W_constraint"):
        cfg.pop(k)
    cfg.update(depthwise_regularizer=None, pointwise_regularizer=None, depthwise_constraint=None,
               pointwise_constraint=None)
    fw = lambda x: ref.separable2d(x, dw, pw, b, layout, (1, 1), border)  # noqa: E731
    feat = int(np.prod(fw(np.zeros((1,) + shape)).shape[1:]))
    Wd, bd, flat, dense = _flatten_dense(rng, 1, feat)
    fmt = "channels_first" if layout == "th" else "channels_last"

    def build():
        keras = _k()
        return keras.Sequential([
            keras.layers.SeparableConv2D(filters, (3, 3), padding=border, depth_multiplier=mult, data_format=fmt,
                                         input_shape=shape),
            keras.layers.Flatten(), keras.layers.Dense(3)])

    return Case(f"SeparableConvolution2D-{layout}-{backend}",
                [("separableconvolution2d_1", [("depthwise_kernel", dw), ("pointwise_kernel", pw), ("b", b)]),
                 ("flatten_1", []), ("dense_1", [("W", Wd), ("b", bd)])],
                _seq(("SeparableConvolution2D", cfg), flat, dense), build, lambda x: ref.dense(fw(x), Wd, bd),
                shape, backend, layout)


def conv3d_case(layout, backend, *, kernel=(3, 2, 3), n=5, cin=2, filters=2, border="valid", seed=4) -> Case:
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((filters, cin, *kernel) if layout == "th" else (*kernel, cin, filters))
    W = W.astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    shape = (cin, n, n, n) if layout == "th" else (n, n, n, cin)
    cfg = dict(CONV_BASE, name="convolution3d_1", nb_filter=filters, kernel_dim1=kernel[0], kernel_dim2=kernel[1],
               kernel_dim3=kernel[2], border_mode=border, subsample=[1, 1, 1], dim_ordering=layout,
               batch_input_shape=[None, *shape], input_dtype="float32")
    fw = lambda x: ref.conv(x, W, b, layout, backend, (1, 1, 1), border)  # noqa: E731
    feat = int(np.prod(fw(np.zeros((1,) + shape)).shape[1:]))
    Wd, bd, flat, dense = _flatten_dense(rng, 1, feat)
    fmt = "channels_first" if layout == "th" else "channels_last"

    def build():
        keras = _k()
        return keras.Sequential([
            keras.layers.Conv3D(filters, kernel, padding=border, data_format=fmt, input_shape=shape),
            keras.layers.Flatten(), keras.layers.Dense(3)])

    return Case(f"Convolution3D-{layout}-{backend}",
                [("convolution3d_1", [("W", W), ("b", b)]), ("flatten_1", []), ("dense_1", [("W", Wd), ("b", bd)])],
                _seq(("Convolution3D", cfg), flat, dense), build, lambda x: ref.dense(fw(x), Wd, bd), shape,
                backend, layout)


def batchnorm_case(layout, backend, *, n=6, cin=3, seed=5) -> Case:
    """Convolution2D -> BatchNormalization(axis = channel axis) -> Flatten -> Dense."""
    rng = np.random.default_rng(seed)
    base = conv2d_case(layout, backend, n=n, cin=2, filters=cin, seed=seed)
    (cname, cw), _, _ = base.layers
    W, b = cw[0][1], cw[1][1]
    gamma, beta = rng.standard_normal(cin).astype(np.float32), rng.standard_normal(cin).astype(np.float32)
    mean = rng.standard_normal(cin).astype(np.float32)
    var = rng.uniform(0.5, 2.0, cin).astype(np.float32)  # Keras 1 `running_std` holds this variance
    axis = 1 if layout == "th" else -1
    bn_cfg = {"name": "batchnormalization_1", "trainable": True, "epsilon": 1e-3, "mode": 0, "axis": axis,
              "momentum": 0.99, "beta_init": "zero", "gamma_init": "one", "gamma_regularizer": None,
              "beta_regularizer": None}
    conv_entry = base.config["config"][0]
    Wd, bd, flat, dense = _flatten_dense(rng, 1, cin * n * n)
    config = _seq((conv_entry["class_name"], conv_entry["config"]), ("BatchNormalization", bn_cfg), flat, dense)
    fmt = "channels_first" if layout == "th" else "channels_last"

    def forward(x):
        y = ref.conv(x, W, b, layout, backend, (1, 1), "same")
        return ref.dense(ref.batchnorm(y, gamma, beta, mean, var, axis, 1e-3), Wd, bd)

    def build():
        keras = _k()
        return keras.Sequential([
            keras.layers.Conv2D(cin, (3, 3), padding="same", strides=(1, 1), data_format=fmt, input_shape=base.input_shape),
            keras.layers.BatchNormalization(axis=axis, epsilon=1e-3, momentum=0.99),
            keras.layers.Flatten(), keras.layers.Dense(3)])

    return Case(f"BatchNormalization-{layout}-{backend}",
                [(cname, cw), ("batchnormalization_1", [("gamma", gamma), ("beta", beta), ("running_mean", mean),
                                                        ("running_std", var)]),
                 ("flatten_1", []), ("dense_1", [("W", Wd), ("b", bd)])],
                config, build, forward, base.input_shape, backend, layout)


def all_cases() -> list[Case]:
    cases = []
    for layout in ("th", "tf"):
        for backend in ("theano", "tensorflow"):
            cases.append(conv2d_case(layout, backend))
            cases.append(conv2d_case(layout, backend, atrous=(2, 2), border="valid", n=9))
            cases.append(deconv2d_case(layout, backend))
            cases.append(conv3d_case(layout, backend))
            cases.append(batchnorm_case(layout, backend))
        cases.append(separable_case(layout))
    for backend in ("theano", "tensorflow"):
        cases.append(conv1d_case(backend))
        cases.append(conv1d_case(backend, keras10=True))
        cases.append(conv1d_case(backend, atrous=2))
    return cases
