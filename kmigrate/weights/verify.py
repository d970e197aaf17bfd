"""Numerical proof of a conversion, per layer: the layer's family runs Keras 1's equations (numpy, original
arrays) and TensorFlow / Keras 3 (converted arrays) on the same random input; this module compares them.
TensorFlow is imported by the families, lazily, and only here."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kmigrate.weights.families.base import tensorflow as _tf  # noqa: F401 - warm-up hook for tests
from kmigrate.weights.layer import LayerPlan


@dataclass(frozen=True)
class Tolerance:
    """A layer passes when max|ref - tf| <= atol + rtol * max|ref| (both sides computed in float64)."""

    rtol: float = 1e-6
    atol: float = 1e-9


TOLERANCE = Tolerance()


@dataclass
class LayerCheck:
    layer: str
    max_abs: float
    max_rel: float
    ok: bool
    notes: list[str] = field(default_factory=list)
    message: str | None = None


def tensorflow_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


def compare(layer: str, want: np.ndarray, got: np.ndarray, tol: Tolerance = TOLERANCE) -> LayerCheck:
    """Keras 1's numbers against Keras 3's: the max error, relative to the largest Keras 1 value."""
    want, got = np.asarray(want, np.float64), np.asarray(got, np.float64)
    if want.shape != got.shape:
        return LayerCheck(layer, float("inf"), float("inf"), False,
                          message=f"output shape {got.shape} differs from Keras 1's {want.shape}")
    err = float(np.max(np.abs(want - got))) if want.size else 0.0
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    rel = err / scale if scale else err
    ok = err <= tol.atol + tol.rtol * scale
    msg = None if ok else (f"converted weights do not reproduce Keras 1: max abs error {err:.3g} "
                           f"(relative {rel:.3g}, tolerance rtol={tol.rtol:g})")
    return LayerCheck(layer, err, rel, ok, message=msg)


def check_layer(p: LayerPlan, old: dict[str, np.ndarray], new: dict[str, np.ndarray], seed: int = 0,
                tol: Tolerance = TOLERANCE) -> LayerCheck:
    """Run `old` (Keras 1 arrays by role) through the family's reference and `new` (Keras 3 arrays by
    name) through TensorFlow / Keras 3; compare."""
    rng = np.random.default_rng(seed)
    old = {k: np.asarray(v, dtype=np.float64) for k, v in old.items()}
    new = {k: np.asarray(v, dtype=np.float64) for k, v in new.items()}
    want, got, notes = p.family.check(p, old, new, rng)
    check = compare(p.old_name, want, got, tol)
    check.notes.extend(notes)
    return check


def check_streamed(p: LayerPlan, read_old, read_new, new_shapes: dict[str, tuple], seed: int = 0,
                   tol: Tolerance = TOLERANCE) -> LayerCheck:
    """`check_layer` for a layer too big to hold: the family reads both files a block at a time."""
    rng = np.random.default_rng(seed)

    def old64(role, rows):
        return np.asarray(read_old(role, rows), dtype=np.float64)

    def new64(name, rows):
        return np.asarray(read_new(name, rows), dtype=np.float64)
    want, got, notes = p.family.check_streamed(p, old64, new64, new_shapes, rng)
    check = compare(p.old_name, want, got, tol)
    check.notes.extend(notes)
    return check
