"""A Dense kernel over the block size is converted and proved a block of rows at a time: the result is the
whole-array permutation exactly, and the streamed proof still catches a moved row or a missing permutation."""

import h5py
import numpy as np
import pytest

from kmigrate.weights import h5io
from kmigrate.weights.convert import convert_file, verify_files
from kmigrate.weights.families.dense import dense_after_flatten
from kmigrate.weights.plan import Settings
from tests.weights.keras1 import CONV_BASE, write_keras1

C, N, UNITS = 3, (5, 4), 7  # a (3, 5, 4) feature map: 60 rows, blocks of a few rows


def _model(tmp_path, layout):
    rng = np.random.default_rng(5)
    shape = (C, *N) if layout == "th" else (*N, C)  # the feature map the Flatten flattens
    inp = (2, *N) if layout == "th" else (*N, 2)
    conv = dict(CONV_BASE, name="convolution2d_1", nb_filter=C, nb_row=1, nb_col=1, border_mode="valid",
                subsample=[1, 1], dim_ordering=layout, batch_input_shape=[None, *inp], input_dtype="float32")
    dense = dict(CONV_BASE, name="dense_1", output_dim=UNITS, input_dim=None)
    config = {"class_name": "Sequential", "config": [{"class_name": "Convolution2D", "config": conv},
                                                     {"class_name": "Flatten", "config": {"name": "flatten_1"}},
                                                     {"class_name": "Dense", "config": dense}]}
    W = rng.standard_normal((C * N[0] * N[1], UNITS)).astype(np.float32)
    k = rng.standard_normal((C, 2, 1, 1) if layout == "th" else (1, 1, 2, C)).astype(np.float32)
    src = tmp_path / f"{layout}.h5"
    write_keras1(src, [("convolution2d_1", [("W", k), ("b", np.zeros(C, np.float32))]), ("flatten_1", []),
                       ("dense_1", [("W", W), ("b", rng.standard_normal(UNITS).astype(np.float32))])],
                 model_config=config)
    return src, W, shape


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(h5io, "BLOCK_BYTES", 256)  # 60 x 7 float32 = 1680 bytes: many uneven blocks


@pytest.mark.parametrize("layout,to,target", [("th", "channels_last", "tf"), ("tf", "channels_first", "th"),
                                              ("th", None, "th")])
def test_streamed_kernel_is_the_whole_permutation(tmp_path, small_blocks, layout, to, target):
    src, W, shape = _model(tmp_path, layout)
    dst = tmp_path / "out.h5"
    report = convert_file(str(src), str(dst), Settings(backend="tensorflow", to=to))
    assert report.ok and report.verified, report.failure
    with h5py.File(dst, "r") as f:
        got = f["dense"]["kernel:0"][()]
    assert np.array_equal(got, dense_after_flatten(W, shape, layout, target))
    assert verify_files(str(src), str(dst), Settings()).ok


@pytest.mark.parametrize("damage", ["swap two rows", "rows not permuted", "one weight off"])
def test_streamed_proof_catches_damage(tmp_path, small_blocks, damage):
    src, W, _ = _model(tmp_path, "th")
    dst = tmp_path / "out.h5"
    assert convert_file(str(src), str(dst), Settings(backend="tensorflow", to="channels_last")).ok
    with h5py.File(dst, "r+") as f:
        d = f["dense"]["kernel:0"]
        k = d[()]
        if damage == "swap two rows":
            k[[2, 41]] = k[[41, 2]]
        elif damage == "rows not permuted":
            k = W
        else:
            k[59, 6] *= 1.001
        d[...] = k
    report = verify_files(str(src), str(dst), Settings())
    assert not report.ok
    assert report.failure[0] == "dense_1" and "do not reproduce Keras 1" in report.failure[1]


def test_read_runs_reads_the_same_rows_of_every_run(tmp_path):
    a = np.arange(6 * 10 * 3, dtype=np.float32).reshape(60, 3)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("w", data=a)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        w = h5io.K1Weight("w", "/w", (60, 3), "<f4")
        got = h5io.read_array(f, w, "layer", slice(3, 7), groups=6)
    assert np.array_equal(got, a.reshape(6, 10, 3)[:, 3:7])
