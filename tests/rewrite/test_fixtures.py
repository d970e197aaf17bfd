"""Every fixture: before -> after exactly, expected diagnostics, output parses and is a fixed point."""

import ast

import pytest

from kmigrate.rewrite.files import rewrite_keras_json, rewrite_source
from kmigrate.spec.loader import default_ruleset

from .fixture_cases import FIXTURES, cases

CASES = cases()


def _rewrite(case, text):
    fn = rewrite_keras_json if case.before.suffix == ".json" else rewrite_source
    return fn(text, case.label, case.options)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rewrite_matches_expected(case):
    out, diags = _rewrite(case, case.before.read_text())
    assert out == case.after.read_text()
    assert [d.render() for d in diags] == case.expected_diagnostics


@pytest.mark.parametrize("case", [c for c in CASES if c.before.suffix == ".py"], ids=lambda c: c.id)
def test_expected_output_parses_and_is_a_fixed_point(case):
    after = case.after.read_text()
    ast.parse(after)
    again, diags = rewrite_source(after, case.label, case.options)
    assert again == after
    # a second run only repeats what the first run refused, never something new
    errors = {d.message for d in diags}
    assert errors <= {line.split("] ", 1)[1] for line in case.expected_diagnostics}


def test_every_rule_has_fixtures_and_every_fixture_a_rule():
    ids = set(default_ruleset().by_id)
    folders = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert folders == ids


def test_every_rule_has_a_rewrite_or_noop_case_and_rewrites_change_something():
    for case in CASES:
        if not case.noop:
            assert case.before.read_text() != case.after.read_text(), case.id
