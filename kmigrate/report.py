"""Machine-readable reports of a rewrite run: kmigrate's own JSON, or SARIF 2.1.0 for code-scanning
dashboards. Every file with its status; every diagnostic with path, line, column, severity, rule id and
message."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

from kmigrate import __version__
from kmigrate.diagnostics import Diagnostic, Severity
from kmigrate.rewrite.runner import Run
from kmigrate.spec.loader import default_ruleset

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
# diagnostics that come from no rule: the file as a whole, and the Python 2 port
PSEUDO_RULES = {"file": "the file could not be read, parsed, rewritten or written",
                "py2": "Python 2 source ported to Python 3 (--py2)"}
FORMATS = (".json", ".sarif")


class ReportError(ValueError):
    pass


def _diagnostic(d: Diagnostic) -> dict:
    out = {"path": d.path, "line": d.line, "column": d.col, "severity": d.severity.value, "rule": d.rule,
           "message": d.message}
    if d.cell is not None:
        out["cell"] = d.cell
    return out


def to_json(run: Run) -> dict:
    c = run.counts()
    return {
        "tool": {"name": "kmigrate", "version": __version__},
        "mode": "write" if run.settings.write else "check",
        "summary": {"changed": c["changed"], "unchanged": c["unchanged"], "skipped": c["skipped"],
                    "errors": c["errors"], "interrupted": run.interrupted, "exit_code": run.exit_code,
                    "text": run.summary()},
        "files": [
            {"path": r.path, "status": r.status.value, **({"note": r.note} if r.note else {}),
             "diagnostics": [_diagnostic(d) for d in r.diagnostics]}
            for r in sorted(run.results, key=lambda r: r.path)
        ],
    }


def _uri(path: str) -> str:
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(Path.cwd())
        except ValueError:
            return p.as_uri()
    return quote(p.as_posix())


def to_sarif(run: Run) -> dict:
    rules = [{"id": rid, "shortDescription": {"text": text}} for rid, text in PSEUDO_RULES.items()]
    rules += [{"id": r.id, "shortDescription": {"text": r.summary},
               "properties": {"file": f"rules/{r.file}"}} for r in default_ruleset().rules]
    index = {r["id"]: i for i, r in enumerate(rules)}
    results = []
    for r in sorted(run.results, key=lambda r: r.path):
        for d in r.diagnostics:
            if d.rule not in index:
                index[d.rule] = len(rules)
                rules.append({"id": d.rule, "shortDescription": {"text": d.rule}})
            location: dict = {"artifactLocation": {"uri": _uri(d.path), "uriBaseId": "%SRCROOT%"}}
            text = d.message
            if d.cell is not None:  # a notebook: lines count inside the cell, which SARIF cannot say
                text = f"cell {d.cell}, line {d.line}, column {d.col}: {d.message}"
            elif d.line > 0:
                location["region"] = {"startLine": d.line, **({"startColumn": d.col} if d.col > 0 else {})}
            result = {"ruleId": d.rule, "ruleIndex": index[d.rule], "level": SARIF_LEVEL[d.severity],
                      "message": {"text": text}, "locations": [{"physicalLocation": location}]}
            if d.cell is not None:
                result["properties"] = {"cell": d.cell, "line": d.line, "column": d.col}
            results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "kmigrate", "version": __version__, "rules": rules}},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().as_uri() + "/"}},
            "artifacts": [{"location": {"uri": _uri(r.path), "uriBaseId": "%SRCROOT%"},
                           "properties": {"status": r.status.value}}
                          for r in sorted(run.results, key=lambda r: r.path)],
            "invocations": [{"executionSuccessful": run.exit_code in (0, 1), "exitCode": run.exit_code}],
            "results": results,
        }],
    }


def check_path(path: str) -> None:
    if not path.endswith(FORMATS):
        raise ReportError(f"--report {path}: the name must end in .json (kmigrate's JSON) or .sarif (SARIF 2.1.0)")


def write(path: str, run: Run) -> None:
    """Write the report in the format its name says; atomically, like every file kmigrate writes."""
    from kmigrate import atomic

    check_path(path)
    data = to_sarif(run) if path.endswith(".sarif") else to_json(run)
    target = Path(path)
    with atomic.replacing(target, mode=0o644 & ~_umask()) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
