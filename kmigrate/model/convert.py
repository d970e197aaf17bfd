"""`kmigrate model convert`: a Keras 1 `model.h5` becomes a Keras 3 `.keras` that loads with no code.

The model config is read as data and translated layer by layer through the rules; the weights go
through the weight families (each layer proven numerically, as `kmigrate weights convert` does); the
model is built from built-in Keras 3 layers only, saved, reloaded in safe mode and checked against
the model it was saved from before the output appears.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from kmigrate import atomic
from kmigrate.model.build import build, source
from kmigrate.weights.families.base import keras as quiet_keras  # TensorFlow's start-up log silenced
from kmigrate.model.graph import Graph, graph_from_plan
from kmigrate.model.proof import TOLERANCE, EndToEnd, prove
from kmigrate.model.lost import apply_settings, infer_unsaved, layer_configs
from kmigrate.model.relayout import Relaid, layout_of, relayout
from kmigrate.weights.convert import ConversionReport, convert_file
from kmigrate.weights.h5io import BadInput, iter_output_layers, open_input, read_keras1
from kmigrate.weights.plan import Settings, make_plan

# TOLERANCE (kmigrate.model.proof): max |prediction - expected| <= TOLERANCE * max |expected|, the measure


@dataclass
class ModelReport:
    input: str
    output: str | None
    graph: Graph
    weights: ConversionReport
    notes: list[str] = field(default_factory=list)
    code: str | None = None  # where --emit-code wrote the source
    end_to_end: EndToEnd | None = None  # the whole model against Keras 1.2.2's numpy forward pass
    relaid: Relaid | None = None  # --to changed the model's layout: how its inputs and outputs moved


def convert_model(src: str, dst: str, settings: Settings, force: bool = False,
                  emit_code: str | None = None, given: list[tuple[str, str, Any]] = ()) -> ModelReport:
    """Convert `src` to `dst` (a `.keras` file). Nothing is written unless every step succeeds; bad
    input raises BadInput naming the file, the layer and what to do. `given` are (layer, Keras 1 key,
    value) settings the file did not save (`--set`)."""
    if not dst.endswith(".keras"):
        raise BadInput("the output must be a .keras file", path=dst)
    # one graph: a model used as a layer is inlined. The weights convert in Keras 1's layout; --to moves
    # the model (kmigrate.model.relayout), and with it the arrays that follow a feature map's layout
    to = settings.to
    settings = replace(settings, inline_models=True, to=None)
    for out in [dst] + ([emit_code] if emit_code else []):
        folder = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            raise BadInput(f"output folder {folder} does not exist or is not writable", path=out)
        if os.path.exists(out) and not force:
            raise BadInput("output already exists: pass --force to replace it", path=out)
    with open_input(src) as h5:
        k1 = read_keras1(h5)
        if k1.model_config is None:
            raise BadInput("the file has no model config (written by save_weights): convert its weights with "
                           "`kmigrate weights convert` and build the model from the migrated code", path=src)
        training = _training_config(h5)
        told = apply_settings(k1.model_config, list(given))
        plan = make_plan(k1, settings)
        inferred, found = infer_unsaved(plan)
        if inferred:  # into the config, as if the file had saved them, and planned again
            for name, _, cfg in layer_configs(k1.model_config):
                cfg.update({k: list(v) for k, v in inferred.get(name, {}).items()})
            plan = make_plan(k1, settings)
        # a Keras 2 file: the backend it recorded (plan.settings) decides Theano's constructions too
        graph = graph_from_plan(plan, plan.model_config, plan.settings.backend, keras2=k1.keras2)
    relaid = relayout(graph, plan.model_layout, to) if to else None
    if relaid is not None:
        graph = relaid.graph
    notes = told + found + list(graph.notes)
    if to and relaid is None:
        layout = layout_of(graph, plan.model_layout)
        notes.append(f"--to {to}: no layer of the model has a 2D or 3D data format, nothing to change" if layout is None
                     else f"--to {to}: the model already works in {to}")
    if relaid is not None:
        notes.append(f"--to {to}: every layer works in {to}; the model takes its inputs in that layout "
                     f"({', '.join(f'{i} {graph.input_shape(i)}' for i in graph.inputs)})")
    with tempfile.TemporaryDirectory(prefix="kmigrate-model-") as work:
        weights_path = os.path.join(work, "weights.h5")
        report = convert_file(src, weights_path, settings, verify=True)
        if not report.ok:
            layer, why = report.failure or ("?", "verification failed")
            raise BadInput(f"weights failed their proof: {why}", layer)
        taps: dict[str, Any] = {}
        try:
            model = build(graph, taps)
        except (ValueError, TypeError) as exc:  # what Keras 3 says of the translated model
            raise BadInput(f"Keras 3 cannot build the translated model: {str(exc).splitlines()[0]}") from None
        try:
            _load_weights(model, graph, weights_path, report, relaid, taps)
        except BadInput as e:
            lost = [n for n in graph.notes if "did not save" in n]
            raise BadInput(f"{e}{'; ' + lost[0] if lost else ''}: the file does not say enough to rebuild "
                           "this model; convert its weights and build it from the migrated code", e.layer) from None
        notes.extend(_compile(model, training))
        saved = os.path.join(work, "model.keras")
        model.save(saved)
        reloaded = _check_reload(model, saved)
        end_to_end = prove(reloaded, model, taps, graph, plan, src, plan.settings.backend, relaid)
        target = Path(os.path.abspath(dst))
        atomic.clean_stale(target.parent)
        with atomic.replacing(target) as tmp:
            shutil.copyfile(saved, tmp)
    code_path = None
    if emit_code:
        atomic.write_bytes(Path(emit_code), source(graph, os.path.basename(src)).encode())
        code_path = emit_code
    notes.extend(n for n in report.notes if not (training and n.startswith("dropped training_config")))
    return ModelReport(src, dst, graph, report, notes, code_path, end_to_end, relaid)


def _training_config(h5) -> dict[str, Any] | None:
    raw = h5.attrs.get("training_config")
    if raw is None:
        return None
    try:
        cfg = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError:
        return None
    return cfg if isinstance(cfg, dict) else None


def _load_weights(model, graph: Graph, path: str, report: ConversionReport, relaid: Relaid | None = None,
                  taps: dict[str, Any] | None = None) -> None:
    """Each converted layer's arrays into the layer that carries its Keras 1 name (moved to the model's
    layout when --to changed it)."""
    new_to_old = {new: old for old, new in report.name_map.items()}
    with open_input(path) as h5:
        for new_name, weights in iter_output_layers(h5):
            old = new_to_old.get(new_name, new_name)
            layer = model.get_layer(old)
            arrays = [np.asarray(d) for _, d in weights]
            if relaid is not None:
                arrays = relaid.arrays(old, arrays, lambda n: tuple(taps[n].shape[1:]))
            node = next((n for n in graph.nodes if n.keras1_name == old), None)
            for i, value in (node.fixed.items() if node is not None else ()):
                arrays[i] = np.full_like(arrays[i], value)
            if [tuple(w.shape) for w in layer.weights] != [a.shape for a in arrays]:
                raise BadInput(f"converted weights {[a.shape for a in arrays]} do not fit the built layer "
                               f"{[tuple(w.shape) for w in layer.weights]}", old)
            layer.set_weights(arrays)


def _compile(model, training: dict[str, Any] | None) -> list[str]:
    """Keras 1's training config where Keras 3 has it; what does not carry over is said."""
    if not training:
        return []
    from kmigrate.spec.pipeline import Refuse
    from kmigrate.weights.config import convert_layer_config

    keras = quiet_keras()

    opt = training.get("optimizer_config") or {}
    try:
        conv = convert_layer_config(opt.get("class_name", ""), {k: v for k, v in (opt.get("config") or {}).items()
                                                                 if k != "name"})
        if any(not isinstance(v, (int, float, bool, str, type(None))) for v in conv.config.values()):
            raise Refuse("a learning-rate schedule (decay) cannot be stored as a number")
        optimizer = getattr(keras.optimizers, conv.target_class)(**conv.config)
        model.compile(optimizer=optimizer, loss=training.get("loss"), metrics=training.get("metrics") or None,
                      loss_weights=training.get("loss_weights"))
    except (Refuse, ValueError, TypeError, AttributeError) as why:
        return [f"training config not carried over ({why}): compile the model again before training"]
    return [f"compiled with {conv.target_class}, loss {training.get('loss')!r} (Keras 1's training config)"]


def _check_reload(model, path: str):
    """The saved file reloads in safe mode with no kmigrate code and computes what the model computes;
    the reloaded model."""
    keras = quiet_keras()

    again = keras.models.load_model(path, safe_mode=True, compile=False)
    rng = np.random.default_rng(0)
    feeds = []
    for t in model.inputs:
        shape = (2,) + tuple(d or 3 for d in t.shape[1:])
        feeds.append(np.zeros(shape, t.dtype) if "int" in str(t.dtype) else rng.standard_normal(shape).astype(t.dtype))
    feeds = feeds if len(feeds) > 1 else feeds[0]
    want = model.predict(feeds, verbose=0)
    got = again.predict(feeds, verbose=0)
    for w, g in zip(want if isinstance(want, list) else [want], got if isinstance(got, list) else [got]):
        if not np.allclose(w, g, rtol=0, atol=TOLERANCE * max(1.0, float(np.max(np.abs(w))))):
            raise BadInput("the saved model does not reload to the same predictions")
    return again


def verify_model(path: str, x_path: str, y_path: str) -> tuple[bool, float, float]:
    """Run a saved model on X and compare with Y: (passed, max |prediction - Y|, max |Y|)."""
    keras = quiet_keras()

    for p in (path, x_path, y_path):
        if not os.path.isfile(p):
            raise BadInput("no such file", path=p)
    try:
        model = keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001 - any load failure is the file's
        raise BadInput(f"not a loadable Keras 3 model: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                       path=path) from None
    x = _npy(x_path)
    y = _npy(y_path)
    got = model.predict(x, verbose=0)
    if np.shape(got) != np.shape(y):
        raise BadInput(f"the model predicts shape {np.shape(got)}, the expected array has {np.shape(y)}", path=y_path)
    err = float(np.max(np.abs(np.asarray(got, np.float64) - y)))
    scale = float(np.max(np.abs(y)))
    return err <= TOLERANCE * scale, err, scale


def _npy(path: str):
    try:
        return np.load(path, allow_pickle=False)  # data only: never unpickle a user's array file
    except (ValueError, OSError) as exc:
        raise BadInput(f"not a .npy array: {exc}", path=path) from None
