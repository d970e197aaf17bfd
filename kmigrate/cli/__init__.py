"""Command line: the `kmigrate` group; each command parses options, calls the library, returns an exit code."""

from __future__ import annotations

import sys

import click

from kmigrate import __version__
from kmigrate.spec.loader import RuleError, default_ruleset

EXIT_ERROR = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kmigrate")
def cli() -> None:
    """Move Keras 1 code and saved models onto modern Keras."""


@cli.command("rules")
def list_rules() -> None:
    """List the rules (ids for --only/--skip)."""
    for rule in default_ruleset().rules:
        click.echo(f"{rule.id:22} {rule.file:18} {rule.summary}")


from kmigrate.cli.rewrite import rewrite  # noqa: E402 - commands attach after the group exists
from kmigrate.weights.cli import weights  # noqa: E402
from kmigrate.cli.model import model  # noqa: E402

cli.add_command(rewrite)
cli.add_command(weights)
cli.add_command(model)


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="kmigrate", standalone_mode=True)
    except RuleError as exc:
        click.echo(f"kmigrate: error: {exc}", err=True)
        return EXIT_ERROR
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_ERROR)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
