"""The engine on real code it has nothing to do with: it must neither crash nor change a byte."""

import sysconfig
from pathlib import Path

import pytest

from kmigrate.rewrite.files import rewrite_source

STDLIB = sorted(p for p in Path(sysconfig.get_paths()["stdlib"]).glob("*.py") if 2000 < p.stat().st_size < 60000)
SAMPLE = STDLIB[:: max(1, len(STDLIB) // 20)]


@pytest.mark.parametrize("path", SAMPLE, ids=lambda p: p.name)
def test_non_keras_code_is_left_byte_for_byte(path):
    text = path.read_text(encoding="utf-8")
    out, diags = rewrite_source(text, str(path))
    assert out == text
    assert diags == []


def test_keras_names_that_are_not_keras_are_left_alone():
    text = (
        "import mylib.layers as L\n"
        "from mylib import Convolution2D, merge\n"
        "a = Convolution2D(64, 3, 3, border_mode='same')\n"
        "b = L.Convolution2D(64, 3, 3)\n"
        "c = merge([a, b], mode='concat')\n"
        "def image_dim_ordering():\n    return 'th'\n"
        "d = image_dim_ordering() == 'th'\n"
    )
    assert rewrite_source(text) == (text, [])


def test_comparisons_with_builtins_in_keras_code():
    text = ("from keras.layers import Convolution2D\n"
            "def f(x, weights=None):\n"
            "    if weights is None and len(x) == 2 and x != print:\n"
            "        return Convolution2D(8, 3, 3)\n")
    out, diags = rewrite_source(text)
    assert out == text.replace("Convolution2D(8, 3, 3)", "Conv2D(8, (3, 3))").replace("import Convolution2D", "import Conv2D")
    assert diags == []
