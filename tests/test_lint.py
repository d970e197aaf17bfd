"""Rewritten code passes the linters users run: ruff F811 (a name imported twice) and pycodestyle
E127/E128 (continuation lines aligned with their bracket), on the example project and on the cases
that broke them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import FIXTURES

RUFF = Path(sys.executable).with_name("ruff")


def _ruff_f811(folder: Path) -> str:
    result = subprocess.run([str(RUFF), "check", "--no-cache", "--isolated", "--select", "F811",
                             "--output-format", "concise", str(folder)], capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    return result.stdout if result.returncode else ""


def _pycodestyle(folder: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "pycodestyle", "--select", "E127,E128", str(folder)],
                            capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    return result.stdout


@pytest.mark.parametrize("options", [[], ["--backend", "theano"], ["--default-dim-ordering", "th"],
                                     ["--backend", "theano", "--default-dim-ordering", "th"]])
def test_rewritten_example_passes_ruff_f811_and_pycodestyle(tmp_path, run_cli, options):
    tree = tmp_path / "example"
    shutil.copytree(FIXTURES / "example" / "keras1", tree)
    assert _pycodestyle(tree) == ""  # the input is clean, so anything found was the rewrite's doing
    code, out, err = run_cli("rewrite", *options, str(tree))
    assert code in (1, 2), err
    assert _ruff_f811(tree) == ""
    assert _pycodestyle(tree) == ""


def test_imports_the_rewrite_would_duplicate_are_dropped(tmp_path, run_cli):
    f = tmp_path / "m.py"
    f.write_text("from keras.layers import Conv2D\nfrom keras.layers.convolutional import Convolution2D\n"
                 "from keras.layers import Dense, Convolution2D as C, MaxPooling2D\n"
                 "from keras.layers.pooling import MaxPooling2D\n"
                 "a = Convolution2D(8, 3, 3)\nb = Conv2D(8, (3, 3))\nc = C(8, 3, 3)\nd = MaxPooling2D()\n")
    assert run_cli("rewrite", str(f))[0] == 1
    assert f.read_text() == ("from keras.layers import Conv2D\n"
                             "from keras.layers import Dense, Conv2D as C, MaxPooling2D\n"
                             "a = Conv2D(8, (3, 3))\nb = Conv2D(8, (3, 3))\nc = C(8, (3, 3))\nd = MaxPooling2D()\n")
    assert _ruff_f811(tmp_path) == ""


def test_what_the_input_already_had_is_left_alone(tmp_path, run_cli):
    src = ("from keras.layers import Dense\nfrom keras.layers import Dense\n"  # the user's own duplicate
           "from keras.layers import Convolution2D\n"
           "a = Convolution2D(8, 3, 3,\n        border_mode='same')\n"  # the user's own hanging style
           "b = Convolution2D(8, 3, 3, border_mode='same',\n"
           "                  activation='relu')\n")
    f = tmp_path / "m.py"
    f.write_text(src)
    assert run_cli("rewrite", str(f))[0] == 1
    assert f.read_text() == ("from keras.layers import Dense\nfrom keras.layers import Dense\n"
                             "from keras.layers import Conv2D\n"
                             "a = Conv2D(8, (3, 3),\n        padding='same')\n"
                             "b = Conv2D(8, (3, 3), padding='same',\n"
                             "           activation='relu')\n")


def test_nested_brackets_follow_their_line(tmp_path, run_cli):
    f = tmp_path / "m.py"
    f.write_text("from keras.layers import Convolution2D\n"
                 "model.add(Convolution2D(8, 3, 3, border_mode='same', W_regularizer=reg(0.1,\n"
                 "                                                                       0.2),\n"
                 "                        activation='relu'))\n")
    assert run_cli("rewrite", str(f))[0] == 1
    assert _pycodestyle(tmp_path) == ""
    assert f.read_text().splitlines()[3] == "                 activation='relu'))"


def test_realignment_never_moves_text_inside_strings(tmp_path, run_cli):
    f = tmp_path / "m.py"
    f.write_text('from keras.layers import Convolution2D\n'
                 'a = Convolution2D(8, 3, 3, name="""first\n'
                 '                            second""",\n'
                 '                  border_mode=f"""{"sa"\n'
                 '                  }me""")\n')
    assert run_cli("rewrite", str(f))[0] == 1
    new = f.read_text()
    assert '"""first\n                            second"""' in new and 'f"""{"sa"\n                  }me"""' in new
    assert new.startswith("from keras.layers import Conv2D\na = Conv2D(8, (3, 3), name=")
