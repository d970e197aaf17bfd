"""Named functions for the irregular cases a rule refers to by name (`special = [...]` in rules/).

Each function receives the bound call (`Work`) with Keras 1 parameter names, before value maps, packs
and renames run. It declares the Keras 1 parameters it consumes so the loader can prove every
parameter has an outcome. It either transforms the arguments, adds a note, or raises Refuse.
"""

from __future__ import annotations

from typing import Callable

from kmigrate.diagnostics import Severity
from kmigrate.spec.pipeline import NOLIT, Arg, Refuse, Value, Work

REGISTRY: dict[str, Callable[[Work], None]] = {}


def special(name: str, consumes: tuple[str, ...] = (), facts: tuple[str, ...] = ()):
    """`consumes`: the Keras 1 parameters it removes; `facts`: what it reads of an argument besides
    its literal value (Value.facts keys the engine fills in by following bindings)."""
    def register(fn: Callable[[Work], None]) -> Callable[[Work], None]:
        fn.consumes = consumes  # type: ignore[attr-defined]
        fn.facts = facts  # type: ignore[attr-defined]
        fn.special_name = name  # type: ignore[attr-defined]
        REGISTRY[name] = fn
        return fn

    return register


def _lit(work: Work, name: str, default=NOLIT):
    v = work.get(name)
    if v is None:
        return work.rule.defaults.get(name, default)
    return v.lit


def _as_tuple(x, n: int):
    if isinstance(x, int) and not isinstance(x, bool):
        return (x,) * n
    if isinstance(x, (tuple, list)) and len(x) == n and all(isinstance(i, int) for i in x):
        return tuple(x)
    return None


def _data_format_channels_first(work: Work) -> bool | None:
    """Whether the Keras 1 layer was th-ordered; None when it cannot be known statically."""
    dim = _lit(work, "dim_ordering", "default")
    if dim == "default":
        dim = work.options.default_dim_ordering or work.context.get("default_dim_ordering") or "tf"
    if dim in ("th", "channels_first"):
        return True
    if dim in ("tf", "channels_last"):
        return False
    return None


def kernel_params(work: Work) -> tuple[str, ...]:
    """The Keras 1 parameters that hold the kernel size, in spatial order."""
    rule = work.rule
    if "kernel_size" in rule.pack:
        return rule.pack["kernel_size"]
    return tuple(old for old, new in rule.rename.items() if new == "kernel_size")


@special("batch-input-shape", consumes=("batch_input_shape",))
def batch_input_shape(work: Work) -> None:
    """Keras 3 layers reject `batch_input_shape`; `input_shape` without the batch axis is the same
    model (a fixed batch size in Keras 1 only restricted what could be fed)."""
    v = work.get("batch_input_shape")
    if v is None:
        return
    if work.has("input_shape"):
        raise Refuse("both `batch_input_shape` and `input_shape` are given")
    if not v.known or not isinstance(v.lit, (tuple, list)) or not v.lit:
        raise Refuse("`batch_input_shape` is not a literal tuple, so `input_shape` cannot be derived")
    if v.lit[0] is not None:
        stateful = work.get("stateful")
        if stateful is not None and stateful.known and stateful.lit is True:
            # a stateful recurrent layer needs its batch size: Keras 3 takes it from the model's input
            if work.context.get("model_input"):  # a whole-model conversion builds that input itself
                work.pop("batch_input_shape")
                return
            if work.context.get("form") != "sequential":
                raise Refuse("a stateful layer's fixed batch size needs `keras.Input(batch_shape=...)`; "
                             "write the model's input that way")
            work.pop("batch_input_shape")
            work.before.append(("InputLayer", {"batch_shape": Value.of(tuple(v.lit))}))
            return
        work.warn(f"batch size {v.lit[0]} from `batch_input_shape` dropped; Keras 3 layers take "
                  "`input_shape` (use `keras.Input(batch_shape=...)` to fix the batch size)")
    i = work.index("batch_input_shape")
    work.args[i].name = "input_shape"
    work.args[i].value = Value.of(tuple(v.lit[1:]))


@special("input-dim-length", consumes=("input_dim", "input_length"))
def input_dim_length(work: Work) -> None:
    """Keras 1 Convolution1D and recurrent layers turned a truthy `input_dim` into
    `input_shape=(input_length, input_dim)`; Keras 3 would read `input_dim=d` as `input_shape=(d,)`,
    which is wrong for a sequence layer."""
    dim, length = work.get("input_dim"), work.get("input_length")
    if dim is None or (dim.known and not dim.lit):
        if length is not None:
            work.pop("input_length")
            if dim is None:
                work.warn("`input_length` dropped: Keras 1 ignored it without `input_dim`")
        if dim is not None:
            work.pop("input_dim")
        return
    if work.has("input_shape"):
        # A saved Keras 1 config carries both: batch_input_shape and the input_dim/input_length it came
        # from. When they agree, input_dim/input_length say nothing more.
        shape = work.get("input_shape")
        written = tuple(shape.lit) if shape.known and isinstance(shape.lit, (tuple, list)) else ()
        if (len(written) == 2 and dim.known and written[1] == dim.lit
                and (length is None or (length.known and length.lit in (None, written[0])))):
            work.pop("input_dim")
            work.pop("input_length")
            return
        raise Refuse("`input_dim` together with `input_shape`")
    length = length or Value.of(None)  # Keras 1's default: sequences of any length
    if dim.known and length.known:
        shape = Value.of((length.lit, dim.lit))
    else:
        shape = Value(parts=(length, dim), changed=True)
    i = work.index("input_dim")
    j = work.index("input_length")
    first = min(x for x in (i, j) if x >= 0)
    work.args[first].name, work.args[first].value = "input_shape", shape
    for name in ("input_dim", "input_length"):
        work.pop(name)


@special("separable-init", consumes=("init",))
def separable_init(work: Work) -> None:
    """SeparableConvolution2D's one `init` initialised both kernels."""
    i = work.index("init")
    if i < 0:
        return
    arg = work.args[i]
    arg.name = "depthwise_initializer"
    work.args.insert(i + 1, type(arg)("pointwise_initializer", arg.value, None, False))


@special("dilation-strides")
def dilation_strides(work: Work) -> None:
    """Keras 3 rejects strides > 1 together with dilation_rate > 1 (Keras 1 TensorFlow did too)."""
    n = len(kernel_params(work))
    name = "subsample" if "subsample" in work.rule.signature else "subsample_length"
    strides = _as_tuple(_lit(work, name, 1), n)
    rate = _as_tuple(_lit(work, "atrous_rate", 1), n)
    if strides and rate and max(strides) > 1 and max(rate) > 1:
        raise Refuse("strides > 1 together with atrous_rate > 1 has no Keras 3 equivalent: use strides=1 "
                     "and follow the layer with MaxPooling(pool_size=1, strides=...) (exact for "
                     "border_mode='valid')")


def _theano_padding_case(work: Work):
    """What the two Theano padding specials share: (mode, kernel, strides, rates, form) of a code call
    whose border_mode Keras 3 may not express, or None when there is nothing to do."""
    mode = _lit(work, "border_mode", "valid")
    if mode not in ("full", "same") or "form" not in work.context:
        return None  # a saved config has no place for layers: the weights report checks it numerically
    dims = kernel_params(work)
    n = len(dims)
    ks = [_lit(work, d) for d in dims]
    stride_name = "subsample" if "subsample" in work.rule.signature else "subsample_length"
    strides = _as_tuple(_lit(work, stride_name, 1), n)
    rates = _as_tuple(_lit(work, "atrous_rate", 1), n) if "atrous_rate" in work.rule.all_params else (1,) * n
    if not all(isinstance(k, int) for k in ks) or strides is None or rates is None:
        if mode == "same" and work.options.backend == "theano":
            work.warn("border_mode='same' with a non-literal kernel size, strides or atrous_rate: whether "
                      "Theano padded it differently from Keras 3 cannot be told here")
        return None
    return mode, ks, strides, rates, work.context["form"]


def _theano_same_applies(work: Work, ks, strides, recipe: str) -> bool:
    """Whether to emit the construction for Theano 'same': only for a Theano-trained model, and only
    where Theano and Keras 3 differ (even kernels, strides > 1); otherwise at most a warning."""
    even = any(k % 2 == 0 for k in ks)
    if not (even or max(strides) > 1):
        return False
    if work.options.backend is None:
        work.warn(f"border_mode='same' with {'an even kernel' if even else 'strides > 1'}: if this model "
                  f"was trained on Theano, {recipe}; `kmigrate rewrite --backend theano` emits it")
    return work.options.backend == "theano"


def _needs_place(form, recipe: str) -> None:
    if form is None:
        raise Refuse(f"Theano-trained border_mode='same': {recipe}; write the layer as `model.add(...)` or "
                     "`Layer(...)(x)` so the construction can be emitted")


@special("theano-padding")
def theano_padding(work: Work) -> None:
    """Keras 1 convolution padding that Keras 3's `padding=` cannot say, written as the exact construction.

    'full' (Theano only) is ZeroPadding((k-1)*rate each side) + 'valid'. Theano's 'same' padded k//2 on
    both sides and cropped the end, where TensorFlow pads the extra at the end: they differ for even
    kernels and strides > 1 (measured on Keras 1.2.2: fixtures/legacy), and no weights can fix it.
    The construction needs a place for the extra layers, which the code consumer gives as
    context['form'] ("functional" or "sequential", else None); without one, 'full' is refused by its
    value map and Theano 'same' is an error when the model is known to be Theano-trained.
    """
    case = _theano_padding_case(work)
    if case is None:
        return
    mode, ks, strides, rates, form = case
    if mode == "full":
        if form is not None:  # every overlap of the (dilated) kernel
            _construct(work, [((k - 1) * r, (k - 1) * r) for k, r in zip(ks, rates)], None)
        return
    if max(rates) > 1:
        if (any(k % 2 == 0 for k in ks) or max(strides) > 1) and work.options.backend == "theano":
            raise Refuse("Theano-trained border_mode='same' with atrous_rate > 1 and an even kernel or "
                         "strides > 1: no exact Keras 3 construction is known")
        return  # odd dilated kernels at stride 1 pad alike in Theano and Keras 3
    recipe = ("Theano padded k//2 on both sides where Keras 3 pads the extra at the end; the exact "
              "equivalent is ZeroPadding(k//2 each side) + padding='valid' (+ Cropping the end to ceil(n/s))")
    if not _theano_same_applies(work, ks, strides, recipe):
        return
    crops = []
    for k, s in zip(ks, strides):
        if k % 2:
            crops.append(0)  # odd kernel: ZeroPadding(k//2) + 'valid' already gives ceil(n/s)
        elif s == 1:
            crops.append(1)
        else:
            crops.append(None)  # depends on the parity of the input length
    if None in crops:
        size = _spatial_input(work)
        if size is None:
            raise Refuse(f"Theano-trained border_mode='same' with an even kernel and strides > 1: {recipe}, "
                         "and the crop depends on the input size, which is not known here")
        crops = [c if c is not None else (1 if ni % 2 == 0 else 0) for c, ni in zip(crops, size)]
    _needs_place(form, recipe)
    _construct(work, [(k // 2, k // 2) for k in ks], [(0, c) for c in crops])


@special("theano-padding-transposed")
def theano_padding_transposed(work: Work) -> None:
    """Theano's 'same' transposed convolution is the full 'valid' one with k//2 cropped from the start
    and the rest beyond n*s from the end (measured on Keras 1.2.2: k=3, s=2); Keras 3 crops the end."""
    case = _theano_padding_case(work)
    if case is None or case[0] != "same":
        return  # 'full' is refused by the border_mode value map
    _, ks, strides, _, form = case
    recipe = ("Theano's transposed convolution cropped k//2 at the start where Keras 3 crops at the end; "
              "the exact equivalent is padding='valid' + Cropping2D((k//2, k - s - k//2) per axis)")
    if not _theano_same_applies(work, ks, strides, recipe):
        return
    crops = [(k // 2, k - s - k // 2) for k, s in zip(ks, strides)]
    if any(b < 0 for _, b in crops):
        raise Refuse(f"Theano-trained border_mode='same' with kernel {tuple(ks)} and strides {strides}: "
                     "no exact Keras 3 construction is known; check its predictions after converting")
    _needs_place(form, recipe)
    _construct(work, None, crops)


def _spatial_input(work: Work):
    shape = work.get("input_shape") or work.get("batch_input_shape")
    if shape is None or not shape.known or not isinstance(shape.lit, tuple):
        return work.context.get("spatial_input")
    dims = len(kernel_params(work))
    full = shape.lit[1:] if work.has("batch_input_shape") and not work.has("input_shape") else shape.lit
    if dims == 1:
        return (full[0],)
    first = _data_format_channels_first(work)
    if first is None:
        return None
    return tuple(full[1:] if first else full[:-1])


def _pairs_value(pairs):
    return Value.of(pairs[0] if len(pairs) == 1 else tuple(pairs))


def _construct(work: Work, pads, crops) -> None:
    """Pad explicitly, convolve 'valid', crop the end: the layer's weights are unchanged."""
    n = len(pads or crops)
    first = _data_format_channels_first(work)
    fmt = {} if n == 1 or work.get("dim_ordering") is None and work.options.default_dim_ordering is None \
        else {"data_format": Value.of("channels_first" if first else "channels_last")}
    if pads:
        pad_args = {"padding": _pairs_value(pads), **fmt}
        for name in ("input_shape", "batch_input_shape"):  # the first layer of a model takes the input shape
            v = work.pop(name)
            if v is not None:
                pad_args[name] = v.value
        work.before.append((f"ZeroPadding{n}D", pad_args))
    if crops and any(a or b for a, b in crops):
        work.after.append((f"Cropping{n}D", {"cropping": _pairs_value(crops), **fmt}))
    border = work.get("border_mode")
    if border is not None:
        border.lit, border.changed = "valid", True
    else:
        work.set("border_mode", Value.of("valid"))
    work.note(Severity.INFO, "border_mode written as the exact construction "
              + (f"ZeroPadding{n}D + " if pads else "") + "'valid'" + (f" + Cropping{n}D" if work.after else ""))


def theano_same_pool_differs(pool_sizes, strides) -> bool:
    """Whether Theano's 'same' pooling differs from Keras 3's for these sizes: every even pool size, and
    strides > 1 (unknown sizes or strides: assume it does). Theano padded p = k - 1 (even k) or k - 2 (odd
    k) on both sides, pooled, and kept the first ceil(n / s) outputs (measured on Keras 1.2.2)."""
    if strides is NOLIT or not all(isinstance(k, int) for k in pool_sizes):
        return True
    strided = strides is None or any(s > 1 for s in ([strides] if isinstance(strides, int) else strides))
    return strided or any(k % 2 == 0 for k in pool_sizes)



@special("theano-same-pool")
def theano_same_pool_special(work: Work) -> None:
    """Theano's 'same' pooling pads differently from TensorFlow's: measured on Keras 1.2.2, every even
    pool size differs (stride 1 too), and odd pools differ at stride > 1 on even inputs."""
    if _lit(work, "border_mode", "valid") != "same":
        return
    name = "pool_length" if "pool_length" in work.rule.signature else "pool_size"
    pool = _lit(work, name)
    sizes = [pool] if isinstance(pool, int) else list(pool) if isinstance(pool, tuple) else [NOLIT]
    strides = _lit(work, "stride" if "stride" in work.rule.signature else "strides", None)
    if theano_same_pool_differs(sizes, strides):
        if work.context.get("theano_pool") and work.options.backend == "theano":
            return  # a whole-model conversion builds Theano's pooling itself (kmigrate.model.graph)
        why = ("Theano padded 'same' pooling differently (even pool sizes; strides > 1 on even inputs) and "
               "no Keras 3 pooling option reproduces it (`kmigrate model convert` builds it exactly for a "
               "saved model, with keras.ops padding)")
        if work.options.backend == "theano":
            raise Refuse(f"Theano-trained border_mode='same' pooling: {why}")
        if work.options.backend is None:
            work.warn(f"border_mode='same' pooling: if this model was trained on Theano, {why}: compare "
                      "predictions after converting the weights")


@special("deconv-output-shape", consumes=("output_shape",))
def deconv_output_shape(work: Work) -> None:
    """Keras 2 dropped Deconvolution2D's `output_shape`; Keras 3 expresses the same sizes with
    `output_padding`. Computable only when the input's spatial size is known."""
    v = work.get("output_shape")
    if v is None:
        return
    work.pop("output_shape")
    if not v.known or not isinstance(v.lit, (tuple, list)) or len(v.lit) != 4:
        work.warn("`output_shape` dropped (not a literal 4-tuple): Keras 3 derives the output size "
                  "as (n-1)*s + k ('valid') or n*s ('same'); add `output_padding` if that differs")
        return
    first = _data_format_channels_first(work)
    out = v.lit[2:] if first else v.lit[1:3]
    ks = [_lit(work, d) for d in kernel_params(work)]
    strides = _as_tuple(_lit(work, "subsample", (1, 1)), 2)
    padding = _lit(work, "border_mode", "valid")
    in_shape = work.context.get("input_shape")
    if in_shape is None:
        shape = work.get("input_shape") or work.get("batch_input_shape")
        if shape is not None and shape.known and isinstance(shape.lit, (tuple, list)):
            in_shape = tuple(shape.lit[-3:])
    n = None
    if in_shape is not None and first is not None and len(in_shape) == 3:
        n = in_shape[1:] if first else in_shape[:2]
    known = (n is not None and None not in n and None not in out and strides
             and all(isinstance(k, int) for k in ks) and padding in ("valid", "same"))
    if not known:
        work.warn(f"`output_shape={tuple(v.lit)!r}` dropped: the input size is not known here; Keras 3 "
                  "derives the output size as (n-1)*s + k ('valid') or n*s ('same'); add "
                  "`output_padding` if that differs")
        return
    default = [((ni - 1) * s + max(k, s)) if padding == "valid" else ni * s
               for ni, k, s in zip(n, ks, strides)]
    if list(out) == default:
        return
    pads = [(o - ((ni - 1) * s + k)) if padding == "valid" else (o - (ni - 1) * s - k % 2)
            for o, ni, k, s in zip(out, n, ks, strides)]
    if not all(0 <= p < s for p, s in zip(pads, strides)):
        raise Refuse(f"`output_shape={tuple(v.lit)!r}` is not reachable from input size {tuple(n)} "
                     f"with kernel {tuple(ks)} and strides {strides}")
    work.set("output_padding", Value.of(tuple(pads)))
    work.note(Severity.INFO, f"`output_shape` -> output_padding={tuple(pads)}")


@special("zero-padding-2d")
def zero_padding_2d(work: Work) -> None:
    """Keras 1 ZeroPadding2D took (top, bottom, left, right) or a dict; Keras 2 wants pairs."""
    v = work.get("padding")
    if v is None or not v.known:
        return
    p = v.lit
    if isinstance(p, dict):
        keys = {"top_pad", "bottom_pad", "left_pad", "right_pad"}
        if set(p) - keys:
            raise Refuse(f"`padding` dict has keys other than {sorted(keys)}")
        p = (p.get("top_pad", 0), p.get("bottom_pad", 0), p.get("left_pad", 0), p.get("right_pad", 0))
    if isinstance(p, (tuple, list)) and len(p) == 4:
        v.lit, v.changed = ((p[0], p[1]), (p[2], p[3])), True


@special("zero-padding-1d")
def zero_padding_1d(work: Work) -> None:
    """Keras 1 ZeroPadding1D also took {'left_pad': a, 'right_pad': b}; Keras 2 wants (a, b)."""
    v = work.get("padding")
    if v is None or not v.known or not isinstance(v.lit, dict):
        return
    keys = {"left_pad", "right_pad"}
    if set(v.lit) - keys:
        raise Refuse(f"`padding` dict has keys other than {sorted(keys)}")
    v.lit, v.changed = (v.lit.get("left_pad", 0), v.lit.get("right_pad", 0)), True


@special("batchnorm-mode", consumes=("mode",))
def batchnorm_mode(work: Work) -> None:
    """Only Keras 1 BatchNormalization mode=0 (feature-wise, the default) exists in Keras 2."""
    v = work.get("mode")
    if v is None:
        return
    if v.known and v.lit == 2:
        # measured on Keras 3.15.1: BatchNormalization()(x, training=True) is honoured by model(x), but
        # model.predict(x) passes training=False, which wins
        raise Refuse("`mode=2` normalised with the current batch's mean and variance at inference too; Keras 3's "
                     "BatchNormalization uses its moving statistics in predict() whatever the call says: "
                     "normalise with keras.ops.mean and keras.ops.var over the batch axes, then scale and shift")
    if not v.known or v.lit != 0:
        raise Refuse(f"`mode={v.lit if v.known else '...'}` has no Keras 2 equivalent (only mode=0)")
    work.pop("mode")


# Keras 1 merge modes and the Keras 2 layer (class, function) that does the same.
MERGE_MODES = {
    "concat": ("Concatenate", "concatenate"), "sum": ("Add", "add"), "mul": ("Multiply", "multiply"),
    "ave": ("Average", "average"), "max": ("Maximum", "maximum"), "dot": ("Dot", "dot"),
    "cos": ("Dot", "dot"),
}


@special("merge-mode", consumes=("mode", "concat_axis", "dot_axes"))
def merge_mode(work: Work) -> None:
    """Keras 1 had one `merge`/`Merge` with a `mode`; Keras 2 has one layer per mode."""
    mode = work.pop("mode")
    lit = mode.value.lit if mode is not None else "sum"
    if lit not in MERGE_MODES:
        raise Refuse(f"merge mode {lit if mode is None or mode.value.known else '...'!r} has no Keras 2 "
                     f"layer (known: {', '.join(MERGE_MODES)})")
    cls, fn = MERGE_MODES[lit]
    work.target = cls if work.spelling[0].isupper() else fn
    concat_axis, dot_axes = work.get("concat_axis"), work.get("dot_axes")
    if lit == "concat" and concat_axis is not None:
        work.rename("concat_axis", "axis")
    if lit in ("dot", "cos"):
        if dot_axes is None:
            raise Refuse("merge mode 'dot' needs `dot_axes` (Keras 2's Dot has no default axes)")
        axes = work.get("dot_axes")
        if axes.known and isinstance(axes.lit, (tuple, list)) and all(
                isinstance(a, (tuple, list)) and len(a) == 1 for a in axes.lit):
            axes.lit, axes.changed = tuple(a[0] for a in axes.lit), True  # Keras 1's [(2,), (2,)]: one axis each
        work.rename("dot_axes", "axes")
        if lit == "cos":
            work.set("normalize", Value.of(True))
    for name in ("concat_axis", "dot_axes"):
        work.pop(name)


@special("regularizer-defaults")
def regularizer_defaults(work: Work) -> None:
    """Keras 1's l1l2()/activity_l1l2() defaulted both factors to 0.01 and WeightRegularizer to 0;
    Keras 3's L1L2 defaults to 0: write the Keras 1 value out."""
    default = 0.0 if work.spelling in ("WeightRegularizer", "ActivityRegularizer", "L1L2Regularizer") else 0.01
    for name in ("l1", "l2"):
        if not work.has(name):
            work.set(name, Value.of(default))


@special("forget-bias-init", consumes=("forget_bias_init",))
def forget_bias_init(work: Work) -> None:
    """Keras 1 initialised the LSTM forget-gate bias with its own initializer ('one' by default);
    Keras 3 has only `unit_forget_bias` (ones, the default, or the bias initializer's zeros)."""
    arg = work.pop("forget_bias_init")
    if arg is None or (arg.value.known and arg.value.lit == "one"):
        return
    if arg.value.known and arg.value.lit in ("zero", "zeros"):
        work.set("unit_forget_bias", Value.of(False))
        return
    shown = repr(arg.value.lit) if arg.value.known else "..."
    work.warn(f"`forget_bias_init={shown}` dropped: Keras 3 initialises the forget-gate bias with ones "
              "(unit_forget_bias=True) or with `bias_initializer` (unit_forget_bias=False); this changes "
              "only the initial weights")


@special("theano-same-recurrent")
def theano_same_recurrent(work: Work) -> None:
    """ConvLSTM2D 'same' padding: Theano and Keras 3 differ for even kernels and strides > 1 (as for
    Convolution2D), and a recurrent layer has no place for padding layers around its inner convolutions."""
    if _lit(work, "border_mode", "valid") != "same":
        return
    ks = [_lit(work, d) for d in kernel_params(work)]
    strides = _as_tuple(_lit(work, "subsample", 1), len(ks))
    if not all(isinstance(k, int) for k in ks) or strides is None:
        return
    even = any(k % 2 == 0 for k in ks)
    if not (even or max(strides) > 1):
        return
    if not even:
        # odd kernels at stride s: Theano's k//2 on both sides is what Keras 3 pads on an odd input
        shape = work.get("input_shape")
        sizes = None
        if shape is not None and shape.known and isinstance(shape.lit, tuple) and len(shape.lit) == 4:
            first = _data_format_channels_first(work)  # (time, channels, rows, cols) under th
            sizes = shape.lit[2:] if first else shape.lit[1:3] if first is False else None
        if sizes and all(isinstance(n, int) and n % 2 for n, s in zip(sizes, strides) if s > 1):
            return
    why = (f"border_mode='same' with {'an even kernel' if even else 'strides > 1 (on an even or unknown input size)'}: "
           "Theano padded k//2 on both sides where Keras 3 pads the extra at the end, and no construction "
           "reaches the convolutions inside a recurrent layer")
    if work.options.backend == "theano":
        raise Refuse(f"Theano-trained {why}")
    if work.options.backend is None:
        work.warn(f"if this model was trained on Theano, {why}: its predictions will differ")


@special("embedding-input-length", consumes=("input_length",))
def embedding_input_length(work: Work) -> None:
    """Keras 1's Embedding always set `input_shape=(input_length,)`, overriding any input_shape it was
    given (a batch_input_shape still won); Keras 3's Embedding has no input_length."""
    length = work.get("input_length")
    if length is None:
        return
    shape = work.get("input_shape")  # a saved config carries both (batch_input_shape became input_shape)
    if work.has("batch_input_shape") or (length.known and length.lit is None) or (
            shape is not None and shape.known and length.known and tuple(shape.lit) == (length.lit,)):
        work.pop("input_length")
        return
    if work.pop("input_shape") is not None:
        work.warn("`input_shape` dropped: Keras 1's Embedding used `input_length` instead")
    i = work.index("input_length")
    work.args[i].name = "input_shape"
    work.args[i].value = Value.of((length.lit,)) if length.known else Value(parts=(length,), changed=True)


@special("thresholded-relu", consumes=("theta",))
def thresholded_relu(work: Work) -> None:
    """Keras 1 ThresholdedReLU(theta) is x where x > theta, else 0: Keras 3's ReLU(threshold=theta)
    for theta >= 0 (measured); Keras 3's ReLU rejects a negative threshold."""
    theta = work.pop("theta")
    value = theta.value if theta is not None else Value.of(1.0)  # Keras 1's default
    if value.known and (not isinstance(value.lit, (int, float)) or value.lit < 0):
        raise Refuse(f"`theta={value.lit!r}`: Keras 3's ReLU takes only a threshold >= 0")
    if not value.known:
        work.warn("`theta` is not a literal: Keras 3's ReLU rejects a negative threshold")
    work.set("threshold", value)


@special("fit-epochs")
def fit_epochs(work: Work) -> None:
    """Keras 1's fit trained 10 epochs unless told otherwise; Keras 3's trains one. Written out only
    where the receiver is certainly a Keras model (a `fit` on anything else may be scikit-learn's)."""
    if not (work.has("nb_epoch") or work.has("epochs")) and work.context.get("model_receiver"):
        work.set("epochs", Value.of(10))


def _ceil_div(samples: Value, batch: Value) -> Value:
    if samples.known and batch.known and isinstance(samples.lit, int) and isinstance(batch.lit, int) and batch.lit > 0:
        return Value.of(-(-samples.lit // batch.lit))
    return Value.expr("math.ceil({0} / {1})", samples, batch, imports=("math",))


# Keras 1 generator methods counted samples; Keras 2+ count batches (steps): parameter -> (the
# generator argument whose batches are counted, the Keras 3 parameter)
_GENERATOR_COUNTS = {"samples_per_epoch": ("generator", "steps_per_epoch"),
                     "val_samples": ("generator", "steps"),
                     "nb_val_samples": ("validation_data", "validation_steps")}


@special("generator-steps", consumes=tuple(_GENERATOR_COUNTS), facts=("batch_size",))
def generator_steps(work: Work) -> None:
    """An epoch of Keras 1's fit_generator ended once `samples_per_epoch` samples were drawn, so it ran
    ceil(samples / batch size) batches; the batch size is the one the generator was built with
    (`datagen.flow(X, y, batch_size=32)`), where that can be seen."""
    for param, (source, target) in _GENERATOR_COUNTS.items():
        i = work.index(param)
        if i < 0:
            continue
        samples = work.args[i].value
        gen = work.get(source)
        if source == "validation_data" and (gen is None or "arrays" in gen.facts or isinstance(gen.lit, tuple)):
            work.args.pop(i)  # validation arrays: Keras 1 ignored nb_val_samples
            continue
        batch = gen.facts.get("batch_size") if gen is not None else None
        work.args[i].name = target
        if batch is not None:
            work.args[i].value = _ceil_div(samples, batch)
        else:
            work.warn(f"`{param}` counted samples in Keras 1, `{target}` counts batches in Keras 3, and the "
                      f"generator's batch size is not known here: set {target}=ceil({param} / batch size)")


@special("predict-classes")
def predict_classes(work: Work) -> None:
    """Keras 1's predict_classes: argmax over the last axis, or probability > 0.5 for one output."""
    work.wrap = ("(lambda proba: proba.argmax(axis=-1) if proba.shape[-1] > 1 "
                 "else (proba > 0.5).astype('int32'))({call})")


@special("optimizer-decay", consumes=("decay",))
def optimizer_decay(work: Work) -> None:
    """Keras 1 decayed the learning rate as lr / (1 + decay * iterations) (iterations counted before the
    update); Keras 3 ignores `decay=`: its InverseTimeDecay(lr, decay_steps=1, decay_rate=decay) is the
    same schedule."""
    decay = work.pop("decay")
    if decay is None or (decay.value.known and decay.value.lit in (0, 0.0)):
        return
    lr = work.get("lr") or Value.of(work.rule.defaults["lr"])
    schedule = Value.expr("keras.optimizers.schedules.InverseTimeDecay({0}, decay_steps=1, decay_rate={1})",
                          lr, decay.value, imports=("keras",))
    if work.has("lr"):
        work.set("lr", schedule)
    else:
        work.args.insert(0, Arg("lr", schedule, None))


@special("nadam-schedule", consumes=("schedule_decay",))
def nadam_schedule(work: Work) -> None:
    """Keras 1's Nadam warmed its momentum as 0.96 ** (schedule_decay * t); Keras 3's as 0.96 ** t."""
    work.pop("schedule_decay")
    work.warn("Keras 3's Nadam warms its momentum up as 0.96 ** t where Keras 1's used "
              "0.96 ** (schedule_decay * t) (schedule_decay=0.004 by default): no argument reproduces it, "
              "so training differs")


@special("optimizer-string")
def optimizer_string(work: Work) -> None:
    """`compile(optimizer='adadelta')`: an optimizer named by string gets Keras 3's defaults; where those
    differ from Keras 1's, the optimizer is constructed with Keras 1's values written out."""
    from kmigrate.spec.loader import default_ruleset

    value = work.get("optimizer")
    if value is None or not value.known or not isinstance(value.lit, str):
        return
    rule = next((r for r in default_ruleset().rules if "keras.optimizers" in r.modules
                 and any(n.lower() == value.lit.lower() for n in r.names)), None)
    if rule is None or not rule.explicit:
        return
    cls = next(n for n in rule.names if n.lower() == value.lit.lower())
    keras1 = {new: old for old, new in rule.rename.items()}
    args = ", ".join(f"{p}={rule.defaults[keras1.get(p, p)]!r}" for p in rule.explicit)
    work.set("optimizer", Value(template=f"keras.optimizers.{rule.names[cls]}({args})", parts=(),
                                imports=("keras",), changed=True))


@special("weights-filename")
def weights_filename(work: Work) -> None:
    """Keras 3 writes weights only to a name ending in `.weights.h5` (save_weights('w.h5') raises), and a
    whole-model checkpoint only to `.keras` or `.h5`. The new name is remembered for the module
    (context['module']), so that `load_weights` of the same literal reads the file back."""
    renamed = work.context.setdefault("module", {}).setdefault("weights_files", {})
    path = work.get("filepath")
    if work.spelling == "load_weights":
        if path is not None and path.known and path.lit in renamed:
            path.lit, path.changed = renamed[path.lit], True
        return
    weights_only = work.rule.kind == "method" or _lit(work, "save_weights_only", False)
    if path is None or not path.known or not isinstance(path.lit, str):
        if path is not None and weights_only:
            work.warn("Keras 3 saves weights only to a file name ending in `.weights.h5`; this one is not a "
                      "literal, so check it")
        return
    old = path.lit
    if weights_only and old.endswith((".h5", ".hdf5", ".hd5")) and not old.endswith(".weights.h5"):
        new = old.rsplit(".", 1)[0] + ".weights.h5"
    elif not weights_only and old.endswith(".hdf5"):
        new = old[: -len(".hdf5")] + ".h5"  # Keras 3 writes a whole model to .keras or (legacy) .h5
    else:
        if weights_only and not old.endswith(".weights.h5"):
            work.warn(f"Keras 3 writes weights only to a name ending in `.weights.h5`, not {old!r}")
        return
    path.lit, path.changed = new, True
    renamed[old] = new
    if weights_only:
        work.warn(f"weights now go to {new!r}: Keras 3 writes weights only to a name ending in `.weights.h5` "
                  "(read them from there too)")
    else:
        work.warn(f"the model now goes to {new!r}: Keras 3 writes a whole model only to a name ending in "
                  "`.keras` or `.h5` (read it from there too)")


@special("checkpoint-period", consumes=("period",))
def checkpoint_period(work: Work) -> None:
    """Keras 1's ModelCheckpoint saved every `period` epochs; Keras 3 saves every epoch or every N batches."""
    period = work.pop("period")
    if period is None or (period.value.known and period.value.lit == 1):
        return
    raise Refuse("`period` (save every N epochs) has no Keras 3 equivalent: Keras 3 saves every epoch "
                 "(save_freq='epoch') or every N batches")


@special("generator-inputs")
def generator_inputs(work: Work) -> None:
    """Keras 1's predict_generator took batches of inputs alone (or (inputs, targets) tuples); Keras 3's
    predict takes only tuples, `(inputs,)` for inputs alone."""
    gen = work.get("generator")
    if gen is not None:
        work.set("generator", Value.expr("(batch if isinstance(batch, tuple) else (batch,) for batch in {0})", gen))


@special("epsilon-in-sqrt")
def epsilon_in_sqrt(work: Work) -> None:
    """Keras 1's RMSprop and Adagrad divided by sqrt(a) + epsilon; Keras 3's divide by sqrt(a + epsilon).
    Keras 1's epsilon squared inside the root matches it where it matters (a near 0) and the two
    denominators never differ by more than epsilon."""
    eps = work.get("epsilon")
    if eps is None:
        return  # the rule's default is Keras 1's, squared already
    if eps.known and isinstance(eps.lit, (int, float)):
        eps.lit, eps.changed = float(eps.lit) ** 2, True
    else:
        work.set("epsilon", Value.expr("{0} ** 2", eps))


@special("activity-penalty")
def activity_penalty(work: Work) -> None:
    """Keras 1 added an activity penalty summed over the batch; Keras 3 divides it by the batch size."""
    if work.spelling.startswith(("activity_", "ActivityRegularizer")):
        work.warn("Keras 1 summed an activity penalty over the batch, Keras 3 averages it: multiply the "
                  "factors by the batch size to train as before")


@special("keras1-metric-names")
def keras1_metric_names(work: Work) -> None:
    """Keras 1 logged metrics=['accuracy'] as 'acc' / 'val_acc' (what callbacks and history lookups of
    the time name); Keras 3 logs a metric under the name it was given, so 'acc' keeps those names."""
    metrics = work.get("metrics")
    if metrics is not None and metrics.known and isinstance(metrics.lit, (tuple, list)) and "accuracy" in metrics.lit:
        metrics.lit = tuple("acc" if m == "accuracy" else m for m in metrics.lit)
        metrics.changed = True


@special("channels-first-bias")
def channels_first_bias(work: Work) -> None:
    """Keras 3.15 on TensorFlow adds a channels_first convolution's bias along the last axis whenever that
    axis has as many elements as the layer has filters (measured for Conv1D/2D/3D, Conv2DTranspose and
    SeparableConv2D: `Conv2D(32, 3, data_format='channels_first')` on 32x32 images is off by its bias).
    Said where a Keras 1 call becomes channels_first in code; `model convert` builds such a layer
    channels_last between two Permutes instead, so a saved model's config is not warned about."""
    if "form" not in work.context or not _data_format_channels_first(work) or _lit(work, "bias", True) is False:
        return
    filters = work.get("nb_filter")
    count = f" ({filters.lit})" if filters is not None and filters.known else ""
    work.warn("Keras 3.15 on TensorFlow adds a channels_first convolution's bias along the wrong axis when the "
              f"output's last spatial size equals its filter count{count}: keep them different (or use the JAX "
              "backend); `kmigrate model convert` builds a saved model around it")
