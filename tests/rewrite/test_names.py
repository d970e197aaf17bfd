"""Never silent: every Keras name a rewritten file still imports or uses exists in installed Keras 3,
or its line carries a diagnostic; and the name list the rewrite reads is installed Keras 3's."""

import ast
import importlib

import pytest

import keras  # the test environment installs it: this suite never skips

from kmigrate.rewrite.files import rewrite_source
from kmigrate.spec.loader import default_ruleset

from ..conftest import ROOT
from .keras3_names import PATH, public_names, render


def test_the_keras3_name_list_is_installed_keras3s():
    assert PATH.read_text() == render(public_names()), "run: python -m tests.rewrite.keras3_names"


def test_the_name_list_knows_what_keras1_code_misses():
    rs = default_ruleset()
    assert rs.keras3_lacks("keras.layers.Dense") is None
    assert rs.keras3_lacks("keras.backend.sum") == "keras.backend.sum"
    assert rs.keras3_lacks("keras.preprocessing.text.Tokenizer") == "keras.preprocessing.text"
    assert rs.keras3_lacks("keras.utils.np_utils.to_categorical") is None  # the module moves


def _resolves(module: str, name: str | None) -> bool:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return False
    return name is None or hasattr(mod, name) or importlib.util.find_spec(f"{module}.{name}") is not None


def _keras_imports(source: str):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "keras":
            for alias in node.names:
                yield node.lineno, node.end_lineno, node.module, None if alias.name == "*" else alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "keras":
                    yield node.lineno, node.end_lineno, alias.name, None


SOURCES = sorted((ROOT / "fixtures" / "example" / "keras1").glob("*.py")) \
    + sorted((ROOT / "fixtures" / "legacy" / "models").glob("*.py")) \
    + sorted((ROOT / "fixtures" / "scripts").glob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_keras_import_of_a_rewritten_file_resolves_or_is_reported(path):
    new, _ = rewrite_source(path.read_text(), str(path))
    # the rewrite is a fixed point, so a second run reports, on the rewritten file's own lines, what the
    # first left for a hand edit
    again, diags = rewrite_source(new, str(path))
    assert again == new
    flagged = {d.line for d in diags}
    unresolved = [(line, module, name) for line, end, module, name in _keras_imports(new)
                  if not _resolves(module, name) and not any(line <= f <= end for f in flagged)]
    assert not unresolved, (path.name, unresolved)
