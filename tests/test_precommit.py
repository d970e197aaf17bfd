"""The real pre-commit tool runs the hook from .pre-commit-hooks.yaml against a temporary git repo (Python files
and notebooks)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from .conftest import ROOT

KERAS1 = "from keras.layers import Convolution2D\nlayer = Convolution2D(8, 3, 3, border_mode='same')\n"
KERAS2 = "from keras.layers import Conv2D\nlayer = Conv2D(8, (3, 3), padding='same')\n"


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


def test_pre_commit_hook_rewrites_staged_files(tmp_path):
    pre_commit = Path(sys.executable).with_name("pre-commit")
    assert pre_commit.exists(), "pre-commit is a test dependency"
    # a copy of this checkout as its own git repo: pre-commit installs the hook from it
    hook_repo = tmp_path / "kmigrate"
    shutil.copytree(ROOT, hook_repo, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".ci-venv", "*.egg-info", "__pycache__", "fixtures", "tests", "bench"))
    _git(hook_repo, "init", "-q")
    _git(hook_repo, "add", "-A")
    _git(hook_repo, "commit", "-qm", "hook")
    project = tmp_path / "project"
    project.mkdir()
    _git(project, "init", "-q")
    (project / "model.py").write_text(KERAS1)
    (project / "other.txt").write_text("Convolution2D(8, 3, 3)\n")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%matplotlib inline\n" + KERAS1)])
    nbformat.write(notebook, str(project / "explore.ipynb"))
    _git(project, "add", "-A")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    result = subprocess.run([str(pre_commit), "try-repo", str(hook_repo), "kmigrate", "--all-files"],
                            cwd=project, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 1, result.stdout + result.stderr  # files were modified: the hook fails
    assert "files were modified by this hook" in result.stdout
    assert (project / "model.py").read_text() == KERAS2
    assert (project / "other.txt").read_text() == "Convolution2D(8, 3, 3)\n"
    rewritten = nbformat.read(str(project / "explore.ipynb"), as_version=4)  # notebooks match the hook too
    nbformat.validate(rewritten)
    assert rewritten.cells[0].source == "%matplotlib inline\n" + KERAS2
    again = subprocess.run([str(pre_commit), "try-repo", str(hook_repo), "kmigrate", "--all-files"],
                           cwd=project, capture_output=True, text=True, env=env, timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
