"""The whole-model proof of `kmigrate model convert`: Keras 1.2.2's numpy forward pass (kmigrate.model.reference)
is itself proven against real Keras 1.2.2's recorded predictions on every zoo model, and a converted model
that computes something else is refused naming the first layer that differs."""

from __future__ import annotations

import re

import numpy as np
import pytest

from kmigrate.cli import main
from kmigrate.model import convert as convert_module
from kmigrate.model import reference
from kmigrate.model.convert import convert_model
from kmigrate.model.graph import graph_from_plan
from kmigrate.model.proof import TOLERANCE, sample_inputs
from kmigrate.weights.h5io import BadInput, open_input, read_array, read_keras1
from kmigrate.weights.plan import Settings, make_plan

from ..conftest import ROOT
from ..legacy.zoo import MODELS

# Keras 1.2.2's get_config() did not save ConvLSTM2D's subsample; the zoo's sources say it
# (fixtures/legacy/models/convlstm2d_th.py and convlstm2d_tf_functional.py: the first layer has subsample=(2, 2))
UNSAVED = {name: {"convlstm2d_1": {"subsample": [2, 2]}} for name in ("convlstm2d_th", "convlstm2d_tf_functional")}


# Real Keras 1.2.2 models (Theano) for what the zoo leaves out: Merge modes, an Embedding mask through
# recurrent and TimeDistributed layers, activations by name, ZeroPadding2D's 4-tuple (generate.py there)
EXTRA = ROOT / "fixtures" / "model" / "reference"
EXTRA_MODELS = sorted(p.name[:-len("_model.h5")] for p in EXTRA.glob("*_model.h5"))
# real Keras 1.2.2 models with shared layers and models used as layers (fixtures/model/README.md)
CALLS = ROOT / "fixtures" / "model" / "keras1"
CALLS_MODELS = ["nested_functional", "nested_models", "sequential_in_sequential", "shared_layers"]


def _arrays(name: str, kind: str) -> list[np.ndarray]:
    """A model's stored inputs or predictions beyond the zoo: one per model input / output, in order."""
    one = EXTRA / f"{name}_{kind}.npy"
    return [np.load(one)] if one.exists() else [np.load(p) for p in sorted(EXTRA.glob(f"{name}_{kind}[0-9].npy"))]


def _reference_outputs(name: str) -> list[np.ndarray]:
    """The numpy reference on the stored file and the stored inputs: the model's outputs."""
    if name in EXTRA_MODELS:
        model, xs, backend = EXTRA / f"{name}_model.h5", _arrays(name, "input"), "theano"
    elif name in CALLS_MODELS:
        stored = np.load(CALLS / f"{name}_input.npz")
        model, xs, backend = CALLS / f"{name}_model.h5", [stored[f"arr_{i}"] for i in range(len(stored))], "theano"
    else:
        m = MODELS[name]
        model, xs, backend = ROOT / m["files"]["model"], [np.load(ROOT / m["files"]["input"])], m["backend"]
    with open_input(str(model)) as h5:
        k1 = read_keras1(h5)
        plan = make_plan(k1, Settings(backend=backend, inline_models=True))  # as model convert plans it
        arrays = {w.name: read_array(h5, w, p.old_name) for p in plan.layers for w in p.weights}
    for p in plan.layers:
        p.keras1_config.update(UNSAVED.get(name, {}).get(p.old_name, {}))
    graph = graph_from_plan(plan, plan.model_config, backend)
    values = reference.forward(plan.layers, graph.calls, arrays, dict(zip(graph.inputs, xs, strict=True)), backend,
                               plan.model_layout)
    call_of = {node: call for call, node in graph.call_out.items()}
    return [values[call_of[out]] for out in graph.outputs]


def _reference_prediction(name: str) -> np.ndarray:
    (y,) = _reference_outputs(name)
    return y


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_reference_predicts_what_keras_1_2_2_predicted(name):
    want = np.load(ROOT / MODELS[name]["files"]["pred"])
    got = _reference_prediction(name)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= TOLERANCE * np.max(np.abs(want))


@pytest.mark.parametrize("name", EXTRA_MODELS)
def test_the_reference_predicts_what_keras_1_2_2_predicted_beyond_the_zoo(name, tmp_path):
    wants = _arrays(name, "pred")
    gots = _reference_outputs(name)
    assert len(gots) == len(wants) >= 1
    for got, want in zip(gots, wants):
        assert got.shape == want.shape
        assert np.max(np.abs(got - want)) <= TOLERANCE * np.max(np.abs(want))
    report = convert_model(str(EXTRA / f"{name}_model.h5"), str(tmp_path / "m.keras"), Settings(backend="theano"))
    assert report.end_to_end.proven and report.end_to_end.error <= TOLERANCE


@pytest.mark.parametrize("name", CALLS_MODELS)
def test_the_reference_calls_shared_layers_and_inlined_models_as_keras_1_2_2_did(name):
    want = np.load(CALLS / f"{name}_pred.npy")
    (got,) = _reference_outputs(name)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= TOLERANCE * np.max(np.abs(want))


def test_a_model_with_shared_layers_is_proven_end_to_end_call_by_call(tmp_path):
    report = convert_model(str(CALLS / "shared_layers_model.h5"), str(tmp_path / "m.keras"), Settings(backend="theano"))
    assert report.end_to_end.proven and report.end_to_end.error <= TOLERANCE
    assert any(j > 0 for _, j, _ in report.graph.calls)  # a layer called twice, each call compared


def test_the_reference_carries_an_embedding_mask_as_keras_1_did(monkeypatch):
    want = np.load(EXTRA / "masked_embedding_pred.npy")
    embedding = reference._LAYERS["Embedding"]
    monkeypatch.setitem(reference._LAYERS, "Embedding", lambda *a: (embedding(*a)[0], None))
    assert np.max(np.abs(_reference_prediction("masked_embedding") - want)) > TOLERANCE * np.max(np.abs(want))


def test_without_the_unsaved_stride_the_reference_cannot_run_the_file():
    # the stride taken as 1 (what the config alone says): the stored Dense kernel does not fit, as in
    # Keras 1.2.2's own load_model; the zoo test above proves the reference with the real stride
    with pytest.raises(ValueError):
        m = MODELS["convlstm2d_th"]
        with open_input(str(ROOT / m["files"]["model"])) as h5:
            k1 = read_keras1(h5)
            plan = make_plan(k1, Settings(backend=m["backend"]))
            arrays = {w.name: read_array(h5, w, p.old_name) for p in plan.layers for w in p.weights}
        graph = graph_from_plan(plan, k1.model_config, m["backend"])
        reference.forward(plan.layers, graph.calls, arrays, {graph.inputs[0]: np.load(ROOT / m["files"]["input"])},
                          m["backend"], plan.model_layout)


def test_the_reference_masks_steps_as_keras_1_did(monkeypatch):
    # masking_lstm's stored input has zero steps: the zoo test passes with Keras 1's masking, and the same
    # layers without the mask predict something else
    m = MODELS["masking_lstm"]
    assert np.any(np.all(np.load(ROOT / m["files"]["input"]) == 0, axis=-1))
    want = np.load(ROOT / m["files"]["pred"])
    masking = reference._LAYERS["Masking"]
    monkeypatch.setitem(reference._LAYERS, "Masking", lambda *a: (masking(*a)[0], None))
    assert np.max(np.abs(_reference_prediction("masking_lstm") - want)) > TOLERANCE * np.max(np.abs(want))


def _plan_and_graph(name: str):
    m = MODELS[name]
    with open_input(str(ROOT / m["files"]["model"])) as h5:
        k1 = read_keras1(h5)
        plan = make_plan(k1, Settings(backend=m["backend"]))
    return plan, graph_from_plan(plan, k1.model_config, m["backend"])


def test_the_random_input_has_the_models_shape_and_exercises_its_indices_and_masks():
    plan, graph = _plan_and_graph("embedding_gru_functional")  # Input(shape=(4,), dtype='int32') -> Embedding(15)
    (x,) = sample_inputs(graph, plan).values()
    assert x.shape == (2, 4) and x.dtype.kind == "i" and 0 <= x.min() and x.max() < 15
    plan, graph = _plan_and_graph("masking_lstm")  # Masking(mask_value=0.) on (4, 2)
    (x,) = sample_inputs(graph, plan).values()
    assert x.shape == (2, 4, 2) and np.all(x[0, -1] == 0) and np.all(x[1] != 0)
    plan, graph = _plan_and_graph("lstm_stateful")  # batch_input_shape=(2, 3, 2): the batch is the model's
    assert sample_inputs(graph, plan)["lstm_1_input"].shape == (2, 3, 2)
    assert sample_inputs(graph, plan)["lstm_1_input"].tolist() == sample_inputs(graph, plan)["lstm_1_input"].tolist()


def _convert(name: str, tmp_path, **kw):
    m = MODELS[name]
    return convert_model(str(ROOT / m["files"]["model"]), str(tmp_path / "m.keras"), Settings(backend=m["backend"]),
                         **kw)


def test_a_converted_model_is_proven_end_to_end(tmp_path):
    report = _convert("functional_th", tmp_path)
    e2e = report.end_to_end
    assert e2e.proven and e2e.error <= TOLERANCE and e2e.shape == (2, 2, 8, 8)


def test_a_corrupted_converted_weight_is_refused_naming_its_layer(tmp_path, monkeypatch):
    # every layer's weights passed their own proof; one is changed after loading: only the whole-model
    # proof can see it
    load = convert_module._load_weights

    def corrupt(model, graph, path, report, *relaid):
        load(model, graph, path, report, *relaid)
        layer = model.get_layer("dense_2")
        layer.set_weights([w * 1.01 for w in layer.get_weights()])
    monkeypatch.setattr(convert_module, "_load_weights", corrupt)
    with pytest.raises(BadInput, match=r"does not compute what Keras 1\.2\.2 did .* first layer whose output "
                                       r"differs: [0-9.e-]+ of max \|reference\|, nothing written") as exc:
        _convert("batchnorm_modes", tmp_path)
    assert exc.value.layer == "dense_2"
    assert not (tmp_path / "m.keras").exists()


def test_a_wrong_construction_is_refused_naming_its_layer(tmp_path, monkeypatch):
    # Theano 'same' pooling built as Keras 3's padding='same' (what the construction exists to avoid)
    from kmigrate.model import build as build_module

    def keras3_same(keras, x, node):
        k = {key: v for key, v in node.kwargs.items() if key != "layer"}
        return getattr(keras.layers, node.kwargs["layer"])(name=node.name, **k)(x)
    monkeypatch.setattr(build_module, "_theano_pool", keras3_same)
    with pytest.raises(BadInput, match="first layer whose output differs") as exc:
        _convert("pool2d_th_max_same_s2", tmp_path)
    assert exc.value.layer == "maxpooling2d_1"


def test_a_layer_with_no_reference_is_said_and_the_model_still_written(tmp_path, monkeypatch):
    monkeypatch.delitem(reference._LAYERS, "ELU")
    report = _convert("advanced_activations", tmp_path)
    e2e = report.end_to_end
    assert not e2e.proven and e2e.why == "elu_1: no numpy statement of Keras 1's ELU"
    assert "end-to-end proof not possible (elu_1: no numpy statement of Keras 1's ELU)" in e2e.text()
    assert (tmp_path / "m.keras").exists()


def test_cli_reports_the_end_to_end_error(tmp_path, capsys):
    m = MODELS["lstm_stateful"]  # stateful: the reload check ran it; the proof starts from zero states
    code = main(["model", "convert", str(ROOT / m["files"]["model"]), str(tmp_path / "m.keras"), "--backend", "theano"])
    out = capsys.readouterr().out
    assert code == 0, out
    line = re.search(r"end to end, on a random input \(2, 3, 2\) \(seed 0\): max \|Keras 3 - Keras 1\.2\.2 "
                     r"reference\| = ([0-9.e+-]+) of max \|reference\|", out)
    assert line and float(line.group(1)) <= TOLERANCE, out


def test_cli_refuses_a_model_that_differs_with_one_line(tmp_path, capsys, monkeypatch):
    load = convert_module._load_weights

    def corrupt(model, graph, path, report, *relaid):
        load(model, graph, path, report, *relaid)
        layer = model.get_layer("conv_b")
        layer.set_weights([w + 0.1 for w in layer.get_weights()])
    monkeypatch.setattr(convert_module, "_load_weights", corrupt)
    m = MODELS["functional_1d"]
    code = main(["model", "convert", str(ROOT / m["files"]["model"]), str(tmp_path / "m.keras"), "--backend", "theano"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"kmigrate: error: {ROOT / m['files']['model']}: conv_b: the converted model does not "
                          "compute what Keras 1.2.2 did")
    assert not (tmp_path / "m.keras").exists()


def test_the_reference_never_imports_tensorflow_or_keras():
    import subprocess
    import sys

    probe = ("import sys; from tests.model.test_end_to_end import _reference_prediction; "
             "_reference_prediction('timedistributed_conv_th'); _reference_prediction('merges'); "
             "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stdout + run.stderr
