"""The whole-model proof: the converted Keras 3 model against Keras 1.2.2's numpy forward pass on the original
arrays (kmigrate.model.reference), on one seeded random input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kmigrate.model.graph import Graph, sequential_input
from kmigrate.model.reference import NoReference, forward
from kmigrate.model.relayout import Relaid
from kmigrate.weights.h5io import BadInput, open_input, read_array
from kmigrate.weights.plan import Plan

TOLERANCE = 1e-5  # max |Keras 3 - Keras 1| <= TOLERANCE * max |Keras 1|: the measure of every model check
SEED = 0
BATCH = 2  # BatchNormalization mode 2 normalises over the batch: one sample would make it beta
FREE_LENGTH = 8  # an axis the model leaves free (a sequence of any length) gets this many


@dataclass
class EndToEnd:
    """The outcome: proven with `error` (max |Keras 3 - reference| / max |reference| over the outputs), or
    not provable (`why`: the layer or setting with no numpy statement)."""

    proven: bool
    error: float | None = None
    why: str | None = None
    shape: tuple | None = None  # the first input's shape (batch included)

    def text(self) -> str:
        if not self.proven:
            return (f"end-to-end proof not possible ({self.why}): each layer was proven alone, the whole model "
                    "was not; check it with `kmigrate model verify` on an input Keras 1 predicted")
        return (f"end to end, on a random input {self.shape} (seed {SEED}): max |Keras 3 - Keras 1.2.2 "
                f"reference| = {self.error:.2e} of max |reference| (tolerance {TOLERANCE:g})")


class _Stored:
    """The file's arrays by weight name, read when the reference asks for them."""

    def __init__(self, h5, plan: Plan):
        self.h5 = h5
        self.weights = {w.name: (w, p.old_name) for p in plan.layers for w in p.weights}

    def __getitem__(self, name: str) -> np.ndarray:
        w, layer = self.weights[name]
        return read_array(self.h5, w, layer)


def sample_inputs(graph: Graph, plan: Plan, seed: int = SEED) -> dict[str, np.ndarray]:
    """One seeded input per model input, shaped as the model's: standard normal floats, or indices below
    the vocabulary of the Embedding that reads them. An input a Masking layer (or an Embedding with
    mask_zero) reads gets its first sample's last step masked, so the masks are exercised too."""
    rng = np.random.default_rng(seed)
    readers = _readers(graph, plan)
    feeds = {}
    for node in graph.nodes:
        if node.cls != "Input":
            continue
        batch = node.kwargs.get("batch_shape")
        shape = tuple(batch) if batch else (BATCH,) + tuple(d or FREE_LENGTH for d in node.kwargs["shape"])
        shape = tuple(d or FREE_LENGTH for d in shape)
        reader = readers.get(node.name)
        cfg = (reader.keras1_config or {}) if reader is not None else {}
        dtype = np.dtype(node.kwargs.get("dtype", "float32"))
        if reader is not None and reader.keras1_class == "Embedding":
            vocab = int(cfg.get("input_dim") or reader.weights[0].shape[0])
            x = rng.integers(0, vocab, shape).astype(dtype if dtype.kind in "iu" else np.int32)
            if cfg.get("mask_zero") and len(shape) > 1:
                x[0, -1] = 0
        elif dtype.kind in "iu":
            x = rng.integers(0, 2, shape).astype(dtype)
        else:
            x = rng.standard_normal(shape).astype(dtype)
            if reader is not None and reader.keras1_class == "Masking" and len(shape) > 2:
                x[0, -1] = cfg.get("mask_value", 0.0)
        feeds[node.name] = x
    return feeds


def _readers(graph: Graph, plan: Plan) -> dict[str, Any]:
    """The first Keras 1 layer that reads each model input."""
    first: dict[str, Any] = {}
    for p in plan.layers:
        if p.keras1_class != "InputLayer":
            for s in p.inbound or [sequential_input(p.old_name)]:
                if s in graph.inputs:
                    first.setdefault(s, p)
    return first


def prove(model, built, taps: dict[str, Any], graph: Graph, plan: Plan, src: str, backend: str | None,
          relaid: Relaid | None = None) -> EndToEnd:
    """Run `model` (the reloaded one) and the numpy reference on one random input; BadInput naming the
    first layer whose output differs when the model's outputs are off by more than the measure. `built`
    is the model as built, `taps` its node outputs (build.build), used to find that layer. `relaid`: the
    model works in the other layout (--to): the reference gets the input moved back to Keras 1's layout,
    and its outputs are moved to the model's before they are compared."""
    feeds = sample_inputs(graph, plan)
    own = {i: relaid.to_source(i, x) for i, x in feeds.items()} if relaid else feeds
    try:
        with open_input(src) as h5:
            want = forward(plan.layers, graph.calls, _Stored(h5, plan), own, backend, plan.model_layout)
        if relaid:
            want = {call: relaid.to_target(graph.call_out.get(call, ""), y) for call, y in want.items()}
    except NoReference as e:
        return EndToEnd(False, why=f"{e.layer}: {e}")
    except (ValueError, IndexError, KeyError, TypeError) as e:  # Keras 1 itself could not run the model as saved
        return EndToEnd(False, why=f"the Keras 1 reference cannot run the model as saved: "
                                   f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}")
    call_of = {node: call for call, node in graph.call_out.items()}
    outs = [call_of[o] for o in graph.outputs]
    got = _predict(model, [feeds[i] for i in graph.inputs])
    errors = [_relative(want[call], g) for call, g in zip(outs, got)]
    shape = tuple(feeds[graph.inputs[0]].shape)
    if all(e <= TOLERANCE for e in errors):
        return EndToEnd(True, max(errors), shape=shape)
    layer, err, detail = _first_difference(built, taps, graph, feeds, want, outs[errors.index(max(errors))][0])
    raise BadInput(f"the converted model does not compute what Keras 1.2.2 did (end to end, seeded random input "
                   f"{shape}: max |Keras 3 - Keras 1 reference| = {max(errors):.2e} of max |reference|); the first "
                   f"layer whose output differs: {detail}, nothing written", layer)


def _predict(model, args: list[np.ndarray]) -> list[np.ndarray]:
    """The model's outputs from fresh states: a stateful recurrent layer keeps its state between calls
    (the reload check ran it), where Keras 1's first prediction started from zeros."""
    for outer in model.layers:  # a wrapper's own recurrent layers too (TimeDistributed, Bidirectional)
        for layer in (outer, *(getattr(outer, a, None) for a in ("layer", "forward_layer", "backward_layer"))):
            if getattr(layer, "stateful", False) and hasattr(layer, "reset_states"):
                layer.reset_states()
    got = model.predict(args if len(args) > 1 else args[0], verbose=0)
    return got if isinstance(got, list) else [got]


def _relative(want: np.ndarray, got: np.ndarray) -> float:
    want, got = np.asarray(want, np.float64), np.asarray(got, np.float64)
    if want.shape != got.shape:
        return float("inf")
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    err = float(np.max(np.abs(want - got))) if want.size else 0.0
    return err / scale if scale else err


def _first_difference(built, taps, graph: Graph, feeds, want, fallback: str) -> tuple[str, float, str]:
    """The first Keras 1 layer call (in the model's order) whose Keras 3 output is off by more than the measure."""
    from kmigrate.weights.families.base import keras

    calls = [(name, j) for name, j, _ in graph.calls if (name, j) in want and graph.call_out.get((name, j)) in taps
             and graph.call_out[name, j] not in graph.inputs]
    probe = keras().Model(inputs=built.inputs, outputs=[taps[graph.call_out[c]] for c in calls])
    got = _predict(probe, [feeds[i] for i in graph.inputs])
    for (name, j), g in zip(calls, got):
        err = _relative(want[name, j], g)
        if err > TOLERANCE:
            which = f"call {j + 1}: " if j else ""
            if np.shape(g) != np.shape(want[name, j]):
                return name, err, f"{which}output shape {tuple(np.shape(g))}, Keras 1's {tuple(np.shape(want[name, j]))}"
            return name, err, f"{which}{err:.2e} of max |reference|"
    return fallback, float("nan"), "no single layer is off by the measure; their errors add up at the output"
