"""ConvLSTM2D (Keras 3 ConvLSTM2D): Keras 1 stored 12 arrays, one (W, U, b) triple per gate in the order
i, c, f, o, kernels in the layer's th/tf layout; Keras 3 loads 3 arrays with the gates i, f, c, o joined
on the filter axis. Theano-trained kernels (input and recurrent) are flipped like every convolution."""

from __future__ import annotations

import numpy as np

from kmigrate.weights.families import correlation
from kmigrate.weights.families.base import decide_flip, decide_layout, flip_spatial, keras, tup
from kmigrate.weights.families.conv import conv_kernel, layouts_matching, proof_extent
from kmigrate.weights.families import recurrent
from kmigrate.weights.families.recurrent import Recurrent, activation, inner_activation, run_steps
from kmigrate.weights.layer import Context, LayerPlan

KERAS1_GATES = ("i", "c", "f", "o")


def reference(old, x, layout, backend, act_name="tanh", inner_name="hard_sigmoid", border_mode="valid",
              subsample=(1, 1), go_backwards=False, layer=""):
    """Keras 1.2.2 ConvLSTM2D on x (batch, time, ...frame in `layout`), every step's output:
    x_g = conv(x, W_g, border_mode, subsample) + b_g; h_g = conv(h, U_g, 'same')
    i, f, o = inner(x_g + h_g); c = f * c + i * act(x_c + h_c); h = o * act(c)
    (conv: Theano true convolution or TensorFlow correlation, in the layer's dim_ordering)."""
    act = activation(act_name, "activation", layer)
    inner = activation(inner_name, "inner_activation", layer)

    def xconv(xt, g):
        return correlation.conv(xt, old[f"W_{g}"], old[f"b_{g}"], layout, backend, subsample, border_mode)

    def hconv(h, g):
        return correlation.conv(h, old[f"U_{g}"], None, layout, backend, (1, 1), "same")

    def step(xt, states):
        h, c = states
        pre = {g: xconv(xt, g) + hconv(h, g) for g in KERAS1_GATES}
        i, f, o = inner(pre["i"]), inner(pre["f"]), inner(pre["o"])
        c = f * c + i * act(pre["c"])
        h = o * act(c)
        return h, [h, c]
    zeros = np.zeros_like(correlation.conv(x[:, 0], old["W_i"], None, layout, backend, subsample, border_mode))
    return run_steps(x, step, [zeros, zeros], go_backwards)


class ConvLSTM2D(Recurrent):
    name = "conv_lstm2d"
    gates = KERAS1_GATES
    keras3_gates = ("i", "f", "c", "o")
    inner_gates = ("i", "f", "o")
    keras3_class = "ConvLSTM2D"
    flips = True

    def roles(self, p: LayerPlan, ctx: Context) -> tuple[str, ...]:
        roles = super().roles(p, ctx)
        if len(roles) != 12:
            from kmigrate.weights.h5io import BadInput

            raise BadInput(f"ConvLSTM2D has {len(roles)} weights; Keras 1 stored 12", p.old_name)
        return roles

    def plan(self, p: LayerPlan, ctx: Context) -> None:
        p.facts["inner"] = inner_activation(p)
        p.facts["scale"] = recurrent.GATE_SCALE if p.facts["inner"] == "hard_sigmoid" else 1.0
        shape = p.weights[0].shape  # W_i
        filters = p.weights[2].shape[0]  # b_i
        p.facts["units"] = filters
        cfg = p.keras2_config or {}
        ks = tup(cfg["kernel_size"], 2) if "kernel_size" in cfg else None
        decide_layout(p, ctx, layouts_matching(shape, filters, None, ks), f"filters={filters}, kernel_size={ks}")
        if p.layout is None:
            return
        spatial = shape[2:] if p.layout == "th" else shape[:-2]
        decide_flip(p, ctx, spatial)
        border = (p.keras1_config or {}).get("border_mode", cfg.get("padding", "valid"))
        if p.keras1_config is not None and "subsample" not in p.keras1_config:
            p.notes.append("Keras 1.2.2 does not save ConvLSTM2D's subsample in its config: the proof runs "
                           "strides 1 (the arrays do not depend on them); the migrated code keeps the strides "
                           "the Keras 1 code gave")
        if p.flip and any(k % 2 == 0 for k in spatial):
            if border == "same":  # measured: exact to 5e-16 against the Keras 1 statement
                p.notes.append(f"warning: Theano's 'same' convolutions with an even kernel {tuple(spatial)} start "
                               "one step earlier than Keras 3's; an exact Keras 3 form is kernel_size + 1 on each "
                               "even axis with the flipped kernels padded by a zero at the end, which kmigrate "
                               "does not emit yet")
            else:
                p.notes.append(f"warning: Theano's 'same' convolution of the recurrent state with an even kernel "
                               f"{tuple(spatial)} starts one step earlier than Keras 3's, and with "
                               "border_mode='valid' on the input no Keras 3 ConvLSTM2D reproduces it")

    def transform(self, p: LayerPlan) -> str:
        parts = ["12 -> 3: concatenate gates i,c,f,o as i,f,c,o"]
        if p.layout == "th":
            parts.append("transpose th->(2,3,1,0)")
        if p.flip:
            parts.append("flip spatial (Theano)")
        if p.facts.get("scale", 1.0) != 1.0:
            parts.append(f"gates i,f,o x{p.facts['scale']:g} (hard_sigmoid)")
        return ", ".join(parts)

    def convert(self, p, arrays):
        """Each gate's kernels move to the Keras 3 layout (and are flipped when Theano-trained), then
        the gates are joined on the filter axis in Keras 3's order, inner-activation gates scaled.
        # old th: W_g (filters, in, r, c), U_g (filters, filters, r, c), b_g (filters,)   per gate g
        # old tf: W_g (r, c, in, filters), U_g (r, c, filters, filters)
        # new:    kernel (r, c, in, 4*filters), recurrent_kernel (r, c, filters, 4*filters), bias (4*filters,)
        """
        scale = p.facts.get("scale", 1.0)
        out = []
        for w, new in (("W", "kernel"), ("U", "recurrent_kernel"), ("b", "bias")):
            blocks = []
            for g in self.keras3_gates:
                a = arrays[f"{w}_{g}"]
                if w != "b":
                    a = conv_kernel(a, p.layout)
                    if p.flip:
                        a = flip_spatial(a, 2)
                blocks.append(a * scale if g in self.inner_gates else a)
            out.append((new, np.concatenate(blocks, axis=-1)))
        return out

    def sample(self, p, old, rng):
        W = old["W_i"]
        first = p.layout == "th"
        if not (p.input_shape and None not in p.input_shape):
            frame = (W.shape[1], 7, 7) if first else (7, 7, W.shape[2])
            return rng.uniform(-1, 1, (2, 3) + frame)
        # the model's frames cut as a convolution's proof input is (conv.proof_extent: the same padding,
        # every tap used), and a few steps: the recurrent kernels act from the second one
        steps, frame = p.input_shape[0], tuple(p.input_shape[1:])
        ks, n = (W.shape[2:], frame[1:]) if first else (W.shape[:2], frame[:-1])
        s = tup((p.keras1_config or {}).get("subsample"), 2)
        spatial = tuple(proof_extent(ni, ki, si) for ni, ki, si in zip(n, ks, s))
        frame = (frame[0],) + spatial if first else spatial + (frame[-1],)
        return rng.uniform(-1, 1, (2, min(steps, recurrent.PROOF_STEPS)) + frame)

    def check(self, p, old, new, rng):
        k1 = p.keras1_config or {}
        x = self.sample(p, old, rng)
        go_backwards = bool(k1.get("go_backwards", False))
        want = reference(old, x, p.layout, p.backend or "tensorflow", k1.get("activation", "tanh"), p.facts["inner"],
                         k1.get("border_mode", "valid"), k1.get("subsample", (1, 1)), go_backwards, p.old_name)
        # TensorFlow's CPU Conv2D takes channels-first float64 input only through NHWC (measured: Keras 3's
        # channels_first ConvLSTM2D raises in float64, runs in float32); the kernels do not depend on
        # data_format, so the float64 proof runs the frames channels-last
        first = p.layout == "th"
        cfg = self.keras3_config(p)
        cfg["data_format"] = "channels_last"
        layer = keras().layers.ConvLSTM2D(**cfg, return_sequences=True, dtype="float64")
        xt = np.moveaxis(x, 2, -1) if first else x
        layer.build(xt.shape)
        layer.set_weights([new[n] for n in self.new])
        got = np.asarray(layer(xt))
        return want, (np.moveaxis(got, -1, 2) if first else got), []

    def keras3_config(self, p):
        cfg = super().keras3_config(p)
        if p.keras2_config is None:
            k1 = p.keras1_config or {}
            W = p.weights[0].shape
            cfg = {"filters": p.facts["units"], "kernel_size": W[2:] if p.layout == "th" else W[:2],
                   "padding": k1.get("border_mode", "valid"), "activation": k1.get("activation", "tanh"),
                   "recurrent_activation": p.facts["inner"], "go_backwards": k1.get("go_backwards", False)}
        cfg.pop("units", None)
        return cfg
