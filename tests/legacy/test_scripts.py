"""Real Keras 1 training scripts (fixtures/scripts): Keras 1.2.2 ran each to completion (keras1_runs.json,
written by run_keras1.py), and after one `kmigrate rewrite` each runs to completion on Keras 3.

Training is random, so only completion is checked here; the numbers are checked by the model zoo.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from ..conftest import FIXTURES, kmigrate_subprocess

SCRIPTS_DIR = FIXTURES / "scripts"
RUNNER = "run_keras1.py"
SCRIPTS = sorted(p.name for p in SCRIPTS_DIR.glob("*.py") if p.name != RUNNER)
RUNS = json.loads((SCRIPTS_DIR / "keras1_runs.json").read_text())["scripts"]
TIMEOUT = 900  # seconds, for one script on Keras 3 (TensorFlow start-up included) on a busy machine
CONSTANT = re.compile(r"^IMAGE_DIM_ORDERING = '(th|tf)'$", re.M)


def dim_ordering(name: str) -> str:
    m = CONSTANT.search((SCRIPTS_DIR / name).read_text())
    return m.group(1) if m else "tf"


def test_there_are_scripts_and_the_th_project_is_among_them():
    assert len(SCRIPTS) >= 5
    assert "th" in {dim_ordering(n) for n in SCRIPTS}


def test_keras_1_2_2_ran_every_committed_script_to_completion():
    assert sorted(RUNS) == SCRIPTS
    for name in SCRIPTS:
        run = RUNS[name]
        source = (SCRIPTS_DIR / name).read_bytes()
        # the record belongs to this very text: edit a script and run_keras1.py must run it again
        assert run["sha256"] == hashlib.sha256(source).hexdigest(), name
        assert run["keras_version"] == "1.2.2", name
        assert run["backend_version"].startswith("theano "), name
        assert run["keras_json"]["image_dim_ordering"] == dim_ordering(name), name
        assert run["returncode"] == 0, (name, run.get("stderr_tail"))
        assert run["stdout_tail"], name


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_runs_on_keras3_after_one_rewrite(name, tmp_path):
    script = tmp_path / name
    shutil.copy(SCRIPTS_DIR / name, script)
    args = ["rewrite", "--exit-zero-even-if-changed"]
    if dim_ordering(name) == "th":
        args += ["--default-dim-ordering", "th"]
    rewrite = kmigrate_subprocess(*args, str(script))
    assert rewrite.returncode == 0, rewrite.stderr
    assert script.read_text() != (SCRIPTS_DIR / name).read_text()

    keras_home = tmp_path / "keras_home"  # Keras 3's own defaults, whatever this machine's keras.json says
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", KERAS_HOME=str(keras_home))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, "\n".join(
        ["rewrite diagnostics:", rewrite.stderr, "Keras 3 run, last output:"]
        + proc.stderr.splitlines()[-15:])
