"""rules/ ships in the wheel, and the installed rule set equals the repository's."""

import subprocess
import sys
import zipfile

from .conftest import ROOT


def test_wheel_contains_exactly_the_repository_rules(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                             "-q", "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    wheel = next(tmp_path.glob("kmigrate-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        shipped = {n.split("/")[-1]: zf.read(n) for n in zf.namelist()
                   if n.startswith("kmigrate/rules/") and n.endswith((".toml", ".txt"))}
    repo = {p.name: p.read_bytes() for p in (ROOT / "rules").iterdir() if p.suffix in (".toml", ".txt")}
    assert shipped == repo


def test_installed_package_loads_its_own_rules(tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheel_dir), str(ROOT)], check=True, capture_output=True)
    target = tmp_path / "site"
    wheel = next(wheel_dir.glob("kmigrate-*.whl"))
    zipfile.ZipFile(wheel).extractall(target)
    probe = ("import kmigrate.spec.loader as l; d = l.rules_dir(); rs = l.load_ruleset(); "
             "print(d); print(sorted(rs.by_id))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(target), "PATH": ""})
    assert out.returncode == 0, out.stderr
    where, ids = out.stdout.splitlines()
    assert where.startswith(str(target))
    from kmigrate.spec.loader import default_ruleset
    assert ids == str(sorted(default_ruleset().by_id))
