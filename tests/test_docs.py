"""The README's rule table is generated from rules/ and must be fresh; every rule id appears in it."""

from kmigrate.spec.docs import refreshed
from kmigrate.spec.loader import default_ruleset

from .conftest import ROOT


def test_readme_rule_table_is_fresh():
    text = (ROOT / "README.md").read_text()
    assert refreshed(text) == text, "run: python -m kmigrate.spec.docs README.md"


def test_every_rule_is_documented():
    text = (ROOT / "README.md").read_text()
    for rule_id in default_ruleset().by_id:
        assert f"| `{rule_id}` |" in text


def test_readme_opens_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    commands = [line for line in lines[:12] if line.startswith("python3 -m venv")]
    assert len(commands) == 2
    assert "kmigrate rewrite" in commands[0] and "fixtures/example/keras1" in commands[0]
    assert "pytest" in commands[1] and "[test]" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e '.[test]'" in ci and "-m pytest" in ci
