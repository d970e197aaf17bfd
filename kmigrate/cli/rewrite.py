"""`kmigrate rewrite`: options and [tool.kmigrate] in, a run of the library, messages and an exit code out."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import click

from kmigrate import config as config_mod
from kmigrate.diagnostics import FileResult, Severity, Status

EXIT_ERROR = 2


def _diff(r: FileResult) -> str:
    return "".join(difflib.unified_diff(
        r.old_text.splitlines(keepends=True), r.new_text.splitlines(keepends=True),
        fromfile=f"a/{r.path}", tofile=f"b/{r.path}"))


@click.command()
@click.argument("paths", nargs=-1)
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff; write nothing.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if anything would change.")
@click.option("--only", multiple=True, help="Run only these rule ids (repeatable, comma-separated).")
@click.option("--skip", multiple=True, help="Do not run these rule ids.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes parsing files (default 1).")
@click.option("--exit-zero-even-if-changed", is_flag=True, help="Exit 0 when files were rewritten.")
@click.option("--default-dim-ordering", type=click.Choice(["th", "tf"]), default=None,
              help="What the project's Keras 1 keras.json said: written explicitly into every layer "
                   "that relied on it (Keras 2+ ignores the old keras.json key).")
@click.option("--backend", type=click.Choice(["theano", "tensorflow"]), default=None,
              help="What trained the models: with theano, 'same' padding that Theano computed differently "
                   "is written as the exact ZeroPadding + 'valid' (+ Cropping) construction.")
@click.option("--py2/--no-py2", default=None,
              help="Port files that do not parse as Python 3 from Python 2 first (needs fissix).")
@click.option("--exclude", multiple=True,
              help="Glob pattern (.gitignore syntax) of paths to leave out of folder walks (repeatable; "
                   "replaces the configuration's list).")
@click.option("--force-exclude/--no-force-exclude", default=None,
              help="Apply the excludes to files named on the command line too (what pre-commit passes).")
@click.option("--stdin-filename", default=None,
              help="The name of the code read from stdin: used in messages, for the configuration and "
                   "excludes, and to read a notebook (.ipynb) or keras.json.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Also write a report: PATH.json (kmigrate's JSON) or PATH.sarif (SARIF 2.1.0).")
@click.option("-q", "--quiet", is_flag=True, help="Print only error diagnostics and the summary.")
@click.option("-v", "--verbose", is_flag=True, help="Also name every file left unchanged or skipped.")
def rewrite(paths, show_diff, check, only, skip, jobs, exit_zero_even_if_changed, default_dim_ordering,
            backend, py2, exclude, force_exclude, stdin_filename, report_path, quiet, verbose) -> None:
    """Rewrite Keras 1 code in PATHS (files, folders, notebooks, or - for stdin -> stdout) to the Keras 2 API."""
    from kmigrate.rewrite.runner import UnknownRules, resolve

    use_stdin = "-" in paths or (not paths and stdin_filename is not None)
    if "-" in paths and paths != ("-",):
        raise click.BadParameter("'-' (stdin) cannot be combined with paths", param_hint="PATHS")
    if not paths and not use_stdin:
        raise click.UsageError("give one or more PATHs, or - to read stdin")
    if report_path and not report_path.endswith((".json", ".sarif")):
        raise click.BadParameter(f"{report_path}: the name must end in .json (kmigrate's JSON) or .sarif "
                                 "(SARIF 2.1.0)", param_hint="--report")
    start = (Path(stdin_filename).parent if stdin_filename else Path.cwd()) if use_stdin \
        else config_mod.common_parent(paths)
    try:
        cfg = config_mod.find(start)
    except config_mod.ConfigError as exc:
        click.echo(f"kmigrate: error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    try:
        settings = resolve(cfg, only=only, skip=skip, default_dim_ordering=default_dim_ordering,
                           backend=backend, jobs=jobs, py2=py2, exclude=exclude, force_exclude=force_exclude,
                           write=not (show_diff or check), exit_zero_even_if_changed=exit_zero_even_if_changed,
                           texts=show_diff)
    except UnknownRules as exc:
        if exc.source.startswith("--"):
            raise click.BadParameter(str(exc), param_hint=exc.source) from None
        click.echo(f"kmigrate: error: {exc.source}: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    printer = _Printer(show_diff, check, quiet, verbose)
    try:
        if use_stdin:
            code = _rewrite_stdin(stdin_filename or "-", settings, show_diff, check, printer, report_path)
        else:
            from kmigrate.rewrite.runner import run

            outcome = run(paths, settings, printer)
            click.echo(outcome.summary(), err=True)
            if report_path:
                from kmigrate import report

                report.write(report_path, outcome)
            code = outcome.exit_code
    except KeyboardInterrupt:  # before the run took over Ctrl-C (finding files): nothing was written
        from kmigrate.rewrite.runner import EXIT_INTERRUPTED

        click.echo("interrupted: no file rewritten", err=True)
        code = EXIT_INTERRUPTED
    sys.exit(code)


class _Printer:
    """Each result as it becomes final: diagnostics and what happened to the file, on stderr."""

    def __init__(self, show_diff: bool, check: bool, quiet: bool, verbose: bool):
        self.show_diff, self.check, self.quiet, self.verbose = show_diff, check, quiet, verbose

    def __call__(self, r: FileResult) -> None:
        for d in r.diagnostics:
            if not self.quiet or d.severity is Severity.ERROR:
                click.echo(d.render(), err=True)
        if r.status is Status.CHANGED:
            if self.show_diff:
                click.echo(_diff(r), nl=False)
            elif not self.quiet:
                click.echo(f"would rewrite {r.path}" if self.check else f"rewrote {r.path}", err=True)
        elif self.verbose and not self.quiet:
            if r.status is Status.UNCHANGED:
                click.echo(f"unchanged {r.path}", err=True)
            elif r.status is Status.SKIPPED:
                click.echo(f"skipped {r.path} ({r.note})" if r.note else f"skipped {r.path}", err=True)


def _rewrite_stdin(name: str, settings, show_diff: bool, check: bool, printer: _Printer,
                   report_path: str | None) -> int:
    """stdin -> stdout: the rewritten input (its own bytes when nothing changed or it failed), a diff
    with --diff, nothing with --check. Read and written as bytes, so a BOM and a coding cookie survive."""
    from kmigrate.rewrite.runner import run_data

    data = sys.stdin.buffer.read()
    outcome, output = run_data(name, data, settings)
    for result in outcome.results:
        for d in result.diagnostics:
            if not printer.quiet or d.severity is Severity.ERROR:
                click.echo(d.render(), err=True)
        if show_diff and result.status is Status.CHANGED:
            click.echo(_diff(result), nl=False)
    if not (show_diff or check):
        sys.stdout.buffer.write(output)
        sys.stdout.buffer.flush()
    if printer.verbose:
        click.echo(outcome.summary(), err=True)
    if report_path:
        from kmigrate import report

        report.write(report_path, outcome)
    return outcome.exit_code
