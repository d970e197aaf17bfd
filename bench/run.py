"""Rewrite-path benchmark: kmigrate against a bare libcst parse-and-print baseline, same files, same run.

    python bench/run.py [--files N]

Corpus: N Keras 1 modules (the bundled example project, repeated) and N modules without Keras code
(copies of standard-library sources, which is what most files in a real project look like).
Reported as ratios, so the numbers mean the same on a slow or a fast machine.
"""

from __future__ import annotations

import argparse
import shutil
import sysconfig
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import libcst as cst

ROOT = Path(__file__).resolve().parent.parent


def corpus(dest: Path, n: int, tree: str = "keras1") -> tuple[list[Path], list[Path]]:
    keras_src = sorted((ROOT / "fixtures" / "example" / tree).glob("*.py"))
    stdlib = sorted(p for p in Path(sysconfig.get_paths()["stdlib"]).glob("*.py") if p.stat().st_size > 4000)
    k, plain = [], []
    for i in range(n):
        src = keras_src[i % len(keras_src)]
        k.append(dest / f"{tree}{i}_{src.name}")
        shutil.copy(src, k[-1])
        other = stdlib[i % len(stdlib)]
        plain.append(dest / f"p{tree}{i}_{other.name}")
        shutil.copy(other, plain[-1])
    return k, plain


def baseline(paths: list[Path]) -> float:
    t = time.perf_counter()
    for p in paths:
        cst.parse_module(p.read_bytes()).bytes
    return time.perf_counter() - t


def kmigrate_run(paths: list[Path], jobs: int = 1) -> float:
    from kmigrate.rewrite.files import process_file
    from kmigrate.spec.model import Options

    t = time.perf_counter()
    if jobs == 1:
        for p in paths:
            process_file(p, Options(), write=False)
    else:
        with ProcessPoolExecutor(jobs) as pool:
            list(pool.map(_one, paths, chunksize=8))
    return time.perf_counter() - t


def _one(p: Path):
    from kmigrate.rewrite.files import process_file
    from kmigrate.spec.model import Options

    return process_file(p, Options(), write=False).status


def startup(path: Path) -> tuple[float, float]:
    """Seconds for `kmigrate rewrite --check` on one file without Keras code (a pre-commit hook's usual
    case) and for a bare interpreter start, best of 5."""
    import subprocess
    import sys

    def best(cmd):
        times = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True)
            times.append(time.perf_counter() - t)
        return min(times)

    return best([sys.executable, "-m", "kmigrate", "rewrite", "--check", str(path)]), best([sys.executable, "-c", "pass"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=60)
    n = ap.parse_args().files
    with tempfile.TemporaryDirectory() as tmp:
        keras_files, plain_files = corpus(Path(tmp), n)
        kmigrate_run(keras_files[:2])  # warm the rule cache and imports
        kb, kk = baseline(keras_files), kmigrate_run(keras_files)
        pb, pk = baseline(plain_files), kmigrate_run(plain_files)
        kj = kmigrate_run(keras_files, jobs=2)
        st, py = startup(plain_files[0])
        done_files, _ = corpus(Path(tmp), n, "expected")  # the same project, already migrated
        db, dk = baseline(done_files), kmigrate_run(done_files)
    print(f"Keras 1 files ({n}): baseline parse+print {n / kb:7.1f} files/s | kmigrate rewrite {n / kk:7.1f} files/s"
          f" | kmigrate/baseline time ratio {kk / kb:5.2f}")
    print(f"files without Keras ({n}): baseline {n / pb:7.1f} files/s | kmigrate {n / pk:9.1f} files/s"
          f" | prefilter speed-up over parsing {pb / pk:7.1f}x")
    print(f"already-migrated files ({n}): baseline {n / db:7.1f} files/s | kmigrate {n / dk:7.1f} files/s"
          f" | kmigrate/baseline time ratio {dk / db:5.2f}")
    print(f"Keras 1 files with -j 2: {n / kj:7.1f} files/s | speed-up over -j 1 {kk / kj:4.2f}x")
    print(f"start-up on a file without Keras: {st * 1000:5.0f} ms | bare interpreter {py * 1000:4.0f} ms"
          f" | ratio {st / py:5.1f}x")


if __name__ == "__main__":
    main()
