"""`--py2`: Python 2 Keras 1 code ported with fissix, then migrated, in one run."""

import ast
import sys

PY2 = """\
from keras.layers import Convolution2D
import helpers


def build(n):
    layers = {}
    for i in xrange(n):
        layers[i] = Convolution2D(8, 3, 3, border_mode='same')
    for k, v in layers.iteritems():
        print k, v
    try:
        mode = 0755
    except ValueError, e:
        print >>sys.stderr, e
    return layers
"""


def test_py2_ports_then_migrates(tmp_path, run_cli):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helpers.py").write_text("x = 1\n")
    f = pkg / "model.py"
    f.write_text(PY2)
    code, out, err = run_cli("rewrite", "--py2", str(f))
    assert code == 1, err
    new = f.read_text()
    ast.parse(new)
    assert "from . import helpers" in new  # implicit relative import, found next to the file
    assert "for i in range(n):" in new and "for k, v in layers.items():" in new
    assert "print(k, v)" in new and "except ValueError as e:" in new and "mode = 0o755" in new
    assert "print(e, file=sys.stderr)" in new
    assert "layers[i] = Conv2D(8, (3, 3), padding='same')" in new
    assert "from keras.layers import Conv2D" in new
    assert f"{f}:0:0: info [py2] ported from Python 2 (fissix)" in err
    assert run_cli("rewrite", "--py2", str(f))[0] == 0  # a fixed point


def test_without_the_flag_the_error_names_it(tmp_path, run_cli):
    f = tmp_path / "m.py"
    f.write_text(PY2)
    code, out, err = run_cli("rewrite", str(f))
    assert code == 2 and f.read_text() == PY2
    (line,) = err.splitlines()[:-1]
    # CPython's own message and position: the first thing it rejects is the octal literal at 12:16
    assert line.startswith(f"{f}:12:16: error [file] does not parse as Python 3: leading zeros")
    assert "`--py2` ports it" in line


def test_py2_from_the_config(tmp_path, run_cli):
    (tmp_path / "pyproject.toml").write_text("[tool.kmigrate]\npy2 = true\n")
    f = tmp_path / "m.py"
    f.write_text("from keras.layers import Dense\nprint 'x'\nd = Dense(output_dim=3)\n")
    assert run_cli("rewrite", str(f))[0] == 1
    assert f.read_text() == "from keras.layers import Dense\nprint('x')\nd = Dense(units=3)\n"
    f.write_text("from keras.layers import Dense\nprint 'x'\n")
    assert run_cli("rewrite", "--no-py2", str(f))[0] == 2  # the flag wins


def test_without_fissix_the_error_names_the_package(tmp_path, run_cli, monkeypatch):
    import kmigrate.py2

    monkeypatch.setitem(sys.modules, "fissix", None)  # as if it were not installed
    monkeypatch.setattr(kmigrate.py2, "_tool", None)
    f = tmp_path / "m.py"
    f.write_text(PY2)
    code, out, err = run_cli("rewrite", "--py2", str(f))
    assert code == 2 and f.read_text() == PY2
    assert (f"{f}:0:0: error [file] --py2 (porting with the maintained lib2to3) needs the fissix package, "
            f"which this Python does not have: {sys.executable} -m pip install fissix") in err


def test_neither_python_3_nor_2_is_one_line(tmp_path, run_cli):
    f = tmp_path / "m.py"
    f.write_text("import keras\nx = (1,\n")
    code, out, err = run_cli("rewrite", "--py2", str(f))
    assert code == 2
    (line,) = err.splitlines()[:-1]
    assert line.startswith(f"{f}:2:") and "does not parse as Python 3 or Python 2" in line


def test_install_hints_name_published_packages_for_this_python():
    from kmigrate.deps import missing

    message = missing("tensorflow", "--verify")
    assert message == (f"--verify needs the tensorflow package, which this Python does not have: "
                       f"{sys.executable} -m pip install tensorflow")
    assert "kmigrate[" not in message
