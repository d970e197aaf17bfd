"""BatchNormalization mode=1 (each sample normalised over its last axis) on real Keras 1.2.2 files
(fixtures/model/generate_batchnorm_mode1.py): the weights family converts it, the numpy reference and the
converted whole model predict what Keras 1.2.2 predicted, another axis is refused by name."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from kmigrate.model import reference
from kmigrate.model.convert import convert_model, verify_model
from kmigrate.model.graph import graph_from_plan
from kmigrate.model.proof import TOLERANCE
from kmigrate.weights.convert import convert_file
from kmigrate.weights.h5io import BadInput, open_input, read_array, read_keras1
from kmigrate.weights.plan import Settings, make_plan

from ..conftest import ROOT

FOLDER = ROOT / "fixtures" / "model" / "keras1"
NAMES = ["batchnorm_mode1_dense", "batchnorm_mode1_conv_tf"]


def _files(name: str):
    return tuple(str(FOLDER / f"{name}_{kind}") for kind in ("model.h5", "input.npy", "pred.npy"))


def _close(got, want) -> bool:
    return got.shape == want.shape and np.max(np.abs(got - want)) <= TOLERANCE * np.max(np.abs(want))


@pytest.mark.parametrize("name", NAMES)
def test_the_reference_normalises_each_sample_as_keras_1_2_2_did(name):
    model, x, y = _files(name)
    with open_input(model) as h5:
        plan = make_plan(read_keras1(h5), Settings(backend="theano"))
        arrays = {w.name: read_array(h5, w, p.old_name) for p in plan.layers for w in p.weights}
    graph = graph_from_plan(plan, plan.model_config, "theano")
    values = reference.forward(plan.layers, graph.calls, arrays, {graph.inputs[0]: np.load(x)}, "theano",
                               plan.model_layout)
    call_of = {node: call for call, node in graph.call_out.items()}
    assert _close(values[call_of[graph.outputs[0]]], np.load(y))


@pytest.mark.parametrize("name", NAMES)
def test_mode_1_converts_whole_and_predicts_like_keras_1_2_2(name, tmp_path):
    model, x, y = _files(name)
    report = convert_model(model, str(tmp_path / "m.keras"), Settings(backend="theano"))
    assert report.end_to_end.proven and report.end_to_end.error <= TOLERANCE
    ok, err, scale = verify_model(str(tmp_path / "m.keras"), x, y)
    assert ok, (err, scale)
    # the statistics are the sample's: a different batch mate changes nothing in a sample's prediction
    import keras
    m = keras.models.load_model(str(tmp_path / "m.keras"), safe_mode=True, compile=False)
    xs = np.load(x)
    alone = m.predict(xs[:1], verbose=0)
    assert np.allclose(alone, np.load(y)[:1], rtol=0, atol=TOLERANCE * np.max(np.abs(np.load(y))))


def test_the_weights_family_converts_mode_1_and_proves_it(tmp_path):
    model, _, _ = _files("batchnorm_mode1_dense")
    report = convert_file(model, str(tmp_path / "w.h5"), Settings(backend="theano"), verify=True)
    assert report.ok, report.failure
    bn = next(p for p in report.plan.layers if p.keras1_class == "BatchNormalization")
    assert bn.family.name == "batchnorm" and any("mode=1" in n for n in bn.notes)


def test_mode_1_along_another_axis_is_refused_by_name(tmp_path):
    # Keras 1.2.2 normalised and scaled along the last axis whatever `axis` said
    src = tmp_path / "axis1.h5"
    shutil.copyfile(_files("batchnorm_mode1_conv_tf")[0], src)
    with h5py.File(src, "r+") as h5:
        cfg = json.loads(h5.attrs["model_config"])
        for layer in cfg["config"]:
            if layer["class_name"] == "BatchNormalization":
                layer["config"]["axis"] = 1
        h5.attrs["model_config"] = json.dumps(cfg).encode()
    with pytest.raises(BadInput) as e:
        convert_model(str(src), str(tmp_path / "m.keras"), Settings(backend="theano"))
    assert e.value.layer == "batchnormalization_1" and "mode=1 with axis=1" in str(e.value)
    assert not (tmp_path / "m.keras").exists()
