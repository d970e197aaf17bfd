"""Deterministic benchmark corpora: real-like Keras 1 files, their migrated form, and a tree without Keras code."""

from __future__ import annotations

import ast
import random
import shutil
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKERS = (b"keras", b"onvolution", b"dim_ordering", b"border_mode", b"output_dim", b"nb_filter", b"nb_epoch")


def _stdlib_files() -> list[Path]:
    """The standard library's modules, then the installed packages' (numpy, ...)."""
    base = Path(sysconfig.get_paths()["stdlib"])
    own = sorted(p for p in base.rglob("*.py") if "site-packages" not in p.parts and "lib2to3" not in p.parts
                 and "bad" not in p.name)
    return own + sorted(Path(sysconfig.get_paths()["purelib"]).rglob("*.py"))


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return False
    return True


def _too_new(seg: str) -> bool:
    """Syntax tf_upgrade_v2's parser (pasta) crashes on: it would end the baseline's run early."""
    try:
        import pasta
    except ImportError:
        return False
    try:
        pasta.parse(seg)
    except Exception:  # noqa: BLE001 - pasta's AnnotationError, NameError on newer syntax ...
        return True
    return False


def _keras_sources() -> tuple[list[str], list[str]]:
    """Whole Keras 1 programs (models, scripts, the example project) and small fixture modules."""
    big = [*sorted((ROOT / "fixtures" / "legacy" / "models").glob("*.py")),
           *sorted((ROOT / "fixtures" / "scripts").glob("*.py")),
           *sorted((ROOT / "fixtures" / "example" / "keras1").glob("*.py"))]
    small = sorted((ROOT / "fixtures" / "code").glob("*/*.before.py"))
    def read(paths):  # `from __future__` must stay first: dropped so that programs can be joined
        texts = ["".join(line for line in p.read_text(encoding="utf-8").splitlines(keepends=True)
                         if not line.startswith("from __future__")) for p in paths]
        return [t for t in texts if _parses(t)]
    return read(big), read(small)


def _helpers(limit: int = 3000) -> list[str]:
    """Module-level functions of the standard library: the data loading, parsing and plotting code
    around the model in a real training script, without Keras names."""
    out = []
    for path in _stdlib_files()[:300]:
        try:
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError):
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.decorator_list:
                seg = ast.get_source_segment(text, node)
                if seg and 300 <= len(seg) <= limit and not any(m in seg.encode() for m in MARKERS) \
                        and "\t" not in seg and _parses(seg) and not _too_new(seg):
                    out.append(seg)
    return out


def keras1_tree(dest: Path, n: int) -> list[Path]:
    """`n` distinct Keras 1 modules: one or two whole programs, sometimes a fixture module, and helper
    functions, each combination seeded by the file's index."""
    big, small = _keras_sources()
    helpers = _helpers()
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        rng = random.Random(i)
        parts = [f'"""Experiment {i}: a Keras 1 training script."""\n\nSEED = {i}\n']
        picks = [big[i % len(big)]] + ([rng.choice(big)] if rng.random() < 0.4 else [])
        if rng.random() < 0.5:
            picks.append(rng.choice(small))
        pieces = picks + rng.sample(helpers, rng.randint(6, 18))
        rng.shuffle(pieces)
        parts += pieces  # each piece parses alone, so their sequence does
        path = dest / f"exp{i:04d}.py"
        path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
        out.append(path)
    return out


def plain_tree(dest: Path, n: int) -> list[Path]:
    """`n` standard-library modules: a tree without Keras code."""
    out = []
    for src in _stdlib_files():
        if len(out) >= n:
            break
        data = src.read_bytes()
        if any(m in data for m in MARKERS):
            continue
        target = dest / f"pkg{len(out) // 100:02d}" / f"{src.stem}_{len(out)}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        out.append(target)
    return out


def big_file(dest: Path, size: int, sources: list[Path]) -> Path:
    """One Keras 1 module of about `size` bytes, from the Keras 1 tree's files."""
    chunks, total, i = [], 0, 0
    while total < size:
        text = sources[i % len(sources)].read_text(encoding="utf-8")
        chunks.append(text)
        total += len(text.encode())
        i += 1
    dest.write_text("\n\n".join(chunks), encoding="utf-8")
    return dest
