"""A big Dense kernel is converted, permuted and verified a block at a time: peak memory stays well under
the size of the dataset."""

import tracemalloc

import numpy as np

from kmigrate.weights.convert import convert_file
from kmigrate.weights.plan import Settings
from tests.weights.keras1 import CONV_BASE, write_keras1


def test_peak_memory_is_a_fraction_of_the_largest_dataset(tmp_path):
    from kmigrate.weights.verify import _tf

    _tf()  # TensorFlow's own import is not the converter's memory
    c, n, units = 8, 32, 4096  # Flatten of (8, 32, 32) -> 8192 rows; kernel 8192 x 4096 float32 = 128 MiB
    rng = np.random.default_rng(0)
    W = rng.standard_normal((c, 2, 3, 3)).astype(np.float32)
    conv = dict(CONV_BASE, name="convolution2d_1", nb_filter=c, nb_row=3, nb_col=3, border_mode="same",
                subsample=[1, 1], dim_ordering="th", batch_input_shape=[None, 2, n, n], input_dtype="float32")
    dense = dict(CONV_BASE, name="dense_1", output_dim=units, input_dim=None)
    config = {"class_name": "Sequential", "config": [{"class_name": "Convolution2D", "config": conv},
                                                     {"class_name": "Flatten", "config": {"name": "flatten_1"}},
                                                     {"class_name": "Dense", "config": dense}]}
    big = np.lib.stride_tricks.as_strided(np.float32(0.5), (c * n * n, units), (0, 0))  # no memory of its own
    src, dst = tmp_path / "big.h5", tmp_path / "big.out.h5"
    write_keras1(src, [("convolution2d_1", [("W", W), ("b", np.zeros(c, np.float32))]), ("flatten_1", []),
                       ("dense_1", [("W", big), ("b", np.zeros(units, np.float32))])], model_config=config)
    dataset = c * n * n * units * 4
    tracemalloc.start()
    try:
        report = convert_file(str(src), str(dst), Settings(backend="tensorflow", to="channels_last"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok and report.verified
    assert "rows th->tf" in [r for r in report.rows if r.old_name == "dense_1"][0].transform
    assert peak < dataset / 3, (peak, dataset)
