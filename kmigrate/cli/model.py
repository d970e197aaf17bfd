"""`kmigrate model convert|verify`: options in, library call, exit code out (0 ok, 1 verify mismatch,
2 bad input). Keras loads inside the commands only."""

from __future__ import annotations

import sys

import click

from kmigrate.weights.cli import BACKEND, LAYOUT, TO


def _fail(file: str, layer: str | None, message: str) -> None:
    where = f"{layer}: " if layer else ""
    click.echo(f"kmigrate: error: {file}: {where}{message}", err=True)
    sys.exit(2)


@click.group("model")
def model() -> None:
    """Convert a whole Keras 1 model.h5 into a Keras 3 .keras file."""


@model.command("convert")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option("--backend", type=BACKEND, default=None,
              help="backend that TRAINED the Keras 1 model: decides the kernel flip (never recorded)")
@click.option("--layout", type=LAYOUT, default=None, help="Keras 1 dim_ordering when the config does not say")
@click.option("--to", type=TO, default=None, help="target ordering (default: keep the model's)")
@click.option("--emit-code", "emit_code", type=click.Path(dir_okay=False), default=None,
              help="also write readable Keras 3 source that builds the same model")
@click.option("--force", is_flag=True, help="replace existing outputs")
@click.option("--set", "given", multiple=True, metavar="LAYER.KEY=VALUE",
              help="a Keras 1 setting the file did not save, e.g. convlstm2d_1.subsample=2,2 (repeatable)")
def convert(old: str, new: str, backend, layout, to, emit_code, force, given) -> None:
    """Read OLD's Keras 1 model config as data, translate every layer through the rules, convert and
    prove the weights, and save NEW (.keras), which keras.models.load_model reads with no kmigrate code."""
    from kmigrate.model.convert import convert_model
    from kmigrate.model.lost import parse_setting
    from kmigrate.weights.h5io import BadInput
    from kmigrate.weights.plan import Settings

    try:
        report = convert_model(old, new, Settings(layout=layout, backend=backend, to=to), force=force,
                               emit_code=emit_code, given=[parse_setting(g) for g in given])
    except BadInput as e:
        _fail(e.path or old, e.layer, str(e))
    layers = sum(1 for n in report.graph.nodes if n.cls != "Input")
    click.echo(f"{old} -> {new}: {layers} layers, {len(report.weights.plan.weighted)} with weights, each proven "
               f"against Keras 1's equations; the saved file reloads in safe mode to the same predictions")
    if report.end_to_end is not None:
        click.echo(("" if report.end_to_end.proven else "warning: ") + report.end_to_end.text())
    if report.weights.plan.settings.backend is None and report.weights.plan.weighted:  # a Keras 2 file records it
        click.echo("note: the training backend was not given; check the whole model against a known input and "
                   "prediction with `kmigrate model verify NEW --input X.npy --expect Y.npy`")
    for note in report.notes:
        click.echo(f"note: {note}")
    if report.code:
        click.echo(f"wrote {report.code}")


@model.command("verify")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--input", "x_path", required=True, type=click.Path(dir_okay=False), help="input batch (.npy)")
@click.option("--expect", "y_path", required=True, type=click.Path(dir_okay=False),
              help="the predictions Keras 1 made for it (.npy)")
def verify(path: str, x_path: str, y_path: str) -> None:
    """Run a saved model on X and compare with Y: passes when max |prediction - Y| <= 1e-5 * max |Y|."""
    from kmigrate.model.convert import verify_model
    from kmigrate.weights.h5io import BadInput

    try:
        ok, err, scale = verify_model(path, x_path, y_path)
    except BadInput as e:
        _fail(e.path or path, e.layer, str(e))
    rel = err / scale if scale else err
    click.echo(f"{path}: max |prediction - expected| = {err:.3g} ({rel:.2e} of max |expected|): "
               f"{'ok' if ok else 'MISMATCH'}")
    sys.exit(0 if ok else 1)
