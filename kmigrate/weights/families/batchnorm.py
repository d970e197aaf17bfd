"""BatchNormalization's four vectors (Keras 3 BatchNormalization), modes 0, 1 and 2.

Keras 1's `running_std` holds the moving *variance* (it was updated with the batch variance and passed
to the backend as the variance), so it is copied as `moving_variance`.
"""

from __future__ import annotations

import numpy as np

from kmigrate.weights.families.base import Family, tensorflow
from kmigrate.weights.h5io import BadInput
from kmigrate.weights.layer import Context, LayerPlan


def reference(x, gamma, beta, mean, running_std, axis=-1, epsilon=1e-3, mode=0):
    """Keras 1 BatchNormalization at inference. mode 0: the stored statistics, `running_std` used as the
    variance (as Keras 1 did); mode 2: the current batch's mean and biased variance, whatever is stored;
    mode 1: each sample's mean and variance over its last axis, divided by (std + epsilon); gamma and beta
    were not reshaped there, so they broadcast along the last axis too (plan refuses any other axis)."""
    shape = [1] * x.ndim
    shape[axis] = -1
    r = lambda v: v.reshape(shape)  # noqa: E731
    if mode == 1:
        std = np.sqrt(x.var(axis=-1, keepdims=True) + epsilon)
        return (x - x.mean(axis=-1, keepdims=True)) / (std + epsilon) * r(gamma) + r(beta)
    if mode == 2:
        reduce = tuple(i for i in range(x.ndim) if i != axis % x.ndim)
        mean = x.mean(axis=reduce)
        running_std = x.var(axis=reduce)
    return (x - r(mean)) / np.sqrt(r(running_std) + epsilon) * r(gamma) + r(beta)


class BatchNorm(Family):
    name = "batchnorm"
    stored = ("gamma", "beta", "running_mean", "running_std")
    required = 4
    new = ("gamma", "beta", "moving_mean", "moving_variance")
    config_optional = True  # modes 1 and 2 have no Keras 3 argument, but their arrays are the usual four

    def plan(self, p: LayerPlan, ctx: Context) -> None:
        shapes = {w.shape for w in p.weights}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise BadInput(f"BatchNormalization weights must share one 1-D shape, got {[w.shape for w in p.weights]}",
                           p.old_name)
        mode = (p.keras1_config or {}).get("mode", 0)
        p.facts["mode"] = mode
        if mode == 2:
            p.notes.append("mode=2: Keras 1 normalised with the current batch's statistics at inference too; "
                           "the four arrays convert as usual (the moving statistics are not used by that mode)")
        elif mode == 1:
            # Keras 1.2.2 normalised over the last axis and multiplied by gamma unreshaped (broadcast along
            # the last axis): another axis either failed in Theano or scaled along the last axis anyway
            shape = p.input_shape
            axis = (p.keras1_config or {}).get("axis", -1)
            if axis != -1 and (not shape or axis % (len(shape) + 1) != len(shape)):
                raise BadInput(f"BatchNormalization mode=1 with axis={axis}: Keras 1.2.2 normalised and scaled "
                               "along the last axis whatever the axis, only axis=-1 is converted", p.old_name)
            p.facts["axis"] = -1
            p.notes.append("mode=1: Keras 1 normalised each sample over its last axis at inference too; the "
                           "four arrays convert as usual (the moving statistics are not used by that mode)")
        elif mode not in (0, None):
            raise BadInput(f"BatchNormalization mode={mode} is not a mode Keras 1 had", p.old_name)

    def transform(self, p: LayerPlan) -> str:
        return "running_std copied as moving_variance"

    def convert(self, p, arrays):
        # old: gamma, beta, running_mean, running_std (features,)   new: gamma, beta, moving_mean,
        # moving_variance (features,), the same values: running_std already held the variance
        return [(new, arrays[old]) for old, new in zip(self.stored, self.new)]

    def check(self, p, old, new, rng):
        k1, k2 = p.keras1_config or {}, p.keras2_config or {}
        known = p.input_shape if p.input_shape and None not in p.input_shape else None
        mode = p.facts.get("mode", 0)
        axis = k1.get("axis", -1)
        shape = tuple(known) if known else (old["gamma"].shape[0],)
        # every axis but the normalised one cut to 3: each feature still meets several values, and a
        # feature map of an image costs nothing
        ax = axis % (len(shape) + 1) - 1
        shape = tuple(n if i == ax else min(n, 3) for i, n in enumerate(shape))
        # mode 2 normalises over the batch: a batch of one would make every output beta
        x = rng.standard_normal((4 if mode == 2 else 2,) + shape)
        eps = k1.get("epsilon", 1e-3)
        want = reference(x, old["gamma"], old["beta"], old["running_mean"], old["running_std"], axis, eps, mode)
        tf = tensorflow()
        shape = [1] * x.ndim
        shape[axis] = -1
        r = lambda v: v.reshape(shape)  # noqa: E731
        if mode == 2:
            reduce = [i for i in range(x.ndim) if i != axis % x.ndim]
            mean, var = tf.nn.moments(tf.constant(x), reduce, keepdims=True)
        elif mode == 1:  # each sample over its last axis, the std plus epsilon (what model convert builds)
            mean, var = tf.nn.moments(tf.constant(x), [x.ndim - 1], keepdims=True)
            normed = (x - mean) / (tf.sqrt(var + eps) + eps)
            return want, (normed * r(new["gamma"]) + r(new["beta"])).numpy(), []
        else:
            mean, var = r(new["moving_mean"]), r(new["moving_variance"])
        got = tf.nn.batch_normalization(x, mean, var, r(new["beta"]), r(new["gamma"]), k2.get("epsilon", eps)).numpy()
        return want, got, []
