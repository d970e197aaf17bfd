"""What to tell a user whose environment lacks an optional dependency: the published package name and the
exact command that installs it into the Python running kmigrate (kmigrate itself is not on PyPI, so
never `pip install kmigrate[...]`)."""

from __future__ import annotations

import shlex
import sys

# import name -> the distribution published on PyPI
PUBLISHED = {"tensorflow": "tensorflow", "fissix": "fissix"}


def install_command(module: str) -> str:
    """`<this python> -m pip install <package>`: installs into the environment kmigrate runs in."""
    return f"{shlex.quote(sys.executable)} -m pip install {PUBLISHED.get(module, module)}"


def missing(module: str, needed_for: str) -> str:
    """One line: what needs the package, which package, and the command that installs it here."""
    return (f"{needed_for} needs the {PUBLISHED.get(module, module)} package, which this Python does not have: "
            f"{install_command(module)}")
