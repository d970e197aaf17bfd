"""Weights benchmark: `kmigrate weights convert` against an h5py copy of the same file, measured in one run.

    .venv/bin/python bench/weights.py [--runs 3] [--sizes full,small] [--tmp DIR]

Each size is a deterministic VGG16-shaped Keras 1 `th` file as `model.save` wrote it (model config
included; converted as Theano-trained to channels_last, so the first Dense after the Flatten has its
25088 rows permuted: the expensive path), generated into a temporary folder removed afterwards. The
baseline is an h5py read-all + write-all + fsync copy of the same file (`convert` fsyncs its output too).
Every command runs as its own process (imports included), the cases interleaved run by run, timed by
wall clock, median of --runs; the peak RSS is the child's maximum resident set (wait4). The verified
convert is compared with TensorFlow's import plus the copy, both measured here. The targets bind the
full-size file (553 MB); the small one (29 MB, for quick runs) is start-up bound and reported as `info`.
Prints one table and exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
MB = 1 << 20
COPY = ("import os, sys, h5py\n"
        "def walk(src, dst):\n"
        "    for k, v in src.attrs.items():\n"
        "        dst.attrs[k] = v\n"
        "    for name, obj in src.items():\n"
        "        if isinstance(obj, h5py.Group):\n"
        "            walk(obj, dst.create_group(name))\n"
        "        else:\n"
        "            dst.create_dataset(name, data=obj[()])\n"
        "with h5py.File(sys.argv[1], 'r') as src, h5py.File(sys.argv[2], 'w') as dst:\n"
        "    walk(src, dst)\n"
        "fd = os.open(sys.argv[2], os.O_RDONLY)\n"
        "os.fsync(fd)\n"
        "os.close(fd)\n")
TF_IMPORT = ("import os\n"
             "os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')\n"
             "import keras, tensorflow as tf\n"
             "tf.config.list_physical_devices()\n")

# VGG16 (Keras 1 example, th ordering): conv blocks as (filters, convolutions), then three Dense layers
VGG_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
SIZES = {
    "full": dict(image=224, width=1.0, dense=4096, classes=1000),  # 138 M parameters, 553 MB
    "small": dict(image=112, width=0.5, dense=1024, classes=100),
}
BASE = {"init": "glorot_uniform", "activation": "relu", "W_regularizer": None, "b_regularizer": None,
        "activity_regularizer": None, "W_constraint": None, "b_constraint": None, "bias": True, "trainable": True}


def vgg16_keras1(image: int, width: float, dense: int, classes: int) -> tuple[dict, list]:
    """A Keras 1.2.2 VGG16 (th ordering): its model config and [(layer, [(suffix, shape)])]."""
    config, layers = [], []
    cin, n = 3, image
    i = 0
    for b, (filters, convs) in enumerate(VGG_BLOCKS, 1):
        filters = max(8, int(filters * width))
        for _ in range(convs):
            i += 1
            name = f"convolution2d_{i}"
            cfg = dict(BASE, name=name, nb_filter=filters, nb_row=3, nb_col=3, border_mode="same",
                       subsample=[1, 1], dim_ordering="th")
            if i == 1:
                cfg.update(batch_input_shape=[None, cin, image, image], input_dtype="float32")
            config.append({"class_name": "Convolution2D", "config": cfg})
            layers.append((name, [("W", (filters, cin, 3, 3)), ("b", (filters,))]))
            cin = filters
        name = f"maxpooling2d_{b}"
        config.append({"class_name": "MaxPooling2D", "config": {
            "name": name, "trainable": True, "pool_size": [2, 2], "strides": [2, 2], "border_mode": "valid",
            "dim_ordering": "th"}})
        layers.append((name, []))
        n //= 2
    config.append({"class_name": "Flatten", "config": {"name": "flatten_1", "trainable": True}})
    layers.append(("flatten_1", []))
    fan_in = cin * n * n
    for j, units in enumerate((dense, dense, classes), 1):
        name = f"dense_{j}"
        config.append({"class_name": "Dense", "config": dict(BASE, name=name, output_dim=units, input_dim=None)})
        layers.append((name, [("W", (fan_in, units)), ("b", (units,))]))
        fan_in = units
    return {"class_name": "Sequential", "config": config}, layers


def largest_bytes(size: str) -> int:
    _, layers = vgg16_keras1(**SIZES[size])
    return max(4 * math.prod(shape) for _, weights in layers for _, shape in weights)


def write(path: str, size: str, seed: int = 0) -> None:
    """Write the file as Keras 1.2.2's `model.save` laid it out, deterministic random weights. Runs in a
    child process: a child's peak RSS includes its parent's (fork, then exec), so the parent stays small."""
    import h5py
    import numpy as np

    config, layers = vgg16_keras1(**SIZES[size])
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"1.2.2"
        f.attrs["model_config"] = json.dumps(config).encode()
        root = f.create_group("model_weights")
        root.attrs["layer_names"] = np.array([name.encode() for name, _ in layers], dtype="S")
        for name, weights in layers:
            g = root.create_group(name)
            names = [f"{name}_{suffix}" for suffix, _ in weights]
            g.attrs["weight_names"] = (np.array([w.encode() for w in names], dtype="S") if names
                                       else np.array([], dtype=np.float64))
            for wname, (_, shape) in zip(names, weights):
                scale = np.float32(1.0 / math.sqrt(math.prod(shape[1:]) if len(shape) > 1 else 1.0))
                g.create_dataset(wname, data=rng.standard_normal(shape, dtype=np.float32) * scale)


def run(cmd: list[str]) -> tuple[float, float, int]:
    """(wall seconds, system CPU seconds, peak RSS bytes) of one process; a failure stops the benchmark."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"bench: {' '.join(cmd[:7])} ... exited {code}: {err.strip()[-600:]}")
    return wall, usage.ru_stime, usage.ru_maxrss * 1024


def med(results: list[tuple[float, float, int]]) -> tuple[float, float, int]:
    """Median wall and system time, largest peak RSS."""
    return (statistics.median(r[0] for r in results), statistics.median(r[1] for r in results),
            max(r[2] for r in results))


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="full,small", help="comma-separated: " + ", ".join(SIZES))
    ap.add_argument("--tmp", default=None, help="folder for the generated files (default: the system's)")
    ap.add_argument("--write", nargs=2, metavar=("SIZE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.write:
        write(args.write[1], args.write[0])
        return 0
    rows = []

    def row(case, mine, base, ratio, target, ok, binding=True):
        rows.append((case, mine, base, ratio, target, ok if binding else None))

    with tempfile.TemporaryDirectory(prefix="kmigrate-bench-weights-", dir=args.tmp) as tmp:
        tmp = Path(tmp)
        for size in args.sizes.split(","):
            src = tmp / f"vgg16-{size}.h5"
            run([PY, __file__, "--write", size, str(src)])
            largest = largest_bytes(size)
            mb = src.stat().st_size / 1e6
            out = tmp / "out.h5"
            convert = [PY, "-m", "kmigrate", "weights", "convert", str(src), str(out), "--backend", "theano",
                       "--to", "channels_last"]
            commands = {"copy": [PY, "-c", COPY, str(src), str(out)], "fast": convert + ["--no-verify"],
                        "tf": [PY, "-c", TF_IMPORT], "verified": convert}
            results: dict[str, list] = {k: [] for k in commands}
            for _ in range(args.runs):  # interleaved, so that a change in the machine's load hits every case
                for key, cmd in commands.items():
                    out.unlink(missing_ok=True)
                    results[key].append(run(cmd))
            out.unlink(missing_ok=True)
            copy, fast, verified = (med(results[k]) for k in ("copy", "fast", "verified"))
            tf_import = statistics.median(r[0] for r in results["tf"])
            r = fast[0] / copy[0]
            # the targets are the full-size file's; on the small one start-up (~0.3 s of imports) dominates
            binding = size == "full"
            row(f"VGG16 th {size} ({mb:.0f} MB): convert --no-verify vs h5py copy+fsync, wall",
                f"{fast[0]:.2f} s (sys {fast[1]:.2f})", f"{copy[0]:.2f} s (sys {copy[1]:.2f})", f"{r:.2f}x",
                "<= 1.50x", r <= 1.5, binding)
            limit = 2 * largest + 300 * MB
            row(f"VGG16 th {size}: convert --no-verify peak RSS", f"{fast[2] / MB:.0f} MB",
                f"{largest / MB:.0f} MB largest", "-", f"<= {limit / MB:.0f} MB", fast[2] <= limit)
            base = tf_import + copy[0]
            r = verified[0] / base
            row(f"VGG16 th {size}: verified convert vs TF import + copy, wall", f"{verified[0]:.2f} s",
                f"{tf_import:.2f} + {copy[0]:.2f} s", f"{r:.2f}x", "<= 2.50x", r <= 2.5, binding)

    header = ("case", "kmigrate", "baseline", "ratio", "target", "pass/fail")
    verdict = {True: "pass", False: "FAIL", None: "info"}
    table = [header] + [(c, m, b, r, t, verdict[ok]) for c, m, b, r, t, ok in rows]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    print(f"machine: {machine()}; median of {args.runs} interleaved runs, wall clock; sys = system CPU seconds")
    for i, line in enumerate(table):
        print("| " + " | ".join(str(v).ljust(w) for v, w in zip(line, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return 0 if all(ok is not False for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
