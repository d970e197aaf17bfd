"""SimpleRNN (Keras 3 SimpleRNN): Keras 1 stored W, U, b (in every consume_less mode); copied as they are."""

from __future__ import annotations

import numpy as np

from kmigrate.weights.families.recurrent import PROOF_STEPS, Recurrent, activation, run_steps


def reference(W, U, b, x, act_name="tanh", go_backwards=False, layer="", mask=None):
    """Keras 1.2.2 SimpleRNN on x (batch, time, in), every step's output: h = act(x W + b + h U)."""
    act = activation(act_name, "activation", layer)

    def step(xt, states):
        h = act(xt @ W + b + states[0] @ U)
        return h, [h]
    return run_steps(x, step, [np.zeros((x.shape[0], U.shape[0]))], go_backwards, mask)


class SimpleRNN(Recurrent):
    name = "simple_rnn"
    gates = ("",)  # one triple, stored as W, U, b
    keras3_gates = ("",)
    keras3_class = "SimpleRNN"

    @property
    def per_gate(self):
        return ("W", "U", "b")

    def plan(self, p, ctx):
        p.facts["units"] = p.weights[1].shape[0]

    def transform(self, p):
        return "copy"

    def convert(self, p, arrays):
        # old: W (in, units), U (units, units), b (units,)   new: kernel, recurrent_kernel, bias, unchanged
        return [("kernel", arrays["W"]), ("recurrent_kernel", arrays["U"]), ("bias", arrays["b"])]

    def sample(self, p, old, rng):
        steps = min(p.input_shape[0], PROOF_STEPS) if p.input_shape and p.input_shape[0] else 5
        return rng.uniform(-2, 2, (2, steps, old["W"].shape[0]))

    def reference(self, p, old, x, go_backwards, mask=None):
        k1 = p.keras1_config or {}
        return reference(old["W"], old["U"], old["b"], x, k1.get("activation", "tanh"), go_backwards, p.old_name, mask)
