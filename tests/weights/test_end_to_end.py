"""Keras 1 file -> convert -> Keras 3 `load_weights` into the migrated model -> same outputs as Keras 1."""

import numpy as np
import pytest

from kmigrate.weights.convert import convert_file
from kmigrate.weights.plan import Settings
from tests.weights.keras1 import all_cases, conv2d_case, write_keras1

CASES = all_cases()
PREDICTION_RTOL = 1e-4  # float32 Keras 3 against the float64 reference


def _predict(case, path):
    model = case.build()
    model.load_weights(str(path))
    rng = np.random.default_rng(42)
    x = rng.standard_normal((2,) + tuple(case.input_shape)).astype(np.float32)
    got = model.predict(case.keras3_input(x), verbose=0)
    want = case.forward(x.astype(np.float64))
    return want, got


def _assert_close(want, got):
    assert got.shape == want.shape
    err = np.max(np.abs(want - got))
    assert err <= PREDICTION_RTOL * max(1.0, np.max(np.abs(want))), err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_full_model_file_loads_into_migrated_model(case, tmp_path):
    src, dst = tmp_path / "old.h5", tmp_path / "new.h5"
    write_keras1(src, case.layers, model_config=case.config, training=True)
    report = convert_file(str(src), str(dst), Settings(backend=case.backend, to=case.to))
    assert report.ok and report.verified
    assert all(r.status == "verified" for r in report.rows if r.old_shapes)
    want, got = _predict(case, dst)
    _assert_close(want, got)


@pytest.mark.parametrize("case", [c for c in CASES if c.layout], ids=[c.id for c in CASES if c.layout])
def test_weights_only_file_with_layout_and_backend_options(case, tmp_path):
    src, dst = tmp_path / "old.h5", tmp_path / "new.h5"
    write_keras1(src, case.layers, tf_names=case.backend == "tensorflow")
    report = convert_file(str(src), str(dst), Settings(layout=case.layout, backend=case.backend))
    assert report.ok and report.verified
    want, got = _predict(case, dst)
    _assert_close(want, got)


@pytest.mark.parametrize("backend", ["theano", "tensorflow"])
def test_th_model_switched_to_channels_last_permutes_dense_after_flatten(backend, tmp_path):
    case = conv2d_case("th", backend, to="channels_last", n=6)
    src, dst = tmp_path / "old.h5", tmp_path / "new.h5"
    write_keras1(src, case.layers, model_config=case.config)
    report = convert_file(str(src), str(dst), Settings(backend=backend, to="channels_last"))
    dense = [r for r in report.rows if r.old_name == "dense_1"][0]
    assert "rows th->tf" in dense.transform
    assert any("BatchNormalization axis=-1" in n for n in report.notes)
    want, got = _predict(case, dst)
    _assert_close(want, got)


def test_tf_model_switched_to_channels_first(tmp_path):
    case = conv2d_case("tf", "tensorflow", to="channels_first", n=6)
    src, dst = tmp_path / "old.h5", tmp_path / "new.h5"
    write_keras1(src, case.layers, model_config=case.config)
    convert_file(str(src), str(dst), Settings(backend="tensorflow", to="channels_first"))
    want, got = _predict(case, dst)
    _assert_close(want, got)


def test_unflipped_theano_kernel_would_predict_differently(tmp_path):
    """The flip matters: the same file converted as TensorFlow-trained gives other outputs."""
    case = conv2d_case("th", "theano")
    src, dst = tmp_path / "old.h5", tmp_path / "new.h5"
    write_keras1(src, case.layers, model_config=case.config)
    convert_file(str(src), str(dst), Settings(backend="tensorflow"))
    want, got = _predict(case, dst)
    assert np.max(np.abs(want - got)) > 1e-2
