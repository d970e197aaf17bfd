"""`kmigrate model convert --to channels_first|channels_last`: the saved Keras 3 model works in that layout
(every layer with a data_format has it, the inputs are taken in it) and, on Keras 1.2.2's own input moved
to that layout, predicts what Keras 1.2.2 predicted (moved likewise when the output is a feature map);
a model a layer of which cannot follow the layout change is refused naming that layer. Every zoo model, both
layouts."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from kmigrate.model.convert import convert_model, verify_model
from kmigrate.model.relayout import layout_of
from kmigrate.weights.h5io import BadInput
from kmigrate.weights.plan import DATA_FORMAT, Settings

from ..conftest import ROOT
from ..legacy.zoo import MODELS, TOLERANCE
from .test_convert import GIVEN, fresh_predictions

LAYOUTS = ("channels_first", "channels_last")
# (model, --to) -> (the layer named, why): a layer that reads a feature map in a way --to cannot carry over
REFUSED = {
    ("spatial_dropout_th", "channels_last"): ("reshape_1", "Reshape of a channels_first feature map"),
    ("timedistributed_conv_th", "channels_last"): ("timedistributed_3", "TimeDistributed(Flatten)"),
    ("timedistributed_conv_tf", "channels_first"): ("timedistributed_2", "TimeDistributed(Flatten)"),
}


def _data_formats(path) -> set[str]:
    """Every data_format in a .keras file's config (read as JSON: no Keras), but Flatten's: Keras 3's
    Flatten saves its default channels_last, which flattens any tensor in its own order (as Keras 1 did)."""
    found: set[str] = set()

    def walk(v):
        if isinstance(v, dict):
            if v.get("class_name") == "Flatten":
                return
            if isinstance(v.get("data_format"), str):
                found.add(v["data_format"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    with zipfile.ZipFile(path) as z:
        walk(json.loads(z.read("config.json")))
    return found


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Every zoo model converted with --to each layout; the converted ones loaded in one fresh process
    without kmigrate, on Keras 1.2.2's input moved to the model's layout."""
    folder = tmp_path_factory.mktemp("to")
    outcomes, jobs = {}, []
    for name in sorted(MODELS):
        m = MODELS[name]
        for to in LAYOUTS:
            key = f"{name}-{to}"
            dst = folder / f"{key}.keras"
            try:
                report = convert_model(str(ROOT / m["files"]["model"]), str(dst), Settings(backend=m["backend"], to=to),
                                       given=GIVEN.get(name, ()))
            except BadInput as e:
                outcomes[name, to] = ("refused", e.layer, str(e))
                continue
            x, y = np.load(ROOT / m["files"]["input"]), np.load(ROOT / m["files"]["pred"])
            relaid = report.relaid
            if relaid is not None:  # Keras 1.2.2's arrays in the layout the model works in
                x = relaid.to_target(report.graph.inputs[0], x)
                y = relaid.to_target(report.graph.outputs[0], y)
            np.save(folder / f"{key}_x.npy", x)
            np.save(folder / f"{key}_y.npy", y)
            jobs.append([key, str(dst), str(folder / f"{key}_x.npy"), str(folder / f"{key}_y.npy")])
            outcomes[name, to] = ("converted", report, dst)
    return outcomes, fresh_predictions(jobs, folder)


@pytest.mark.parametrize("to", LAYOUTS)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_to_converts_and_predicts_like_keras1_or_is_refused_by_name(converted, name, to):
    outcomes, predictions = converted
    outcome = outcomes[name, to]
    if (name, to) in REFUSED:
        layer, why = REFUSED[name, to]
        assert outcome[0] == "refused", "converted where a refusal was expected"
        assert outcome[1] == layer and why in outcome[2] and f"--to {to}" in outcome[2], outcome
        return
    assert outcome[0] == "converted", outcome
    _, report, dst = outcome
    err, scale = predictions[f"{name}-{to}"]
    assert err <= TOLERANCE * scale, (err, scale)
    layout = layout_of(report.graph, report.weights.plan.model_layout)
    formats = _data_formats(dst)
    if layout is None:  # no 2D/3D layer: nothing to change, and it is said
        assert report.relaid is None and any("nothing to change" in n for n in report.notes)
    elif DATA_FORMAT[layout] == to:
        assert report.relaid is None and any("already works" in n for n in report.notes)
    else:  # every layer with a data_format works in the one asked for (a Conv built channels_last between
        # two Permutes around Keras 3.15's bias bug works in channels_last, itself a layout asked for then)
        assert report.relaid is not None and report.end_to_end.proven
        around_bug = {"channels_last"} if any(n.transposed for n in report.graph.nodes) else set()
        assert formats == {to} | around_bug, formats


def test_every_zoo_model_with_a_layout_is_re_laid_out_but_the_refused(converted):
    outcomes, _ = converted
    relaid = {key for key, o in outcomes.items() if o[0] == "converted" and o[1].relaid is not None}
    assert len(relaid) == 41, sorted(relaid)  # the 44 zoo models with a 2D/3D layout, in the other one, but 3
    assert ("conv2d_th_same_even", "channels_last") in relaid  # Theano 'same' with an even kernel, then Flatten
    assert {key for key, o in outcomes.items() if o[0] == "refused"} == set(REFUSED)


def test_the_first_dense_after_flatten_takes_its_rows_in_the_target_order(converted):
    outcomes, _ = converted
    _, report, _ = outcomes["conv2d_th_same_even", "channels_last"]
    assert report.relaid.dense_rows == {"dense_1": "convolution2d_1_cropping2d_0"}
    assert report.graph.input_shape(report.graph.inputs[0]) == (8, 8, 2)  # (2, 8, 8) in Keras 1's th


def test_cli_to_channels_last_writes_a_model_verify_accepts_on_the_moved_input(tmp_path):
    m = MODELS["conv2d_th_same_even"]
    dst = tmp_path / "m.keras"
    run = subprocess.run([sys.executable, "-m", "kmigrate", "model", "convert", str(ROOT / m["files"]["model"]),
                          str(dst), "--backend", "theano", "--to", "channels_last"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "the model takes its inputs in that layout (convolution2d_1_input (8, 8, 2))" in run.stdout
    x = tmp_path / "x.npy"
    np.save(x, np.moveaxis(np.load(ROOT / m["files"]["input"]), 1, -1))
    ok, err, scale = verify_model(str(dst), str(x), str(ROOT / m["files"]["pred"]))
    assert ok, (err, scale)
    # the input in Keras 1's own layout is not what this model takes
    with pytest.raises(ValueError):  # Keras: the input's shape is not the model's
        verify_model(str(dst), str(ROOT / m["files"]["input"]), str(ROOT / m["files"]["pred"]))


def test_batchnorm_mode_1_on_a_feature_map_is_refused_by_name(tmp_path):
    # mode 1 normalises each sample over its last axis: the channels in tf, a spatial axis in th
    src = ROOT / "fixtures" / "model" / "keras1" / "batchnorm_mode1_conv_tf_model.h5"
    with pytest.raises(BadInput) as e:
        convert_model(str(src), str(tmp_path / "m.keras"), Settings(backend="theano", to="channels_first"))
    assert e.value.layer == "batchnormalization_1" and "mode=1" in str(e.value)
    assert not (tmp_path / "m.keras").exists()


KERAS2 = ROOT / "fixtures" / "model" / "keras2"


def test_a_keras2_channels_first_file_converts_to_channels_last(tmp_path):
    # the recorded backend (Theano) decides the constructions; the input moved to (h, w, c)
    dst = tmp_path / "m.keras"
    report = convert_model(str(KERAS2 / "channels_first_model.h5"), str(dst), Settings(to="channels_last"))
    assert report.relaid is not None and report.end_to_end.proven
    assert _data_formats(dst) == {"channels_last"}
    x = tmp_path / "x.npy"
    np.save(x, np.moveaxis(np.load(KERAS2 / "channels_first_input.npy"), 1, -1))
    ok, err, scale = verify_model(str(dst), str(x), str(KERAS2 / "channels_first_pred.npy"))
    assert ok, (err, scale)


def test_a_flatten_merged_with_another_tensor_is_refused_by_name(tmp_path):
    # Concatenate([Flatten()(feature map), vector]): the Dense after it mixes rows of both
    with pytest.raises(BadInput) as e:
        convert_model(str(KERAS2 / "functional_model.h5"), str(tmp_path / "m.keras"), Settings(to="channels_first"))
    assert e.value.layer == "concatenate_2" and "reading the Flatten" in str(e.value)


def test_emitted_code_of_a_re_laid_out_model_builds_it_with_the_bias_bug_construction(tmp_path):
    # atrous2d_tf in channels_first: its second convolution's output (3, 4, 3) ends in its filter count
    import keras

    m = MODELS["atrous2d_tf"]
    code = tmp_path / "model.py"
    convert_model(str(ROOT / m["files"]["model"]), str(tmp_path / "m.keras"),
                  Settings(backend=m["backend"], to="channels_first"), emit_code=str(code))
    source = code.read_text()
    assert "layers.Permute((2, 3, 1), name='atrousconvolution2d_2_to_channels_last')" in source
    assert "keras.Input(shape=(2, 9, 9)" in source
    namespace: dict = {}
    exec(compile(source, str(code), "exec"), namespace)  # trusted: written by the test just now
    built = namespace["build_model"]()
    saved = keras.models.load_model(tmp_path / "m.keras")
    assert [x.name for x in built.layers] == [x.name for x in saved.layers]
    built.set_weights(saved.get_weights())
    x = np.moveaxis(np.load(ROOT / m["files"]["input"]), -1, 1)
    want = np.load(ROOT / m["files"]["pred"])
    assert np.max(np.abs(built.predict(x, verbose=0) - want)) <= TOLERANCE * np.max(np.abs(want))
