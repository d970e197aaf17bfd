"""What reaches the parser: files CPython parses but libcst's tokenizer rejects (mixed tabs and spaces),
and files of a package that vendors Keras 1 code without naming `keras`."""

import ast
import subprocess
import sys

from kmigrate.rewrite.files import rewrite_source

# CPython reads the tab as 8 columns (12 > 4, consistent either way); libcst rejects the mix
MIXED = "from keras.layers import Dense\nif a:\n    if b:\n\t    y = Dense(output_dim=3)\n"


def test_mixed_tabs_and_spaces_that_cpython_accepts_are_rewritten():
    import libcst

    ast.parse(MIXED)
    try:
        libcst.parse_module(MIXED)
        raise AssertionError("libcst accepts this now: the case no longer tests anything")
    except libcst.ParserSyntaxError:
        pass
    out, diags = rewrite_source(MIXED, "mixed.py")
    assert out == "from keras.layers import Dense\nif a:\n    if b:\n            y = Dense(units=3)\n"
    assert [d.rule for d in diags] == ["file"] and "tabs" in diags[0].message
    assert ast.dump(ast.parse(out)).replace("output_dim", "units") == ast.dump(ast.parse(MIXED)).replace(
        "output_dim", "units")


def test_mixed_indentation_with_nothing_to_rewrite_is_left_byte_for_byte():
    text = "import keras\nif a:\n    if b:\n\t    x = '''\tkeep\n\tthis'''\n"
    assert rewrite_source(text, "same.py") == (text, [])


def test_a_vendored_keras1_file_without_the_word_keras_is_reported(tmp_path):
    pkg = tmp_path / "vendored"
    pkg.mkdir()
    (pkg / "model.py").write_text("from .layers import Convolution2D\n\nc = Convolution2D(8, 3, 3)\n")
    (pkg / "other.py").write_text("x = 1\n")
    result = subprocess.run([sys.executable, "-m", "kmigrate", "rewrite", "--check", str(pkg)],
                            capture_output=True, text=True)
    assert "model.py:3:5: warning [conv2d] `Convolution2D` looks like Keras 1's but comes from a relative import" \
        in result.stderr, result.stderr
    assert (pkg / "model.py").read_text() == "from .layers import Convolution2D\n\nc = Convolution2D(8, 3, 3)\n"
