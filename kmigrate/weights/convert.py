"""Convert a Keras 1 weights file into one Keras 3 loads, proving each layer before the file exists."""

from __future__ import annotations

import json
import os
from pathlib import Path
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from kmigrate import atomic
from kmigrate.diagnostics import Diagnostic, Severity
from kmigrate.weights.h5io import (BadInput, K1File, K1Weight, Keras3Writer, iter_output_layers, open_input,
                                   read_array, read_keras1)
from kmigrate.weights.plan import Plan, Settings, make_plan

MARKER = "kmigrate"  # root attribute of converted files: the settings used, as JSON


@dataclass
class LayerRow:
    old_name: str
    new_name: str
    keras1_class: str | None
    target_class: str | None
    old_shapes: list[tuple[int, ...]]
    new_shapes: list[tuple[int, ...]]
    transform: str
    max_abs: float | None = None
    max_rel: float | None = None
    status: str = "converted"  # converted | verified | failed | weightless | not converted
    notes: list[str] = field(default_factory=list)


@dataclass
class ConversionReport:
    input: str
    output: str | None
    plan: Plan
    rows: list[LayerRow]
    notes: list[str]
    verified: bool = False
    ok: bool = True
    failure: tuple[str, str] | None = None  # (layer, message) of the first failing layer

    @property
    def name_map(self) -> dict[str, str]:
        return {r.old_name: r.new_name for r in self.rows if r.old_shapes}

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """Every note (layer notes, the proof's findings, model notes) as a diagnostic value; the rule is
        the layer's weight family."""
        families = {p.old_name: p.family.name for p in self.plan.layers if p.family}
        out = []
        for r in self.rows:
            for n in r.notes:
                warn = n.startswith("warning: ") or r.status in ("failed", "not converted")
                text = n.removeprefix("warning: ").removeprefix("info: ")
                out.append(Diagnostic(Severity.WARNING if warn else Severity.INFO, families.get(r.old_name, "weights"),
                                      f"{r.old_name}: {text}", path=self.input))
        return out + [Diagnostic(Severity.INFO, "weights", n, path=self.input) for n in self.notes]


def check_output_path(path: str) -> None:
    """Keras 3 loads legacy files only as *.h5 / *.hdf5, and treats *.weights.h5 as its new format."""
    low = path.lower()
    if low.endswith(".weights.h5"):
        raise BadInput("output name ends with .weights.h5, which Keras 3 reads as its own new format: "
                       "use a plain .h5 name", path=path)
    if not (low.endswith(".h5") or low.endswith(".hdf5")):
        raise BadInput("output name must end with .h5 or .hdf5 (Keras 3 picks its loader by suffix)", path=path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise BadInput(f"output folder {folder} does not exist", path=path)
    if not os.access(folder, os.W_OK):
        raise BadInput(f"output folder {folder} is not writable", path=path)


def _rows(plan: Plan) -> list[LayerRow]:
    rows = []
    for p in plan.layers:
        status = "weightless" if not p.weights else "converted"
        if p.refused and not p.weights:
            status = "not converted"
        notes = list(p.notes) + ([p.refused] if p.refused else [])
        rows.append(LayerRow(p.old_name, p.new_name, p.keras1_class, p.target_class,
                             [w.shape for w in p.weights], [], p.transform, status=status, notes=notes))
    return rows


def inspect_file(path: str, settings: Settings | None = None) -> tuple[K1File, Plan | None, str | None]:
    """Describe a Keras 1 file; the plan is None (with the reason) when a question stays open."""
    settings = settings or Settings()
    settings = replace(settings, lenient=True)
    with open_input(path) as h5:
        k1 = read_keras1(h5)
    try:
        return k1, make_plan(k1, settings), None
    except BadInput as e:
        where = f"{e.layer}: " if e.layer else ""
        return k1, None, where + str(e)


def convert_file(src: str, dst: str, settings: Settings, verify: bool = True,
                 progress: Callable[[int], None] | None = None, force: bool = False) -> ConversionReport:
    """Convert `src` (never modified) to `dst`. The output appears only if every step succeeds; a failed
    verification returns a report with ok=False and leaves no file. An existing `dst` is replaced only
    with `force`. Bad input raises BadInput."""
    check_output_path(dst)
    if os.path.exists(dst):
        if os.path.exists(src) and os.path.samefile(src, dst):
            raise BadInput("output is the input file; the input is never modified")
        if not force:
            raise BadInput("output already exists: pass --force to replace it", path=dst)
    target = Path(os.path.abspath(dst))
    atomic.clean_stale(target.parent)  # what killed conversions left behind
    with open_input(src) as h5:
        k1 = read_keras1(h5)
        plan = make_plan(k1, settings)
        rows = _rows(plan)
        report = ConversionReport(src, dst, plan, rows, list(plan.notes))
        with atomic.replacing(target) as tmp:
            _write(h5, plan, rows, str(tmp), settings, progress, dst)
            if verify:
                with open_input(str(tmp)) as out:
                    _verify_into(h5, plan, out, report)
            if not report.ok:
                report.output = None
                raise atomic.Discard()
    return report


def _write(h5, plan: Plan, rows: list[LayerRow], tmp: str, settings: Settings, progress, dst: str) -> None:
    try:
        writer = Keras3Writer(tmp)
    except OSError as e:
        raise BadInput(f"cannot write the output: {str(e).splitlines()[0][:160]}", path=dst) from None
    try:
        for p, row in zip(plan.layers, rows):
            if p.family is None:
                continue

            def read(w: K1Weight, rows: slice | None, groups: int = 1, layer: str = p.old_name) -> np.ndarray:
                return read_array(h5, w, layer, rows, groups)
            out = p.family.write(p, read, progress)
            names = [n for n, _ in out]
            if [f"{n}:0" for n in names] != list(p.new_weight_names):
                raise BadInput(f"converted to {names}, expected {list(p.new_weight_names)}", p.old_name)
            row.new_shapes.extend(tuple(a[0]) if isinstance(a, tuple) else tuple(np.shape(a)) for _, a in out)
            writer.add_layer(p.new_name, [(f"{n}:0", a) for n, a in out])
            del out
        marker = {"layout": settings.layout, "backend": settings.backend, "to": settings.to,
                  "layers": {p.new_name: p.old_name for p in plan.layers if p.weights}}
        writer.close({MARKER: json.dumps(marker).encode("utf8")})
    except BaseException:
        writer.abort()
        raise


def _verify_into(h5_old, plan: Plan, h5_new, report: ConversionReport) -> None:
    from kmigrate.weights.verify import check_layer, check_streamed

    rows = {r.old_name: r for r in report.rows}
    weighted = plan.weighted
    written = list(iter_output_layers(h5_new))
    if len(written) != len(weighted):
        raise BadInput(f"the converted file has {len(written)} layers with weights, the original {len(weighted)}",
                       path=report.output)
    for i, (p, (new_name, new_ds)) in enumerate(zip(weighted, written)):
        row = rows[p.old_name]
        names = [n.split(":")[0] for n, _ in new_ds]
        if names != [n.split(":")[0] for n in p.new_weight_names]:
            report.ok, report.failure = False, (p.old_name, f"converted layer {new_name} has weights {names}")
            row.status = "failed"
            return
        check, msg = None, ""
        try:
            if p.family.streams(p):  # a big Dense kernel: a block of rows at a time, never whole
                shapes = {n.split(":")[0]: tuple(d.shape) for n, d in new_ds}
                by_role = dict(zip(p.roles, p.weights))
                by_name = {n.split(":")[0]: d for n, d in new_ds}

                def read_old(role: str, rows: slice | None, layer: str = p.old_name, weights=by_role) -> np.ndarray:
                    return read_array(h5_old, weights[role], layer, rows)

                def read_new(name: str, rows: slice | None, datasets=by_name) -> np.ndarray:
                    d = datasets[name]
                    return np.asarray(d[()] if rows is None else d[rows])
                check = check_streamed(p, read_old, read_new, shapes, seed=i)
            else:
                old = {role: read_array(h5_old, w, p.old_name) for w, role in zip(p.weights, p.roles)}
                new = {n.split(":")[0]: np.asarray(d[()]) for n, d in new_ds}
                check = check_layer(p, old, new, seed=i)
                del old, new
        except BadInput:
            raise
        except Exception as e:  # noqa: BLE001 - a shape TF rejects is a failed conversion, not a crash
            check = None
            msg = f"TensorFlow rejected the converted weights: {str(e).splitlines()[0][:200]}"
        row.max_abs = check.max_abs if check else None
        row.max_rel = check.max_rel if check else None
        if check:
            row.notes.extend(check.notes)
        if check is None or not check.ok:
            row.status = "failed"
            if report.ok:
                report.ok = False
                report.failure = (p.old_name, check.message if check else msg)
        else:
            row.status = "verified"
    report.verified = True


def verify_files(old: str, new: str, settings: Settings) -> ConversionReport:
    """Re-run the numerical proof on an existing conversion; settings default to those it recorded."""
    with open_input(new) as h5n:
        if MARKER in h5n.attrs:
            recorded: dict[str, Any] = json.loads(bytes(h5n.attrs[MARKER]).decode("utf8")) \
                if isinstance(h5n.attrs[MARKER], (bytes, np.bytes_)) else json.loads(h5n.attrs[MARKER])
            settings = replace(settings, layout=settings.layout or recorded.get("layout"),
                               backend=settings.backend or recorded.get("backend"), to=settings.to or recorded.get("to"))
        if "layer_names" not in h5n.attrs:
            raise BadInput("not a converted weights file (no layer_names)", path=new)
    with open_input(old) as h5o:
        k1 = read_keras1(h5o)
        plan = make_plan(k1, settings)
        rows = _rows(plan)
        report = ConversionReport(old, new, plan, rows, list(plan.notes))
        with open_input(new) as h5n:
            for p, (name, ds) in zip(plan.weighted, iter_output_layers(h5n)):
                rows_by = {r.old_name: r for r in rows}
                rows_by[p.old_name].new_shapes = [tuple(d.shape) for _, d in ds]
            _verify_into(h5o, plan, h5n, report)
    return report
