"""Large files show a progress bar; the library reports every converted byte to it."""

import h5py
import numpy as np
from click.testing import CliRunner

import kmigrate.weights.cli as wcli
from kmigrate.weights.convert import convert_file
from kmigrate.weights.plan import Settings
from tests.conftest import ROOT

SOURCE = ROOT / "fixtures/legacy/out/theano/conv2d_th_same_bn_model.h5"


def _weight_bytes(path):
    total = 0
    with h5py.File(path, "r") as f:
        group = f["model_weights"]
        for layer in group.attrs["layer_names"]:
            for name in group[layer].attrs["weight_names"]:
                total += group[layer][name].size * np.dtype("float32").itemsize
    return total


def test_progress_callback_sees_every_weight_byte(tmp_path):
    seen = []
    report = convert_file(str(SOURCE), str(tmp_path / "out.h5"), Settings(backend="theano"), progress=seen.append)
    assert report.ok
    assert sum(seen) == _weight_bytes(SOURCE)


def test_cli_shows_a_progress_bar_above_the_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr(wcli, "PROGRESS_BYTES", 0)
    result = CliRunner().invoke(wcli.weights, ["convert", "--backend", "theano", str(SOURCE), str(tmp_path / "o.h5")])
    assert result.exit_code == 0, result.stderr
    assert "converting" in result.stderr
