"""Property tests over generated Keras 1 modules (calls with positional and keyword mixes, import
styles, layer mixes, calls broken over aligned lines): the rewrite always parses, is idempotent (a fixed
point), never raises, and keeps aligned continuation lines aligned."""

import ast

import pycodestyle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmigrate.rewrite.files import migrate_python
from kmigrate.spec.model import Options

ints = st.integers(min_value=1, max_value=64).map(str)
small = st.integers(min_value=1, max_value=5).map(str)
ordering = st.sampled_from(["'th'", "'tf'", "'default'"])
border = st.sampled_from(["'same'", "'valid'"])
activation = st.sampled_from(["'relu'", "'linear'", "'sigmoid'", "None"])
init = st.sampled_from(["'glorot_uniform'", "'he_normal'", "'zero'"])
pair = st.tuples(small, small).map(lambda t: f"({t[0]}, {t[1]})")


def _call(name, positional, keywords):
    chosen = st.lists(st.sampled_from(keywords), unique_by=lambda k: k[0], max_size=len(keywords)) \
        if keywords else st.just([])
    return st.tuples(st.tuples(*positional), chosen).flatmap(
        lambda pk: st.tuples(st.just(name), st.just(list(pk[0])),
                             st.tuples(*[v.map(lambda x, k=k: f"{k}={x}") for k, v in pk[1]])))


LAYERS = {
    "Convolution2D": _call("Convolution2D", [ints, small, small],
                           [("border_mode", border), ("subsample", pair), ("dim_ordering", ordering),
                            ("activation", activation), ("init", init), ("bias", st.sampled_from(["True", "False"]))]),
    "Convolution1D": _call("Convolution1D", [ints, small],
                           [("border_mode", border), ("subsample_length", small), ("activation", activation)]),
    "MaxPooling2D": _call("MaxPooling2D", [],
                          [("pool_size", pair), ("strides", pair), ("border_mode", border),
                           ("dim_ordering", ordering)]),
    "AveragePooling1D": _call("AveragePooling1D", [], [("pool_length", small), ("stride", small)]),
    "Dense": _call("Dense", [ints], [("init", init), ("activation", activation),
                                     ("bias", st.sampled_from(["True", "False"]))]),
    "Dropout": _call("Dropout", [st.sampled_from(["0.25", "0.5"])], []),
    "ZeroPadding2D": _call("ZeroPadding2D", [pair], [("dim_ordering", ordering)]),
    "UpSampling2D": _call("UpSampling2D", [], [("size", pair), ("dim_ordering", ordering)]),
    "BatchNormalization": _call("BatchNormalization", [], [("mode", st.just("0")), ("axis", st.sampled_from(["1", "-1"]))]),
}
MODULES = {"Convolution2D": "convolutional", "Convolution1D": "convolutional", "MaxPooling2D": "pooling",
           "AveragePooling1D": "pooling", "Dense": "core", "Dropout": "core", "ZeroPadding2D": "convolutional",
           "UpSampling2D": "convolutional", "BatchNormalization": "normalization"}


@st.composite
def modules(draw):
    names = draw(st.lists(st.sampled_from(sorted(LAYERS)), min_size=1, max_size=6))
    style = draw(st.sampled_from(["flat", "submodule", "alias"]))
    used = sorted(set(names))
    if style == "flat":
        head = f"from keras.layers import {', '.join(used)}\n"
    elif style == "submodule":
        head = "".join(f"from keras.layers.{MODULES[n]} import {n}\n" for n in used)
    else:
        head = "import keras.layers as L\n"
    head += "from keras.models import Sequential\n\nmodel = Sequential()\n"
    body = []
    for i, name in enumerate(names):
        _, positional, keywords = draw(LAYERS[name])
        callee = f"L.{name}" if style == "alias" else name
        args = positional + list(keywords)
        wrap = draw(st.sampled_from(["x{i} = ", "model.add("]))
        prefix = (wrap.format(i=i) if "{" in wrap else wrap) + callee + "("
        if len(args) > 1 and draw(st.booleans()):  # broken over lines, aligned with the bracket
            sep = ",\n" + " " * len(prefix)
            call = prefix + sep.join(args) + ")"
        else:
            call = prefix + ", ".join(args) + ")"
        body.append(call + (")" if wrap == "model.add(" else "") + "\n")
    return head + "".join(body)


def _e127_e128(text):
    style = pycodestyle.Checker(lines=text.splitlines(keepends=True), select=["E127", "E128"], quiet=True)
    return style.check_all()


@settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(modules(), st.sampled_from([None, "th", "tf"]), st.sampled_from([None, "theano"]))
def test_generated_keras1_modules(source, dim_ordering, backend):
    options = Options(default_dim_ordering=dim_ordering, backend=backend)
    ast.parse(source)
    assert _e127_e128(source) == 0
    new, diags = migrate_python(source, "gen.py", options)
    ast.parse(new)  # always valid Python
    again, diags2 = migrate_python(new, "gen.py", options)
    assert again == new  # idempotent: the rewrite is a fixed point
    assert _e127_e128(new) == 0, new  # aligned input stays aligned
    if new != source:
        assert "keras" in new
