"""Diagnostics and per-file results: plain values that the CLI renders and the run maps to exit codes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    rule: str
    message: str
    line: int = 0
    col: int = 0
    path: str = "-"
    cell: int | None = None  # notebooks: 1-based cell number; line/col are then inside that cell

    def render(self) -> str:
        where = f"cell {self.cell}:" if self.cell is not None else ""
        return f"{self.path}:{where}{self.line}:{self.col}: {self.severity.value} [{self.rule}] {self.message}"


class Status(str, enum.Enum):
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    SKIPPED = "skipped"  # never parsed: no Keras 1 marker in the bytes, or not a file kmigrate reads
    FAILED = "failed"  # unreadable or unparsable; left untouched


@dataclass
class FileResult:
    path: str
    status: Status
    diagnostics: list[Diagnostic] = field(default_factory=list)
    old_text: str | None = None
    new_text: str | None = None
    new_data: bytes | None = None  # the bytes to write (new_text in the file's own encoding)
    note: str | None = None  # why a file was skipped, shown with -v

    @property
    def has_errors(self) -> bool:
        return self.status is Status.FAILED or any(
            d.severity is Severity.ERROR for d in self.diagnostics
        )
