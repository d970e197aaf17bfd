"""What the recurrent families (simple_rnn, gru, lstm, conv_lstm2d) share: Keras 1's activations, the
gate scaling that keeps Keras 1's hard_sigmoid on Keras 3's built-in one, and running Keras 3's layer.

Keras 1's `inner_activation` defaulted to 'hard_sigmoid' = clip(0.2 x + 0.5, 0, 1); Keras 3's
'hard_sigmoid' is relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1), so Keras 1 hard_sigmoid(x) is Keras 3
hard_sigmoid(1.2 x) exactly. The migrated layer gets recurrent_activation='hard_sigmoid' (the rules
write it), and the families multiply the kernel, recurrent kernel and bias columns of every gate that
goes through the inner activation by GATE_SCALE.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kmigrate.weights.families.base import Family, check_suffixes, keras
from kmigrate.weights.h5io import BadInput
from kmigrate.weights.layer import Context, LayerPlan

GATE_SCALE = 1.2
KERAS1_INNER_DEFAULT = "hard_sigmoid"

# Keras 1.2.2 activations (keras/activations.py on Theano), as numpy
ACTIVATIONS = {
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
    "relu": lambda x: np.maximum(x, 0.0),
    "linear": lambda x: x,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    # Keras 1.2.2 took the softmax over the last axis (2-D: each sample, 3-D: each time step)
    "softmax": lambda x: (lambda e: e / e.sum(axis=-1, keepdims=True))(np.exp(x - x.max(axis=-1, keepdims=True))),
}

# The Keras 3 constructor arguments that decide what the layer computes at inference; the proof builds
# the layer from these only (initializers, regularizers, dropout, names and shapes change nothing there)
FORWARD_ARGS = {"units", "filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
                "activation", "recurrent_activation", "use_bias", "go_backwards", "reset_after"}


def activation(name: str, what: str, layer: str):
    if name not in ACTIVATIONS:
        raise BadInput(f"{what} {name!r} has no numpy statement here; the layer cannot be proven", layer)
    return ACTIVATIONS[name]


def inner_activation(p: LayerPlan) -> str:
    """The Keras 1 gate activation: the saved config's, else Keras 1's default (said in the report)."""
    cfg = p.keras1_config
    if cfg is not None and "inner_activation" in cfg:
        return cfg["inner_activation"]
    if "inner" not in p.facts:
        p.notes.append(f"no config for this layer: assumed Keras 1's default inner_activation="
                       f"'{KERAS1_INNER_DEFAULT}' (gate weights scaled by {GATE_SCALE} for Keras 3's hard_sigmoid)")
    return KERAS1_INNER_DEFAULT


def run_steps(x: np.ndarray, step, states: list[np.ndarray], go_backwards: bool,
              mask: np.ndarray | None = None) -> np.ndarray:
    """Keras 1's K.rnn on a (batch, time, ...) input: the output of every step, in processing order.
    A `mask` (batch, time) of False steps keeps the previous output (zeros before the first) and states."""
    outputs = []
    steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    for t in steps:
        out, new_states = step(x[:, t], states)
        if mask is not None:
            keep = mask[:, t].reshape((-1,) + (1,) * (out.ndim - 1))
            out = np.where(keep, out, outputs[-1] if outputs else np.zeros_like(out))
            new_states = [np.where(keep, n, s) for n, s in zip(new_states, states)]
        states = new_states
        outputs.append(out)
    return np.stack(outputs, axis=1)


PROOF_STEPS = 8


class Recurrent(Family):
    """A recurrent family: Keras 1 stored one (W, U, b) triple per gate, or ('gpu') the three concatenated."""

    gates: tuple[str, ...] = ()  # Keras 1 save order of the per-gate triples
    keras3_gates: tuple[str, ...] = ()  # column blocks of Keras 3's (and Keras 1 'gpu') concatenated arrays
    inner_gates: tuple[str, ...] = ()  # gates through the inner activation (scaled for hard_sigmoid)
    keras3_class = ""
    new = ("kernel", "recurrent_kernel", "bias")
    config_optional = True  # the proof needs only what the Keras 1 config says

    @property
    def per_gate(self) -> tuple[str, ...]:
        return tuple(f"{w}_{g}" for g in self.gates for w in ("W", "U", "b"))

    def roles(self, p: LayerPlan, ctx: Context) -> tuple[str, ...]:
        n = len(p.weights)
        if n == len(self.per_gate):
            roles = self.per_gate
        elif n == 3:  # one triple: SimpleRNN, or consume_less='gpu' (gates concatenated)
            roles = ("W", "U", "b")
        else:
            raise BadInput(f"{p.keras1_class} has {n} weights; Keras 1 stored {len(self.per_gate)} "
                           "(or 3 with consume_less='gpu')", p.old_name)
        check_suffixes(p, roles)
        return roles

    def new_names(self, p: LayerPlan) -> tuple[str, ...]:
        return tuple(f"{n}:0" for n in self.new)

    def plan(self, p: LayerPlan, ctx: Context) -> None:
        inner = inner_activation(p) if self.inner_gates else None
        p.facts["inner"] = inner
        p.facts["scale"] = GATE_SCALE if inner == "hard_sigmoid" else 1.0
        p.facts["units"] = p.weights[p.roles.index("U_" + self.gates[0] if len(p.roles) > 3 else "U")].shape[0]

    def transform(self, p: LayerPlan) -> str:
        parts = []
        if len(p.roles) > 3:
            parts.append(f"{len(p.roles)} -> 3: concatenate gates {','.join(self.gates)} as "
                         f"{','.join(self.keras3_gates)}")
        if p.facts.get("scale", 1.0) != 1.0:
            parts.append(f"gates {','.join(self.inner_gates)} x{p.facts['scale']:g} (hard_sigmoid)")
        return ", ".join(parts) or "copy"

    def convert(self, p, arrays):
        """Per-gate arrays are concatenated in Keras 3's gate order along the last axis; each gate through
        the inner activation is multiplied by the gate scale.
        # old: W_g (in, units), U_g (units, units), b_g (units,) per gate g   (or 'gpu': already joined)
        # new: kernel (in, n*units), recurrent_kernel (units, n*units), bias (n*units,)
        """
        units = p.facts["units"]
        out = []
        for w, new in zip(("W", "U", "b"), self.new):
            if len(p.roles) > 3:
                blocks = [arrays[f"{w}_{g}"] for g in self.keras3_gates]
            else:
                whole = arrays[w]
                if whole.shape[-1] != units * len(self.keras3_gates):
                    raise ValueError(f"{w} has {whole.shape[-1]} columns; {len(self.keras3_gates)} gates of "
                                     f"{units} units need {units * len(self.keras3_gates)}")
                blocks = [whole[..., i * units:(i + 1) * units] for i in range(len(self.keras3_gates))]
            scale = p.facts.get("scale", 1.0)
            blocks = [b * scale if g in self.inner_gates else b for g, b in zip(self.keras3_gates, blocks)]
            out.append((new, np.concatenate(blocks, axis=-1)))
        return out

    # ------------------------------------------------------------------ the proof

    def keras3_config(self, p: LayerPlan) -> dict[str, Any]:
        """The migrated layer's arguments: the rules' Keras 2 config, else what the rules would write."""
        cfg = p.keras2_config
        if cfg is None:
            k1 = p.keras1_config or {}
            cfg = {"units": p.facts["units"], "activation": k1.get("activation", "tanh"),
                   "go_backwards": k1.get("go_backwards", False)}
            if self.inner_gates:
                cfg["recurrent_activation"] = p.facts["inner"]
            cfg.update(self.keras3_defaults())
        return {k: v for k, v in cfg.items() if k in FORWARD_ARGS}

    def keras3_defaults(self) -> dict[str, Any]:
        return {}

    def keras3_layer(self, p: LayerPlan, go_backwards: bool | None = None):
        cfg = self.keras3_config(p)
        if go_backwards is not None:
            cfg["go_backwards"] = go_backwards
        return getattr(keras().layers, self.keras3_class)(**cfg, return_sequences=True, dtype="float64")

    def run_keras3(self, p: LayerPlan, new: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        layer = self.keras3_layer(p)
        layer.build(x.shape)
        layer.set_weights([new[n] for n in self.new])
        return np.asarray(layer(x))

    def sample(self, p: LayerPlan, old: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        # a few steps pin every weight (the recurrent ones from the second step); a long sequence adds none
        steps = min(p.input_shape[0], PROOF_STEPS) if p.input_shape and p.input_shape[0] else 5
        dim = old["W_" + self.gates[0] if len(old) > 3 else "W"].shape[0]
        return rng.uniform(-2, 2, (2, steps, dim))

    def check(self, p, old, new, rng):
        x = self.sample(p, old, rng)
        go_backwards = bool((p.keras1_config or {}).get("go_backwards", False))
        return self.reference(p, old, x, go_backwards), self.run_keras3(p, new, x), []

    def reference(self, p: LayerPlan, old: dict[str, np.ndarray], x: np.ndarray, go_backwards: bool,
                  mask: np.ndarray | None = None) -> np.ndarray:
        """Keras 1's layer on `old` (its stored arrays), every step's output in processing order."""
        raise NotImplementedError
