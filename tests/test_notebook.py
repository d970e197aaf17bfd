"""Jupyter notebooks: code cells rewritten together (they share one namespace), IPython magics and shell
escapes untouched, outputs/metadata/ids kept, the result valid nbformat 4, diagnostics `path:cell N:line:col`."""

import json

import nbformat

KERAS1_CALL = "layer = Convolution2D(8, 3, 3, border_mode='same')\n"


def _notebook(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = cells
    nbformat.write(nb, str(path))
    return path.read_text()


def _cells():
    md = nbformat.v4.new_markdown_cell("# Convolution2D(8, 3, 3) in prose stays")
    imports = nbformat.v4.new_code_cell("%matplotlib inline\nfrom keras.layers import Convolution2D\n!pip list\n")
    imports.outputs = [nbformat.v4.new_output("stream", name="stdout", text="Package Version\n")]
    imports.execution_count = 1
    call = nbformat.v4.new_code_cell("files = !ls\nif True:\n    %time " + KERAS1_CALL
                                     + "    " + KERAS1_CALL + "Convolution2D?")
    call.metadata["tags"] = ["keep-me"]
    bash = nbformat.v4.new_code_cell("%%bash\necho Convolution2D(8, 3, 3) keras\n")
    return [md, imports, call, bash]


def test_notebook_code_cells_are_rewritten_and_everything_else_kept(tmp_path, run_cli):
    path = tmp_path / "train.ipynb"
    before = _notebook(path, _cells())
    code, out, err = run_cli("rewrite", str(tmp_path))
    assert code == 1, err
    assert f"rewrote {path}" in err
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    old = nbformat.reads(before, as_version=4)
    assert [c["id"] for c in nb.cells] == [c["id"] for c in old.cells]
    md, imports, call, bash = nb.cells
    assert md.source == "# Convolution2D(8, 3, 3) in prose stays"
    assert imports.source == "%matplotlib inline\nfrom keras.layers import Conv2D\n!pip list\n"
    assert imports.outputs == old.cells[1].outputs and imports.execution_count == 1
    # the call in another cell follows the import of cell 2; magics and escapes stay exactly as written
    assert call.source == ("files = !ls\nif True:\n    %time " + KERAS1_CALL
                           + "    layer = Conv2D(8, (3, 3), padding='same')\nConvolution2D?")
    assert call.metadata == {"tags": ["keep-me"]}
    assert bash.source == "%%bash\necho Convolution2D(8, 3, 3) keras\n"
    assert nb.metadata == old.metadata
    # only the rewritten lines differ from the file as Jupyter wrote it
    after = path.read_text().splitlines()
    assert len(after) == len(before.splitlines())
    assert [(a, b) for a, b in zip(before.splitlines(), after) if a != b] == [
        ('    "from keras.layers import Convolution2D\\n",', '    "from keras.layers import Conv2D\\n",'),
        ("    \"    layer = Convolution2D(8, 3, 3, border_mode='same')\\n\",",
         "    \"    layer = Conv2D(8, (3, 3), padding='same')\\n\","),
    ]
    assert run_cli("rewrite", str(path))[0] == 0  # a fixed point


def test_notebook_diagnostics_point_into_cells(tmp_path, run_cli):
    path = tmp_path / "nb.ipynb"
    cells = [nbformat.v4.new_code_cell("from keras.layers import Convolution2D"),
             nbformat.v4.new_markdown_cell("text"),
             nbformat.v4.new_code_cell("x = 1\na = Convolution2D(8, 3, 3, border_mode='full')")]
    before = _notebook(path, cells)
    code, out, err = run_cli("rewrite", str(path))
    assert code == 2
    assert f"{path}:cell 3:2:5: error [conv2d] Convolution2D(...) left as written" in err
    broken = tmp_path / "broken.ipynb"
    _notebook(broken, [nbformat.v4.new_code_cell("import keras"), nbformat.v4.new_code_cell("x = 1\ny = (\n")])
    code, out, err = run_cli("rewrite", str(broken))
    assert code == 2 and f"{broken}:cell 2:" in err and "error [file] does not parse" in err
    assert path.read_text() == before  # the call left as written keeps its import: nothing changed


def test_notebook_without_changes_is_untouched_and_bad_json_is_one_line(tmp_path, run_cli):
    path = tmp_path / "done.ipynb"
    text = _notebook(path, [nbformat.v4.new_code_cell("from keras.layers import Conv2D\n%time x = 1")])
    assert run_cli("rewrite", str(path))[0] == 0 and path.read_text() == text
    bad = tmp_path / "bad.ipynb"
    bad.write_text('{"cells": [ "keras"')
    code, out, err = run_cli("rewrite", str(bad))
    assert code == 2 and len(err.splitlines()) == 2 and f"{bad}:0:0: error [file] not valid notebook JSON" in err
    old = tmp_path / "v3.ipynb"
    old.write_text(json.dumps({"nbformat": 3, "cells": [], "worksheets": [{"cells": ["keras"]}]}))
    code, out, err = run_cli("rewrite", str(old))
    assert code == 2 and "only nbformat 4 notebooks are rewritten" in err


def test_notebook_on_stdin(tmp_path, run_cli):
    text = _notebook(tmp_path / "x.ipynb", [nbformat.v4.new_code_cell(
        "from keras.layers import Convolution2D\n" + KERAS1_CALL)])
    code, out, err = run_cli("rewrite", "--stdin-filename", "x.ipynb", "-", input=text)
    assert code == 0
    nb = nbformat.reads(out, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].source == "from keras.layers import Conv2D\nlayer = Conv2D(8, (3, 3), padding='same')\n"


def test_pre_commit_hook_matches_notebooks():
    import re

    from .conftest import ROOT

    hook = (ROOT / ".pre-commit-hooks.yaml").read_text()
    pattern = re.search(r"files: '([^']+)'", hook).group(1)
    assert re.search(pattern, "analysis/train.ipynb") and "jupyter" in hook
