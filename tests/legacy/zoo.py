"""The real Keras 1.2.2 zoo in fixtures/legacy, taken through the whole migration.

One model: its Keras 1 source -> `rewrite_source` (with the model's keras.json ordering and training
backend) -> a Keras 3 model; its `model.save` file -> `convert_file` -> `load_weights` -> predictions
compared with Keras 1.2.2's own. The outcome is one of:
  pass      predictions equal Keras 1.2.2's within TOLERANCE of the output's scale
  refused   the rewrite left a call as written with an error diagnostic (the README says which)
  differs   the migration runs, but Keras 3 computes something else (the README says why)
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass

import numpy as np

from kmigrate.diagnostics import Severity
from kmigrate.rewrite.files import rewrite_source
from kmigrate.spec.model import Options
from kmigrate.weights.convert import convert_file
from kmigrate.weights.plan import Settings

from ..conftest import FIXTURES, ROOT

LEGACY = FIXTURES / "legacy"
MODELS = {m["name"]: m for m in json.loads((LEGACY / "out" / "manifest.json").read_text())["models"]}
TOLERANCE = 1e-5  # relative to the largest |prediction|
ROW = re.compile(r"^\| (\w+) \| (\w+) \| [^|]* \| (\w+) \| (.*) \|$")


@dataclass
class Outcome:
    status: str
    detail: str
    max_error: float | None = None


def readme_table() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in (LEGACY / "README.md").read_text().splitlines():
        m = ROW.match(line)
        if m and m.group(1) != "model":
            rows[m.group(1)] = (m.group(3), m.group(4))
    return rows


def options_for(m: dict) -> Options:
    return Options(default_dim_ordering=m["image_dim_ordering"] if m["image_dim_ordering"] == "th" else None,
                   backend=m["backend"])


def run_model(name: str, tmp_path) -> Outcome:
    m = MODELS[name]
    source = (ROOT / m["source"]).read_text()
    new, diags = rewrite_source(source, m["source"], options_for(m))
    errors = [d.render() for d in diags if d.severity is Severity.ERROR]
    assert rewrite_source(new, m["source"], options_for(m))[0] == new  # a fixed point
    if errors:
        return Outcome("refused", " / ".join(errors))
    namespace = {"__name__": f"zoo_{name}"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(new, f"{name} (rewritten)", "exec"), namespace)  # trusted test data
        model = namespace["build"]()
    dst = tmp_path / f"{name}.h5"
    report = convert_file(str(ROOT / m["files"]["model"]), str(dst), Settings(backend=m["backend"]))
    assert report.ok, report.failure
    model.load_weights(str(dst))
    want = np.load(ROOT / m["files"]["pred"])
    got = model.predict(np.load(ROOT / m["files"]["input"]), verbose=0)
    err = float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-12))
    return Outcome("pass" if err <= TOLERANCE else "differs", f"max relative error {err:.1e}", err)
