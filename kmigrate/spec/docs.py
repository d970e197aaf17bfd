"""Render the README's rule table from rules/ (`python -m kmigrate.spec.docs README.md` refreshes it)."""

from __future__ import annotations

import sys
from pathlib import Path

from kmigrate.spec.loader import RuleSet, default_ruleset

START, END = "<!-- rules:start -->", "<!-- rules:end -->"


def rule_table(ruleset: RuleSet) -> str:
    rows = ["| id | file | Keras 1 | becomes |", "|---|---|---|---|"]
    for r in ruleset.rules:
        names = ", ".join(f"`{n}`" for n in r.names)
        rows.append(f"| `{r.id}` | `{r.file}` | {names} | {r.summary.replace('|', '/')} |")
    return "\n".join(rows)


def refreshed(readme: str, ruleset: RuleSet | None = None) -> str:
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{rule_table(ruleset or default_ruleset())}\n{END}{tail}"


if __name__ == "__main__":  # pragma: no cover
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(refreshed(path.read_text()))
