"""Embedding (Keras 3 Embedding): Keras 1 stored `{name}_W` (input_dim, output_dim), the table itself."""

from __future__ import annotations

import numpy as np

from kmigrate.weights.families.base import Family, tensorflow
from kmigrate.weights.h5io import BadInput


def reference(W: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Keras 1.2.2 Embedding: row x of W for every index (K.gather(W, x))."""
    return W[x]


class Embedding(Family):
    name = "embedding"
    stored = ("W",)
    new = ("embeddings",)
    config_optional = True  # the proof needs only what the Keras 1 config says

    def plan(self, p, ctx):
        cfg = p.keras2_config or {}
        want = (cfg.get("input_dim"), cfg.get("output_dim"))
        shape = p.weights[0].shape
        if len(shape) != 2 or any(w is not None and w != s for w, s in zip(want, shape)):
            raise BadInput(f"Embedding table shape {shape} does not match the model (input_dim={want[0]}, "
                           f"output_dim={want[1]})", p.old_name)

    def convert(self, p, arrays):
        # old: W (input_dim, output_dim)   new: embeddings (input_dim, output_dim), unchanged
        return [("embeddings", arrays["W"])]

    def check(self, p, old, new, rng):
        W = old["W"]
        length = p.input_shape[0] if p.input_shape and p.input_shape[0] else 5
        x = rng.integers(0, W.shape[0], (2, length))
        x[0, 0], x[-1, -1] = 0, W.shape[0] - 1  # both ends of the table
        return reference(W, x), tensorflow().gather(new["embeddings"], x).numpy(), []
