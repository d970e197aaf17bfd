"""Rewrite-path benchmark: kmigrate against baselines measured in the same run on the same files.

    .venv/bin/python bench/run.py [--runs 3] [--files 320] [--plain 2000]

Every command runs as its own process (interpreter start-up and imports included, nothing cached between
runs; kmigrate's modules are byte-compiled first, as `pip install` leaves them) and is timed by the CPU
seconds the kernel accounts to it (user + system), median of --runs; a command and its baseline run in
turns, so that a burst of other load on the machine hits both alike. `-j 2` against `-j 1` (also in
turns) and the one-file pre-commit run are wall-clock times. Prints one table and exits 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus

PY = sys.executable
TF_UPGRADE = str(Path(PY).with_name("tf_upgrade_v2"))
KMIGRATE = [PY, "-m", "kmigrate", "rewrite", "-q", "--exit-zero-even-if-changed"]
LIBCST = ("import os, sys, libcst\n"
          "for d, _, fs in sorted(os.walk(sys.argv[1])):\n"
          "    for f in sorted(fs):\n"
          "        if f.endswith('.py'):\n"
          "            libcst.parse_module(open(os.path.join(d, f), 'rb').read()).bytes\n")
AST = ("import ast, os, sys\n"
       "for d, _, fs in sorted(os.walk(sys.argv[1])):\n"
       "    for f in sorted(fs):\n"
       "        if f.endswith('.py'):\n"
       "            ast.parse(open(os.path.join(d, f), 'rb').read())\n")
READ = ("import os, sys\n"
        "for d, _, fs in sorted(os.walk(sys.argv[1])):\n"
        "    for f in sorted(fs):\n"
        "        if f.endswith('.py'):\n"
        "            open(os.path.join(d, f), 'rb').read()\n")
# what any prefilter pays at least: kmigrate's command line imported, the tree walked, every file read
# and searched once, for `keras` alone (shown as info: why the no-Keras row's target is out of reach)
ONE_SCAN = ("import os, sys\nimport kmigrate.cli\n"
            "for d, _, fs in sorted(os.walk(sys.argv[1])):\n"
            "    for f in sorted(fs):\n"
            "        if f.endswith('.py'):\n"
            "            b'keras' in open(os.path.join(d, f), 'rb').read()\n")
GB = 1 << 30


def run(cmd: list[str], ok=(0, 1, 2)) -> tuple[float, float, int, str]:
    """(CPU seconds, wall seconds, peak RSS bytes, stderr) of one process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        raise SystemExit(f"bench: {' '.join(cmd[:6])} ... exited {proc.returncode}: {err.strip()[-600:]}")
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss * 1024, err


def median(runs: int, cmd, index: int = 0, ok=(0, 1, 2)) -> float:
    """Median of `runs` runs of `cmd` (a command, or a function preparing the input and returning one)."""
    return statistics.median(run(cmd() if callable(cmd) else cmd, ok)[index] for _ in range(runs))


def medians(runs: int, *cmds) -> list[float]:
    """Median CPU seconds of each command, the commands run in turns (a burst of other load on the
    machine hits each alike)."""
    times = [[run(cmd)[0] for cmd in cmds] for _ in range(runs)]
    return [statistics.median(t[i] for t in times) for i in range(len(cmds))]


def fresh(src: Path, dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest)
    return dest


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--files", type=int, default=320, help="Keras 1 files (>= 300)")
    ap.add_argument("--plain", type=int, default=2000, help="files without Keras code (>= 2000)")
    ap.add_argument("--big-mb", type=float, default=5.0)
    args = ap.parse_args()
    rows = []
    # An editable install (or PYTHONDONTWRITEBYTECODE) would compile kmigrate's modules from source in
    # every run; an installed package, like the stdlib and libcst here, is read from its bytecode.
    package = Path(importlib.util.find_spec("kmigrate").origin).parent
    subprocess.run([PY, "-m", "compileall", "-q", str(package)], check=True, stdout=subprocess.DEVNULL)

    def row(case, mine, base, ratio, target, ok, unit="s"):
        rows.append((case, f"{mine:.2f} {unit}" if isinstance(mine, float) else mine,
                     f"{base:.2f} {unit}" if isinstance(base, float) else base, ratio, target, ok))

    with tempfile.TemporaryDirectory(prefix="kmigrate-bench-") as tmp:
        tmp = Path(tmp)
        k1 = corpus.keras1_tree(tmp / "keras1", args.files)
        size = sum(p.stat().st_size for p in k1)
        migrated = fresh(tmp / "keras1", tmp / "migrated")
        run(KMIGRATE + ["-j", "2", str(migrated)])
        plain = corpus.plain_tree(tmp / "plain", args.plain)
        work = tmp / "work"
        n = args.runs

        # -j 1, -j 2 and the baselines take turns, so that a burst of other load hits all alike
        out = tmp / "tf_out"
        tf_cmd = [TF_UPGRADE, "--intree", str(tmp / "keras1"), "--outtree", str(out),
                  "--reportfile", str(tmp / "tf_report.txt")]
        has_tf = os.path.exists(TF_UPGRADE)
        j1_runs, j2_walls, cst_runs, tf_runs = [], [], [], []
        for _ in range(n):
            j1_runs.append(run(KMIGRATE + ["-j", "1", str(fresh(tmp / "keras1", work))]))
            j2_walls.append(run(KMIGRATE + ["-j", "2", str(fresh(tmp / "keras1", work))])[1])
            cst_runs.append(run([PY, "-c", LIBCST, str(tmp / "keras1")])[0])
            if has_tf:
                shutil.rmtree(out, ignore_errors=True)
                tf_runs.append(run(tf_cmd, ok=(0,))[0])
                if len(list(out.glob("*.py"))) != len(k1):  # a baseline that stopped early would flatter it
                    raise SystemExit(f"bench: tf_upgrade_v2 wrote {len(list(out.glob('*.py')))} of {len(k1)} files")
        mine = statistics.median(r[0] for r in j1_runs)
        j1 = statistics.median(r[1] for r in j1_runs)
        j2 = statistics.median(j2_walls)
        cst_base = statistics.median(cst_runs)
        r = mine / cst_base
        row(f"Keras 1 tree ({len(k1)} files, {size / 1e6:.1f} MB): rewrite -j 1 vs libcst parse+print",
            mine, cst_base, f"{r:.2f}x", "<= 1.50x", r <= 1.5)
        if has_tf:
            tf = statistics.median(tf_runs)
            r = mine / tf
            row("Keras 1 tree: rewrite -j 1 vs tf_upgrade_v2 --intree", mine, tf, f"{r:.2f}x", "<= 0.50x", r <= 0.5)
        else:
            row("Keras 1 tree: rewrite -j 1 vs tf_upgrade_v2 --intree", mine, "not installed", "-", "<= 0.50x", False)

        mine, base = medians(n, KMIGRATE + ["--check", str(migrated)], [PY, "-c", AST, str(migrated)])
        r = mine / base
        row(f"already-migrated tree ({len(k1)} files): rewrite --check vs ast.parse", mine, base, f"{r:.2f}x",
            "<= 2.00x", r <= 2.0)

        mine, base, floor = medians(n, KMIGRATE + ["--check", str(tmp / "plain")], [PY, "-c", READ, str(tmp / "plain")],
                                    [PY, "-c", ONE_SCAN, str(tmp / "plain")])
        r = mine / base
        row(f"tree without Keras code ({len(plain)} files): rewrite --check vs reading every file", mine, base,
            f"{r:.2f}x", "<= 2.00x", r <= 2.0)
        row("  floor: kmigrate's command-line imports + one read and scan per file", floor, base,
            f"{floor / base:.2f}x", "-", None)

        r = j1 / j2
        row(f"-j 2 vs -j 1, Keras 1 tree ({len(k1)} files), wall", j2, j1, f"{r:.2f}x faster",
            ">= 1.70x faster", r >= 1.7)

        one = tmp / "one"
        one.mkdir()
        mine = median(n, lambda: KMIGRATE + [str(shutil.copy(k1[0], one / "train.py"))], index=1)
        base = median(n, [PY, "-c", "pass"], index=1)
        row("one Keras 1 file (pre-commit), wall", mine, base, "-", "<= 0.30 s", mine <= 0.3)
        done = sorted(migrated.glob("*.py"))[0]
        mine = median(n, lambda: KMIGRATE + [str(shutil.copy(done, one / "train.py"))], index=1)
        row("one already-migrated file (pre-commit), wall", mine, base, "-", "<= 0.30 s", mine <= 0.3)

        big = corpus.big_file(tmp / "big.py", int(args.big_mb * 1e6), k1)
        _, _, rss, err = run(KMIGRATE + ["--check", str(big)], ok=(0, 1, 2))
        refused = "too large to rewrite" in err
        what = "refused" if refused else f"{rss / GB:.2f} GB"
        row(f"one {big.stat().st_size / 1e6:.1f} MB source: peak memory", what, "-", "-",
            "<= 1 GB or refused", refused or rss <= GB, unit="")

    header = ("case", "kmigrate", "baseline", "ratio", "target", "pass/fail")
    table = [header] + [(c, m, b, r, t, "info" if ok is None else "pass" if ok else "FAIL")
                        for c, m, b, r, t, ok in rows]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    print(f"machine: {machine()}; median of {args.runs} runs; CPU seconds unless marked wall")
    for i, line in enumerate(table):
        print("| " + " | ".join(str(v).ljust(w) for v, w in zip(line, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return 0 if all(ok is not False for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
