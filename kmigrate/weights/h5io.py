"""Read Keras 1 HDF5 files defensively (metadata first, one dataset at a time) and write Keras 3 ones."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

# A dataset declaring more than this many bytes while storing under 1/STORAGE_RATIO of them is refused
# (Keras 1 never compressed datasets; such a declaration is a damaged or hostile file).
ABSURD_BYTES = 1 << 28
STORAGE_RATIO = 100

OUTPUT_KERAS_VERSION = b"2.0.8"  # anything but '1', so no Keras 2 / tf.keras loader converts again
OUTPUT_BACKEND = b"tensorflow"


class BadInput(Exception):
    """The input cannot be converted; `layer` names the layer when one is to blame, `path` the file when
    it is not the one being converted (the output, or the converted file given to verify)."""

    def __init__(self, message: str, layer: str | None = None, path: str | None = None):
        super().__init__(message)
        self.layer = layer
        self.path = path


@dataclass
class K1Weight:
    name: str  # as listed in weight_names
    path: str  # absolute path of the dataset
    shape: tuple[int, ...]
    dtype: str
    # Keras 2 files: the stored array -> the array Keras 1 would have stored (set by kmigrate.weights.keras2)
    adapt: Any = None


@dataclass
class K1Layer:
    name: str
    weights: list[K1Weight]


@dataclass
class K1File:
    path: str
    weights_root: str  # '/' (save_weights) or '/model_weights' (save)
    layer_names: list[str]
    layers: dict[str, K1Layer]
    model_config: dict[str, Any] | None
    keras_version: str | None
    dropped: list[str] = field(default_factory=list)  # groups / attributes not carried over
    saved_on_tensorflow: bool = False  # ':0' suffixes: a hint about the saving backend only
    keras2: bool = False  # written by Keras 2.x (`layer/kernel` names); read as Keras 1 by kmigrate.weights.keras2
    backend: str | None = None  # the `backend` attribute Keras 2 recorded (Keras 1 never wrote one)

    @property
    def weighted(self) -> list[K1Layer]:
        return [self.layers[n] for n in self.layer_names if self.layers[n].weights]


def _text(v: Any) -> str:
    if isinstance(v, (bytes, np.bytes_)):
        return v.decode("utf8")
    return str(v)


def _names(attr: Any) -> list[str]:
    arr = np.asarray(attr)
    if arr.size == 0:  # h5py stores [] as an empty float64 array
        return []
    if arr.dtype.kind not in "SUO":
        raise BadInput(f"name list has non-text dtype {arr.dtype}")
    return [_text(x) for x in arr.reshape(-1)]


def _chunked(attrs, key: str) -> Any:
    if key in attrs:
        return attrs[key]
    parts, i = [], 0
    while f"{key}{i}" in attrs:
        parts.extend(_names(attrs[f"{key}{i}"]))
        i += 1
    return parts if i else None


def _check_links(h5, group) -> None:
    """Refuse soft and external links anywhere in the tree, without following them."""
    import h5py

    for key in group:
        link = group.get(key, getlink=True)
        where = f"{group.name.rstrip('/')}/{key}"
        if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
            kind = "soft" if isinstance(link, h5py.SoftLink) else "external"
            raise BadInput(f"{kind} link at {where} (not allowed in a Keras weights file)")
        obj = group.get(key)
        if isinstance(obj, h5py.Group):
            _check_links(h5, obj)


def open_input(path: str):
    """Open read-only, turning every h5py failure into BadInput (naming `path`)."""
    import h5py

    if not os.path.isfile(path):
        raise BadInput("no such file", path=path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as e:
        raise BadInput(f"cannot be read: {e.strerror}", path=path) from None
    if head != b"\x89HDF\r\n\x1a\n" and not h5py.is_hdf5(path):
        raise BadInput("not an HDF5 file", path=path)
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise BadInput(f"cannot be opened as HDF5 (truncated or damaged): {_short(e)}", path=path) from None


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:160]


def read_keras1(h5) -> K1File:
    """Describe a Keras 1 file (names, shapes, model config) without reading any array."""
    import h5py

    try:
        return _read_keras1(h5, h5py)
    except BadInput:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as e:
        raise BadInput(f"cannot be read (truncated or damaged HDF5): {_short(e)}") from None


def _read_keras1(h5, h5py) -> K1File:
    _check_links(h5, h5)
    root = h5
    attrs = h5.attrs
    dropped: list[str] = []
    keras_version = _text(attrs["keras_version"]) if "keras_version" in attrs else None
    if "nb_layers" in attrs:
        raise BadInput("pre-1.0 Keras weights layout (nb_layers/layer_k groups) is not supported")
    if _chunked(attrs, "layer_names") is None and "model_weights" in h5:
        root = h5["model_weights"]
        if not isinstance(root, h5py.Group):
            raise BadInput("`model_weights` is not a group")
    if "kmigrate" in attrs or "kmigrate" in root.attrs:
        raise BadInput("already converted by kmigrate (Keras 2/3 layout); convert the Keras 1 original")
    keras2 = False
    for where, a in (("/", attrs), (root.name, root.attrs)):
        if "keras_version" in a and not _text(a["keras_version"]).startswith("1"):
            version = _text(a["keras_version"])
            if not version.startswith("2"):
                raise BadInput(f"already a Keras {version} file (keras_version on {where}): Keras 3 loads it "
                               "as it is; only Keras 1 and 2 files are converted")
            keras2 = True
    # Keras 2 wrote `backend` on the weights group; Keras 1 never did
    keras2 = keras2 or "backend" in root.attrs
    backend = _text(root.attrs["backend"] if "backend" in root.attrs else attrs.get("backend", "")) or None
    raw_names = _chunked(root.attrs, "layer_names")
    if raw_names is None:
        raise BadInput("not a Keras weights file (no `layer_names` attribute)")
    layer_names = _names(raw_names)
    if len(set(layer_names)) != len(layer_names):
        raise BadInput("duplicate names in `layer_names`")
    model_config = None
    if "model_config" in attrs:
        try:
            model_config = json.loads(_text(attrs["model_config"]))
        except ValueError:
            raise BadInput("`model_config` attribute is not JSON") from None
        if not isinstance(model_config, dict) or "class_name" not in model_config:
            raise BadInput("`model_config` is not a Keras model config")
    if "training_config" in attrs:
        dropped.append(f"training_config (optimizer, loss): Keras {'2' if keras2 else '1'} settings do not carry "
                       "over; compile again")
    if "optimizer_weights" in h5:
        dropped.append(f"optimizer_weights: Keras {'2' if keras2 else '1'} optimizer state does not fit Keras 3 "
                       "optimizers")
    file_size = os.path.getsize(h5.filename)
    layers: dict[str, K1Layer] = {}
    saved_tf = False
    for lname in layer_names:
        if lname not in root or not isinstance(root.get(lname), h5py.Group):
            raise BadInput("listed in `layer_names` but has no group", lname)
        g = root[lname]
        raw = _chunked(g.attrs, "weight_names")
        wnames = _names(raw) if raw is not None else []
        weights = []
        for wn in wnames:
            if "/" in wn and not keras2:
                raise BadInput(f"weight name {wn!r} is nested (Keras 2 style) but the file records no Keras 2 "
                               "version or backend", lname)
            if wn not in g or not isinstance(g.get(wn), h5py.Dataset):
                raise BadInput(f"weight {wn!r} is listed but has no dataset", lname)
            d = g[wn]
            _check_dataset(d, file_size, lname)
            saved_tf = saved_tf or wn.endswith(":0")
            weights.append(K1Weight(wn, d.name, tuple(int(s) for s in d.shape), d.dtype.str))
        layers[lname] = K1Layer(lname, weights)
    return K1File(h5.filename, root.name, layer_names, layers, model_config, keras_version, dropped, saved_tf,
                  keras2, backend if keras2 else None)


def _check_dataset(d, file_size: int, layer: str) -> None:
    if d.dtype.kind != "f":
        raise BadInput(f"weight {d.name} has dtype {d.dtype}, not floating point", layer)
    if d.is_virtual or d.external:
        raise BadInput(f"weight {d.name} is a virtual or external dataset", layer)
    declared = int(np.prod(d.shape, dtype=np.float64)) * d.dtype.itemsize
    stored = d.id.get_storage_size()
    if declared > ABSURD_BYTES and (stored * STORAGE_RATIO < declared or declared > file_size * STORAGE_RATIO):
        raise BadInput(f"weight {d.name} declares {declared} bytes but the file stores {stored}: refusing "
                       "an absurd dataset size", layer)


# Weights larger than this are converted and verified a block of rows at a time (Dense kernels), so
# memory stays near one block, not one dataset. A block of whole rows is one contiguous run in the file
# (h5py stores datasets row-major), read and written by one call; blocks of columns would cost one small
# read or write per row per block (millions for a VGG16 kernel: the system time of older versions).
BLOCK_BYTES = 4 << 20


def row_blocks(rows: int, row_bytes: int) -> list[slice]:
    """Slices of `rows` units of `row_bytes` bytes each, each block under BLOCK_BYTES (at least one unit)."""
    per = max(1, BLOCK_BYTES // max(1, row_bytes))
    return [slice(a, min(a + per, rows)) for a in range(0, rows, per)]


def read_array(h5, weight: K1Weight, layer: str, rows: slice | None = None, groups: int = 1) -> np.ndarray:
    """Read one dataset, or a block of its rows; damage surfaces as BadInput naming the layer.

    With `groups`, the weight's rows are `groups` equal runs (a Dense kernel after a Flatten: one run per
    channel, or per position) and the same `rows` of every run are read in one call:
    shape (groups, len(rows), columns)."""
    try:
        if weight.adapt is not None:  # a Keras 2 array (never read in blocks): whole, in Keras 1's layout
            return weight.adapt(np.asarray(h5[weight.path][()]))
        d = h5[weight.path]
        if rows is None:
            return np.asarray(d[()])
        if groups == 1:
            return np.asarray(d[rows])
        return _read_runs(d, rows, groups)
    except (OSError, KeyError, ValueError, RuntimeError) as e:
        raise BadInput(f"weight {weight.name} cannot be read (truncated or damaged): {_short(e)}", layer) from None


def _read_runs(d, rows: slice, groups: int) -> np.ndarray:
    """Rows `rows` of each of `groups` runs of a 2-D dataset, as one strided HDF5 selection (one read)."""
    import h5py

    total, cols = d.shape
    per = total // groups
    lo, hi = rows.start, rows.stop
    if per * groups != total or not 0 <= lo < hi <= per:
        raise ValueError(f"rows {lo}:{hi} of {groups} runs do not fit a dataset of shape {d.shape}")
    out = np.empty((groups, hi - lo, cols), dtype=d.dtype)
    file_space = d.id.get_space()
    file_space.select_hyperslab((lo, 0), (groups, 1), (per, cols), (hi - lo, cols))
    d.id.read(h5py.h5s.create_simple(out.shape), file_space, out)
    return out


class Keras3Writer:
    """Write a weights file that Keras 3's legacy .h5 loader accepts, one layer at a time."""

    def __init__(self, path: str):
        import h5py

        self._f = h5py.File(path, "w")
        self._path = path
        self._names: list[str] = []

    def add_layer(self, name: str, weights: list[tuple[str, Any]]) -> None:
        """`weights`: (name, array) or (name, (shape, blocks)) where blocks yields (row slice, array)
        for a 2-D weight written a block of whole rows (one contiguous write) at a time."""
        g = self._f.create_group(name)
        g.attrs["weight_names"] = np.array([w.encode("utf8") for w, _ in weights], dtype="S")
        for wname, arr in weights:
            if isinstance(arr, tuple):
                shape, blocks = arr
                ds = g.create_dataset(wname, shape=shape, dtype=np.float32)
                for rows, block in blocks:
                    ds[rows] = np.asarray(block, dtype=np.float32)
            else:
                g.create_dataset(wname, data=np.asarray(arr, dtype=np.float32))
        self._names.append(name)

    def close(self, extra_attrs: dict[str, bytes] | None = None) -> None:
        f = self._f
        f.attrs["layer_names"] = np.array([n.encode("utf8") for n in self._names], dtype="S")
        # fixed-length bytes (np.bytes_): h5py would store plain bytes as a string that reads back as str,
        # and Keras 2.0.x calls .decode() on these
        f.attrs["keras_version"] = np.bytes_(OUTPUT_KERAS_VERSION)
        f.attrs["backend"] = np.bytes_(OUTPUT_BACKEND)
        for k, v in (extra_attrs or {}).items():
            f.attrs[k] = np.bytes_(v)
        f.close()
        # on disk before the caller renames it over the target: a crash right after the rename must not
        # leave an empty or partial file under the user's name
        fd = os.open(self._path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def abort(self) -> None:
        try:
            self._f.close()
        except Exception:  # noqa: BLE001 - closing a half-written file on an error path
            pass


def iter_output_layers(h5) -> Iterator[tuple[str, list[tuple[str, Any]]]]:
    """Yield (layer name, [(weight name, dataset)]) of a file this module wrote, in layer order."""
    for name in _names(h5.attrs["layer_names"]):
        g = h5[name]
        yield name, [(w, g[w]) for w in _names(g.attrs["weight_names"])]
