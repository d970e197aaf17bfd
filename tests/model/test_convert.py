"""`kmigrate model convert`: every Keras 1.2.2 zoo model whose code migrates also converts whole, and
the .keras file, loaded in a fresh process with no kmigrate code and safe mode on, predicts what
Keras 1.2.2 predicted (max |Keras 3 - Keras 1.2.2| <= 1e-5 * max |Keras 1.2.2|)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from kmigrate.model.convert import convert_model, verify_model
from kmigrate.weights.h5io import BadInput
from kmigrate.weights.plan import Settings

from ..conftest import ROOT
from ..legacy.zoo import MODELS, TOLERANCE, readme_table

TABLE = readme_table()
# Keras 1.2.2's get_config() left out ConvLSTM2D's subsample, and with two such layers the stored Dense
# kernel fits several strides: the user gives the first (as the model's source has it), the file pins the other
GIVEN = {"convlstm2d_th": [("convlstm2d_1", "subsample", (2, 2))],
         "convlstm2d_tf_functional": [("convlstm2d_1", "subsample", (2, 2))]}
# Every zoo model converts whole, including those whose code keeps a call Keras 3 cannot express
# (Theano 'same' pooling, built here as -inf / exclusive padding and 'valid' pooling; BatchNormalization
# mode=2, built from keras.ops statistics) and the one where Keras 3's channels_first Conv3D adds its
# bias wrongly (built channels_last between two Permutes).
PASSING = sorted(TABLE)
CODE_REFUSED = sorted(n for n, (status, _) in TABLE.items() if status == "refused")

LOADER = r"""
import json, sys
import numpy as np
import keras
assert "kmigrate" not in sys.modules
out = {}
for name, path, x, y in json.loads(sys.argv[1]):
    model = keras.models.load_model(path, safe_mode=True)
    x = np.load(x)
    x = [x[k] for k in sorted(x.files)] if hasattr(x, "files") else x  # .npz: one array per model input
    got = model.predict(x, verbose=0)
    want = np.load(y)
    out[name] = [float(np.max(np.abs(got - want))), float(np.max(np.abs(want)))]
print(json.dumps(out))
"""


def _settings(m: dict) -> Settings:
    return Settings(backend=m["backend"])


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Every passing zoo model converted whole, then loaded in one fresh process."""
    folder = tmp_path_factory.mktemp("models")
    jobs, errors = [], {}
    for name in PASSING:
        m = MODELS[name]
        dst = folder / f"{name}.keras"
        try:
            convert_model(str(ROOT / m["files"]["model"]), str(dst), _settings(m), given=GIVEN.get(name, ()))
        except Exception as e:  # noqa: BLE001 - each model's failure is its own test's
            errors[name] = f"{type(e).__name__}: {getattr(e, 'layer', None)}: {e}"
            continue
        jobs.append([name, str(dst), str(ROOT / m["files"]["input"]), str(ROOT / m["files"]["pred"])])
    return fresh_predictions(jobs, folder), errors


def fresh_predictions(jobs: list[list[str]], folder) -> dict[str, list[float]]:
    """[name, model.keras, X.npy, Y.npy] each loaded in one new process with no kmigrate import:
    {name: [max |prediction - Y|, max |Y|]}."""
    env = {"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": str(folder)}
    result = subprocess.run([sys.executable, "-c", LOADER, json.dumps(jobs)], capture_output=True, text=True,
                            env=env, cwd=folder)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", PASSING)
def test_zoo_model_converts_whole_and_predicts_like_keras1(converted, name):
    results, errors = converted
    assert name not in errors, errors.get(name)
    err, scale = results[name]
    assert err <= TOLERANCE * scale, (err, scale)


def test_models_whose_code_the_rewrite_refuses_convert_whole():
    assert {"pool2d_th_max_same_s2", "pool3d_same", "batchnorm_modes"} <= set(CODE_REFUSED)
    assert set(CODE_REFUSED) <= set(PASSING) and "conv3d_th_strided" in PASSING  # its code run differs


def test_a_lambda_layer_is_refused_by_name(tmp_path):
    from tests.weights.keras1 import write_keras1

    dense = {"name": "dense_1", "output_dim": 2, "init": "glorot_uniform", "activation": "linear",
             "W_regularizer": None, "b_regularizer": None, "activity_regularizer": None, "W_constraint": None,
             "b_constraint": None, "bias": True, "input_dim": 3, "trainable": True,
             "batch_input_shape": [None, 3], "input_dtype": "float32"}
    lam = {"name": "lambda_1", "function": ["marshalled bytes, never read", None, None], "function_type": "lambda",
           "output_shape": None, "output_shape_type": "raw", "arguments": {}, "trainable": True}
    config = {"class_name": "Sequential", "config": [{"class_name": "Dense", "config": dense},
                                                     {"class_name": "Lambda", "config": lam}]}
    src = tmp_path / "lambda.h5"
    write_keras1(src, [("dense_1", [("W", np.ones((3, 2), np.float32)), ("b", np.zeros(2, np.float32))]),
                       ("lambda_1", [])], model_config=config)
    with pytest.raises(BadInput, match="Lambda") as exc:
        convert_model(str(src), str(tmp_path / "x.keras"), Settings(backend="tensorflow"))
    assert exc.value.layer == "lambda_1"


@pytest.mark.parametrize("name", sorted(GIVEN))
def test_two_unsaved_strides_the_weights_do_not_pin_are_refused_naming_the_layers(name, tmp_path):
    m = MODELS[name]
    with pytest.raises(BadInput, match=r"did not save ConvLSTM2D's subsample of convlstm2d_1, convlstm2d_2 and "
                                       r"\d+ choices fit .*--set convlstm2d_1\.subsample=") as exc:
        convert_model(str(ROOT / m["files"]["model"]), str(tmp_path / "x.keras"), _settings(m))
    assert exc.value.layer == "convlstm2d_1"
    assert not (tmp_path / "x.keras").exists()


@pytest.mark.parametrize("name", sorted(GIVEN))
def test_the_stride_left_open_is_inferred_once_the_user_gives_the_other(name, tmp_path):
    m = MODELS[name]
    report = convert_model(str(ROOT / m["files"]["model"]), str(tmp_path / "x.keras"), _settings(m),
                           given=GIVEN[name])
    assert "convlstm2d_1: ConvLSTM2D built with subsample=(2, 2) (given with --set)" in report.notes
    assert any(n.startswith("convlstm2d_2: subsample (1, 1) inferred") and "dense_1's stored kernel" in n
               for n in report.notes), report.notes


def test_a_given_stride_the_stored_weights_contradict_is_refused(tmp_path):
    m = MODELS["convlstm2d_th"]
    with pytest.raises(BadInput, match=r"subsample given does not fit dense_1's stored kernel \(18, 2\)") as exc:
        convert_model(str(ROOT / m["files"]["model"]), str(tmp_path / "x.keras"), _settings(m),
                      given=[("convlstm2d_1", "subsample", (1, 1)), ("convlstm2d_2", "subsample", (1, 1))])
    assert exc.value.layer == "convlstm2d_1"
    with pytest.raises(BadInput, match="no layer named 'conv_9'"):
        convert_model(str(ROOT / m["files"]["model"]), str(tmp_path / "x.keras"), _settings(m),
                      given=[("conv_9", "subsample", (2, 2))])
    with pytest.raises(BadInput, match="the file saved border_mode='same'"):
        convert_model(str(ROOT / m["files"]["model"]), str(tmp_path / "x.keras"), _settings(m),
                      given=[("convlstm2d_1", "border_mode", "valid")])
    assert not (tmp_path / "x.keras").exists()


def test_emitted_code_builds_the_same_model(tmp_path):
    import keras

    m = MODELS["functional_1d"]
    code = tmp_path / "model.py"
    convert_model(str(ROOT / m["files"]["model"]), str(tmp_path / "m.keras"), _settings(m), emit_code=str(code))
    namespace: dict = {}
    exec(compile(code.read_text(), str(code), "exec"), namespace)  # trusted: written by the test just now
    built = namespace["build_model"]()
    saved = keras.models.load_model(tmp_path / "m.keras")
    assert [type(x).__name__ for x in built.layers] == [type(x).__name__ for x in saved.layers]
    for a, b in zip(built.layers, saved.layers):
        assert a.name == b.name
        assert {k: v for k, v in a.get_config().items() if k != "name"} == \
            {k: v for k, v in b.get_config().items() if k != "name"}, a.name
    source = code.read_text()
    assert "from_config" not in source and "json" not in source  # layer by layer, not a wrapped config
    assert "layers.Conv1D(filters=4, kernel_size=3" in source


def test_verify_passes_on_keras1s_predictions_and_fails_on_others(tmp_path):
    m = MODELS["conv2d_th_full"]
    dst = tmp_path / "m.keras"
    convert_model(str(ROOT / m["files"]["model"]), str(dst), _settings(m))
    ok, err, scale = verify_model(str(dst), str(ROOT / m["files"]["input"]), str(ROOT / m["files"]["pred"]))
    assert ok and err <= TOLERANCE * scale
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.load(ROOT / m["files"]["pred"]) * 1.01)
    ok, _, _ = verify_model(str(dst), str(ROOT / m["files"]["input"]), str(wrong))
    assert not ok


def test_existing_output_is_refused_and_untouched_without_force(tmp_path):
    m = MODELS["conv2d_th_valid"]
    dst = tmp_path / "m.keras"
    dst.write_bytes(b"keep")
    with pytest.raises(BadInput, match="--force"):
        convert_model(str(ROOT / m["files"]["model"]), str(dst), _settings(m))
    assert dst.read_bytes() == b"keep"
    convert_model(str(ROOT / m["files"]["model"]), str(dst), _settings(m), force=True)
    assert dst.read_bytes() != b"keep"


def test_a_weights_only_file_is_refused_with_what_to_do(tmp_path):
    m = MODELS["conv2d_th_valid"]
    with pytest.raises(BadInput, match="weights convert"):
        convert_model(str(ROOT / m["files"]["weights"]), str(tmp_path / "m.keras"), _settings(m))


def test_cli_converts_and_verifies(tmp_path):
    m = MODELS["embedding_lstm"]
    dst = tmp_path / "m.keras"
    run = subprocess.run([sys.executable, "-m", "kmigrate", "model", "convert", str(ROOT / m["files"]["model"]),
                          str(dst), "--backend", "theano"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # no TensorFlow start-up log
    ver = subprocess.run([sys.executable, "-m", "kmigrate", "model", "verify", str(dst), "--input",
                          str(ROOT / m["files"]["input"]), "--expect", str(ROOT / m["files"]["pred"])],
                         capture_output=True, text=True)
    assert ver.returncode == 0 and ": ok" in ver.stdout, ver.stdout + ver.stderr
    again = subprocess.run([sys.executable, "-m", "kmigrate", "model", "convert", str(ROOT / m["files"]["model"]),
                            str(dst)], capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--force" in again.stderr


KERAS2_REAL = ROOT / "tests" / "weights" / "keras2_real"  # Sequential files of the weights tests
KERAS2 = ROOT / "fixtures" / "model" / "keras2"
KERAS2_FILES = [(KERAS2_REAL, n) for n in ("conv1d", "conv_dense_tf", "conv_dense_th", "deconv_tf", "deconv_th",
                                          "recurrent", "wrappers")] + \
               [(KERAS2, n) for n in ("functional", "channels_first", "recurrent_keys")]


@pytest.fixture(scope="module")
def keras2_converted(tmp_path_factory):
    """Every real Keras 2.0.8 full-model file converted with no --backend (the file records Theano), then
    loaded in one fresh process."""
    folder = tmp_path_factory.mktemp("keras2")
    jobs, reports = [], {}
    for where, name in KERAS2_FILES:
        h5, x, y = _files(where, name)
        reports[name] = convert_model(h5, str(folder / f"{name}.keras"), Settings())
        jobs.append([name, str(folder / f"{name}.keras"), x, y])
    return fresh_predictions(jobs, folder), reports


@pytest.mark.parametrize("name", [n for _, n in KERAS2_FILES])
def test_a_keras2_file_converts_whole_and_predicts_like_keras2(keras2_converted, name):
    results, reports = keras2_converted
    err, scale = results[name]
    assert err <= TOLERANCE * scale, (err, scale)
    assert "Keras 2.0.8 file: read as the Keras 1 file it converts like" in reports[name].notes
    assert reports[name].weights.plan.settings.backend == "theano"  # recorded by the file, kernels flipped


def test_a_keras2_functional_file_keeps_its_merges_dilation_and_theano_padding(keras2_converted):
    import keras

    model = keras.models.load_model(keras2_converted[1]["functional"].output, safe_mode=True)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert {"Add", "Concatenate", "BatchNormalization"} <= set(kinds), kinds
    assert kinds.count("ZeroPadding2D") == 2  # Theano's 'same' padding for an even kernel and a strided one
    assert model.get_layer("conv2d_3").get_config()["dilation_rate"] == (2, 2)
    assert keras2_converted[1]["functional"].end_to_end.proven  # against Keras 1.2.2's numpy forward pass


@pytest.mark.parametrize("name, layer, why", [
    ("avgpool_same", "average_pooling2d_1", "counted the padding in each 'same' average pooling window"),
    ("convlstm", "conv_lst_m2d_1", "Keras 2 ConvLSTM2D"),
])
def test_a_keras2_layer_keras1_did_not_compute_is_refused_by_name(name, layer, why, tmp_path):
    h5, _, _ = _files(KERAS2, name)
    with pytest.raises(BadInput, match=why) as exc:
        convert_model(h5, str(tmp_path / "m.keras"), Settings())
    assert exc.value.layer == layer and not (tmp_path / "m.keras").exists()


def test_a_backend_contradicting_the_keras2_file_is_refused(tmp_path):
    h5, _, _ = _files(KERAS2, "functional")
    with pytest.raises(BadInput, match="--backend tensorflow contradicts the file"):
        convert_model(h5, str(tmp_path / "m.keras"), Settings(backend="tensorflow"))



KERAS1 = ROOT / "fixtures" / "model" / "keras1"


def _files(folder, name: str) -> list[str]:
    return [str(folder / f"{name}_{part}") for part in ("model.h5", "input.npy", "pred.npy")]


def test_an_unsaved_stride_the_stored_weights_pin_is_inferred_and_said(tmp_path):
    jobs = []
    for name, stride, pin in [("convlstm_stride_dense", (2, 2), "dense_1's stored kernel (18, 2)"),
                              ("convlstm_stride_bn", (2, 1), "batchnormalization_1's stored gamma (24,)")]:
        h5, x, y = _files(KERAS1, name)
        report = convert_model(h5, str(tmp_path / f"{name}.keras"), Settings(backend="theano"))
        note = next(n for n in report.notes if "inferred" in n)
        assert note.startswith(f"convlstm2d_1: subsample {stride} inferred (Keras 1.2.2 did not save it)"), note
        assert pin in note
        jobs.append([name, str(tmp_path / f"{name}.keras"), x, y])
    for name, (err, scale) in fresh_predictions(jobs, tmp_path).items():
        assert err <= TOLERANCE * scale, (name, err, scale)


def test_cli_refuses_a_stride_nothing_pins_by_name_and_takes_it_with_set(tmp_path):
    h5, x, y = _files(KERAS1, "convlstm_stride_unpinned")  # ConvLSTM2D -> GlobalAveragePooling2D -> Dense
    dst = tmp_path / "m.keras"
    run = subprocess.run([sys.executable, "-m", "kmigrate", "model", "convert", h5, str(dst), "--backend", "theano"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert f"{h5}: convlstm2d_1: Keras 1.2.2 did not save ConvLSTM2D's subsample" in run.stderr
    assert "--set convlstm2d_1.subsample=ROWS,COLS" in run.stderr and not dst.exists()
    run = subprocess.run([sys.executable, "-m", "kmigrate", "model", "convert", h5, str(dst), "--backend", "theano",
                          "--set", "convlstm2d_1.subsample=2,2"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "note: convlstm2d_1: ConvLSTM2D built with subsample=(2, 2) (given with --set)" in run.stdout
    ver = subprocess.run([sys.executable, "-m", "kmigrate", "model", "verify", str(dst), "--input", x, "--expect", y],
                         capture_output=True, text=True)
    assert ver.returncode == 0 and ": ok" in ver.stdout, ver.stdout + ver.stderr
    bad = subprocess.run([sys.executable, "-m", "kmigrate", "model", "convert", h5, str(dst), "--force",
                          "--set", "convlstm2d_1:subsample"], capture_output=True, text=True)
    assert bad.returncode == 2 and "expected LAYER.KEY=VALUE" in bad.stderr


def test_set_values_are_read_as_data():
    from kmigrate.model.lost import parse_setting

    assert parse_setting("convlstm2d_1.subsample=2,2") == ("convlstm2d_1", "subsample", (2, 2))
    assert parse_setting("a.b.c=same") == ("a.b", "c", "same")
    assert parse_setting("x.dropout_W=0.5") == ("x", "dropout_W", 0.5)
    with pytest.raises(BadInput):
        parse_setting("subsample=2")


# Keras 1.2.2 models with a layer called on several inputs, and with models used as layers
SHARED = {"shared_layers": 6, "nested_models": 6, "nested_functional": 8, "sequential_in_sequential": 4}


@pytest.fixture(scope="module")
def shared_converted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shared")
    jobs, reports = [], {}
    for name in SHARED:
        h5, _, y = _files(KERAS1, name)
        reports[name] = convert_model(h5, str(folder / f"{name}.keras"), Settings(backend="theano"),
                                      emit_code=str(folder / f"{name}.py"))
        jobs.append([name, str(folder / f"{name}.keras"), str(KERAS1 / f"{name}_input.npz"), y])
    return fresh_predictions(jobs, folder), reports


@pytest.mark.parametrize("name", sorted(SHARED))
def test_shared_layers_and_nested_models_convert_whole_and_predict_like_keras1(shared_converted, name):
    import keras

    results, reports = shared_converted
    err, scale = results[name]
    assert err <= TOLERANCE * scale, (err, scale)
    model = keras.models.load_model(reports[name].output, safe_mode=True)
    assert len(model.weights) == SHARED[name]  # each shared layer is one Keras 3 layer, called again
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names)) and not any(n.startswith(("sequential_", "model_")) for n in names[1:])


def test_the_source_of_a_shared_layer_calls_one_layer_again(shared_converted, tmp_path):
    import keras

    report = shared_converted[1]["shared_layers"]
    source = open(report.code).read()
    assert "dense_1_layer = layers.Dense(" in source and source.count("dense_1_layer(") == 4
    namespace: dict = {}
    exec(compile(source, report.code, "exec"), namespace)  # trusted: written by the conversion just now
    built = namespace["build_model"]()
    saved = keras.models.load_model(report.output)
    assert [x.name for x in built.layers] == [x.name for x in saved.layers]
    assert [tuple(w.shape) for w in built.weights] == [tuple(w.shape) for w in saved.weights]


def test_weights_convert_still_refuses_a_nested_model_by_name(tmp_path):
    from kmigrate.weights.convert import convert_file

    h5, _, _ = _files(KERAS1, "nested_models")
    with pytest.raises(BadInput, match="nested models are not supported") as exc:
        convert_file(h5, str(tmp_path / "w.h5"), Settings(backend="theano"))
    assert exc.value.layer == "sequential_1"
