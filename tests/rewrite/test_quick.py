"""The ast decision (kmigrate/rewrite/quick.py) says "nothing to do" only where the libcst engine does."""

import ast
import json

import pytest

from kmigrate.rewrite.engine import rewrite_module
from kmigrate.rewrite.files import rewrite_source
from kmigrate.rewrite.parse import parse_module
from kmigrate.rewrite.quick import needs_nothing
from kmigrate.spec.loader import default_ruleset
from kmigrate.spec.model import Options

from ..conftest import FIXTURES
from .fixture_cases import cases

RS = default_ruleset()


def _engine(text: str, options: Options) -> tuple[str, list]:
    module, _ = parse_module(text)
    new, diags = rewrite_module(module, RS, options, "m.py", text)
    return new.code, diags


def _sources() -> list[tuple[str, str, Options]]:
    out = []
    for case in cases():
        if case.before.suffix != ".py":
            continue
        for path in {case.before, case.after}:
            out.append((f"{case.rule}/{path.name}", path.read_text(encoding="utf-8"), case.options))
    for folder in ("legacy/models", "scripts", "example/keras1", "example/expected"):
        for path in sorted((FIXTURES / folder).glob("*.py")):
            out.append((f"{folder}/{path.name}", path.read_text(encoding="utf-8"), Options()))
    calls = json.loads((FIXTURES / "legacy" / "k2_calls" / "calls_k1.json").read_text())
    prelude = "from keras.layers import Dense, Conv2D, Convolution2D, MaxPooling2D, LSTM, Flatten, Activation\n"
    for r in calls[1:400:7]:
        if not r.get("header"):
            out.append((f"call-{r['id']}", prelude + f"layer = {r['source']}\n", Options()))
    return out


SOURCES = _sources()


def _migrated() -> list[tuple[str, str, Options]]:
    """The engine's own output for every source: already migrated, where "nothing" is the usual answer."""
    out = []
    for label, text, options in SOURCES:
        try:
            new, _ = rewrite_source(text, label, options)
        except Exception:
            continue
        out.append((label + " (migrated)", new, options))
    return out


@pytest.mark.parametrize("label,text,options", SOURCES + _migrated(), ids=lambda v: v if isinstance(v, str) else "")
def test_nothing_means_nothing(label, text, options):
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return  # the engine alone reads what CPython does not parse
    if needs_nothing(tree, text, RS, options):
        assert _engine(text, options) == (text, []), label


def test_the_decision_is_not_vacuous():
    """Most migrated modules (fixed points) are decided without libcst."""
    said = [needs_nothing(ast.parse(text), text, RS, options) for _, text, options in _migrated()]
    assert sum(said) >= len(said) // 2, (sum(said), len(said))


def test_skips_only_unrelated_code():
    plain = "import numpy as np\n\ndef f(x):\n    return np.mean(x) + 1\n"
    assert needs_nothing(ast.parse(plain), plain, RS, Options())
    keras1 = "from keras.layers import Dense\nlayer = Dense(output_dim=3)\n"
    assert not needs_nothing(ast.parse(keras1), keras1, RS, Options())
    shadowed = "from keras.layers import Dense\ndef f(Dense):\n    return Dense(output_dim=3)\n"
    assert not needs_nothing(ast.parse(shadowed), shadowed, RS, Options())
