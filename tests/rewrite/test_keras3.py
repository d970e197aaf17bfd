"""Against installed Keras 3: what the rules emit exists there, and the layers the rewritten fixtures
build carry the configuration the Keras 1 call meant (the `# expect:` comments, written from Keras 1
semantics)."""

import inspect

import pytest

import ast

import keras  # the test environment installs it: this suite never skips

from kmigrate.spec.loader import default_ruleset
from kmigrate.spec.model import TARGET_LAYER_KWARGS

from .fixture_cases import EXPECT_OBJECT, LEFT, cases, expectations

RULES = default_ruleset()
LAYER_RULES = [r for r in RULES.rules if r.kind == "layer"]


def _targets(rule):
    """Every Keras 3 name the rule can emit (merge picks one per mode)."""
    from kmigrate.spec.special import MERGE_MODES

    targets = set(rule.names.values())
    if "merge-mode" in rule.special:
        upper = next(iter(rule.names))[0].isupper()
        targets |= {cls if upper else fn for cls, fn in MERGE_MODES.values()}
    return targets


def _params(target, rule=None):
    import importlib

    moved = RULES.module_map()  # a Keras 1 module a rule's names came from -> where Keras 3 has them
    wanted = dict.fromkeys(moved.get(m, m) for m in (rule.modules if rule else ()))
    modules = [importlib.import_module(m) for m in wanted] or [keras.layers, keras.models]
    found = [getattr(m, target) for m in modules if hasattr(m, target)]
    if len(found) > 1 and not any(isinstance(f, type) for f in found):  # imdb.load_data, reuters.load_data
        return sorted({p for f in found for p in inspect.signature(f).parameters})
    cls = found[0]
    if cls is keras.Model:  # Model(...) dispatches to the functional model's constructor
        x = keras.Input((1,))
        cls = type(keras.Model(x, x))
    if not isinstance(cls, type) and hasattr(keras.layers, target):
        # concatenate(inputs, axis, **kwargs) passes kwargs to its layer
        layer = getattr(keras.layers, target[0].upper() + target[1:])
        return list(inspect.signature(cls).parameters) + _params(layer.__name__)
    if not isinstance(cls, type):
        return list(inspect.signature(cls).parameters)
    return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]


@pytest.mark.parametrize("rule", LAYER_RULES, ids=lambda r: r.id)
def test_targets_and_their_parameters_exist_in_keras3(rule):
    params = {t: _params(t, rule) for t in _targets(rule)}
    emitted = set(rule.target_params) | set(rule.rename.values()) | set(rule.pack) | set(rule.explicit)
    for p in emitted:
        assert p in TARGET_LAYER_KWARGS or any(p in ps for ps in params.values()), f"no target takes {p}"
    if len(params) == 1:  # a single target must take every parameter the rule may emit
        (ps,) = params.values()
        assert all(p in ps or p in TARGET_LAYER_KWARGS for p in emitted)


@pytest.mark.parametrize("rule", RULES.of_kind("method"), ids=lambda r: r.id)
def test_method_targets_and_their_parameters_exist_in_keras3(rule):
    """`fit_generator(...)` becomes a Keras 3 model method that takes every parameter the rule emits."""
    emitted = set(rule.target_params) | set(rule.rename.values()) | set(rule.explicit)
    for target in set(rule.names.values()):
        params = inspect.signature(getattr(keras.Model, target)).parameters
        assert emitted <= set(params) - {"self", "kwargs"}, emitted - set(params)
        assert list(params)[1:1 + rule.positional] == list(rule.target_params[:rule.positional])


def test_backend_targets_exist_in_keras3():
    for rule in RULES.of_kind("function"):
        for new in rule.names.values():
            assert callable(getattr(keras.backend, new))
            assert callable(getattr(keras.config, new))
        for old in rule.names:
            assert not hasattr(keras.backend, old.rsplit(".", 1)[1])


def test_module_targets_import_in_keras3():
    import importlib

    for target in set(RULES.module_map().values()):
        importlib.import_module(target)
    for old in RULES.module_map():
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(old)


def _built_layers(source: str) -> list:
    """Run a rewritten fixture (trusted test data) and collect the Keras layers it constructs."""
    import sys

    built = []
    original = keras.layers.Layer.__init__

    def inside_another_layer(layer) -> bool:
        """Built by another layer's constructor (an RNN's cell, Bidirectional's copies): not the fixture's."""
        frame = sys._getframe(2)
        while frame is not None:
            owner = frame.f_locals.get("self") if frame.f_code.co_name == "__init__" else None
            if isinstance(owner, keras.layers.Layer) and owner is not layer:
                return True
            frame = frame.f_back
        return False

    def recording_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if type(self).__module__.startswith("keras.src.layers") and not getattr(self, "_recorded", False):
            self._recorded = True
            if not inside_another_layer(self):
                built.append(self)

    keras.layers.Layer.__init__ = recording_init
    try:
        exec(compile(source, "<fixture>", "exec"), {"__name__": "fixture"})
    finally:
        keras.layers.Layer.__init__ = original
    return [layer for layer in built if type(layer).__name__ != "InputLayer" or "InputLayer(" in source]


def _matches(expected, actual) -> bool:
    if isinstance(expected, float) and isinstance(actual, float):
        return abs(expected - actual) <= 1e-7 * max(1.0, abs(expected))  # Keras 3 stores float32
    if isinstance(expected, str) and isinstance(actual, dict):
        return actual.get("class_name") == expected
    if isinstance(expected, list):
        actual = list(actual) if isinstance(actual, (list, tuple)) else [actual]
        return len(expected) == len(actual) and all(_matches(e, a) for e, a in zip(expected, actual))
    return expected == actual


EXPECT_CASES = [c for c in cases() if c.after.suffix == ".py" and expectations(c.after.read_text())]


@pytest.mark.parametrize("case", EXPECT_CASES, ids=lambda c: c.id)
def test_rewritten_fixture_builds_the_keras1_layers(case):
    source = case.after.read_text()
    expected = expectations(source)
    # statements marked `# expect: left` stay Keras 1 (the rewrite refused them): not built here
    lines = source.splitlines()
    kept = []
    for stmt in ast.parse(source).body:
        if LEFT.match(lines[stmt.lineno - 2] if stmt.lineno > 1 else ""):
            continue
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "keras.layers" and stmt.names[0].name != "*":
            # a Keras 1 name kept only for a refused call does not exist in Keras 3
            stmt.names = [a for a in stmt.names if hasattr(keras.layers, a.name)]
            kept.append(ast.unparse(stmt))
            continue
        kept.append(ast.get_source_segment(source, stmt))
    layers = _built_layers("\n".join(kept))
    assert len(layers) == len(expected), [type(x).__name__ for x in layers]
    for layer, exp in zip(layers, expected):
        exp = dict(exp)
        assert type(layer).__name__ == exp.pop("class")
        config = layer.get_config()
        for key, value in exp.items():
            assert _matches(value, config.get(key)), (key, value, config.get(key))


def test_removed_names_are_really_absent_from_keras3_and_replacements_present():
    import importlib
    import re

    for rule in RULES.of_kind("removed"):
        for old, advice in rule.names.items():
            module, name = old.rsplit(".", 1)
            try:
                assert not hasattr(importlib.import_module(module), name), old
            except ModuleNotFoundError:  # a Keras 1 module path Keras 3 lacks altogether
                assert module in RULES.module_map(), module
            for suggested in re.findall(r"keras\.\w+\.\w+", advice):
                mod, attr = suggested.rsplit(".", 1)
                assert hasattr(importlib.import_module(mod), attr), suggested


OBJECT_CASES = [c for c in cases() if c.after.suffix == ".py"
                and any(EXPECT_OBJECT.match(line) for line in c.after.read_text().splitlines())]
assert OBJECT_CASES, "the regularizer and constraint fixtures state their Keras 1 meaning"


@pytest.mark.parametrize("case", OBJECT_CASES, ids=lambda c: c.id)
def test_rewritten_objects_carry_the_keras1_configuration(case):
    """Regularizers and constraints: `# expect-object:` states the Keras 1 meaning of the next line."""
    source = case.after.read_text()
    namespace: dict = {}
    exec(compile(source, str(case.after), "exec"), namespace)  # trusted test data
    lines = source.splitlines()
    checked = 0
    for i, line in enumerate(lines):
        m = EXPECT_OBJECT.match(line)
        if not m:
            continue
        exp = dict(__import__("json").loads(m.group(1)))
        obj = namespace[lines[i + 1].split("=")[0].strip()]
        assert type(obj).__name__ == exp.pop("class")
        config = obj.get_config()
        for key, value in exp.items():
            assert _matches(value, config.get(key)), (key, value, config.get(key))
        checked += 1
    assert checked


def test_backend_setter_rewrite_runs_on_keras3():
    from kmigrate.rewrite.files import rewrite_source

    source = "from keras import backend as K\nK.set_image_dim_ordering(dim_ordering='th')\nv = K.image_dim_ordering()\n"
    new, _ = rewrite_source(source)
    namespace: dict = {}
    try:
        exec(compile(new, "<rewritten>", "exec"), namespace)
        assert keras.config.image_data_format() == "channels_first"
        assert namespace["v"] == "th"  # the value Keras 1 code expects
    finally:
        keras.config.set_image_data_format("channels_last")
