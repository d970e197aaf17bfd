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
# what the file itself does not say (Keras 1.2.2's get_config() left it out): refused, and why
LOST = {"convlstm2d_th": "did not save ConvLSTM2D's subsample",
        "convlstm2d_tf_functional": "did not save ConvLSTM2D's subsample"}
# Every zoo model converts whole, including those whose code keeps a call Keras 3 cannot express
# (Theano 'same' pooling, built here as -inf / exclusive padding and 'valid' pooling; BatchNormalization
# mode=2, built from keras.ops statistics) and the one where Keras 3's channels_first Conv3D adds its
# bias wrongly (built channels_last between two Permutes).
PASSING = sorted(n for n in TABLE if n not in LOST)
CODE_REFUSED = sorted(n for n, (status, _) in TABLE.items() if status == "refused")

LOADER = r"""
import json, sys
import numpy as np
import keras
assert "kmigrate" not in sys.modules
out = {}
for name, path, x, y in json.loads(sys.argv[1]):
    model = keras.models.load_model(path, safe_mode=True)
    got = model.predict(np.load(x), verbose=0)
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
            convert_model(str(ROOT / m["files"]["model"]), str(dst), _settings(m))
        except Exception as e:  # noqa: BLE001 - each model's failure is its own test's
            errors[name] = f"{type(e).__name__}: {getattr(e, 'layer', None)}: {e}"
            continue
        jobs.append([name, str(dst), str(ROOT / m["files"]["input"]), str(ROOT / m["files"]["pred"])])
    env = {"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": str(folder)}
    result = subprocess.run([sys.executable, "-c", LOADER, json.dumps(jobs)], capture_output=True, text=True,
                            env=env, cwd=folder)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), errors


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


@pytest.mark.parametrize("name", sorted(LOST))
def test_a_model_whose_file_lost_a_setting_is_refused_with_the_reason(name, tmp_path):
    m = MODELS[name]
    with pytest.raises(BadInput, match=LOST[name]):
        convert_model(str(ROOT / m["files"]["model"]), str(tmp_path / "x.keras"), _settings(m))
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


def test_a_keras2_file_is_refused_with_what_to_do(tmp_path):
    src = ROOT / "tests" / "weights" / "keras2_real" / "conv_dense_th_model.h5"
    with pytest.raises(BadInput, match="weights convert"):
        convert_model(str(src), str(tmp_path / "m.keras"), Settings(backend="theano"))
    assert not (tmp_path / "m.keras").exists()
