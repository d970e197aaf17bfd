"""`kmigrate weights convert|inspect|verify`: options in, exit codes out (0 ok, 2 bad input or failed proof).

Importing this module imports neither TensorFlow nor Keras; h5py and numpy load inside the commands.
"""

from __future__ import annotations

import json
import os
import sys

import click

LAYOUT = click.Choice(["th", "tf"])
BACKEND = click.Choice(["theano", "tensorflow"])
TO = click.Choice(["channels_first", "channels_last"])
PROGRESS_BYTES = 16 << 20  # show a progress bar when the weights exceed this


def _fail(file: str, layer: str | None, message: str) -> None:
    where = f"{layer}: " if layer else ""
    click.echo(f"kmigrate: error: {file}: {where}{message}", err=True)
    sys.exit(2)


def _settings(layout, backend, to, config_path, template_path=None, classes=()):
    from kmigrate.weights.h5io import BadInput
    from kmigrate.weights.infer import read_template
    from kmigrate.weights.plan import Settings

    model_config = None
    if config_path:
        try:
            with open(config_path, encoding="utf8") as fh:
                model_config = json.load(fh)
        except (OSError, ValueError) as e:
            raise BadInput(f"--config {config_path}: not a readable JSON model config ({e})") from None
        if not isinstance(model_config, dict) or "class_name" not in model_config:
            raise BadInput(f"--config {config_path}: not a Keras model config (no class_name)")
    answers = {}
    for item in classes:
        name, sep, cls = item.partition("=")
        if not sep or not name or not cls:
            raise BadInput(f"--class {item}: expected LAYER=CLASS (a Keras 1 class, e.g. fc1=Dense)")
        answers[name] = cls
    if template_path and config_path:
        raise BadInput("--template and --config both describe the model: pass one")
    template = read_template(template_path) if template_path else None
    return Settings(layout=layout, backend=backend, to=to, model_config=model_config, template=template,
                    classes=answers)


def _common(f):
    f = click.option("--class", "classes", multiple=True, metavar="LAYER=CLASS",
                     help="the Keras 1 class of a layer of a weights-only file, where its arrays fit two "
                          "(e.g. emb=Embedding); repeatable")(f)
    f = click.option("--template", "template_path", type=click.Path(dir_okay=False),
                     help="the migrated Keras 3 model (NEW_MODEL.keras or its model.to_json()), read as data: "
                          "layer classes for a weights-only file, matched by order of the layers with weights")(f)
    f = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                     help="Keras 1 model JSON (model.to_json()) for weights-only files")(f)
    f = click.option("--to", type=TO, default=None,
                     help="target ordering (default: keep the model's); th -> channels_last also permutes "
                          "the first Dense after Flatten")(f)
    f = click.option("--backend", type=BACKEND, default=None,
                     help="backend that TRAINED the Keras 1 model: decides the kernel flip (never recorded)")(f)
    f = click.option("--layout", type=LAYOUT, default=None,
                     help="Keras 1 dim_ordering when neither the config nor the shapes tell")(f)
    return f


@click.group("weights")
def weights() -> None:
    """Convert Keras 1 .h5 weight files for Keras 3 `load_weights`."""
    # The proof multiplies small matrices (a batch of two inputs): OpenBLAS's threads only contend for them
    # (measured 7x slower on a busy 2-core machine). OpenBLAS reads this when numpy loads, which the
    # commands do later; a user's own setting wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _fmt_err(v) -> str:
    return "-" if v is None else f"{v:.2e}"


def _shapes(ss) -> str:
    """Shapes as `3x3x2x4 4`; a repeated group (Keras 1's per-gate triples) once, with its count."""
    text = ["x".join(map(str, s)) or "()" for s in ss]
    for k in range(1, len(text) // 2 + 1):
        if len(text) % k == 0 and text == text[:k] * (len(text) // k):
            return f"({' '.join(text[:k])}) x{len(text) // k}" if k > 1 else f"{text[0]} x{len(text)}"
    return " ".join(text) or "-"


def _print_table(report) -> None:
    rows = [("layer", "class", "old shape -> new shape", "transform", "max abs err", "status")]
    for r in report.rows:
        if not r.old_shapes and r.status == "weightless":
            continue
        cls = f"{r.keras1_class or '?'} -> {r.target_class or '?'}"
        rows.append((f"{r.old_name} -> {r.new_name}", cls, f"{_shapes(r.old_shapes)} -> {_shapes(r.new_shapes)}",
                     r.transform, _fmt_err(r.max_abs), r.status))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    for d in report.diagnostics:
        click.echo(f"{'note' if d.severity.value == 'info' else d.severity.value}: [{d.rule}] {d.message}")


def _want_verify(verify: bool | None) -> bool:
    from kmigrate.weights.verify import tensorflow_available

    if verify is None:
        return tensorflow_available()
    if verify and not tensorflow_available():
        from kmigrate.deps import missing

        click.echo(f"kmigrate: error: {missing('tensorflow', '--verify')}", err=True)
        sys.exit(2)
    return verify


@weights.command("convert")
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@_common
@click.option("--verify/--no-verify", default=None,
              help="prove every layer numerically (default: on when TensorFlow is installed)")
@click.option("--force", is_flag=True, help="replace DST if it exists")
def convert_cmd(src, dst, layout, backend, to, config_path, template_path, classes, verify, force) -> None:
    """Convert SRC (Keras 1 save_weights or save file) to DST for Keras 3 `model.load_weights(DST)`."""
    import os

    from kmigrate.weights.convert import convert_file
    from kmigrate.weights.h5io import BadInput

    do_verify = _want_verify(verify)
    try:
        settings = _settings(layout, backend, to, config_path, template_path, classes)
        size = os.path.getsize(src) if os.path.isfile(src) else 0
        if size > PROGRESS_BYTES:
            with click.progressbar(length=size, label="converting", file=sys.stderr) as bar:
                report = convert_file(src, dst, settings, verify=do_verify, progress=bar.update, force=force)
        else:
            report = convert_file(src, dst, settings, verify=do_verify, force=force)
    except BadInput as e:
        _fail(e.path or src, e.layer, str(e))
        return
    _print_table(report)
    if not report.ok:
        layer, message = report.failure
        _fail(src, layer, message + "; nothing written")
    click.echo(f"wrote {dst}" + (" (every layer verified)" if report.verified else " (not verified)"))
    layers = [q for p in report.plan.weighted for q in [p, *p.facts.get("wrapped", [])]]
    flipped = sorted({q.backend for q in layers if q.family.flips and q.backend})
    if flipped and report.plan.settings.backend != settings.backend:
        click.echo(f"note: the kernels follow the backend the Keras 2 file records ({flipped[0]})")
    elif flipped:
        who = {"theano": "Theano", "tensorflow": "TensorFlow"}[flipped[0]]
        done = "verified" if report.verified else "converted"
        click.echo(f"note: {done} on the assumption that {who} trained the model "
                   "(--backend; a Keras 1 file does not record it); a prediction on a known input is the "
                   "end-to-end check")
    if report.name_map:
        click.echo("layer names: " + ", ".join(f"{a} -> {b}" for a, b in report.name_map.items()))


@weights.command("verify")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@_common
def verify_cmd(old, new, layout, backend, to, config_path, template_path, classes) -> None:
    """Re-run the per-layer numerical proof of NEW against the Keras 1 original OLD."""
    from kmigrate.weights.convert import verify_files
    from kmigrate.weights.h5io import BadInput

    _want_verify(True)
    try:
        report = verify_files(old, new, _settings(layout, backend, to, config_path, template_path, classes))
    except BadInput as e:
        _fail(e.path or old, e.layer, str(e))
        return
    _print_table(report)
    if not report.ok:
        layer, message = report.failure
        _fail(new, layer, message)
    click.echo("every layer verified")


@weights.command("inspect")
@click.argument("file", type=click.Path(dir_okay=False))
@_common
def inspect_cmd(file, layout, backend, to, config_path, template_path, classes) -> None:
    """Print the layers, Keras 1 and Keras 2 configs, weights, detected layout and what is still unknown."""
    from kmigrate.weights.convert import inspect_file
    from kmigrate.weights.h5io import BadInput

    try:
        k1, plan, open_question = inspect_file(file, _settings(layout, backend, to, config_path, template_path,
                                                                 classes))
    except BadInput as e:
        _fail(e.path or file, e.layer, str(e))
        return
    click.echo(f"file: {file}")
    click.echo(f"kind: {'full model (model.save)' if k1.model_config else 'weights only (save_weights)'}; "
               f"keras_version: {k1.keras_version or 'not recorded'}")
    if k1.saved_on_tensorflow:
        click.echo("hint: ':0' weight names mean TensorFlow SAVED it; that does not say which backend trained it")
    for d in k1.dropped:
        click.echo(f"dropped on conversion: {d}")
    if plan is None:
        for name in k1.layer_names:
            layer = k1.layers[name]
            click.echo(f"layer {name}: " + ", ".join(f"{w.name} {w.shape}" for w in layer.weights))
        click.echo(f"unknown: {open_question}")
        return
    click.echo(f"model dim_ordering: {plan.model_layout or 'unknown'}")
    unknown = []
    for p in plan.layers:
        click.echo(f"layer {p.old_name} ({p.keras1_class or '?'}) -> {p.new_name} ({p.target_class or '?'})")
        if p.keras1_config:
            click.echo(f"  keras 1 config: {json.dumps(p.keras1_config, sort_keys=True, default=str)[:400]}")
        if p.keras2_config is not None:
            click.echo(f"  keras 2 config: {json.dumps(p.keras2_config, sort_keys=True, default=str)[:400]}")
        for w in p.weights:  # a Keras 2 array under the name and shape Keras 1 gave it, and where it is
            click.echo(f"  weight {w.name} {w.shape} {w.dtype}" + (f" (stored as {w.path})" if k1.keras2 else ""))
        if p.family:
            flips = p.family.flips or any(q.family.flips for q in p.facts.get("wrapped", []))
            backend = p.backend or ("unknown" if flips else "not needed")
            click.echo(f"  family: {p.family.name}; layout: {p.layout or '-'} ({p.layout_source or 'n/a'}); "
                       f"backend: {backend}; transform: {p.transform}")
        for n in p.notes + ([p.refused] if p.refused else []):
            click.echo(f"  note: {n}")
        unknown += [f"{p.old_name}: {u}" for u in p.unknown]
    for n in plan.notes:
        click.echo(f"note: {n}")
    click.echo("unknown: " + (", ".join(unknown) if unknown else "nothing"))
