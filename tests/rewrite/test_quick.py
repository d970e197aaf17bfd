"""The ast decision (kmigrate/rewrite/quick.py) says "nothing to do" only where the libcst engine does."""

import ast
import json

import pytest

from kmigrate.rewrite.engine import _rewrite_read_part, rewrite_module
from kmigrate.rewrite.files import rewrite_source
from kmigrate.rewrite.parse import parse_module
from kmigrate.rewrite.quick import NOTHING, engine_sites, needs_nothing, unread_statements
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


@pytest.mark.parametrize("label,text,options", SOURCES + _migrated(), ids=lambda v: v if isinstance(v, str) else "")
def test_what_the_ast_reading_says_is_what_the_engine_says(label, text, options):
    """A module whose only findings are calls left as written is reported without libcst: the same
    diagnostics, at the same lines and columns, as the engine's."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return
    m = engine_sites(tree, text, RS, options)
    if m is None or m.sites:
        return
    new, diags = _engine_at(text, options, "m.py")
    assert new == text, label
    assert sorted(m.diagnostics("m.py"), key=str) == sorted(diags, key=str), label


def test_calls_left_as_written_are_reported_without_libcst():
    text = ("from keras.layers import BatchNormalization\nfrom keras.callbacks import ModelCheckpoint\n\n"
            "x = BatchNormalization(mode=2)(x)\n"
            "y = (BatchNormalization(mode=2))  # kmigrate: skip\n"
            "c = ModelCheckpoint('every5.h5', period=5)\n")
    m = engine_sites(ast.parse(text), text, RS, Options())
    assert not m.sites and len(m.said) == 2  # the engine skips the marked call: nothing is said of it
    assert m.diagnostics("m.py") == _engine_at(text, Options(), "m.py")[1]
    text = text.replace("  # kmigrate: skip", "")
    m = engine_sites(ast.parse(text), text, RS, Options())
    assert not m.sites and len(m.said) == 3
    assert [(d.line, d.col, d.rule) for d in m.diagnostics("m.py")] == \
        [(4, 5, "batchnorm"), (5, 6, "batchnorm"), (6, 5, "model-checkpoint")]
    assert m.diagnostics("m.py") == _engine_at(text, Options(), "m.py")[1]


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


def _with_helpers(label: str, text: str) -> str:
    """The source with statements no rule reads around it (what real files hold besides Keras code)."""
    helper = ("def load(path, batch_size=32):\n    with open(path) as f:  # data\n        return [l.split() for l in f]\n\n"
              "@staticmethod\ndef plot(history):\n    for k in sorted(history):\n        print(k, history[k])\n\n")
    return f'"""{label}"""\n\n' + helper + text + "\n\n" + helper.replace("load", "load2").replace("plot", "plot2")


@pytest.mark.parametrize("label,text,options", SOURCES, ids=lambda v: v if isinstance(v, str) and "\n" not in v else "")
def test_reading_part_of_a_module_is_reading_all_of_it(label, text, options):
    """Statements quick.unread_statements leaves out change nothing the engine writes or reports."""
    text = _with_helpers(label, text)
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return
    unread = unread_statements(tree, text, RS, options)
    if unread is None:
        assert "import *" in text  # a star import may bind anything: the module is read whole
        return
    if unread is NOTHING:
        assert _engine_at(text, options, "m.py") == (text, []), label
        return
    assert unread  # the helpers at least
    part = _rewrite_read_part(text, unread, RS, options, "m.py")
    assert part is not None, label  # the reduced module parses and maps back
    assert part == _engine_at(text, options, "m.py"), label


def _engine_at(text: str, options: Options, path: str) -> tuple[str, list]:
    module, _ = parse_module(text)
    new, diags = rewrite_module(module, RS, options, path, text)
    return new.code, diags


def test_a_module_too_large_for_libcst_is_refused_in_one_line():
    from kmigrate.diagnostics import Status
    from kmigrate.rewrite.engine import MAX_ENGINE_CHARS
    from kmigrate.rewrite.files import process_data

    name = "'" + "a" * MAX_ENGINE_CHARS + "'"
    big = f"from keras.layers import Dense\nlayer = Dense(output_dim=3, name={name})\n"
    result = process_data("big.py", big.encode(), Options())
    assert result.status is Status.FAILED
    (diag,) = result.diagnostics
    assert "too large to rewrite" in diag.message and "\n" not in diag.message
    # the same size is fine where libcst reads only the Keras statements, or nothing at all
    data = f"DATA = {name}\nfrom keras.layers import Dense\nlayer = Dense(output_dim=3)\n"
    result = process_data("data.py", data.encode(), Options())
    assert result.status is Status.CHANGED and "Dense(units=3)" in result.new_text
    assert process_data("done.py", data.replace("output_dim", "units").encode(), Options()).status \
        is Status.UNCHANGED


_FILLER = ("if len(ARGS) > 3:  # unrelated control flow between the Keras statements\n"
           "    count = 1\n"
           "elif ARGS:\n"
           "    pass\n"
           "else:\n"
           "    for i in range(2):\n"
           "        count = i\n"
           "try:\n"
           "    total = sum(\n"
           "        ARGS)\n"
           "except (TypeError,\n"
           "        ValueError):\n"
           "    total = 0\n")


def _interleaved(text: str) -> str | None:
    """The source inside a function, with unrelated statements of every block shape after each of its
    statements: what the engine skips then lies between, inside and around what it reads."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n"
    out, done = [], 0
    for stmt in tree.body:
        out += lines[done:stmt.end_lineno]
        done = stmt.end_lineno
        if not lines[done - 1].rstrip().endswith(("\\", ":")):
            out.append(_FILLER)
    out += lines[done:]
    body = "".join("    " + line if line.strip() else line for line in "".join(out).splitlines(keepends=True))
    return "ARGS = []\n\n\n@staticmethod\ndef main(ARGS=ARGS):\n" + body + "\n\nclass Other:\n    def run(self):\n" \
        + "".join("        " + line for line in _FILLER.splitlines(keepends=True))


@pytest.mark.parametrize("label,text,options", SOURCES, ids=lambda v: v if isinstance(v, str) and "\n" not in v else "")
def test_skipping_statements_inside_blocks_is_reading_all_of_it(label, text, options):
    """Statements skipped at any depth (inside functions, branches, loops, try clauses) change nothing
    the engine writes or reports, and the placeholders put back give the input's lines."""
    text = _interleaved(text)
    if text is None:
        return
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return  # e.g. `from __future__` or a star import, which a function body cannot hold
    unread = unread_statements(tree, text, RS, options)
    if unread is None or unread is NOTHING:
        return
    assert unread, label  # the filler at least
    part = _rewrite_read_part(text, unread, RS, options, "m.py")
    assert part is not None, label
    assert part == _engine_at(text, options, "m.py"), label


def test_a_rewrite_that_does_not_parse_is_never_written(monkeypatch):
    """The lines the engine wrote are parsed; if they do not parse, the whole module is rewritten and
    parsed instead, and a result that still does not parse leaves the file as it is, with an error."""
    from kmigrate.diagnostics import Status
    from kmigrate.rewrite import tidy
    from kmigrate.rewrite.files import process_data

    calls = []

    def broken(old, new):
        calls.append(len(new))
        return new.replace("Dense(units=3)", "Dense(units=3", 1)

    monkeypatch.setattr(tidy, "tidy", broken)
    helper = "def load(path):\n    return open(path).read()\n\n"
    source = helper + "from keras.layers import Dense\nlayer = Dense(output_dim=3)\n"
    result = process_data("m.py", source.encode(), Options())
    assert result.status is Status.FAILED and result.new_data is None
    assert "did not parse" in result.diagnostics[0].message
    assert len(calls) == 2  # the part the engine read, then the whole module


def test_a_star_import_is_read_in_part_too():
    """With `from keras.layers import *` a name nothing binds is the star module's: the statements that
    bind a name the read code writes are read with it, and the rest is skipped."""
    text = ("from keras.layers import *\n\n\n"
            "def load(path):\n    with open(path) as f:\n        return f.read()\n\n\n"
            "def make():\n    return load('x')\n\n\n"
            "def build():\n    Dense = make()\n    return Dense(output_dim=3)\n\n\n"
            "y = Dense(output_dim=3)\n"
            "z = Convolution2D(8, 3, 3, border_mode='same')\n"
            "pool = MaxPooling2D(pool_size=(2, 2), border_mode='valid')\n"
            "n = load('y')\n")
    unread = unread_statements(ast.parse(text), text, RS, Options())
    assert unread is not NOTHING
    last = text.count("\n")
    assert [(first, end) for first, end, _ in unread] == [(last, last)]  # `n = load('y')`; `load` is read
    # with `make`, which `build` (read: its Dense may be the star's) calls
    part = _rewrite_read_part(text, unread, RS, Options(), "m.py")
    assert part is not None
    assert part == _engine_at(text, Options(), "m.py")
    assert "Dense(units=3)" in part[0] and "return Dense(output_dim=3)" in part[0]


FAST_CASES = {
    "batch size through a name": (
        "from keras.models import Sequential\nfrom keras.preprocessing.image import ImageDataGenerator\n"
        "BATCH = 32\ndatagen = ImageDataGenerator(); model = Sequential()\n"
        "model.fit_generator(datagen.flow(X, y, batch_size=BATCH), samples_per_epoch=1000, nb_epoch=2)\n"),
    "batch size bound in a function": (
        "from keras.models import Sequential\nfrom keras.preprocessing.image import ImageDataGenerator\n\n"
        "def train(X, y):\n    bs = 32\n    datagen = ImageDataGenerator()\n    model = Sequential()\n"
        "    gen = datagen.flow(X, y, batch_size=bs)\n"
        "    model.fit_generator(gen, samples_per_epoch=1000, nb_epoch=2)\n"),
    "load_weights after a renaming save_weights": (
        "from keras.models import Sequential\nmodel = Sequential()\n"
        "model.fit(X, y, batch_size=32, nb_epoch=5)\nmodel.save_weights('w.h5', overwrite)\n"
        "model.load_weights('w.h5')\n"),
    "save_weights in a decorator": (
        "from keras.models import Sequential\nmodel = Sequential()\n\n"
        "@register(model.save_weights('w.h5'))\ndef f():\n    model.load_weights('w.h5')\n"),
    "an aliased model factory": (
        "from keras.layers import Dense\nfrom keras.models import Sequential as S\n"
        "d = Dense(output_dim=3)\nmodel = S()\nmodel.fit(X, y)\n"),
    "a renamed name in a string annotation": (
        "from keras.layers import Convolution2D\n\ndef f(layer: 'Convolution2D'):\n    return layer\n\n"
        "x = Convolution2D(8, 3, 3)\n"),
    "a form feed before a reported call": (
        "from keras.layers import BatchNormalization\n\x0cb = BatchNormalization(mode=2)\n"),
    "a call before its import": (
        "b = BatchNormalization(mode=2)\nfrom keras.layers import BatchNormalization\nc = BatchNormalization(mode=2)\n"),
    "a Keras import only inside a function": (
        "def f():\n    import keras\n    return keras\n\nmodel.fit(X, y, nb_epoch=3)\n"),
    "a method call above the first Keras import": (
        "x = model.save_weights(path)\nfrom keras.models import Sequential\ny = model.save_weights(path)\n"),
    "a model method on a relative import's object": (
        "from .nets import model\nimport keras\nmodel.fit(X, y, nb_epoch=3)\nmodel.fit(X, y, nb_epoch=3, epochs=3)\n"),
    "a receiver imported inside try": (
        "try:\n    import numpy as np\nexcept ImportError:\n    np = None\nnp.fit(x, nb_epoch=2)\n"),
    "a receiver reached through a module's attribute": (
        "import numpy as np\nimport keras\nnp.random.fit(X, nb_epoch=2, epochs=2)\nnp.a.save_weights(p)\n"),
    "a removed layer called in a branch above its import": (
        "if 1:\n    x = SReLU()\nfrom keras.layers import SReLU\n"),
    "an attribute of a call's result": (
        "from keras import backend as K\nx = K.sum(y).attr\n"),
    "a star import inside try": (
        "try:\n    from keras.layers import *\nexcept ImportError:\n    pass\n\n"
        "def f():\n    return 1\n\nx = Convolution2D(8, 3, 3)\n"),
    "a module imported inside try, then called like a model": (
        "try:\n    import model\nexcept ImportError:\n    pass\n\ndef f():\n    return 1\n\n"
        "from keras.models import Sequential\nmodel.predict_classes(X)\n"),
    "a line separator before a skipped call": (
        "from keras.layers import Dense\n\ndef g():\n    s = 'a\u2028b'\n    return s\n\n"
        "x = Dense(output_dim=3)  # kmigrate: skip\ny = Dense(output_dim=4)\n"),
}


@pytest.mark.parametrize("name", sorted(FAST_CASES))
def test_reading_in_part_writes_what_the_whole_engine_writes(name):
    """Cases where what the engine follows lies outside the statements it edits (found by review)."""
    from kmigrate.rewrite.engine import rewrite_text

    text = FAST_CASES[name]
    fast_text, fast_diags = rewrite_text(text, RS, Options(), "m.py")
    full_text, full_diags = _engine_at(text, Options(), "m.py")
    if "\x0c" in text:  # libcst itself drops a form feed at the start of a line; the input is kept here
        assert fast_text == text and full_text == text.replace("\x0c", ""), name
    else:
        assert fast_text == full_text, name
    assert sorted(map(str, fast_diags)) == sorted(map(str, full_diags)), name


# What the ast reading says itself: the engine's findings at calls, attribute chains and imports it
# leaves as written (an already-migrated tree under `--check` then never loads libcst).
SAID_CASES = {
    "a removed layer, imported and called": (
        "from keras.layers import SReLU, Dense\nfrom keras.layers import Highway\n"
        "a = SReLU()\nb = Highway()\n", 4),
    "names Keras 3 lacks: an import and attribute chains": (
        "from keras.preprocessing.text import Tokenizer\nfrom keras import backend as K\n"
        "x = K.sum(y, axis=1)\nz = K.learning_phase()\nt = Tokenizer()\n", 3),
    "a removed utility through a module alias": (
        "from keras import utils as np_utils\nc = np_utils.probas_to_classes(p)\n", 1),
    "Keras 1 and Keras 2 arguments mixed, refused": (
        "from keras.layers import Conv2D\nc = Conv2D(64, 3, 3, padding='same')\n"
        "d = Conv2D(64, 3, k)\ng = Conv2D(64, (3, 3), border_mode='same', padding='same')\n", 3),
    "a renamed layer refused, its import kept": (
        "from keras.layers import AtrousConvolution1D, Conv1D\n"
        "c = AtrousConvolution1D(8, 3, atrous_rate=2, subsample_length=2)\n", 1),
    "a merge refused, its import kept": (
        "from keras.layers import Input, merge\na = Input((4,)); b = Input((4,))\n"
        "g = merge([a, b], mode=lambda x: x[0] - x[1], output_shape=(4,))\n", 1),
    "a skip comment on the dim-ordering getter": (
        "from keras import backend as K\nif K.image_dim_ordering() == 'th':  # kmigrate: skip\n    x = 1\n"
        "b = K.learning_phase()\n", 1),
    "a Keras 1 keyword on fit with nothing from Keras imported": (
        "from models import build\nimport numpy as np\nmodel = build()\nmodel.fit(X, y, nb_epoch=3)\n"
        "np.fit(X, nb_epoch=3)\nmodel.fit(X, y, epochs=3)\n", 1),
    "a weights file name that is not a literal, with batch_size= elsewhere": (
        "from keras.models import Sequential\nmodel = Sequential()\nmodel.fit(X, y, batch_size=bs, epochs=2)\n"
        "model.save_weights(path)\n", 1),
}


@pytest.mark.parametrize("name", sorted(SAID_CASES))
def test_findings_left_as_written_are_said_without_libcst(name):
    text, count = SAID_CASES[name]
    m = engine_sites(ast.parse(text), text, RS, Options())
    assert m is not None and not m.sites, name
    assert len(m.diagnostics("m.py")) == count, m.diagnostics("m.py")
    assert _engine_at(text, Options(), "m.py") == (text, m.diagnostics("m.py")), name


@pytest.mark.parametrize("text", [
    "from keras.layers import AtrousConvolution1D\n",  # unused: the engine imports Keras 3's name
    "c = AtrousConvolution1D(8, 3, atrous_rate=2, subsample_length=2)\n"
    "from keras.layers import AtrousConvolution1D\n",  # read before the import: libcst counts no reference
    "from keras.layers import AtrousConvolution1D\ndef f(AtrousConvolution1D):\n    return AtrousConvolution1D\n"
    "c = AtrousConvolution1D(8, 3, atrous_rate=2, subsample_length=2)\n",
    "x = K.sum(y)\nfrom keras import backend as K\n",  # an attribute read before its import
])
def test_the_engine_decides_imports_it_may_rewrite(text):
    m = engine_sites(ast.parse(text), text, RS, Options())
    assert m is None or m.sites
    from kmigrate.rewrite.engine import rewrite_text

    assert rewrite_text(text, RS, Options(), "m.py") == _engine_at(text, Options(), "m.py")


def test_a_name_read_before_its_import_is_the_star_imports():
    """At the module level (or in a class body) a name read above the import that binds it is, when the
    code runs, what a star import above bound: the engine rewrites it as the star module's (libcst
    gives it no name). A function's local read before it is bound is left alone."""
    from kmigrate.rewrite.engine import rewrite_text

    text = ("from keras.layers import *\nb = MaxPooling2D((2, 2), dim_ordering='th')\n"
            "class A:\n    b = MaxPooling2D((2, 2), dim_ordering='th')\n    MaxPooling2D = None\n"
            "from keras.layers import MaxPooling2D\n")
    new, diags = _engine_at(text, Options(), "m.py")
    assert new.count("MaxPooling2D((2, 2), data_format='channels_first')") == 2
    assert rewrite_text(text, RS, Options(), "m.py") == (new, diags)
    local = ("from keras.layers import *\n"
             "def f():\n    c = MaxPooling2D((2, 2), dim_ordering='th')\n    MaxPooling2D = None\n")
    assert _engine_at(local, Options(), "m.py") == (local, [])
