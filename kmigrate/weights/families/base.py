"""What a weight family is, and the pieces several families share (the flip, layout and backend questions).

A family owns one kind of stored weights: which arrays Keras 1 wrote (N of them) and which arrays the
Keras 3 layer loads (M of them), how the layout is detected, the array transform, an independent numpy
statement of Keras 1's own equations on the ORIGINAL arrays, and the TensorFlow / Keras 3 computation on
the CONVERTED arrays that the proof compares it with. A rule names its family with `weights = "<name>"`.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np

from kmigrate.weights.h5io import BadInput
from kmigrate.weights.layer import Context, LayerPlan

LAYOUTS = ("th", "tf")
BACKENDS = ("theano", "tensorflow")

# `read(weight, rows, groups=1)` returns a stored array, or a block of its rows (h5io.read_array)
Reader = Callable[..., np.ndarray]


class Family:
    """Default behaviour: stored arrays copied one to one under the Keras 3 names."""

    name: str = ""
    stored: tuple[str, ...] = ()  # Keras 1 weight suffixes (`{layer}_{suffix}`), in save order
    required: int = 1  # the leading stored arrays every file has; the rest are optional (the bias)
    new: tuple[str, ...] = ()  # Keras 3 weight names, in load order (trainable, then non-trainable)
    bias_role: str | None = None  # the stored suffix that is absent when the layer had bias=False
    flips: bool = False  # Theano-trained kernels are spatially flipped (the backend question applies)
    config_optional: bool = False  # the arrays convert even when the rules refuse the layer's config

    # ------------------------------------------------------------------ planning

    def roles(self, p: LayerPlan, ctx: Context) -> tuple[str, ...]:
        """Match the stored arrays to the family's roles (Keras 1 save order); BadInput if they do not fit."""
        n = len(p.weights)
        if not self.required <= n <= len(self.stored):
            raise BadInput(f"{p.keras1_class} has {n} weights; Keras 1 stored {self.required} to "
                           f"{len(self.stored)}", p.old_name)
        roles = self.stored[:n]
        check_suffixes(p, roles)
        if self.bias_role and ctx.has_config:
            use_bias = (p.keras2_config or {}).get("use_bias", True)
            if (self.bias_role in roles) != bool(use_bias):
                raise BadInput(f"config says use_bias={use_bias} but the file has {n} weights", p.old_name)
        return roles

    def plan(self, p: LayerPlan, ctx: Context) -> None:
        """Decide layout, flip and anything else the transform needs (may raise BadInput)."""

    def transform(self, p: LayerPlan) -> str:
        return "copy"

    # ------------------------------------------------------------------ conversion

    def convert(self, p: LayerPlan, arrays: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
        """The stored arrays (by role) -> the Keras 3 arrays (by name), in load order."""
        return [(new, arrays[old]) for old, new in zip(self.stored, self.new) if old in arrays]

    def write(self, p: LayerPlan, read: Reader, progress=None) -> list[tuple[str, Any]]:
        """Read and convert the layer: (name, array) pairs, or (name, (shape, blocks)) for a streamed one."""
        arrays = {}
        for w, role in zip(p.weights, p.roles):
            arrays[role] = read(w, None)
            if progress:
                progress(arrays[role].nbytes)
        try:
            return self.convert(p, arrays)
        except ValueError as e:
            raise BadInput(str(e), p.old_name) from None

    def new_names(self, p: LayerPlan) -> tuple[str, ...]:
        """The Keras 3 weight names this layer's file group lists."""
        present = [new for old, new in zip(self.stored, self.new) if old in p.roles]
        return tuple(f"{n}:0" for n in present)

    # ------------------------------------------------------------------ the proof

    def streams(self, p: LayerPlan) -> bool:
        """True when the layer is too big to hold: `write` yields blocks and the proof is `check_streamed`."""
        return False

    def check_streamed(self, p: LayerPlan, read_old: Callable, read_new: Callable,
                       new_shapes: dict[str, tuple], rng: np.random.Generator):
        """`check` for a streamed layer: `read_old(role, rows)` and `read_new(name, rows)` read a block of
        rows (None: all) of an original or converted array."""
        raise NotImplementedError(f"no streamed check for the {self.name} family")

    def check(self, p: LayerPlan, old: dict[str, np.ndarray], new: dict[str, np.ndarray],
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(Keras 1 reference on `old`, TensorFlow / Keras 3 on `new`, notes), on the same random input."""
        raise NotImplementedError(f"no numerical check for the {self.name} family")


# ---------------------------------------------------------------------- shared helpers

def check_suffixes(p: LayerPlan, roles: tuple[str, ...]) -> None:
    """Under a Keras 1 default layer name, each stored name must end with its role's suffix."""
    from kmigrate.weights.naming import keras1_default

    if not keras1_default(p.old_name, p.keras1_class):
        return
    for w, role in zip(p.weights, roles):
        base = re.sub(r"(:\d+)?$", "", w.name)
        if not base.endswith("_" + role):
            raise BadInput(f"weight {w.name!r} is not the expected `{role}` (Keras 1 save order)", p.old_name)


def check_ndim(w: np.ndarray, ndim: int, what: str) -> None:
    if w.ndim != ndim:
        raise ValueError(f"{what} must be {ndim}-D, got shape {tuple(w.shape)}")


def check_layout(layout: str | None) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


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


def fits(actual: tuple, want: tuple) -> bool:
    """A shape matches a pattern whose None entries are unknown sizes."""
    return len(actual) == len(want) and all(w is None or a == w for a, w in zip(actual, want))


def bias_filters(p: LayerPlan, filters: int | None) -> int | None:
    """The filter count, checked against the bias length when there is a bias."""
    if "b" not in p.roles:
        return filters
    shape = p.weights[p.roles.index("b")].shape
    if len(shape) != 1 or (filters is not None and shape[0] != filters):
        raise BadInput(f"bias shape {shape} does not match filters={filters}", p.old_name)
    return shape[0]


def decide_layout(p: LayerPlan, ctx: Context, found: list[str], detail: str) -> None:
    """th or tf: the config's dim_ordering, else the shapes when only one fits, else --layout, else ask."""
    shape = p.weights[0].shape
    cfg_dim = (p.keras1_config or {}).get("dim_ordering")
    settings = ctx.settings
    if cfg_dim in LAYOUTS:
        if cfg_dim not in found:
            raise BadInput(f"kernel shape {shape} does not match dim_ordering={cfg_dim!r} ({detail})", p.old_name)
        p.layout, p.layout_source = cfg_dim, "config"
        if settings.layout and settings.layout != cfg_dim:
            p.notes.append(f"--layout {settings.layout} ignored: the config says dim_ordering={cfg_dim!r}")
        return
    if len(found) == 1:
        p.layout, p.layout_source = found[0], "shapes"
        if settings.layout and settings.layout != found[0]:
            raise BadInput(f"--layout {settings.layout} contradicts the kernel shape {shape}, which only "
                           f"fits {found[0]!r}", p.old_name)
        return
    if not found:
        raise BadInput(f"kernel shape {shape} fits neither th nor tf layout ({detail})", p.old_name)
    if settings.layout:
        p.layout, p.layout_source = settings.layout, "--layout"
        return
    p.unknown.append("layout: pass --layout th|tf")
    if settings.lenient:
        return
    raise BadInput(f"kernel shape {shape} fits both th (out, in, rows, cols) and tf (rows, cols, in, out) "
                   "orderings and no config records dim_ordering: pass --layout th|tf (the transpose depends "
                   "on it)", p.old_name)


def decide_flip(p: LayerPlan, ctx: Context, spatial: tuple[int, ...]) -> None:
    """Theano-trained kernels larger than 1x1 are flipped; the file never says which backend trained it."""
    settings = ctx.settings
    p.backend = settings.backend
    if all(k == 1 for k in spatial):
        return  # a 1x1 kernel reads the same flipped
    if settings.backend is None:
        p.unknown.append("backend: pass --backend theano|tensorflow")
        if settings.lenient:
            return
        raise BadInput(f"{'x'.join(map(str, spatial))} kernel: pass --backend theano|tensorflow (Theano "
                       "trained true convolution, so its kernels are flipped; TensorFlow cross-correlation; "
                       "the file does not record which one trained it)", p.old_name)
    p.flip = settings.backend == "theano"


def tup(v: Any, n: int) -> tuple[int, ...]:
    if v is None:
        return (1,) * n
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    return tuple(int(x) for x in v)


def tensorflow():
    """TensorFlow (with Keras 3), imported on first use only (the rest of kmigrate never needs it).

    Its start-up talks on the process's stderr from C++ (absl's pre-init warning, oneDNN and CUDA
    notices, a cuInit error on machines without a GPU), which no Python setting silences; the first
    import and device set-up run with file descriptor 2 pointed at /dev/null, so a conversion's stderr
    carries only kmigrate's own lines."""
    import sys

    if "tensorflow" in sys.modules and "keras" in sys.modules:
        return sys.modules["tensorflow"]
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            import keras  # noqa: F401 - loaded here so its own start-up is silenced too
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe happens here
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return tf


def keras():
    """Keras 3 on TensorFlow, imported on first use only."""
    tensorflow()
    import keras as k

    return k
