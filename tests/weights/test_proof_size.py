"""The proof runs convolutions on inputs cut to a few kernel lengths (not the model's image size): they
pad exactly as the model's input does, the notes name the model's input, and a missing flip or a wrong
transpose still fails."""

import h5py
import numpy as np
import pytest

from kmigrate.weights.convert import convert_file, verify_files
from kmigrate.weights.families import correlation
from kmigrate.weights.families.conv import proof_extent, theano_same_mismatch
from kmigrate.weights.plan import Settings
from tests.weights.keras1 import conv2d_case, write_keras1


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("s", [1, 2, 3])
@pytest.mark.parametrize("d", [1, 2])
def test_cut_input_pads_like_the_model_input(k, s, d):
    eff = d * (k - 1) + 1
    for n in range(1, 80):
        m = proof_extent(n, k, s, d)
        assert m <= n and m <= eff + 3 * s
        if n >= eff:
            assert m >= eff + 2 * s or m == n  # every tap meets several output positions
        for mode in ("valid", "same", "full"):
            for backend in ("theano", "tensorflow"):
                if mode == "valid" and n < eff:
                    continue
                before, after, _ = correlation.pads(n, k, s, d, mode, backend)
                assert correlation.pads(m, k, s, d, mode, backend)[:2] == (before, after), (n, m, mode, backend)
        assert theano_same_mismatch([m], [k], [s], [d]) == theano_same_mismatch([n], [k], [s], [d])


def _big(tmp_path, backend, kernel=(3, 3), border="same"):
    case = conv2d_case("th", backend, kernel=kernel, border=border, n=96, cin=3, filters=4)
    src = tmp_path / "big.h5"
    write_keras1(src, case.layers, model_config=case.config)
    return case, src


def test_proof_input_is_small_and_the_note_names_the_model_input(tmp_path, monkeypatch):
    seen = []
    conv = correlation.conv

    def spy(x, *a, **k):
        seen.append(x.shape)
        return conv(x, *a, **k)
    monkeypatch.setattr(correlation, "conv", spy)
    _, src = _big(tmp_path, "theano", kernel=(4, 4))
    report = convert_file(str(src), str(tmp_path / "out.h5"), Settings(backend="theano"))
    assert report.ok and report.verified
    assert seen and all(max(shape[2:]) < 12 for shape in seen), seen
    notes = " ".join(n for r in report.rows for n in r.notes)
    assert "input (96, 96)" in notes and "Cropping2D(((0, 1), (0, 1)))" in notes


@pytest.mark.parametrize("damage", ["flip missing", "transposed in and out"])
def test_small_proof_still_fails_bad_kernels(tmp_path, damage):
    _, src = _big(tmp_path, "theano")
    dst = tmp_path / "out.h5"
    assert convert_file(str(src), str(dst), Settings(backend="theano")).ok
    with h5py.File(dst, "r+") as f:
        d = f["conv2d"]["kernel:0"]
        k = d[()]
        if damage == "flip missing":
            d[...] = k[::-1, ::-1]
        else:  # (3, 3, 3 in, 4 out) read as (3, 3, 4, 3) would not load: swap in and out of a square part
            k[:, :, :3, :3] = np.transpose(k[:, :, :3, :3], (0, 1, 3, 2))
            d[...] = k
    report = verify_files(str(src), str(dst), Settings())
    assert not report.ok and report.failure[0] == "convolution2d_1"
