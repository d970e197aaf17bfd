"""LSTM (Keras 3 LSTM): Keras 1 stored 12 arrays, one (W, U, b) triple per gate in the order i, c, f, o
(3 concatenated i, f, c, o arrays with consume_less='gpu'); Keras 3 loads 3 arrays in the order i, f, c, o."""

from __future__ import annotations

import numpy as np

from kmigrate.weights.families.recurrent import Recurrent, activation, run_steps


def gate_arrays(old: dict[str, np.ndarray], gates: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Keras 1's own (W, U, b) of each gate: the stored triple, or its slice of a consume_less='gpu' array
    (Keras 1.2.2 LSTM.step: z0..z3 = i, f, c, o)."""
    if "W" not in old:
        return {g: (old[f"W_{g}"], old[f"U_{g}"], old[f"b_{g}"]) for g in gates}
    u = old["U"].shape[0]
    return {g: (old["W"][:, k * u:(k + 1) * u], old["U"][:, k * u:(k + 1) * u], old["b"][k * u:(k + 1) * u])
            for k, g in enumerate("ifco") if g in gates}


def reference(old, x, act_name="tanh", inner_name="hard_sigmoid", go_backwards=False, layer="", mask=None):
    """Keras 1.2.2 LSTM on x (batch, time, in), every step's output:
    i = inner(x W_i + b_i + h U_i); f = inner(x W_f + b_f + h U_f); o = inner(x W_o + b_o + h U_o)
    c = f * c + i * act(x W_c + b_c + h U_c); h = o * act(c)."""
    act = activation(act_name, "activation", layer)
    inner = activation(inner_name, "inner_activation", layer)
    g = gate_arrays(old, "icfo")
    units = g["i"][1].shape[0]

    def pre(gate, xt, h):
        W, U, b = g[gate]
        return xt @ W + b + h @ U

    def step(xt, states):
        h, c = states
        i, f, o = inner(pre("i", xt, h)), inner(pre("f", xt, h)), inner(pre("o", xt, h))
        c = f * c + i * act(pre("c", xt, h))
        h = o * act(c)
        return h, [h, c]
    zeros = np.zeros((x.shape[0], units))
    return run_steps(x, step, [zeros, zeros], go_backwards, mask)


class LSTM(Recurrent):
    name = "lstm"
    gates = ("i", "c", "f", "o")
    keras3_gates = ("i", "f", "c", "o")
    inner_gates = ("i", "f", "o")
    keras3_class = "LSTM"

    def reference(self, p, old, x, go_backwards, mask=None):
        k1 = p.keras1_config or {}
        return reference(old, x, k1.get("activation", "tanh"), p.facts["inner"], go_backwards, p.old_name, mask)
