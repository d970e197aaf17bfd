"""Dense kernels (Keras 3 Dense), including the row order of the first Dense after a Flatten when the
feature map it flattens changes ordering (--to)."""

from __future__ import annotations

import numpy as np

from kmigrate.weights.families.base import Family, check_layout, check_ndim, tensorflow
from kmigrate.weights.h5io import BadInput, row_blocks
from kmigrate.weights.layer import Context, LayerPlan


def dense_after_flatten(w: np.ndarray, feature_shape: tuple[int, ...], source: str, target: str) -> np.ndarray:
    """Rows of the first Dense after a Flatten, when the feature map it flattens changes ordering.

    Layout decides it: Keras 1 flattened a th feature map in (c, spatial...) order on every backend.
    `feature_shape` is the flattened feature map's shape in the **source** layout, without batch.
    # old (th source): (c * s1 * ... * sn, units)   rows in (c, s1, ..., sn) order
    # new (tf target): (s1 * ... * sn * c, units)   rows in (s1, ..., sn, c) order
    and the reverse for a tf source with a th target.
    """
    check_layout(source)
    check_layout(target)
    check_ndim(w, 2, "Dense kernel")
    size = int(np.prod(feature_shape))
    if w.shape[0] != size:
        raise ValueError(f"Dense kernel has {w.shape[0]} rows; the flattened feature map {tuple(feature_shape)} "
                         f"has {size}")
    if source == target:
        return w
    n = len(feature_shape)
    units = w.shape[1]
    blocks = w.reshape(tuple(feature_shape) + (units,))
    if source == "th":  # (c, s1..sn, units) -> (s1..sn, c, units)
        order = tuple(range(1, n)) + (0, n)
    else:  # (s1..sn, c, units) -> (c, s1..sn, units)
        order = (n - 1,) + tuple(range(n - 1)) + (n,)
    return np.transpose(blocks, order).reshape(size, units)


def reference(x, W, b):
    """Keras 1 Dense on a batch of feature maps in Keras 1 layout: flattened in C order first (as Flatten did)."""
    y = x.reshape(x.shape[0], -1) @ W
    return y + b if b is not None else y


class Dense(Family):
    name = "dense"
    stored = ("W", "b")
    new = ("kernel", "bias")
    bias_role = "b"

    def plan(self, p: LayerPlan, ctx: Context) -> None:
        from kmigrate.weights.plan import LAYOUT_OF

        w = p.weights[0].shape
        units = (p.keras2_config or {}).get("units", w[-1] if len(w) == 2 else None)
        if len(w) != 2 or w[1] != units or (p.input_shape and p.input_shape[-1] not in (None, w[0])):
            raise BadInput(f"Dense kernel shape {w} does not match the model (units={units}, input "
                           f"{p.input_shape})", p.old_name)
        src = ctx.by_name.get(p.inbound[0]) if len(p.inbound) == 1 else None
        if src is None or src.keras1_class != "Flatten":
            return
        # the ordering of the feature map: the nearest layer before the Flatten that has one
        layout = None
        j = ctx.previous.index(src)
        for q in reversed(ctx.previous[:j]):
            d = (q.keras1_config or {}).get("dim_ordering")
            if d in ("th", "tf"):
                layout = d
                break
            if (q.keras1_class or "").endswith("1D"):
                break
        layout = layout or ctx.model_layout
        target = LAYOUT_OF.get(ctx.settings.to or "", layout)
        if layout is None or layout == target:
            return
        feature = src.input_shape
        if feature is None or None in feature:
            raise BadInput(f"--to {ctx.settings.to} needs the rows of this Dense permuted, but the shape of the "
                           "feature map before the Flatten is unknown: pass --config with the Keras 1 model JSON "
                           "(with input shapes)", p.old_name)
        if len(feature) >= 2:
            p.facts["permute"] = (tuple(feature), layout, target)
            p.notes.append(f"first Dense after Flatten: rows reordered from {layout} to {target} for feature map "
                           f"{tuple(feature)}")

    def transform(self, p: LayerPlan) -> str:
        if "permute" not in p.facts:
            return "copy"
        fs, src, dst = p.facts["permute"]
        return f"rows {src}->{dst} for {tuple(fs)}"

    def _kernel(self, p, w):
        if "permute" not in p.facts:
            return w  # old: (in, units)   new: unchanged
        feature_shape, source, target = p.facts["permute"]
        return dense_after_flatten(w, feature_shape, source, target)

    def convert(self, p, arrays):
        return [("kernel", self._kernel(p, arrays["W"]))] + ([("bias", arrays["b"])] if "b" in arrays else [])

    def runs(self, p: LayerPlan) -> tuple[int, int]:
        """(runs, rows per run) of the kernel as the row permutation sees it: a block of output rows takes
        the same rows of every run. th source (c, s...) -> tf: one run per channel, a block is a range of
        positions; tf source (s..., c) -> th: one run per position, a block is a range of channels."""
        rows = p.weights[0].shape[0]
        if "permute" not in p.facts:
            return 1, rows
        feature_shape, source, _ = p.facts["permute"]
        groups = feature_shape[0] if source == "th" else int(np.prod(feature_shape[:-1]))
        return groups, rows // groups

    def streams(self, p: LayerPlan) -> bool:
        """A kernel over BLOCK_BYTES is written and verified a block of rows at a time."""
        w = p.weights[0]
        return len(w.shape) == 2 and len(row_blocks(w.shape[0], w.shape[1] * 4)) > 1

    def write(self, p, read, progress=None):
        """A big kernel is read, permuted and written a block of whole rows at a time (each block one
        contiguous write), so memory stays near one block."""
        w = p.weights[0]
        if not self.streams(p):
            return super().write(p, read, progress)
        groups, per = self.runs(p)
        units = w.shape[1]
        source = p.facts["permute"][1] if "permute" in p.facts else None
        target = p.facts["permute"][2] if "permute" in p.facts else None

        def blocks():
            for part in row_blocks(per, groups * units * 4):
                block = read(w, part, groups)
                if progress:
                    progress(block.nbytes)
                n = part.stop - part.start
                if source is None:
                    yield part, block
                    continue
                # the block is itself a Dense after a Flatten of a (runs, n) feature map in the source
                # ordering (th: channels x positions, tf: positions x channels), so the one permutation
                # of this family applies to it
                shape = (groups, n)
                try:
                    out = dense_after_flatten(block.reshape(groups * n, units), shape, source, target)
                except ValueError as e:
                    raise BadInput(str(e), p.old_name) from None
                yield slice(part.start * groups, part.stop * groups), out
        out = [("kernel", (w.shape, blocks()))]
        if "b" in p.roles:
            b = read(p.weights[p.roles.index("b")], None)
            out.append(("bias", b))
        return out

    def check_streamed(self, p, read_old, read_new, new_shapes, rng):
        """The proof of `check` for a kernel too big to hold: x @ W is the sum over row blocks of
        x[:, block] @ W[block], so Keras 1's product (the original file, in its own row order) and
        TensorFlow's (the converted file, in its row order) are each summed over their own contiguous
        blocks; the two files share no selection, and every weight meets a random input."""
        tf = tensorflow()
        rows, units = p.weights[0].shape
        if new_shapes.get("kernel") != (rows, units):
            raise ValueError(f"converted kernel has shape {new_shapes.get('kernel')}, Keras 1's {(rows, units)}")
        permute = p.facts.get("permute")
        x = rng.standard_normal((2,) + (tuple(permute[0]) if permute else (rows,)))
        xt = x
        if permute:
            xt = np.moveaxis(x, 1, -1) if permute[1] == "th" else np.moveaxis(x, -1, 1)
        x, xt = x.reshape(2, -1), np.ascontiguousarray(xt).reshape(2, -1)
        want, got = np.zeros((2, units)), np.zeros((2, units))
        for part in row_blocks(rows, units * 4):
            want += reference(x[:, part], read_old("W", part), None)
            got += tf.matmul(xt[:, part], read_new("kernel", part)).numpy()
        if "b" in p.roles:
            want += read_old("b", None)
            got += read_new("bias", None)
        return want, got, []

    def check(self, p, old, new, rng):
        W = old["W"]
        permute = p.facts.get("permute")
        x = rng.standard_normal((2,) + (tuple(permute[0]) if permute else (W.shape[0],)))
        want = reference(x, W, old.get("b"))
        xt = x
        if permute:
            xt = np.moveaxis(x, 1, -1) if permute[1] == "th" else np.moveaxis(x, -1, 1)
        got = tensorflow().matmul(xt.reshape(x.shape[0], -1), new["kernel"]).numpy()
        if "bias" in new:
            got = got + new["bias"]
        return want, got, []
