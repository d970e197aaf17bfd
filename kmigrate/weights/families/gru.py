"""GRU (Keras 3 GRU with reset_after=False, Keras 1's reset placement): Keras 1 stored 9 arrays, one
(W, U, b) triple per gate in the order z, r, h (3 concatenated z, r, h arrays with consume_less='gpu');
Keras 3 loads 3 arrays in the same gate order."""

from __future__ import annotations

import numpy as np

from kmigrate.weights.families.recurrent import Recurrent, activation, run_steps


def gate_arrays(old: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Keras 1's own (W, U, b) of each gate: the stored triple, or its slice of a consume_less='gpu' array
    (Keras 1.2.2 GRU.step: matrix_x[:, :u] = z, [u:2u] = r, [2u:] = h)."""
    if "W" not in old:
        return {g: (old[f"W_{g}"], old[f"U_{g}"], old[f"b_{g}"]) for g in "zrh"}
    u = old["U"].shape[0]
    return {g: (old["W"][:, k * u:(k + 1) * u], old["U"][:, k * u:(k + 1) * u], old["b"][k * u:(k + 1) * u])
            for k, g in enumerate("zrh")}


def reference(old, x, act_name="tanh", inner_name="hard_sigmoid", go_backwards=False, layer="", mask=None):
    """Keras 1.2.2 GRU on x (batch, time, in), every step's output:
    z = inner(x W_z + b_z + h U_z); r = inner(x W_r + b_r + h U_r)
    hh = act(x W_h + b_h + (r * h) U_h); h = z * h + (1 - z) * hh."""
    act = activation(act_name, "activation", layer)
    inner = activation(inner_name, "inner_activation", layer)
    g = gate_arrays(old)
    units = g["z"][1].shape[0]

    def step(xt, states):
        (h,) = states
        z = inner(xt @ g["z"][0] + g["z"][2] + h @ g["z"][1])
        r = inner(xt @ g["r"][0] + g["r"][2] + h @ g["r"][1])
        hh = act(xt @ g["h"][0] + g["h"][2] + (r * h) @ g["h"][1])
        h = z * h + (1 - z) * hh
        return h, [h]
    return run_steps(x, step, [np.zeros((x.shape[0], units))], go_backwards, mask)


class GRU(Recurrent):
    name = "gru"
    gates = ("z", "r", "h")
    keras3_gates = ("z", "r", "h")
    inner_gates = ("z", "r")
    keras3_class = "GRU"

    def keras3_defaults(self):
        return {"reset_after": False}  # Keras 1 applied the reset gate before the recurrent product

    def reference(self, p, old, x, go_backwards, mask=None):
        k1 = p.keras1_config or {}
        return reference(old, x, k1.get("activation", "tanh"), p.facts["inner"], go_backwards, p.old_name, mask)
