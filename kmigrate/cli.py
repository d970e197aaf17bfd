"""Command line: parse options, call the library, map results to exit codes. No Keras logic here."""

from __future__ import annotations

import difflib
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click

from kmigrate import __version__
from kmigrate.diagnostics import FileResult, Severity, Status
from kmigrate.spec.loader import RuleError, default_ruleset
from kmigrate.spec.model import Options

EXIT_OK, EXIT_CHANGED, EXIT_ERROR = 0, 1, 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kmigrate")
def cli() -> None:
    """Move Keras 1 code and saved models onto modern Keras."""


def _rule_ids(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> frozenset[str]:
    ids = {i.strip() for v in value for i in v.split(",") if i.strip()}
    known = set(default_ruleset().by_id)
    unknown = sorted(ids - known)
    if unknown:
        raise click.BadParameter(f"unknown rule id {', '.join(unknown)}; valid ids: {', '.join(sorted(known))}")
    return frozenset(ids)


def _work(args: tuple[str, Options, bool]) -> FileResult:
    from kmigrate.rewrite.files import process_file

    path, options, write = args
    return process_file(Path(path), options, write)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff; write nothing.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if anything would change.")
@click.option("--only", multiple=True, callback=_rule_ids, help="Run only these rule ids (repeatable, comma-separated).")
@click.option("--skip", multiple=True, callback=_rule_ids, help="Do not run these rule ids.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Processes to use.")
@click.option("--exit-zero-even-if-changed", is_flag=True, help="Exit 0 when files were rewritten.")
@click.option("--default-dim-ordering", type=click.Choice(["th", "tf"]), default=None,
              help="What the project's Keras 1 keras.json said: written explicitly into every layer "
                   "that relied on it (Keras 2+ ignores the old keras.json key).")
@click.option("--backend", type=click.Choice(["theano", "tensorflow"]), default=None,
              help="What trained the models: with theano, 'same' padding that Theano computed differently "
                   "is written as the exact ZeroPadding + 'valid' (+ Cropping) construction.")
def rewrite(paths, show_diff, check, only, skip, jobs, exit_zero_even_if_changed, default_dim_ordering,
            backend) -> None:
    """Rewrite Keras 1 code in PATHS (files, folders, or - for stdin -> stdout) to the Keras 2 API."""
    options = Options(default_dim_ordering=default_dim_ordering, backend=backend, only=only or None, skip=skip)
    write = not (show_diff or check)
    if "-" in paths:
        if paths != ("-",):
            raise click.BadParameter("'-' (stdin) cannot be combined with paths", param_hint="PATHS")
        sys.exit(_rewrite_stdin(options, show_diff, check, exit_zero_even_if_changed))
    from kmigrate.rewrite.files import iter_paths

    files = [str(p) for p in iter_paths(paths)]
    missing = [p for p in paths if p != "-" and not Path(p).exists()]
    results: list[FileResult] = []
    for m in missing:
        click.echo(f"{m}:0:0: error [file] no such file or directory", err=True)
    tasks = [(f, options, write) for f in files if Path(f).exists()]
    if jobs > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(_work, tasks, chunksize=max(1, len(tasks) // (jobs * 4))))
    else:
        results = [_work(t) for t in tasks]
    changed = errors = 0
    for r in results:
        for d in r.diagnostics:
            click.echo(d.render(), err=True)
        if r.status is Status.CHANGED:
            changed += 1
            if show_diff:
                click.echo(_diff(r), nl=False)
            elif check:
                click.echo(f"would rewrite {r.path}", err=True)
            else:
                click.echo(f"rewrote {r.path}", err=True)
        errors += r.has_errors
    if missing or errors:
        sys.exit(EXIT_ERROR)
    if changed and not exit_zero_even_if_changed:
        sys.exit(EXIT_CHANGED)
    sys.exit(EXIT_OK)


def _diff(r: FileResult) -> str:
    return "".join(difflib.unified_diff(
        r.old_text.splitlines(keepends=True), r.new_text.splitlines(keepends=True),
        fromfile=f"a/{r.path}", tofile=f"b/{r.path}"))


def _rewrite_stdin(options: Options, show_diff: bool, check: bool, exit_zero: bool) -> int:
    """stdin -> stdout (the rewritten code, a diff with --diff, nothing with --check)."""
    from kmigrate.rewrite.files import rewrite_source, syntax_error_position

    text = sys.stdin.read()
    try:
        new, diags = rewrite_source(text, "-", options)
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        where = syntax_error_position(exc)
        if where is None:
            click.echo(f"-:0:0: error [file] internal error: {type(exc).__name__}: {exc}", err=True)
        else:
            click.echo(f"-:{where[0]}:{where[1]}: error [file] does not parse as Python 3: {where[2]}", err=True)
        if not (show_diff or check):
            sys.stdout.write(text)
        return EXIT_ERROR
    for d in diags:
        click.echo(d.render(), err=True)
    changed = new != text
    if show_diff and changed:
        click.echo(_diff(FileResult("-", Status.CHANGED, old_text=text, new_text=new)), nl=False)
    elif not check and not show_diff:
        sys.stdout.write(new)
    if any(d.severity is Severity.ERROR for d in diags):
        return EXIT_ERROR
    if changed and (check or show_diff) and not exit_zero:
        return EXIT_CHANGED
    return EXIT_OK


@cli.command("rules")
def list_rules() -> None:
    """List the rules (ids for --only/--skip)."""
    for rule in default_ruleset().rules:
        click.echo(f"{rule.id:22} {rule.file:18} {rule.summary}")


from kmigrate.weights.cli import weights as _weights  # noqa: E402 - attached after the group exists

cli.add_command(_weights)


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="kmigrate", standalone_mode=True)
    except RuleError as exc:
        click.echo(f"kmigrate: error: {exc}", err=True)
        return EXIT_ERROR
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_ERROR)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
