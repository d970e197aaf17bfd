"""Layout functions (shapes and what they do to each element) and the reference against numpy's own
convolution and correlation."""

import numpy as np
import pytest

from kmigrate.weights.families import base, batchnorm, conv, conv1d, conv_transpose, correlation, dense


def test_conv_kernel_th_to_keras3_moves_each_element():
    w = np.arange(4 * 2 * 3 * 5).reshape(4, 2, 3, 5)  # (out, in, r, c)
    k = conv.conv_kernel(w, "th")
    assert k.shape == (3, 5, 2, 4) and k[1, 4, 0, 3] == w[3, 0, 1, 4]
    assert conv.conv_kernel(w, "tf") is w


def test_conv3d_and_deconv_permutations():
    w = np.arange(2 * 3 * 4 * 5 * 6).reshape(2, 3, 4, 5, 6)
    assert conv.conv_kernel(w, "th")[3, 4, 5, 2, 1] == w[1, 2, 3, 4, 5]
    d = np.arange(4 * 2 * 3 * 5).reshape(4, 2, 3, 5)  # th (out, in, r, c) -> (r, c, out, in)
    assert conv_transpose.deconv2d_kernel(d, "th")[2, 4, 3, 1] == d[3, 1, 2, 4]
    t = d.reshape(3, 5, 2, 4)  # tf (r, c, in, out) -> (r, c, out, in)
    assert conv_transpose.deconv2d_kernel(t, "tf")[2, 4, 3, 1] == t[2, 4, 1, 3]


def test_conv1d_layouts_and_flip():
    w = np.arange(3 * 1 * 2 * 4).reshape(3, 1, 2, 4)
    assert conv1d.conv1d_kernel(w).shape == (3, 2, 4)
    old = np.arange(4 * 2 * 3).reshape(4, 2, 3, 1)  # Keras 1.0: (out, in, L, 1)
    assert conv1d.conv1d_kernel_keras10(old)[2, 1, 3] == old[3, 1, 2, 0]
    assert (base.flip_spatial(conv1d.conv1d_kernel(w), 1)[0] == w[2, 0]).all()
    with pytest.raises(ValueError):
        conv1d.conv1d_kernel(old)


def test_dense_after_flatten_round_trip_and_meaning():
    c, h, w, units = 2, 3, 4, 5
    W = np.arange(c * h * w * units).reshape(c * h * w, units)
    new = dense.dense_after_flatten(W, (c, h, w), "th", "tf")
    x = np.random.default_rng(0).standard_normal((c, h, w))
    assert np.allclose(x.reshape(-1) @ W, np.moveaxis(x, 0, -1).reshape(-1) @ new)
    assert (dense.dense_after_flatten(new, (h, w, c), "tf", "th") == W).all()


def test_layout_detection_from_shapes():
    assert conv.layouts_matching((4, 2, 3, 3), 4) == ["th"]
    assert conv.layouts_matching((3, 3, 2, 4), 4) == ["tf"]
    assert conv.layouts_matching((3, 3, 3, 3), 3) == ["th", "tf"]
    assert conv.layouts_matching((3, 3, 3, 3), 3, 3, (3, 3)) == ["th", "tf"]
    assert conv1d.layouts_matching((3, 1, 2, 4), 4) == ["tf"]
    assert conv1d.layouts_matching((4, 2, 3, 1), 4) == ["th"]


@pytest.mark.parametrize("stride", [1, 2])
def test_reference_conv1d_is_numpy_convolution_for_theano_and_correlation_for_tensorflow(stride):
    rng = np.random.default_rng(0)
    x, k = rng.standard_normal(11), rng.standard_normal(4)
    W = k.reshape(4, 1, 1, 1)  # (length, 1, in, out)
    theano = conv1d.reference(x.reshape(1, 11, 1), W, None, "theano", subsample_length=stride)[0, :, 0]
    tensorflow = conv1d.reference(x.reshape(1, 11, 1), W, None, "tensorflow", subsample_length=stride)[0, :, 0]
    assert np.allclose(theano, np.convolve(x, k, "valid")[::stride])
    assert np.allclose(tensorflow, np.correlate(x, k, "valid")[::stride])
    full = conv1d.reference(x.reshape(1, 11, 1), W, None, "theano", border_mode="full")[0, :, 0]
    assert np.allclose(full, np.convolve(x, k, "full"))


def test_reference_th_conv2d_of_a_delta_is_the_kernel_flipped_on_theano():
    W = np.arange(1, 10, dtype=float).reshape(1, 1, 3, 3)
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1
    th = correlation.conv(x, W, None, "th", "theano", border_mode="same")[0, 0, 1:4, 1:4]
    tf = correlation.conv(x, W, None, "th", "tensorflow", border_mode="same")[0, 0, 1:4, 1:4]
    assert (th == W[0, 0]).all()  # true convolution of a delta reproduces the kernel
    assert (tf == W[0, 0, ::-1, ::-1]).all()  # correlation mirrors it


def test_reference_theano_same_pads_half_and_cuts_the_end():
    x = np.arange(8.0).reshape(1, 1, 1, 8)
    W = np.ones((1, 1, 1, 2))  # even kernel
    th = correlation.conv(x, W, None, "th", "theano", border_mode="same")[0, 0, 0]
    tf = correlation.conv(x, W, None, "th", "tensorflow", border_mode="same")[0, 0, 0]
    assert list(th) == [0, 1, 3, 5, 7, 9, 11, 13]  # window starts one pixel before
    assert list(tf) == [1, 3, 5, 7, 9, 11, 13, 7]  # window starts at the pixel


def test_batchnorm_reference_treats_running_std_as_variance():
    x = np.full((1, 2), 3.0)
    y = batchnorm.reference(x, np.ones(2), np.zeros(2), np.ones(2), np.array([4.0, 4.0]), epsilon=0.0)
    assert np.allclose(y, 1.0)  # (3 - 1) / sqrt(4)


def test_every_rule_names_a_registered_family_and_every_family_is_named():
    from kmigrate.spec.loader import default_ruleset
    from kmigrate.weights import families

    named = {r.weights for r in default_ruleset().rules if r.weights}
    assert named == set(families.REGISTRY)
    for name, family in families.REGISTRY.items():
        assert family.name == name, name
