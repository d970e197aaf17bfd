"""Weights-only Keras 1 files whose layers the user named: classes inferred from the stored arrays, asked
only when two classes fit, or taken from the migrated model given as data (--template).

keras1_named/ holds save_weights files written by Keras 1.2.2 (Theano) with user-chosen layer names
(generate.py), a fixed input and Keras 1.2.2's own prediction. The Keras 3 models below are the
migrated code; each loads the converted file and must predict what Keras 1.2.2 predicted.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kmigrate.weights.cli import weights
from kmigrate.weights.convert import convert_file
from kmigrate.weights.h5io import BadInput
from kmigrate.weights.infer import read_template
from kmigrate.weights.plan import Settings

HERE = Path(__file__).parent / "keras1_named"
TOLERANCE = 1e-5  # max |Keras 3 - Keras 1| <= 1e-5 * max |Keras 1|
HS = {"recurrent_activation": "hard_sigmoid"}
# what each case needs besides --backend theano (the file leaves it open)
ANSWERS = {"cnn_th": {"layout": "th"}, "bn_mode2": {"layout": "th"}, "rnn": {"classes": {"emb": "Embedding"}}}
INFERRED = {
    "cnn_th": {"conv_a": "Convolution2D", "bn_a": "BatchNormalization", "conv_b": "Convolution2D",
               "fc1": "Dense", "act": "PReLU", "logits": "Dense"},
    "cnn_tf": {"conv_a": "Convolution2D", "conv_b": "Convolution2D", "act": "PReLU"},
    "rnn": {"enc": "LSTM", "dec": "GRU", "head": "SimpleRNN"},
    "wrappers": {"td": "TimeDistributed", "bi": "Bidirectional", "bi_gru": "Bidirectional"},
    "bn_mode2": {"c": "Convolution2D", "norm": "BatchNormalization"},
    "conv1d": {"c1": "Convolution1D", "out": "Dense"},
}


def _k3(name):
    import keras
    from keras import layers as L

    def cnn(fmt, bias_b):
        f = {"data_format": fmt}
        shape = (2, 8, 8) if fmt == "channels_first" else (8, 8, 2)
        return [keras.Input(shape), L.Conv2D(4, (3, 3), **f), L.BatchNormalization(axis=1 if fmt == "channels_first"
                                                                                    else -1),
                L.MaxPooling2D(**f), L.Conv2D(3, (2, 2), use_bias=bias_b, **f), L.Flatten(), L.Dense(5), L.PReLU(),
                L.Dense(3)]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layers = {
            "cnn_th": lambda: cnn("channels_first", False),
            "cnn_tf": lambda: cnn("channels_last", True),
            "rnn": lambda: [keras.Input((5,)), L.Embedding(10, 4), L.LSTM(3, return_sequences=True, **HS),
                            L.GRU(3, return_sequences=True, reset_after=False, **HS), L.SimpleRNN(2)],
            "wrappers": lambda: [keras.Input((5, 4)), L.TimeDistributed(L.Dense(3)),
                                 L.Bidirectional(L.LSTM(2, return_sequences=True, **HS)),
                                 L.Bidirectional(L.GRU(2, reset_after=False, **HS))],
            "conv1d": lambda: [keras.Input((9, 4)), L.Conv1D(3, 3), L.Flatten(), L.Dense(2)],
            "bn_mode2": lambda: [keras.Input((2, 6, 6)), L.Conv2D(3, (3, 3), data_format="channels_first"),
                                 L.BatchNormalization(axis=1), L.Flatten(), L.Dense(2)],
        }[name]()
        return keras.Sequential(layers)


def _predicts_like_keras1(name, dst):
    model = _k3(name)
    model.load_weights(str(dst))
    want = np.load(HERE / f"{name}_pred.npy")
    x = np.load(HERE / f"{name}_input.npy")
    if name == "bn_mode2":  # Keras 1 mode 2 normalised with the batch's statistics at inference too
        y = x
        for layer in model.layers:
            y = layer(y, training=True) if layer.__class__.__name__ == "BatchNormalization" else layer(y)
        got = np.asarray(y.numpy())
    else:
        got = np.asarray(model.predict(x, verbose=0))
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= TOLERANCE * np.max(np.abs(want))


def test_the_files_carry_user_names_only():
    facts = json.loads((HERE / "facts.json").read_text())
    assert [w for w, _ in facts["rnn"][0]["weights"]] == ["emb_W"]
    assert [w for w, _ in facts["wrappers"][0]["weights"]] == ["proj_W", "proj_b"]  # inside the group `td`
    assert facts["wrappers"][1]["weights"][0][0] == "forward_enc_W_i"
    assert facts["cnn_th"][3]["weights"] == [["conv_b_W", [3, 4, 2, 2]]]  # no bias: th or tf?


@pytest.mark.parametrize("name", sorted(INFERRED))
def test_classes_inferred_from_the_arrays_and_keras3_predicts_like_keras1(name, tmp_path):
    a = ANSWERS.get(name, {})
    dst = tmp_path / "new.h5"
    report = convert_file(str(HERE / f"{name}_weights.h5"), str(dst),
                          Settings(backend="theano", layout=a.get("layout"), classes=a.get("classes", {})))
    assert report.ok and report.verified, report.failure
    classes = {p.old_name: p.keras1_class for p in report.plan.layers}
    assert {k: classes[k] for k in INFERRED[name]} == INFERRED[name]
    assert any(n.startswith("inferred ") for n in report.notes)
    _predicts_like_keras1(name, dst)


@pytest.mark.parametrize("name,option,message", [
    ("rnn", "", "emb: a single 2-D array _W (10, 4) is a Dense without bias or an Embedding: pass "
                "--class emb=Dense or --class emb=Embedding (or --template NEW_MODEL.keras)"),
    ("cnn_th", "", "conv_b: kernel shape (3, 4, 2, 2) fits both th"),
])
def test_truly_ambiguous_arrays_ask_for_one_option(name, option, message, tmp_path):
    src = HERE / f"{name}_weights.h5"
    r = CliRunner().invoke(weights, ["convert", str(src), str(tmp_path / "new.h5"), "--backend", "theano"])
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and message in r.stderr and str(src) in r.stderr
    assert not (tmp_path / "new.h5").exists()


def test_class_answers_are_checked(tmp_path):
    src = str(HERE / "rnn_weights.h5")
    with pytest.raises(BadInput, match="--class nope=Embedding: the file has no layer 'nope'"):
        convert_file(src, str(tmp_path / "a.h5"), Settings(backend="theano", classes={"nope": "Embedding"}))
    with pytest.raises(BadInput, match="--class emb=Flatten: not a Keras 1 layer class"):
        convert_file(src, str(tmp_path / "a.h5"), Settings(backend="theano", classes={"emb": "Flatten"}))


# ---------------------------------------------------------------- --template: the migrated model as data

@pytest.mark.parametrize("name", ["cnn_th", "rnn", "wrappers", "bn_mode2"])
@pytest.mark.parametrize("form", ["keras", "json"])
def test_template_answers_what_the_arrays_leave_open(name, form, tmp_path):
    model = _k3(name)
    if form == "keras":
        template = tmp_path / "new_model.keras"
        model.save(template)
    else:
        template = tmp_path / "model.json"
        template.write_text(model.to_json())
    dst = tmp_path / "new.h5"
    r = CliRunner().invoke(weights, ["convert", str(HERE / f"{name}_weights.h5"), str(dst), "--backend", "theano",
                                     "--template", str(template)])
    assert r.exit_code == 0, r.stderr
    assert "layer classes and configs from --template" in r.stdout and "every layer verified" in r.stdout
    _predicts_like_keras1(name, dst)


def test_template_reads_data_only(tmp_path):
    """A .keras archive is opened as a zip and its config.json parsed as JSON: a Lambda's code or a custom
    object in it is never loaded (the archive here has nothing else)."""
    import zipfile

    cfg = {"class_name": "Sequential", "config": {"layers": [
        {"class_name": "Lambda", "config": {"function": {"class_name": "__lambda__", "config": {"code": "boom"}}}},
        {"class_name": "Dense", "config": {"units": 3, "use_bias": True}},
    ]}}
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(cfg))
    assert [t["class_name"] for t in read_template(str(path))] == ["Dense"]


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_text("not json"), "--template: not a .keras archive or model JSON"),
    (lambda p: p.write_text('{"class_name": "Dense"}'), "not a Keras model config"),
    (lambda p: p.write_text(json.dumps({"class_name": "Sequential", "config": {"layers": [
        {"class_name": "Dense", "config": {"units": 3}}]}})), "--template has 1 layers with weights, the file 2"),
    (lambda p: p.write_text(json.dumps({"class_name": "Sequential", "config": {"layers": [
        {"class_name": "Conv1D", "config": {"filters": 3, "kernel_size": [3]}},
        {"class_name": "Dense", "config": {"units": 7}}]}})), "Dense kernel shape (21, 2) does not match the model (units=7"),
])
def test_a_template_that_is_not_the_model_is_refused(make, message, tmp_path):
    template = tmp_path / "t.json"
    make(template)
    with pytest.raises(BadInput, match=re.escape(message)):
        convert_file(str(HERE / "conv1d_weights.h5"), str(tmp_path / "new.h5"),
                     Settings(backend="theano", template=read_template(str(template))))
    assert not (tmp_path / "new.h5").exists()


def test_a_template_gru_with_reset_after_is_refused_by_name(tmp_path):
    """Keras 3's GRU default (reset_after=True) places the reset gate where no Keras 1 GRU did."""
    import keras

    model = keras.Sequential([keras.Input((5,)), keras.layers.Embedding(10, 4),
                              keras.layers.LSTM(3, return_sequences=True), keras.layers.GRU(3, return_sequences=True),
                              keras.layers.SimpleRNN(2)])
    template = tmp_path / "m.json"
    template.write_text(model.to_json())
    with pytest.raises(BadInput, match="the template's GRU has reset_after=True") as e:
        convert_file(str(HERE / "rnn_weights.h5"), str(tmp_path / "new.h5"),
                     Settings(backend="theano", template=read_template(str(template))))
    assert e.value.layer == "dec"


def test_a_template_embedding_of_another_size_is_refused(tmp_path):
    model = _k3("rnn")
    cfg = json.loads(model.to_json())
    cfg["config"]["layers"][1]["config"]["input_dim"] = 11
    template = tmp_path / "m.json"
    template.write_text(json.dumps(cfg))
    with pytest.raises(BadInput, match=re.escape("Embedding table shape (10, 4) does not match the model "
                                                 "(input_dim=11, output_dim=4)")) as e:
        convert_file(str(HERE / "rnn_weights.h5"), str(tmp_path / "new.h5"),
                     Settings(backend="theano", template=read_template(str(template))))
    assert e.value.layer == "emb"


def test_class_option_needs_layer_equals_class(tmp_path):
    r = CliRunner().invoke(weights, ["convert", str(HERE / "rnn_weights.h5"), str(tmp_path / "n.h5"), "--backend",
                                     "theano", "--class", "Embedding"])
    assert r.exit_code == 2 and "--class Embedding: expected LAYER=CLASS" in r.stderr
    r = CliRunner().invoke(weights, ["convert", str(HERE / "rnn_weights.h5"), str(tmp_path / "n.h5"), "--backend",
                                     "theano", "--class", "emb=Embedding"])
    assert r.exit_code == 0 and "every layer verified" in r.stdout
