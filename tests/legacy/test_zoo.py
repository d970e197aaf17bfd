"""Every model of the real Keras 1.2.2 zoo, end to end (see zoo.py); the outcome must be the one the
fixtures README's table states, so no model is ever left out silently."""

import re

import pytest

from .zoo import MODELS, TOLERANCE, readme_table, run_model

TABLE = readme_table()


def test_readme_table_lists_every_zoo_model_once():
    assert sorted(TABLE) == sorted(MODELS)
    assert {status for status, _ in TABLE.values()} <= {"pass", "refused", "differs"}
    assert all(reason.strip() for status, reason in TABLE.values() if status != "pass")


def test_most_of_the_zoo_passes():
    assert sum(status == "pass" for status, _ in TABLE.values()) >= 35


@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_model(name, tmp_path):
    status, reason = TABLE[name]
    outcome = run_model(name, tmp_path)
    assert outcome.status == status, outcome.detail
    if status == "pass":
        assert outcome.max_error <= TOLERANCE
    elif status == "refused":
        # the rewrite said which rule left which call, and the README names those rules
        for rule_id in set(re.findall(r"\[([\w-]+)\]", outcome.detail)):
            assert rule_id in reason, (rule_id, reason)
        assert "error" in outcome.detail
    else:
        assert outcome.max_error > TOLERANCE
