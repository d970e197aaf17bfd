"""`kmigrate weights convert|inspect|verify` through click: messages, exit codes, nothing left behind."""

import hashlib
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from kmigrate.weights.cli import weights
from tests.weights.keras1 import conv1d_case, conv2d_case, deconv2d_case, separable_case, write_keras1


def run(*args):
    r = CliRunner().invoke(weights, [str(a) for a in args])
    return r.exit_code, r.stdout, r.stderr


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def leftovers(folder, keep):
    return sorted(p for p in os.listdir(folder) if p not in keep)


@pytest.fixture
def th_theano(tmp_path):
    case = conv2d_case("th", "theano")
    src = tmp_path / "old.h5"
    write_keras1(src, case.layers, model_config=case.config, training=True)
    return src


def test_import_does_not_load_tensorflow_or_keras():
    code = ("import sys, kmigrate.weights.cli; "
            "print(any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_convert_prints_table_names_and_drops(th_theano, tmp_path):
    before = digest(th_theano)
    code, out, err = run("convert", th_theano, tmp_path / "new.h5", "--backend", "theano")
    assert code == 0, err
    assert "convolution2d_1 -> conv2d" in out
    assert "3x2x3x3 3 -> 3x3x2x3 3" in out  # (out, in, r, c) -> (r, c, in, out)
    assert "flip spatial (Theano)" in out and "verified" in out
    assert "dropped training_config" in out and "dropped optimizer_weights" in out
    assert "layer names: convolution2d_1 -> conv2d, dense_1 -> dense" in out
    assert digest(th_theano) == before
    with h5py.File(tmp_path / "new.h5", "r") as f:
        assert [n.decode() for n in f.attrs["layer_names"]] == ["conv2d", "dense"]
        assert f.attrs["keras_version"] == b"2.0.8" and f.attrs["backend"] == b"tensorflow"
        assert list(f["conv2d"].attrs["weight_names"]) == [b"kernel:0", b"bias:0"]
        assert "optimizer_weights" not in f and "model_config" not in f.attrs


def test_missing_backend_stops_and_says_which_option(th_theano, tmp_path):
    code, out, err = run("convert", th_theano, tmp_path / "new.h5")
    assert code == 2
    assert err.startswith(f"kmigrate: error: {th_theano}: convolution2d_1: 3x3 kernel: pass --backend theano|tensorflow")
    assert "Theano" in err and "does not record" in err
    assert leftovers(tmp_path, {"old.h5"}) == []


def test_ambiguous_layout_in_weights_only_file_asks_for_layout(tmp_path):
    # (3, 3, 3, 3) with 3 filters: th and tf both fit
    case = conv2d_case("th", "tensorflow", cin=3, filters=3)
    src = tmp_path / "old.h5"
    write_keras1(src, case.layers)
    code, _, err = run("convert", src, tmp_path / "new.h5", "--backend", "tensorflow")
    assert code == 2 and "convolution2d_1: " in err and "pass --layout th|tf" in err
    assert leftovers(tmp_path, {"old.h5"}) == []
    code, out, err = run("convert", src, tmp_path / "new.h5", "--backend", "tensorflow", "--layout", "th")
    assert code == 0, err


def test_layout_detected_from_shapes_without_config(tmp_path):
    case = conv2d_case("tf", "tensorflow", filters=4)  # (3, 3, 2, 4): only tf puts the 4 filters last
    src = tmp_path / "old.h5"
    write_keras1(src, case.layers, tf_names=True)
    code, out, err = run("inspect", src)
    assert code == 0, err
    assert "layout: tf (shapes)" in out
    assert "':0' weight names mean TensorFlow SAVED it" in out
    assert "convolution2d_1: backend: pass --backend theano|tensorflow" in out


def test_inspect_full_model_shows_both_configs(th_theano):
    code, out, err = run("inspect", th_theano, "--backend", "theano")
    assert code == 0, err
    assert "kind: full model (model.save)" in out and "keras_version: 1.2.2" in out
    assert '"nb_filter": 3' in out and '"filters": 3' in out
    assert '"data_format": "channels_first"' in out
    assert "weight convolution2d_1_W (3, 2, 3, 3)" in out
    assert "layout: th (config)" in out
    assert "unknown: nothing" in out


def test_inspect_reports_lambda_and_custom_layers_without_running_them(tmp_path):
    case = conv2d_case("tf", "tensorflow")
    cfg = json.loads(json.dumps(case.config))
    cfg["config"].insert(2, {"class_name": "Lambda", "config": {"name": "lambda_1", "function": "YWJj",
                                                                  "function_type": "lambda"}})
    cfg["config"].insert(3, {"class_name": "MyLayer", "config": {"name": "mylayer_1"}})
    layers = case.layers[:2] + [("lambda_1", []), ("mylayer_1", [])] + case.layers[2:]
    src = tmp_path / "old.h5"
    write_keras1(src, layers, model_config=cfg)
    code, out, err = run("inspect", src)
    assert code == 0, err
    assert "marshalled bytecode; reported, never executed" in out
    assert "custom or unsupported layer class `MyLayer`" in out


def test_verify_command_passes_on_good_conversion(th_theano, tmp_path):
    dst = tmp_path / "new.h5"
    assert run("convert", th_theano, dst, "--backend", "theano")[0] == 0
    code, out, err = run("verify", th_theano, dst)  # settings recorded in the converted file
    assert code == 0, err
    assert "every layer verified" in out


def _tamper(path, layer, fn):
    with h5py.File(path, "r+") as f:
        ds = f[layer]["kernel:0"]
        data = fn(ds[()])
        del f[layer]["kernel:0"]
        f[layer].create_dataset("kernel:0", data=data)


@pytest.mark.parametrize("tamper,what", [
    (lambda k: np.flip(k, (0, 1)), "unflipped"),
    (lambda k: np.transpose(k, (1, 0, 2, 3)), "rows and columns swapped"),
])
def test_verify_catches_wrong_conversion_and_names_layer(th_theano, tmp_path, tamper, what):
    dst = tmp_path / "new.h5"
    assert run("convert", th_theano, dst, "--backend", "theano")[0] == 0
    _tamper(dst, "conv2d", tamper)
    code, out, err = run("verify", th_theano, dst)
    assert code == 2, what
    assert err.startswith(f"kmigrate: error: {dst}: convolution2d_1: converted weights do not reproduce Keras 1")


def test_verify_catches_mistransposed_separable_and_deconv(tmp_path):
    for case, layer, new in [(separable_case("th"), "separableconvolution2d_1", "separable_conv2d"),
                             (deconv2d_case("tf", "tensorflow", cin=3), "deconvolution2d_1", "conv2d_transpose")]:
        src, dst = tmp_path / f"{layer}.h5", tmp_path / f"{layer}.out.h5"
        write_keras1(src, case.layers, model_config=case.config)
        assert run("convert", src, dst, "--backend", "tensorflow")[0] == 0
        with h5py.File(dst, "r+") as f:
            name = "depthwise_kernel:0" if "separable" in new else "kernel:0"
            k = f[new][name][()]
            f[new][name][...] = np.transpose(k, (0, 1, 3, 2)) if k.shape[2] == k.shape[3] else k[::-1]
        code, _, err = run("verify", src, dst)
        assert code == 2 and f": {layer}: converted weights do not reproduce Keras 1" in err


def test_theano_same_padding_difference_is_reported_with_construction(tmp_path):
    case = conv2d_case("th", "theano", kernel=(4, 4), border="same", n=8)
    src = tmp_path / "old.h5"
    write_keras1(src, case.layers, model_config=case.config)
    code, out, err = run("convert", src, tmp_path / "new.h5", "--backend", "theano")
    assert code == 0, err
    assert "Theano 'same' padding differs from Keras 3 padding='same' here (kernel (4, 4)" in out
    assert "ZeroPadding2D(((2, 2), (2, 2))) + Conv2D(..., padding='valid') + Cropping2D(((0, 1), (0, 1)))" in out


def test_tensorflow_trained_even_kernel_has_no_padding_note(tmp_path):
    case = conv2d_case("th", "tensorflow", kernel=(4, 4), border="same", n=8)
    src = tmp_path / "old.h5"
    write_keras1(src, case.layers, model_config=case.config)
    code, out, _ = run("convert", src, tmp_path / "new.h5", "--backend", "tensorflow")
    assert code == 0 and "differs from Keras 3 padding='same'" not in out


# ------------------------------------------------------------------ bad input: one line, exit 2, nothing written

def _good(tmp_path):
    case = conv2d_case("tf", "tensorflow")
    src = tmp_path / "in.h5"
    write_keras1(src, case.layers, model_config=case.config)
    return src


def _not_hdf5(tmp_path):
    p = tmp_path / "in.h5"
    p.write_bytes(b"this is not a weights file\n" * 10)
    return p


def _truncated(tmp_path):
    src = _good(tmp_path)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    return src


def _not_keras(tmp_path):
    p = tmp_path / "in.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    return p


def _keras3(tmp_path):
    p = tmp_path / "in.h5"
    with h5py.File(p, "w") as f:
        f.attrs["layer_names"] = np.array([b"conv2d_1"])
        f.attrs["keras_version"] = b"3.1.0"
        f.attrs["backend"] = b"tensorflow"
        g = f.create_group("conv2d_1")
        g.attrs["weight_names"] = np.array([b"conv2d_1/kernel:0"])
        g.create_dataset("conv2d_1/kernel:0", data=np.zeros((3, 3, 2, 4), np.float32))
    return p


def _nested_unversioned(tmp_path):
    p = _keras3(tmp_path)
    with h5py.File(p, "r+") as f:
        del f.attrs["keras_version"], f.attrs["backend"]
    return p


def _forked(tmp_path, real, cls, key, value):
    """A real Keras 1.2.2 model file whose `cls` config carries a key no Keras release had (a fork's)."""
    from pathlib import Path

    p = tmp_path / "in.h5"
    p.write_bytes((Path(__file__).parent / "keras1_real" / real).read_bytes())
    with h5py.File(p, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        for layer in cfg["config"]:
            if layer["class_name"] == cls:
                layer["config"][key] = value
        f.attrs["model_config"] = np.bytes_(json.dumps(cfg).encode())
    return p


def _fork_conv(tmp_path):
    return _forked(tmp_path, "prelu_th_model.h5", "Convolution2D", "nb_group", 2)


def _fork_batchnorm(tmp_path):  # its arrays convert without a config, but a fork's layer is not Keras's
    return _forked(tmp_path, "bn_mode2_model.h5", "BatchNormalization", "renorm", True)


def _converted(tmp_path):
    src = _good(tmp_path)
    out = tmp_path / "in2.h5"
    assert run("convert", src, out, "--backend", "tensorflow")[0] == 0
    os.unlink(src)
    os.rename(out, src)
    return src


def _shape_mismatch(tmp_path):
    case = conv2d_case("th", "tensorflow")
    layers = list(case.layers)
    name, ws = layers[0]
    layers[0] = (name, [ws[0], ("b", np.zeros(5, np.float32))])  # config says 3 filters
    p = tmp_path / "in.h5"
    write_keras1(p, layers, model_config=case.config)
    return p


def _soft_link(tmp_path):
    src = _good(tmp_path)
    with h5py.File(src, "r+") as f:
        f["model_weights"]["alias"] = h5py.SoftLink("/model_weights/dense_1")
    return src


def _external_link(tmp_path):
    src = _good(tmp_path)
    with h5py.File(src, "r+") as f:
        f["model_weights"]["ext"] = h5py.ExternalLink("other.h5", "/x")
    return src


def _absurd(tmp_path):
    case = conv1d_case("tensorflow")
    p = tmp_path / "in.h5"
    write_keras1(p, case.layers, model_config=case.config)
    with h5py.File(p, "r+") as f:
        g = f["model_weights"]["dense_1"]
        del g["dense_1_W"]
        g.create_dataset("dense_1_W", shape=(1 << 20, 1 << 10), dtype="f4", chunks=(64, 64))
    return p


BAD = [
    (_not_hdf5, None, "not an HDF5 file"),
    (_truncated, None, "truncated or damaged"),
    (_not_keras, None, "not a Keras weights file (no `layer_names` attribute)"),
    (_keras3, None, "already a Keras 3.1.0 file (keras_version on /): Keras 3 loads it as it is"),
    (_nested_unversioned, "conv2d_1", "is nested (Keras 2 style) but the file records no Keras 2 version"),
    (_fork_conv, "convolution2d_1", "`Convolution2D` config has keys no Keras 1 release defined (a fork of Keras?): "
                                    "nb_group"),
    (_fork_batchnorm, "batchnormalization_1", "`BatchNormalization` config has keys no Keras 1 release defined "
                                              "(a fork of Keras?): renorm"),
    (_converted, None, "already converted by kmigrate"),
    (_shape_mismatch, "convolution2d_1", "bias shape (5,) does not match filters=3"),
    (_soft_link, None, "soft link at /model_weights/alias"),
    (_external_link, None, "external link at /model_weights/ext"),
    (_absurd, "dense_1", "refusing an absurd dataset size"),
]


@pytest.mark.parametrize("make,layer,message", BAD, ids=[b[0].__name__.strip("_") for b in BAD])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, make, layer, message):
    src = make(tmp_path)
    before = digest(src)
    keep = set(os.listdir(tmp_path))
    dst = tmp_path / "out.h5"
    code, out, err = run("convert", src, dst, "--backend", "tensorflow")
    assert code == 2
    prefix = f"kmigrate: error: {src}: " + (f"{layer}: " if layer else "")
    assert err.startswith(prefix), err
    assert message in err
    assert err.count("\n") == 1
    assert not dst.exists() and leftovers(tmp_path, keep) == []
    assert digest(src) == before


@pytest.mark.parametrize("name,message", [
    ("out.weights.h5", "ends with .weights.h5"),
    ("out.keras", "must end with .h5 or .hdf5"),
])
def test_output_names_keras3_would_misread_are_refused(th_theano, tmp_path, name, message):
    code, _, err = run("convert", th_theano, tmp_path / name, "--backend", "theano")
    assert code == 2 and message in err
    assert leftovers(tmp_path, {"old.h5"}) == []


def test_failed_verification_writes_nothing(tmp_path, monkeypatch):
    """Break the conversion (not the checker): the proof must fail and leave no file."""
    from kmigrate.weights.families import conv

    case = conv2d_case("th", "theano")
    src, dst = tmp_path / "old.h5", tmp_path / "new.h5"
    write_keras1(src, case.layers, model_config=case.config)
    monkeypatch.setattr(conv, "flip_spatial", lambda k, n: k)  # forget Theano's flip
    code, out, err = run("convert", src, dst, "--backend", "theano")
    assert code == 2
    assert err.startswith(f"kmigrate: error: {src}: convolution2d_1: converted weights do not reproduce Keras 1")
    assert "nothing written" in err
    assert leftovers(tmp_path, {"old.h5"}) == []


def test_weights_group_is_attached_to_main_cli(run_cli, tmp_path):
    code, out, _ = run_cli("weights", "--help")
    assert code == 0 and "convert" in out and "inspect" in out and "verify" in out
    bad = tmp_path / "x.h5"
    bad.write_bytes(b"nope")
    code, _, err = run_cli("weights", "convert", str(bad), str(tmp_path / "y.h5"))
    assert code == 2 and err == f"kmigrate: error: {bad}: not an HDF5 file\n"


def test_converted_file_gets_the_usual_file_mode(tmp_path):
    import os
    import stat

    from kmigrate.weights.convert import convert_file
    from kmigrate.weights.plan import Settings
    from tests.conftest import ROOT

    dst = tmp_path / "out.h5"
    convert_file(str(ROOT / "fixtures/legacy/out/theano/conv2d_th_valid_model.h5"), str(dst), Settings(backend="theano"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(dst.stat().st_mode) == 0o666 & ~umask


def test_theano_same_pooling_is_flagged_per_layer(tmp_path):
    from click.testing import CliRunner

    from kmigrate.weights.cli import weights
    from tests.conftest import ROOT

    src = ROOT / "fixtures/legacy/out/theano/pool2d_th_max_same_s2_model.h5"
    result = CliRunner().invoke(weights, ["convert", "--backend", "theano", str(src), str(tmp_path / "o.h5")])
    assert result.exit_code == 0, result.output
    assert "maxpooling2d_1: config not converted: Theano-trained border_mode='same' pooling" in result.output


# ------------------------------------------------------------------ the files named, the output protected

@pytest.mark.parametrize("make", ["missing", "not hdf5"])
def test_verify_names_the_converted_file_when_it_is_the_bad_one(th_theano, tmp_path, make):
    new = tmp_path / "new.h5"
    if make == "not hdf5":
        new.write_text("not a weights file")
    code, _, err = run("verify", th_theano, new, "--backend", "theano")
    assert code == 2 and err.startswith(f"kmigrate: error: {new}: ")
    assert str(th_theano) not in err


def test_unwritable_output_folder_is_one_line_naming_the_output(th_theano, tmp_path, monkeypatch):
    import kmigrate.weights.convert as convert

    def refuse(path):  # what h5py raises where the folder cannot be written (the tests may run as root)
        raise OSError(13, f"Unable to synchronously create file (unable to open file: name = '{path}', "
                          "errno = 13, error message = 'Permission denied')")
    monkeypatch.setattr(convert, "Keras3Writer", refuse)
    dst = tmp_path / "new.h5"
    code, _, err = run("convert", th_theano, dst, "--backend", "theano")
    assert code == 2 and err.startswith(f"kmigrate: error: {dst}: cannot write the output") and err.count("\n") == 1
    assert leftovers(tmp_path, {"old.h5"}) == []


def test_existing_output_is_refused_unless_forced(th_theano, tmp_path):
    dst = tmp_path / "new.h5"
    dst.write_bytes(b"precious")
    code, _, err = run("convert", th_theano, dst, "--backend", "theano")
    assert code == 2 and err == f"kmigrate: error: {dst}: output already exists: pass --force to replace it\n"
    assert dst.read_bytes() == b"precious"
    code, out, err = run("convert", th_theano, dst, "--backend", "theano", "--force")
    assert code == 0, err
    with h5py.File(dst, "r") as f:
        assert "conv2d" in f


def test_a_conversion_prints_nothing_of_tensorflow(th_theano, tmp_path):
    out = subprocess.run([sys.executable, "-m", "kmigrate", "weights", "convert", str(th_theano),
                          str(tmp_path / "new.h5"), "--backend", "theano"], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith("TF_")})
    assert out.returncode == 0 and "every layer verified" in out.stdout
    assert out.stderr == ""


def test_a_model_config_that_lost_a_weighted_layer_fails_and_writes_nothing(tmp_path):
    case = conv2d_case("tf", "tensorflow")
    config = json.loads(json.dumps(case.config))
    del config["config"][2]  # the Dense entry; its weights are still in the file
    src, dst = tmp_path / "old.h5", tmp_path / "new.h5"
    write_keras1(src, case.layers, model_config=config)
    code, _, err = run("convert", src, dst, "--backend", "tensorflow")
    assert code == 2 and "the file has layers the model config lacks: dense_1" in err
    assert not dst.exists()


def test_success_says_which_training_backend_was_assumed(th_theano, tmp_path):
    code, out, _ = run("convert", th_theano, tmp_path / "new.h5", "--backend", "tensorflow")
    assert code == 0
    assert "verified on the assumption that TensorFlow trained the model" in out
    code, out, _ = run("convert", th_theano, tmp_path / "fast.h5", "--backend", "tensorflow", "--no-verify")
    assert code == 0
    assert "converted on the assumption that TensorFlow trained the model" in out and "verified on" not in out
