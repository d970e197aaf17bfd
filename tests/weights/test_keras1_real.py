"""The recurrent, Embedding, PReLU, BatchNormalization mode 2 and wrapper families against real Keras 1.2.2.

keras1_real/ holds files written by Keras 1.2.2 (Theano) with every weight set to a different random
value, a fixed input and Keras 1.2.2's own prediction (generate.py). Three things are checked:
* each family's numpy statement of Keras 1 reproduces Keras 1.2.2's prediction from the stored arrays
  (so the references, and the stored names, shapes and gate orders they read, are Keras 1's);
* converting the file proves every layer (max relative error recorded in PROOF_ERRORS);
* the migrated Keras 3 model (Keras 2 API code, as the rules write it) loads the converted file and
  predicts what Keras 1.2.2 predicted, within the zoo's measure (1e-5 of the largest value).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from kmigrate.weights.convert import convert_file, verify_files
from kmigrate.weights.families import batchnorm, correlation, dense, embedding, gru, lstm, prelu, simple_rnn
from kmigrate.weights.families.conv_lstm2d import reference as conv_lstm2d
from kmigrate.weights.plan import Settings

HERE = Path(__file__).parent / "keras1_real"
TOLERANCE = 1e-5  # the zoo's measure: max |Keras 3 - Keras 1| <= 1e-5 * max |Keras 1|


def stored(name: str) -> list[dict[str, np.ndarray]]:
    """The arrays of each weighted layer of a Keras 1.2.2 file, by Keras 1 suffix (`W_i`, `alphas`, ...),
    the wrapper prefixes forward_/backward_ kept."""
    out = []
    with h5py.File(HERE / f"{name}_model.h5", "r") as f:
        g = f["model_weights"]
        for layer in g.attrs["layer_names"]:
            layer = layer.decode()
            names = [n.decode() for n in g[layer].attrs["weight_names"]]
            if not names:
                continue
            arrays = {}
            for n in names:
                stem = n
                for prefix in ("forward_", "backward_"):
                    if stem.startswith(prefix):
                        break
                else:
                    prefix = ""
                inner = stem[len(prefix):]
                # `lstm_5_W_i` -> `W_i`: the layer name is `<class>_<n>`
                parts = inner.split("_")
                suffix = "_".join(parts[2:])
                arrays[prefix + suffix] = np.asarray(g[layer][n], np.float64)
            out.append(arrays)
    return out


def sub(arrays, prefix):
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


# ---------------------------------------------------------------- Keras 1 forward passes (numpy, original arrays)

def _lstm(a, x, **kw):
    return lstm.reference(a, x, **kw)


def _bidi(fam, a, x, mode, last=False):
    y = fam(sub(a, "forward_"), x)
    y_rev = fam(sub(a, "backward_"), x, go_backwards=True)[:, ::-1]
    if last:
        y, y_rev = y[:, -1], y_rev[:, 0]
    return {"concat": lambda: np.concatenate([y, y_rev], -1), "sum": lambda: y + y_rev,
            "ave": lambda: (y + y_rev) / 2, "mul": lambda: y * y_rev}[mode]()


def _srnn(a, x, go_backwards=False):
    return simple_rnn.reference(a["W"], a["U"], a["b"], x, go_backwards=go_backwards)


def _gru(a, x, **kw):
    return gru.reference(a, x, **kw)


def _dense(a, x):
    return dense.reference(x.reshape(-1, x.shape[-1]), a["W"], a["b"]).reshape(x.shape[:-1] + (-1,))


FORWARD = {
    "embedding": lambda L, x: embedding.reference(L[0]["W"], x),
    "simple_rnn": lambda L, x: _srnn(L[0], x),
    "simple_rnn_gpu": lambda L, x: _srnn(L[0], x)[:, -1],
    "gru_cpu": lambda L, x: _gru(L[0], x),
    "gru_mem": lambda L, x: _gru(L[0], x),
    "gru_gpu": lambda L, x: _gru(L[0], x),
    "gru_sigmoid": lambda L, x: _gru(L[0], x, inner_name="sigmoid")[:, -1],
    "gru_backwards": lambda L, x: _gru(L[0], x, go_backwards=True),
    "lstm_cpu": lambda L, x: _lstm(L[0], x),
    "lstm_mem": lambda L, x: _lstm(L[0], x),
    "lstm_gpu": lambda L, x: _lstm(L[0], x),
    "lstm_sigmoid": lambda L, x: _lstm(L[0], x, inner_name="sigmoid")[:, -1],
    "lstm_backwards_relu": lambda L, x: _lstm(L[0], x, act_name="relu", go_backwards=True),
    "convlstm_th": lambda L, x: conv_lstm2d(L[0], x, "th", "theano", border_mode="same"),
    "convlstm_tf": lambda L, x: conv_lstm2d(L[0], x, "tf", "theano", border_mode="same"),
    "convlstm_valid3_tf": lambda L, x: conv_lstm2d(L[0], x, "tf", "theano"),
    "convlstm_valid_th": lambda L, x: conv_lstm2d(L[0], x, "th", "theano")[:, -1],
    "convlstm_valid_tf": lambda L, x: conv_lstm2d(L[0], x, "tf", "theano")[:, -1],
    "bn_mode2": lambda L, x: batchnorm.reference(x, *(L[0][k] for k in ("gamma", "beta", "running_mean",
                                                                          "running_std")), mode=2),
    "prelu_dense": lambda L, x: prelu.reference(L[1]["alphas"], dense.reference(x, L[0]["W"], L[0]["b"])),
    "prelu_shared": lambda L, x: prelu.reference(L[1]["alphas"], dense.reference(x, L[0]["W"], L[0]["b"])),
    "prelu_th": lambda L, x: prelu.reference(L[1]["alphas"], correlation.conv(x, L[0]["W"], L[0]["b"], "th", "theano")),
    "prelu_tf": lambda L, x: prelu.reference(L[1]["alphas"], correlation.conv(x, L[0]["W"], L[0]["b"], "tf", "theano")),
    "td_dense": lambda L, x: _dense(L[0], x),
    "td_conv": lambda L, x: np.stack([correlation.conv(x[:, t], L[0]["W"], L[0]["b"], "th", "theano")
                                      for t in range(x.shape[1])], 1),
    "td_lstm": lambda L, x: _lstm(L[1], _dense(L[0], x))[:, -1],
    "embedding_lstm": lambda L, x: _lstm(L[1], embedding.reference(L[0]["W"], x))[:, -1],
    "bidi_lstm_concat": lambda L, x: _bidi(_lstm, L[0], x, "concat"),
    "bidi_lstm_sum": lambda L, x: _bidi(_lstm, L[0], x, "sum"),
    "bidi_lstm_ave": lambda L, x: _bidi(_lstm, L[0], x, "ave"),
    "bidi_lstm_mul": lambda L, x: _bidi(_lstm, L[0], x, "mul"),
    "bidi_lstm_last": lambda L, x: _bidi(_lstm, L[0], x, "concat", last=True),
    "bidi_gru": lambda L, x: _bidi(_gru, L[0], x, "concat", last=True),
    "bidi_srnn": lambda L, x: _bidi(_srnn, L[0], x, "concat", last=True),
}


# ---------------------------------------------------------------- the migrated Keras 3 models (Keras 2 API code)

def _k3(name):
    import keras
    from keras import layers as L

    hs = {"recurrent_activation": "hard_sigmoid"}
    builders = {
        "embedding": lambda: [keras.Input((5,)), L.Embedding(10, 4)],
        "simple_rnn": lambda: [keras.Input((5, 4)), L.SimpleRNN(3, return_sequences=True)],
        "simple_rnn_gpu": lambda: [keras.Input((5, 4)), L.SimpleRNN(3)],
        "gru_cpu": lambda: [keras.Input((5, 4)), L.GRU(3, return_sequences=True, reset_after=False, **hs)],
        "gru_mem": lambda: [keras.Input((5, 4)), L.GRU(3, return_sequences=True, reset_after=False, **hs)],
        "gru_gpu": lambda: [keras.Input((5, 4)), L.GRU(3, return_sequences=True, reset_after=False, **hs)],
        "gru_sigmoid": lambda: [keras.Input((5, 4)), L.GRU(3, reset_after=False, recurrent_activation="sigmoid")],
        "gru_backwards": lambda: [keras.Input((5, 4)), L.GRU(3, return_sequences=True, go_backwards=True,
                                                             reset_after=False, **hs)],
        "lstm_cpu": lambda: [keras.Input((5, 4)), L.LSTM(3, return_sequences=True, **hs)],
        "lstm_mem": lambda: [keras.Input((5, 4)), L.LSTM(3, return_sequences=True, **hs)],
        "lstm_gpu": lambda: [keras.Input((5, 4)), L.LSTM(3, return_sequences=True, **hs)],
        "lstm_sigmoid": lambda: [keras.Input((5, 4)), L.LSTM(3, recurrent_activation="sigmoid")],
        "lstm_backwards_relu": lambda: [keras.Input((5, 4)), L.LSTM(3, activation="relu", go_backwards=True,
                                                                    return_sequences=True, **hs)],
        "convlstm_th": lambda: [keras.Input((3, 2, 6, 6)), L.ConvLSTM2D(4, (3, 3), padding="same",
                                                                        data_format="channels_first",
                                                                        return_sequences=True, **hs)],
        "prelu_th": lambda: [keras.Input((2, 5, 5)), L.Conv2D(3, (3, 3), data_format="channels_first"), L.PReLU()],
        "td_conv": lambda: [keras.Input((3, 2, 5, 5)), L.TimeDistributed(L.Conv2D(2, (3, 3),
                                                                                  data_format="channels_first"))],
        "convlstm_tf": lambda: [keras.Input((3, 6, 6, 2)), L.ConvLSTM2D(4, (3, 3), padding="same",
                                                                        return_sequences=True, **hs)],
        "convlstm_valid3_tf": lambda: [keras.Input((3, 6, 6, 2)), L.ConvLSTM2D(2, (3, 3), return_sequences=True,
                                                                               **hs)],
        "prelu_dense": lambda: [keras.Input((3,)), L.Dense(4), L.PReLU()],
        "prelu_shared": lambda: [keras.Input((3,)), L.Dense(4), L.PReLU()],
        "prelu_tf": lambda: [keras.Input((5, 5, 2)), L.Conv2D(3, (3, 3)), L.PReLU()],
        "td_dense": lambda: [keras.Input((5, 4)), L.TimeDistributed(L.Dense(3))],
        "td_lstm": lambda: [keras.Input((5, 4)), L.TimeDistributed(L.Dense(2)), L.LSTM(3, **hs)],
        "embedding_lstm": lambda: [keras.Input((5,)), L.Embedding(10, 4), L.LSTM(3, **hs)],
        "bidi_lstm_concat": lambda: [keras.Input((5, 4)), L.Bidirectional(L.LSTM(3, return_sequences=True, **hs))],
        "bidi_lstm_sum": lambda: [keras.Input((5, 4)), L.Bidirectional(L.LSTM(3, return_sequences=True, **hs),
                                                                       merge_mode="sum")],
        "bidi_lstm_ave": lambda: [keras.Input((5, 4)), L.Bidirectional(L.LSTM(3, return_sequences=True, **hs),
                                                                       merge_mode="ave")],
        "bidi_lstm_mul": lambda: [keras.Input((5, 4)), L.Bidirectional(L.LSTM(3, return_sequences=True, **hs),
                                                                       merge_mode="mul")],
        "bidi_lstm_last": lambda: [keras.Input((5, 4)), L.Bidirectional(L.LSTM(3, **hs))],
        "bidi_gru": lambda: [keras.Input((5, 4)), L.Bidirectional(L.GRU(3, reset_after=False, **hs))],
        "bidi_srnn": lambda: [keras.Input((5, 4)), L.Bidirectional(L.SimpleRNN(3))],
    }
    if name not in builders:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return keras.Sequential(builders[name]())


# Theano's 'same' convolution of the recurrent state with an even kernel: no Keras 3 layer does that
EVEN_KERNEL = {"convlstm_valid_th", "convlstm_valid_tf"}
# Keras 1 BatchNormalization mode 2 normalises with batch statistics at inference: the model side
# (a construction) is the rules' business; the arrays and the per-layer proof are checked here
MODEL_SIDE = {"bn_mode2"}
CASES = sorted(FORWARD)
PROOF_ERRORS: dict[str, float] = {}  # per case: the worst layer's max relative error


def test_every_case_has_a_forward_pass_and_every_file_is_used():
    names = {p.name.rsplit("_", 1)[0] for p in HERE.glob("*_model.h5")}
    assert names == set(FORWARD)


def test_stored_names_and_shapes_are_what_keras1_wrote():
    """The facts the families rely on, as Keras 1.2.2 wrote them (keras-facts §2.1 and more)."""
    facts = json.loads((HERE / "facts.json").read_text())
    names = lambda case, i=0: [n.split("_", 2)[-1] for n, _ in facts[case][i]["weights"]]  # noqa: E731
    assert names("lstm_cpu") == ["W_i", "U_i", "b_i", "W_c", "U_c", "b_c", "W_f", "U_f", "b_f", "W_o", "U_o", "b_o"]
    assert names("gru_mem") == ["W_z", "U_z", "b_z", "W_r", "U_r", "b_r", "W_h", "U_h", "b_h"]
    assert [s for _, s in facts["lstm_gpu"][0]["weights"]] == [[4, 12], [3, 12], [12]]
    assert [s for _, s in facts["gru_gpu"][0]["weights"]] == [[4, 9], [3, 9], [9]]
    assert names("simple_rnn_gpu") == ["W", "U", "b"]  # SimpleRNN stores one triple in every mode
    assert [s for _, s in facts["convlstm_th"][0]["weights"]][:3] == [[4, 2, 3, 3], [4, 4, 3, 3], [4]]
    assert facts["prelu_th"][1]["weights"] == [["prelu_2_alphas", [3, 3, 3]]]
    assert facts["embedding"][0]["weights"] == [["embedding_1_W", [10, 4]]]
    assert [n for n, _ in facts["td_dense"][0]["weights"]] == ["dense_3_W", "dense_3_b"]
    bidi = [n for n, _ in facts["bidi_srnn"][0]["weights"]]
    assert bidi == ["forward_simplernn_3_W", "forward_simplernn_3_U", "forward_simplernn_3_b",
                    "backward_simplernn_3_W", "backward_simplernn_3_U", "backward_simplernn_3_b"]


@pytest.mark.parametrize("name", CASES)
def test_reference_reproduces_keras1(name):
    want = np.load(HERE / f"{name}_pred.npy")
    x = np.load(HERE / f"{name}_input.npy")
    got = FORWARD[name](stored(name), x if x.dtype.kind == "i" else x.astype(np.float64))
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= TOLERANCE * np.max(np.abs(want))


@pytest.mark.parametrize("name", CASES)
def test_full_model_file_converts_and_keras3_predicts_like_keras1(name, tmp_path):
    dst = tmp_path / "new.h5"
    report = convert_file(str(HERE / f"{name}_model.h5"), str(dst), Settings(backend="theano"))
    if name in EVEN_KERNEL:
        assert not report.ok and not dst.exists()
        notes = " ".join(n for r in report.rows for n in r.notes)
        assert "even kernel" in notes and "no Keras 3 ConvLSTM2D reproduces it" in notes
        return
    assert report.ok and report.verified, report.failure
    PROOF_ERRORS[name] = max(r.max_rel for r in report.rows if r.old_shapes)
    assert PROOF_ERRORS[name] < 1e-6
    model = _k3(name)
    if model is None:
        assert name in MODEL_SIDE
        return
    model.load_weights(str(dst))
    want = np.load(HERE / f"{name}_pred.npy")
    got = model.predict(np.load(HERE / f"{name}_input.npy"), verbose=0)
    assert np.max(np.abs(got - want)) <= TOLERANCE * np.max(np.abs(want))


@pytest.mark.parametrize("name", ["lstm_cpu", "gru_gpu", "convlstm_tf", "bidi_lstm_sum"])
def test_weights_only_file_assumes_keras1_default_gates_and_says_so(name, tmp_path):
    dst = tmp_path / "new.h5"
    report = convert_file(str(HERE / f"{name}_weights.h5"), str(dst), Settings(backend="theano"))
    assert report.ok, report.failure
    notes = " ".join(n for r in report.rows for n in r.notes)
    assert "assumed Keras 1's default inner_activation='hard_sigmoid'" in notes
    said = [d for d in report.diagnostics if "assumed Keras 1's default" in d.message]
    assert said and said[0].rule == report.plan.weighted[0].family.name and said[0].path.endswith("_weights.h5")
    model = _k3(name)
    model.load_weights(str(dst))
    want = np.load(HERE / f"{name}_pred.npy")
    got = model.predict(np.load(HERE / f"{name}_input.npy"), verbose=0)
    assert np.max(np.abs(got - want)) <= TOLERANCE * np.max(np.abs(want))


def test_weights_only_file_with_config_uses_its_inner_activation(tmp_path):
    with h5py.File(HERE / "lstm_sigmoid_model.h5", "r") as f:
        config = json.loads(f.attrs["model_config"])
    dst = tmp_path / "new.h5"
    report = convert_file(str(HERE / "lstm_sigmoid_weights.h5"), str(dst),
                          Settings(backend="theano", model_config=config))
    assert report.ok and "x1.2" not in report.rows[0].transform
    model = _k3("lstm_sigmoid")
    model.load_weights(str(dst))
    got = model.predict(np.load(HERE / "lstm_sigmoid_input.npy"), verbose=0)
    want = np.load(HERE / "lstm_sigmoid_pred.npy")
    assert np.max(np.abs(got - want)) <= TOLERANCE * np.max(np.abs(want))


def _swap_columns(path, layer, weight, a, b, units):
    with h5py.File(path, "r+") as f:
        d = f[layer][weight]
        v = d[()]
        i, j = slice(a * units, (a + 1) * units), slice(b * units, (b + 1) * units)
        v[..., i], v[..., j] = v[..., j].copy(), v[..., i].copy()
        d[...] = v


@pytest.mark.parametrize("name,layer,weight,gates", [
    ("lstm_cpu", "lstm", "kernel:0", (1, 2)),  # f <-> c
    ("lstm_gpu", "lstm", "recurrent_kernel:0", (0, 3)),  # i <-> o
    ("gru_mem", "gru", "bias:0", (0, 1)),  # z <-> r
    ("convlstm_tf", "conv_lstm2d", "kernel:0", (1, 2)),
    ("bidi_lstm_concat", "bidirectional", "backward_kernel:0", (0, 1)),
])
def test_a_swapped_gate_fails_the_proof(name, layer, weight, gates, tmp_path):
    src, dst = HERE / f"{name}_model.h5", tmp_path / "new.h5"
    assert convert_file(str(src), str(dst), Settings(backend="theano")).ok
    units = 4 if "conv" in name else 3
    _swap_columns(dst, layer, weight, *gates, units)
    report = verify_files(str(src), str(dst), Settings(backend="theano"))
    assert not report.ok and "do not reproduce Keras 1" in report.failure[1]


def test_without_the_gate_scale_the_proof_fails(tmp_path, monkeypatch):
    from kmigrate.weights.families import recurrent

    monkeypatch.setattr(recurrent, "GATE_SCALE", 1.0)
    report = convert_file(str(HERE / "lstm_cpu_weights.h5"), str(tmp_path / "new.h5"), Settings(backend="theano"))
    assert not report.ok and report.failure[0] == "lstm_1"


def test_prelu_alphas_of_a_th_feature_map_move_with_to_channels_last(tmp_path):
    import keras

    dst = tmp_path / "new.h5"
    report = convert_file(str(HERE / "prelu_th_model.h5"), str(dst), Settings(backend="theano", to="channels_last"))
    assert report.ok and "channel axis th->tf" in report.rows[-1].transform
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = keras.Sequential([keras.Input((5, 5, 2)), keras.layers.Conv2D(3, (3, 3)), keras.layers.PReLU()])
    model.load_weights(str(dst))
    x = np.moveaxis(np.load(HERE / "prelu_th_input.npy"), 1, -1)
    want = np.moveaxis(np.load(HERE / "prelu_th_pred.npy"), 1, -1)
    got = model.predict(x, verbose=0)
    assert np.max(np.abs(got - want)) <= TOLERANCE * np.max(np.abs(want))
