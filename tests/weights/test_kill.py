"""`weights convert` killed (SIGKILL) at random moments: the output is either absent or a complete file that
loads, the input is untouched, and no temporary file survives the next conversion in that folder."""

import hashlib
import random
import signal
import subprocess
import sys
import time

import numpy as np

from kmigrate import atomic
from kmigrate.weights.convert import convert_file
from kmigrate.weights.plan import Settings
from tests.weights.keras1 import CONV_BASE, write_keras1


def _big_file(path):
    c, n, units = 8, 32, 2048  # Flatten of (8, 32, 32) -> 8192 rows; a 64 MiB Dense kernel
    rng = np.random.default_rng(1)
    conv = dict(CONV_BASE, name="convolution2d_1", nb_filter=c, nb_row=3, nb_col=3, border_mode="same",
                subsample=[1, 1], dim_ordering="th", batch_input_shape=[None, 2, n, n], input_dtype="float32")
    dense = dict(CONV_BASE, name="dense_1", output_dim=units, input_dim=None)
    config = {"class_name": "Sequential", "config": [{"class_name": "Convolution2D", "config": conv},
                                                     {"class_name": "Flatten", "config": {"name": "flatten_1"}},
                                                     {"class_name": "Dense", "config": dense}]}
    big = rng.standard_normal((c * n * n, units)).astype(np.float32)
    write_keras1(path, [("convolution2d_1", [("W", rng.standard_normal((c, 2, 3, 3)).astype(np.float32)),
                                             ("b", np.zeros(c, np.float32))]), ("flatten_1", []),
                        ("dense_1", [("W", big), ("b", np.zeros(units, np.float32))])], model_config=config)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sigkill_leaves_no_torn_output_and_no_temp_file_after_the_next_run(tmp_path):
    src = tmp_path / "big.h5"
    _big_file(src)
    before = _digest(src)
    out = tmp_path / "out"
    out.mkdir()
    rng = random.Random(7)
    outcomes = set()

    def command(dst):
        return [sys.executable, "-m", "kmigrate", "weights", "convert", str(src), str(dst), "--backend", "theano",
                "--to", "channels_last", "--no-verify"]

    start = time.perf_counter()  # how long a whole run takes here: the kills land within it
    subprocess.run(command(tmp_path / "timed.h5"), check=True, capture_output=True)
    whole = time.perf_counter() - start
    for trial in range(6):
        dst = out / f"converted{trial}.h5"
        proc = subprocess.Popen(command(dst), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if trial < 4:  # while the output is being written: as soon as its temporary file appears
            while proc.poll() is None and not [p for p in out.iterdir() if atomic.is_temp_name(p.name)
                                               and p.name.startswith(f".{dst.name}.")]:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.05))
        else:  # anywhere in the run
            time.sleep(whole * rng.uniform(0.1, 0.98))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if [p for p in out.iterdir() if atomic.is_temp_name(p.name) and p.name.startswith(f".{dst.name}.")]:
            outcomes.add("killed while writing")  # (the next run in this folder removes that file)
        if dst.exists():  # finished before the kill: a whole file
            outcomes.add("complete")
            report = convert_file(str(src), str(tmp_path / f"check{trial}.h5"), Settings(backend="theano",
                                                                                       to="channels_last"))
            assert report.ok
            assert dst.stat().st_size > 60 << 20
        else:
            outcomes.add("absent")
        assert _digest(src) == before  # the input is never modified
        assert not [p for p in out.iterdir() if p.name.startswith("converted") and not p.name.endswith(".h5")]
    # every temp file left by a killed run belongs to a dead process; the next conversion there removes it
    leftovers = [p for p in out.iterdir() if atomic.is_temp_name(p.name)]
    final = out / "final.h5"
    report = convert_file(str(src), str(final), Settings(backend="theano", to="channels_last"), verify=False)
    assert report.ok and final.exists()
    assert not [p for p in out.iterdir() if atomic.is_temp_name(p.name)], leftovers
    assert "absent" in outcomes, "no kill landed before the end: the test did not test anything"
    assert "killed while writing" in outcomes, "no kill landed while the output was being written"
