"""CLI behaviour: exit codes, --check, --diff, stdin, bad files in a tree, rule ids, atomic writes."""

import os
import stat
import sys

from .conftest import kmigrate_subprocess

KERAS1 = "from keras.layers import Convolution2D\nlayer = Convolution2D(8, 3, 3, border_mode='same')\n"
KERAS2 = "from keras.layers import Conv2D\nlayer = Conv2D(8, (3, 3), padding='same')\n"


def test_rewrite_writes_and_exits_1(tmp_path, run_cli):
    f = tmp_path / "m.py"
    f.write_text(KERAS1)
    code, out, err = run_cli("rewrite", str(f))
    assert code == 1
    assert f.read_text() == KERAS2
    assert f"rewrote {f}" in err
    code, out, err = run_cli("rewrite", str(f))
    assert code == 0 and f.read_text() == KERAS2


def test_check_writes_nothing_and_exits_1(tmp_path, run_cli):
    f = tmp_path / "m.py"
    f.write_text(KERAS1)
    code, out, err = run_cli("rewrite", "--check", str(f))
    assert code == 1 and f"would rewrite {f}" in err
    assert f.read_text() == KERAS1


def test_diff_prints_a_unified_diff_and_writes_nothing(tmp_path, run_cli):
    f = tmp_path / "m.py"
    f.write_text(KERAS1)
    code, out, err = run_cli("rewrite", "--diff", str(f))
    assert code == 1
    assert "-layer = Convolution2D(8, 3, 3, border_mode='same')" in out
    assert "+layer = Conv2D(8, (3, 3), padding='same')" in out
    assert f.read_text() == KERAS1


def test_exit_zero_even_if_changed(tmp_path, run_cli):
    f = tmp_path / "m.py"
    f.write_text(KERAS1)
    code, _, _ = run_cli("rewrite", "--exit-zero-even-if-changed", str(f))
    assert code == 0 and f.read_text() == KERAS2


def test_stdin_to_stdout(run_cli):
    code, out, err = run_cli("rewrite", "-", input=KERAS1)
    assert code == 0 and out == KERAS2


def test_python2_file_in_a_tree_is_reported_and_the_rest_processed(tmp_path, run_cli):
    (tmp_path / "pkg").mkdir()
    py2 = tmp_path / "pkg" / "old.py"
    py2.write_text("import keras\nprint 'hello'\n")
    good = tmp_path / "pkg" / "good.py"
    good.write_text(KERAS1)
    code, out, err = run_cli("rewrite", str(tmp_path))
    assert code == 2
    line = [x for x in err.splitlines() if "old.py" in x]
    assert len(line) == 1 and "error [file] does not parse as Python 3" in line[0] and "--py2" in line[0]
    assert "2to3" not in line[0]  # removed from Python in 3.13
    # CPython's position and words: the line and column in front agree with the message
    assert line[0].startswith(f"{py2}:2:1: error [file] does not parse as Python 3: Missing parentheses")
    assert py2.read_text() == "import keras\nprint 'hello'\n"
    assert good.read_text() == KERAS2


def test_unknown_rule_id_is_rejected_with_the_valid_ones(tmp_path, run_cli):
    f = tmp_path / "m.py"
    f.write_text(KERAS1)
    code, out, err = run_cli("rewrite", "--only", "conv2d,nope", str(f))
    assert code == 2
    assert "unknown rule id nope" in err and "conv2d" in err and "max-pooling2d" in err
    assert f.read_text() == KERAS1


def test_only_and_skip_select_rules(tmp_path, run_cli):
    src = "from keras.layers import Convolution2D, MaxPooling2D\na = Convolution2D(8, 3, 3)\nb = MaxPooling2D(dim_ordering='th')\n"
    f = tmp_path / "m.py"
    f.write_text(src)
    assert run_cli("rewrite", "--only", "max-pooling2d", str(f))[0] == 1
    assert f.read_text() == src.replace("dim_ordering='th'", "data_format='channels_first'")
    f.write_text(src)
    assert run_cli("rewrite", "--skip", "conv2d", str(f))[0] == 1
    assert "Convolution2D(8, 3, 3)" in f.read_text() and "data_format" in f.read_text()


def test_default_dim_ordering_is_written_explicitly(tmp_path, run_cli):
    f = tmp_path / "m.py"
    f.write_text("from keras.layers import Convolution2D, Dense\na = Convolution2D(8, 3, 3)\n"
                 "b = Convolution2D(8, 3, 3, dim_ordering='default')\nc = Dense(3)\n")
    assert run_cli("rewrite", "--default-dim-ordering", "th", str(f))[0] == 1
    assert f.read_text() == ("from keras.layers import Conv2D, Dense\n"
                             "a = Conv2D(8, (3, 3), data_format='channels_first')\n"
                             "b = Conv2D(8, (3, 3), data_format='channels_first')\nc = Dense(3)\n")


def test_error_diagnostic_exits_2_and_keeps_the_call(tmp_path, run_cli):
    f = tmp_path / "m.py"
    src = "from keras.layers import Convolution2D\na = Convolution2D(8, 3, 3, border_mode='full')\n"
    f.write_text(src)
    code, out, err = run_cli("rewrite", str(f))
    assert code == 2 and f.read_text() == src
    assert f"{f}:2:5: error [conv2d] Convolution2D(...) left as written: `border_mode='full'`" in err


def test_missing_path_is_an_error(tmp_path, run_cli):
    code, out, err = run_cli("rewrite", str(tmp_path / "nope.py"))
    assert code == 2 and "no such file" in err


def test_skips_virtualenvs_and_git_but_honours_explicit_files(tmp_path, run_cli):
    for d in (".git", "venv", "build"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x.py").write_text(KERAS1)
    (tmp_path / "env2").mkdir()
    (tmp_path / "env2" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "env2" / "x.py").write_text(KERAS1)
    assert run_cli("rewrite", str(tmp_path))[0] == 0
    assert all((tmp_path / d / "x.py").read_text() == KERAS1 for d in (".git", "venv", "build", "env2"))
    assert run_cli("rewrite", str(tmp_path / "build" / "x.py"))[0] == 1


def test_keeps_encoding_bom_newlines_and_mode(tmp_path, run_cli):
    f = tmp_path / "m.py"
    data = ("# -*- coding: latin-1 -*-\n# café\n" + KERAS1).replace("\n", "\r\n").encode("latin-1")
    f.write_bytes(data)
    os.chmod(f, 0o754)
    assert run_cli("rewrite", str(f))[0] == 1
    out = f.read_bytes()
    assert out == ("# -*- coding: latin-1 -*-\n# café\n" + KERAS2).replace("\n", "\r\n").encode("latin-1")
    assert stat.S_IMODE(f.stat().st_mode) == 0o754
    g = tmp_path / "bom.py"
    g.write_bytes(b"\xef\xbb\xbf" + KERAS1.encode())
    assert run_cli("rewrite", str(g))[0] == 1
    assert g.read_bytes() == b"\xef\xbb\xbf" + KERAS2.encode()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".kmigrate-tmp")] == []


def test_keras_json_in_a_tree(tmp_path, run_cli):
    cfg = tmp_path / ".keras" / "keras.json"
    cfg.parent.mkdir()
    cfg.write_text('{"backend": "theano", "image_dim_ordering": "th"}\n')
    other = tmp_path / "data.json"
    other.write_text('{"image_dim_ordering": "th"}\n')
    assert run_cli("rewrite", str(tmp_path))[0] == 1
    assert cfg.read_text() == '{"backend": "theano", "image_data_format": "channels_first"}\n'
    assert other.read_text() == '{"image_dim_ordering": "th"}\n'


def test_jobs_gives_the_same_result(tmp_path, run_cli):
    for i in range(6):
        (tmp_path / f"m{i}.py").write_text(KERAS1)
    code, _, err = run_cli("rewrite", "-j", "2", str(tmp_path))
    assert code == 1
    assert all((tmp_path / f"m{i}.py").read_text() == KERAS2 for i in range(6))


def test_rules_lists_every_rule(run_cli):
    from kmigrate.spec.loader import default_ruleset

    code, out, _ = run_cli("rules")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == [r.id for r in default_ruleset().rules]


def test_rewrite_path_imports_no_tensorflow_keras_or_h5py(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(KERAS1)
    probe = ("import sys; from kmigrate.cli import main; code = main(['rewrite', '--check', %r]); "
             "bad = [m for m in ('tensorflow', 'keras', 'h5py') if m in sys.modules]; "
             "print(code, bad)" % str(f))
    result = __import__("subprocess").run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "1 []", result.stderr


def test_module_entry_point(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(KERAS2)
    result = kmigrate_subprocess("rewrite", "--check", str(f))
    assert result.returncode == 0, result.stderr


def test_files_without_keras_never_load_the_parser(tmp_path):
    f = tmp_path / "plain.py"
    f.write_text("import os\nprint(os.getcwd())\n")
    probe = ("import sys; from kmigrate.cli import main; code = main(['rewrite', %r]); "
             "print(code, 'libcst' in sys.modules)" % str(f))
    result = __import__("subprocess").run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "0 False", result.stderr


def test_stdin_check_and_diff(run_cli):
    code, out, err = run_cli("rewrite", "--check", "-", input=KERAS1)
    assert (code, out) == (1, "")
    code, out, err = run_cli("rewrite", "--diff", "-", input=KERAS1)
    assert code == 1 and "+layer = Conv2D(8, (3, 3), padding='same')" in out
    code, out, err = run_cli("rewrite", "--check", "-", input=KERAS2)
    assert (code, out) == (0, "")


def test_stdin_parse_error_is_one_line(run_cli):
    code, out, err = run_cli("rewrite", "-", input="import keras\nprint 'x'\n")
    assert code == 2 and out == "import keras\nprint 'x'\n"
    assert err.strip().splitlines() == [err.strip()] and err.startswith("-:2:") and "does not parse" in err


def test_stdin_cannot_be_combined_with_paths(tmp_path, run_cli):
    f = tmp_path / "m.py"
    f.write_text(KERAS1)
    code, out, err = run_cli("rewrite", "-", str(f))
    assert code == 2 and "cannot be combined" in err
    assert f.read_text() == KERAS1
