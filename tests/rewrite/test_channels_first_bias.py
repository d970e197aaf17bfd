"""Keras 3.15 on TensorFlow adds a channels_first convolution's bias along the wrong axis when the
output's last spatial size equals the filter count; the rewrite says so where a Keras 1 call becomes
channels_first (rules/convolution.toml, special channels-first-bias)."""

import numpy as np

from kmigrate.rewrite.files import rewrite_source
from kmigrate.spec.model import Options


def test_installed_keras_adds_the_bias_on_the_wrong_axis():
    """The fact the warning states, measured: when Keras no longer does this, the warning must go."""
    import keras

    errors = {}
    for width in (4, 5):
        x = np.random.RandomState(0).randn(1, 2, 6, width).astype("float32")
        layer = keras.layers.Conv2D(4, (1, 1), data_format="channels_first")
        layer.build(x.shape)
        kernel = np.random.RandomState(1).randn(1, 1, 2, 4).astype("float32")
        bias = np.arange(1, 5, dtype="float32")
        layer.set_weights([kernel, bias])
        want = np.einsum("nchw,co->nohw", x, kernel[0, 0]) + bias[None, :, None, None]
        errors[width] = float(np.abs(np.asarray(layer(x)) - want).max())
    assert errors[5] < 1e-5  # the last axis differs from the filter count: right
    assert errors[4] > 0.5  # it equals the filter count: the bias went along the last axis


def _said(source: str, options: Options | None = None) -> list[str]:
    _, diags = rewrite_source(source, "m.py", options or Options())
    return [d.message for d in diags if "wrong axis" in d.message]


def test_the_rewrite_says_so_where_a_call_becomes_channels_first():
    head = "from keras.layers import Convolution2D, Convolution3D, Deconvolution2D\n"
    (said,) = _said(head + "c = Convolution2D(32, 3, 3, dim_ordering='th')\n")
    assert "filter count (32)" in said
    assert _said(head + "c = Convolution3D(8, 3, 3, 3, dim_ordering='th')\n")
    assert _said(head + "c = Convolution2D(32, 3, 3)\n", Options(default_dim_ordering="th"))
    assert not _said(head + "c = Convolution2D(32, 3, 3, dim_ordering='tf')\n")
    assert not _said(head + "c = Convolution2D(32, 3, 3)\n")
    assert not _said(head + "c = Convolution2D(32, 3, 3, dim_ordering='th', bias=False)\n")
    # migrated code is not warned again
    assert not _said("from keras.layers import Conv2D\nc = Conv2D(32, (3, 3), data_format='channels_first')\n")
