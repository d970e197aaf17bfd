"""What ruff and black users expect: [tool.kmigrate] configuration, excludes and .gitignore, --stdin-filename,
a one-line summary, -q / -v, JSON and SARIF reports."""

import json
import os
import subprocess
import sys

import pytest

KERAS1 = "from keras.layers import Convolution2D\nlayer = Convolution2D(8, 3, 3, border_mode='same')\n"
KERAS2 = "from keras.layers import Conv2D\nlayer = Conv2D(8, (3, 3), padding='same')\n"
TH = "from keras.layers import Convolution2D\nlayer = Convolution2D(8, 3, 3)\n"
TH_AFTER = "from keras.layers import Conv2D\nlayer = Conv2D(8, (3, 3), data_format='channels_first')\n"
PLAIN = "import os\n"


def _project(tmp_path, config: str):
    (tmp_path / "pyproject.toml").write_text(config)
    (tmp_path / "src" / "legacy").mkdir(parents=True)
    return tmp_path


def test_config_is_found_upward_from_the_common_parent_and_flags_win(tmp_path, run_cli, monkeypatch):
    root = _project(tmp_path, '[project]\nname = "x"\n\n[tool.kmigrate]\ndefault-dim-ordering = "th"\n')
    (root / "src" / "pyproject.toml").write_text('[project]\nname = "inner, no kmigrate table"\n')
    a, b = root / "src" / "a.py", root / "src" / "legacy" / "b.py"
    a.write_text(TH)
    b.write_text(TH)
    monkeypatch.chdir("/")  # found from the paths, not from the working folder
    code, out, err = run_cli("rewrite", str(a), str(b))
    assert code == 1, err
    assert a.read_text() == TH_AFTER and b.read_text() == TH_AFTER
    a.write_text(TH)
    assert run_cli("rewrite", "--default-dim-ordering", "tf", str(a))[0] == 1  # the flag wins
    assert a.read_text() == TH_AFTER.replace("channels_first", "channels_last")


def test_config_keys_mirror_the_options(tmp_path, run_cli):
    root = _project(tmp_path, '[tool.kmigrate]\nskip = ["conv2d"]\njobs = 2\n')
    f = root / "src" / "m.py"
    src = "from keras.layers import Convolution2D, MaxPooling2D\na = Convolution2D(8, 3, 3)\nb = MaxPooling2D(dim_ordering='th')\n"
    f.write_text(src)
    assert run_cli("rewrite", str(f))[0] == 1
    assert "Convolution2D(8, 3, 3)" in f.read_text() and "data_format='channels_first'" in f.read_text()
    f.write_text(src)
    assert run_cli("rewrite", "--skip", "max-pooling2d", str(f))[0] == 1  # the flag replaces the list
    assert "Conv2D(8, (3, 3))" in f.read_text() and "dim_ordering='th'" in f.read_text()


@pytest.mark.parametrize("config, message", [
    ('[tool.kmigrate]\nbackend = "cntk"\n', 'backend = \'cntk\': must be "theano" or "tensorflow"'),
    ('[tool.kmigrate]\nexclud = ["x"]\n', "unknown key 'exclud'"),
    ('[tool.kmigrate]\nonly = ["conv9d"]\n', "unknown rule id conv9d"),
    ('[tool.kmigrate\n', "not valid TOML"),
])
def test_bad_config_is_one_line_naming_the_file(tmp_path, run_cli, config, message):
    root = _project(tmp_path, config)
    f = root / "src" / "m.py"
    f.write_text(KERAS1)
    code, out, err = run_cli("rewrite", str(f))
    assert code == 2 and message in err, err
    assert f.read_text() == KERAS1


def test_exclude_applies_to_walked_folders_and_to_named_files_only_with_force_exclude(tmp_path, run_cli):
    root = _project(tmp_path, '[tool.kmigrate]\nexclude = ["src/legacy/", "*_gen.py"]\n')
    kept, legacy, gen = root / "src" / "a.py", root / "src" / "legacy" / "b.py", root / "src" / "x_gen.py"
    for f in (kept, legacy, gen):
        f.write_text(KERAS1)
    code, out, err = run_cli("rewrite", str(root / "src"))
    assert code == 1 and kept.read_text() == KERAS2
    assert legacy.read_text() == KERAS1 and gen.read_text() == KERAS1
    assert run_cli("rewrite", "--force-exclude", str(legacy), str(gen))[0] == 0  # pre-commit's case
    assert legacy.read_text() == KERAS1 and gen.read_text() == KERAS1
    assert run_cli("rewrite", str(legacy))[0] == 1  # named explicitly: processed
    assert legacy.read_text() == KERAS2


def test_gitignored_paths_are_not_walked(tmp_path, run_cli):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("generated/\n*.tmp.py\n")
    (tmp_path / "generated").mkdir()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / ".gitignore").write_text("scratch.py\n")
    files = {name: tmp_path / name for name in
             ("generated/g.py", "pkg/a.py", "pkg/b.tmp.py", "pkg/scratch.py", "top.py")}
    for f in files.values():
        f.write_text(KERAS1)
    assert run_cli("rewrite", str(tmp_path / "pkg"))[0] == 1  # the root .gitignore applies below it too
    assert run_cli("rewrite", str(tmp_path))[0] == 1
    changed = {name for name, f in files.items() if f.read_text() == KERAS2}
    assert changed == {"pkg/a.py", "top.py"}


def test_stdin_filename_names_diagnostics_and_finds_the_config(tmp_path, run_cli):
    root = _project(tmp_path, '[tool.kmigrate]\ndefault-dim-ordering = "th"\nexclude = ["src/legacy/"]\n')
    name = str(root / "src" / "m.py")
    code, out, err = run_cli("rewrite", "--stdin-filename", name, "-", input=TH)
    assert code == 0 and out == TH_AFTER
    bad = "from keras.layers import Convolution2D\na = Convolution2D(8, 3, 3, border_mode='full')\n"
    code, out, err = run_cli("rewrite", "--stdin-filename", name, input=bad)  # `-` is implied
    assert code == 2 and err.startswith(f"{name}:2:5: error [conv2d]")
    excluded = str(root / "src" / "legacy" / "b.py")
    code, out, err = run_cli("rewrite", "--force-exclude", "--stdin-filename", excluded, "-", input=KERAS1)
    assert code == 0 and out == KERAS1  # excluded: passed through as it is


def test_summary_line_and_verbosity(tmp_path, run_cli):
    (tmp_path / "a.py").write_text(KERAS1)
    (tmp_path / "b.py").write_text(KERAS1)
    (tmp_path / "plain.py").write_text(PLAIN)
    (tmp_path / "done.py").write_text(KERAS2)
    (tmp_path / "bad.py").write_text("import keras\nx = (\n")
    code, out, err = run_cli("rewrite", "--check", str(tmp_path))
    assert code == 2
    assert err.splitlines()[-1] == "2 files would be rewritten, 2 files left unchanged, 1 file with errors"
    assert f"would rewrite {tmp_path / 'a.py'}" in err and "unchanged" not in err.replace("left unchanged", "")
    code, out, err = run_cli("rewrite", "-q", str(tmp_path))
    lines = err.splitlines()
    assert code == 2 and len(lines) == 2
    assert lines[0].startswith(f"{tmp_path / 'bad.py'}:") and ": error [file]" in lines[0]
    assert lines[1] == "2 files rewritten, 2 files left unchanged, 1 file with errors"
    code, out, err = run_cli("rewrite", "-v", str(tmp_path))
    assert f"unchanged {tmp_path / 'done.py'}" in err and f"skipped {tmp_path / 'plain.py'} (no Keras marker)" in err
    assert f"unchanged {tmp_path / 'a.py'}" in err  # rewritten by the previous run
    assert err.splitlines()[-1] == "4 files left unchanged, 1 file with errors"
    code, out, err = run_cli("rewrite", "-q", str(tmp_path / "done.py"))
    assert (code, err) == (0, "1 file left unchanged\n")


def _report_tree(tmp_path):
    (tmp_path / "a.py").write_text(KERAS1)
    (tmp_path / "full.py").write_text(
        "from keras.layers import Convolution2D\na = Convolution2D(8, 3, 3, border_mode='full')\n")
    (tmp_path / "bad.py").write_text("import keras\nprint 'x'\n")
    (tmp_path / "plain.py").write_text(PLAIN)


def test_json_report(tmp_path, run_cli):
    _report_tree(tmp_path)
    report = tmp_path / "out" / "kmigrate.json"
    report.parent.mkdir()
    code, out, err = run_cli("rewrite", "--report", str(report), str(tmp_path))
    assert code == 2
    data = json.loads(report.read_text())
    by_path = {f["path"]: f for f in data["files"]}
    assert {os.path.basename(p): f["status"] for p, f in by_path.items()} == {
        "a.py": "changed", "full.py": "unchanged", "bad.py": "failed", "plain.py": "skipped"}
    full = by_path[str(tmp_path / "full.py")]["diagnostics"]
    assert full[0] | {"message": None} == {"path": str(tmp_path / "full.py"), "line": 2, "column": 5,
                                           "severity": "error", "rule": "conv2d", "message": None}
    bad = by_path[str(tmp_path / "bad.py")]["diagnostics"][0]
    assert (bad["line"], bad["column"], bad["rule"], bad["severity"]) == (2, 1, "file", "error")
    assert data["summary"]["exit_code"] == 2 and data["summary"]["changed"] == 1
    assert data["summary"]["errors"] == 2


def test_sarif_report_has_the_required_structure(tmp_path, run_cli):
    from kmigrate.spec.loader import default_ruleset

    _report_tree(tmp_path)
    report = tmp_path / "kmigrate.sarif"
    run_cli("rewrite", "--check", "--report", str(report), str(tmp_path))
    sarif = json.loads(report.read_text())
    assert sarif["version"] == "2.1.0" and "sarif" in sarif["$schema"] and "2.1.0" in sarif["$schema"]
    (run,) = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "kmigrate" and driver["version"]
    rule_ids = [r["id"] for r in driver["rules"]]
    assert set(r.id for r in default_ruleset().rules) <= set(rule_ids) and "file" in rule_ids
    assert all(r["shortDescription"]["text"] for r in driver["rules"])
    results = run["results"]
    assert {(r["ruleId"], r["level"]) for r in results} == {("conv2d", "error"), ("file", "error")}
    for r in results:
        assert rule_ids[r["ruleIndex"]] == r["ruleId"]
        assert r["message"]["text"]
        (loc,) = r["locations"]
        phys = loc["physicalLocation"]
        assert phys["artifactLocation"]["uri"].endswith((".py",))
        assert phys["region"]["startLine"] >= 1 and phys["region"]["startColumn"] >= 1
    conv = next(r for r in results if r["ruleId"] == "conv2d")
    assert conv["locations"][0]["physicalLocation"]["region"] == {"startLine": 2, "startColumn": 5}
    assert "border_mode='full'" in conv["message"]["text"]
    statuses = {a["location"]["uri"].rsplit("/", 1)[-1]: a["properties"]["status"] for a in run["artifacts"]}
    assert statuses == {"a.py": "changed", "full.py": "unchanged", "bad.py": "failed", "plain.py": "skipped"}


def test_report_name_must_say_its_format(tmp_path, run_cli):
    f = tmp_path / "m.py"
    f.write_text(KERAS1)
    code, out, err = run_cli("rewrite", "--report", str(tmp_path / "r.txt"), str(f))
    assert code == 2 and ".json" in err and ".sarif" in err and f.read_text() == KERAS1


def test_the_installed_script_runs_the_cli_package(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(KERAS1)
    script = os.path.join(os.path.dirname(sys.executable), "kmigrate")
    result = subprocess.run([script, "rewrite", "--check", str(f)], capture_output=True, text=True)
    assert result.returncode == 1 and "1 file would be rewritten" in result.stderr
