import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture
def run_cli():
    """Run `kmigrate ...` in-process; returns (exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from kmigrate.cli import cli

    def run(*args, input=None):
        runner = CliRunner()
        result = runner.invoke(cli, list(args), input=input)
        return result.exit_code, result.stdout, result.stderr

    return run


def kmigrate_subprocess(*args, **kw):
    import subprocess

    return subprocess.run([sys.executable, "-m", "kmigrate", *args], capture_output=True, text=True, **kw)
