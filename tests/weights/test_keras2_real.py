"""Keras 2.x files take the Keras 1 path: real Keras 2.0.8 (Theano) files convert, and Keras 3 predicts
what Keras 2.0.8 predicted.

keras2_real/ holds files written by Keras 2.0.8 on Theano (generate.py): `model.save` and `save_weights`
of small conv + BatchNormalization + dense models in both data formats, a Conv1D after an Embedding,
and Conv2DTranspose, every weight a different random value, with a fixed input and Keras 2.0.8's own
prediction. The Keras 3 models below are what the Keras 2 code builds in Keras 3; where Theano's 'same'
padding differs from Keras 3's (an even kernel), they use the construction the report gives.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from kmigrate.weights.convert import convert_file, verify_files
from kmigrate.weights.h5io import BadInput
from kmigrate.weights.plan import Settings

HERE = Path(__file__).parent / "keras2_real"
TOLERANCE = 1e-5  # max |Keras 3 - Keras 2.0.8| <= 1e-5 * max |Keras 2.0.8|
CASES = ["conv_dense_th", "conv_dense_tf", "conv1d", "deconv_th", "deconv_tf", "recurrent", "wrappers"]
RECURRENT = {"recurrent", "wrappers"}
# Theano pads 'same' for the (2, 3) kernel k//2 before and cuts the end; Keras 3 cannot say that
HS = {"recurrent_activation": "hard_sigmoid"}
THEANO_SAME = "ZeroPadding2D(((1, 1), (1, 1))) + Conv2D(..., padding='valid') + Cropping2D(((0, 1), (0, 0)))"


def _k3(name):
    import keras
    from keras import layers as L

    def conv_dense(fmt):
        shape = (2, 8, 8) if fmt == "channels_first" else (8, 8, 2)
        f = {"data_format": fmt}
        return [keras.Input(shape), L.Conv2D(3, (3, 3), activation="relu", **f),
                L.BatchNormalization(axis=1 if fmt == "channels_first" else -1), L.MaxPooling2D((2, 2), **f),
                L.ZeroPadding2D(((1, 1), (1, 1)), **f), L.Conv2D(4, (2, 3), use_bias=False, **f),
                L.Cropping2D(((0, 1), (0, 0)), **f), L.Flatten(), L.Dense(5, activation="tanh"), L.Dense(3)]

    builders = {
        "conv_dense_th": lambda: conv_dense("channels_first"),
        "conv_dense_tf": lambda: conv_dense("channels_last"),
        "conv1d": lambda: [keras.Input((9,)), L.Embedding(10, 4), L.Conv1D(3, 3, activation="relu"),
                           L.GlobalMaxPooling1D(), L.Dense(2)],
        "deconv_th": lambda: [keras.Input((3, 4, 4)), L.Conv2DTranspose(2, (3, 3), strides=(2, 2),
                                                                        data_format="channels_first"),
                              L.Flatten(), L.Dense(2)],
        "deconv_tf": lambda: [keras.Input((4, 4, 3)), L.Conv2DTranspose(2, (3, 3))],
        # Keras 2's recurrent_activation default was its hard_sigmoid (= Keras 1's): Keras 3's with scaled gates
        "recurrent": lambda: [keras.Input((5, 4)), L.LSTM(3, return_sequences=True, **HS),
                              L.GRU(3, return_sequences=True, reset_after=False, **HS), L.SimpleRNN(2)],
        "wrappers": lambda: [keras.Input((5, 4)), L.TimeDistributed(L.Dense(3)),
                             L.Bidirectional(L.LSTM(2, return_sequences=True, **HS)),
                             L.Bidirectional(L.GRU(2, reset_after=False, **HS), merge_mode="sum")],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return keras.Sequential(builders[name]())


def test_the_files_are_keras_2_0_8_theano_files():
    """The layout Keras 2.0.8 wrote (keras-facts: nested `layer/kernel` datasets, keras_version and
    backend on the root and on the weights group)."""
    with h5py.File(HERE / "conv_dense_th_model.h5", "r") as f:
        assert f.attrs["keras_version"] in (b"2.0.8", "2.0.8")
        g = f["model_weights"]
        assert g.attrs["backend"] in (b"theano", "theano")
        assert [n.decode() for n in g["conv2d_1"].attrs["weight_names"]] == ["conv2d_1/kernel", "conv2d_1/bias"]
        assert g["conv2d_1"]["conv2d_1"]["kernel"].shape == (3, 3, 2, 3)  # (rows, cols, in, out) for th too
    facts = json.loads((HERE / "facts.json").read_text())
    assert facts["deconv_th"][0]["weights"][0] == ["conv2d_transpose_1/kernel", [3, 3, 2, 3]]  # (r, c, out, in)


@pytest.mark.parametrize("kind", ["model", "weights"])
@pytest.mark.parametrize("name", CASES)
def test_keras2_file_converts_and_keras3_predicts_like_keras2(name, kind, tmp_path):
    dst = tmp_path / "new.h5"
    report = convert_file(str(HERE / f"{name}_{kind}.h5"), str(dst), Settings())  # no --backend: recorded
    assert report.ok and report.verified, report.failure
    assert max(r.max_rel for r in report.rows if r.old_shapes) < 1e-6
    assert report.plan.settings.backend == "theano"
    if name not in RECURRENT:
        assert any(p.flip for p in report.plan.weighted)  # Theano-trained kernels are flipped
    if name.startswith("conv_dense") and kind == "model":  # the config says padding='same', and the report
        notes = " ".join(n for r in report.rows for n in r.notes)  # the Keras 3 form of Theano's
        assert THEANO_SAME in notes
    model = _k3(name)
    model.load_weights(str(dst))
    want = np.load(HERE / f"{name}_pred.npy")
    got = model.predict(np.load(HERE / f"{name}_input.npy"), verbose=0)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= TOLERANCE * np.max(np.abs(want))


def test_without_the_flip_keras3_would_predict_otherwise(tmp_path):
    """The flip is needed: the same file read as TensorFlow-saved does not reproduce Keras 2.0.8."""
    src = tmp_path / "tf.h5"
    src.write_bytes((HERE / "conv_dense_tf_weights.h5").read_bytes())
    with h5py.File(src, "r+") as f:
        f.attrs["backend"] = np.bytes_(b"tensorflow")
    dst = tmp_path / "new.h5"
    assert convert_file(str(src), str(dst), Settings()).ok
    model = _k3("conv_dense_tf")
    model.load_weights(str(dst))
    want = np.load(HERE / "conv_dense_tf_pred.npy")
    got = model.predict(np.load(HERE / "conv_dense_tf_input.npy"), verbose=0)
    assert np.max(np.abs(got - want)) > 100 * TOLERANCE * np.max(np.abs(want))


def test_a_backend_contradicting_the_file_is_refused(tmp_path):
    with pytest.raises(BadInput, match="saved with backend='theano'"):
        convert_file(str(HERE / "conv_dense_th_model.h5"), str(tmp_path / "new.h5"), Settings(backend="tensorflow"))
    assert not (tmp_path / "new.h5").exists()


def test_verify_reruns_the_proof_on_a_converted_keras2_file(tmp_path):
    dst = tmp_path / "new.h5"
    assert convert_file(str(HERE / "deconv_th_model.h5"), str(dst), Settings()).ok
    report = verify_files(str(HERE / "deconv_th_model.h5"), str(dst), Settings())
    assert report.ok and all(r.status == "verified" for r in report.rows if r.old_shapes)


def test_a_keras3_file_is_refused_by_name(tmp_path):
    src = tmp_path / "k3.h5"
    src.write_bytes((HERE / "conv1d_weights.h5").read_bytes())
    with h5py.File(src, "r+") as f:
        f.attrs["keras_version"] = np.bytes_(b"3.15.1")
    with pytest.raises(BadInput, match="already a Keras 3.15.1 file .*Keras 3 loads it as it is"):
        convert_file(str(src), str(tmp_path / "new.h5"), Settings())


def test_a_gru_with_reset_after_is_refused_by_name(tmp_path):
    """Keras 2.2+ could save GRU(reset_after=True) (bias (2, 3u)); Keras 1 and 2.0 had no such layer."""
    src = tmp_path / "gru.h5"
    src.write_bytes((HERE / "recurrent_model.h5").read_bytes())
    with h5py.File(src, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        cfg["config"][1]["config"]["reset_after"] = True
        f.attrs["model_config"] = np.bytes_(json.dumps(cfg).encode())
    with pytest.raises(BadInput, match="the file's GRU has reset_after=True") as e:
        convert_file(str(src), str(tmp_path / "new.h5"), Settings())
    assert e.value.layer == "gru_1"


def _as_saved_on_tensorflow(src: Path, dst: Path) -> None:
    """The file Keras 2.0.8 on TensorFlow writes for the same model: it loads a Theano file by flipping
    every convolution kernel (conv_utils.convert_kernel: all axes but the last two reversed), and saves
    with TensorFlow's `:0` variable names and backend='tensorflow'."""
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        for k, v in f.attrs.items():
            g.attrs[k] = v
        g.attrs["backend"] = np.bytes_(b"tensorflow")
        cfg = json.loads(f.attrs["model_config"]) if "model_config" in f.attrs else None
        classes = {l["config"]["name"]: l["class_name"] for l in cfg["config"]} if cfg else {}
        src_w = f["model_weights"] if "model_weights" in f else f
        dst_w = g.create_group("model_weights") if "model_weights" in f else g
        for k, v in src_w.attrs.items():
            dst_w.attrs[k] = v
        dst_w.attrs["backend"] = np.bytes_(b"tensorflow")
        for layer in [n.decode() for n in src_w.attrs["layer_names"]]:
            grp = dst_w.create_group(layer)
            names = [n.decode() for n in src_w[layer].attrs["weight_names"]]
            grp.attrs["weight_names"] = np.array([(n + ":0").encode() for n in names])
            for n in names:
                a = np.asarray(src_w[layer][n])
                if n.endswith("/kernel") and classes.get(layer, "Conv") in ("Conv1D", "Conv2D", "Conv") and a.ndim > 2:
                    a = a[tuple(slice(None, None, -1) for _ in range(a.ndim - 2))].copy()
                grp.create_dataset(n + ":0", data=a)


@pytest.mark.parametrize("name", ["conv_dense_tf", "conv1d"])
def test_a_keras2_file_saved_on_tensorflow_is_not_flipped(name, tmp_path):
    src = tmp_path / "tf_model.h5"
    _as_saved_on_tensorflow(HERE / f"{name}_model.h5", src)
    dst = tmp_path / "new.h5"
    report = convert_file(str(src), str(dst), Settings())
    assert report.ok and report.verified, report.failure
    assert report.plan.settings.backend == "tensorflow" and not any(p.flip for p in report.plan.weighted)
    model = _k3(name)
    model.load_weights(str(dst))
    want = np.load(HERE / f"{name}_pred.npy")
    got = model.predict(np.load(HERE / f"{name}_input.npy"), verbose=0)
    assert np.max(np.abs(got - want)) <= TOLERANCE * np.max(np.abs(want))


def test_inspect_shows_where_each_keras2_array_is_stored():
    from click.testing import CliRunner

    from kmigrate.weights.cli import weights

    r = CliRunner().invoke(weights, ["inspect", str(HERE / "conv_dense_th_weights.h5")])
    assert r.exit_code == 0, r.stderr
    assert "keras_version: 2.0.8" in r.stdout
    assert "weight conv2d_1_W (3, 3, 2, 3) <f4 (stored as /conv2d_1/conv2d_1/kernel)" in r.stdout
    assert "backend: theano" in r.stdout  # recorded by Keras 2, not asked
