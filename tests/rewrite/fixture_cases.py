"""Discover fixtures/code/<rule-id>/<case>.{before,after}.{py,json}, <case>.diagnostics, <case>.noop.py."""

import json
import re
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "code"
EXPECT = re.compile(r"^\s*# expect: (\{.*\})\s*$")
LEFT = re.compile(r"^\s*# expect: left\b")
EXPECT_OBJECT = re.compile(r"^\s*# expect-object: (\{.*\})\s*$")


@dataclass
class Case:
    rule: str
    name: str
    before: Path
    after: Path  # == before for no-op cases

    @property
    def id(self) -> str:
        return f"{self.rule}/{self.name}"

    @property
    def label(self) -> str:
        return f"{self.rule}/{self.before.name}"

    @property
    def noop(self) -> bool:
        return self.before == self.after

    @property
    def options(self):
        """Options from an optional `<case>.args` file (`--backend theano`, `--default-dim-ordering th`)."""
        from kmigrate.spec.model import Options

        path = self.before.parent / f"{self.name}.args"
        words = path.read_text().split() if path.exists() else []
        kw = {w[2:].replace("-", "_"): v for w, v in zip(words[::2], words[1::2])}
        return Options(**kw)

    @property
    def expected_diagnostics(self) -> list[str]:
        path = self.before.parent / f"{self.name}.diagnostics"
        return path.read_text().splitlines() if path.exists() else []


def cases() -> list[Case]:
    out = []
    for before in sorted(FIXTURES.glob("*/*.before.*")):
        name, ext = before.name.split(".before")
        out.append(Case(before.parent.name, name, before, before.parent / f"{name}.after{ext}"))
    for noop in sorted(FIXTURES.glob("*/*.noop.py")):
        out.append(Case(noop.parent.name, noop.name.split(".")[0], noop, noop))
    return out


def expectations(text: str) -> list[dict]:
    return [json.loads(m.group(1)) for line in text.splitlines() if (m := EXPECT.match(line))]
