"""Make the Keras 3 model of a Graph (Keras is imported here, lazily), and write it as Python source."""

from __future__ import annotations

import keyword
import re
from typing import Any

from kmigrate.weights.families.base import keras as quiet_keras  # TensorFlow's start-up log silenced
from kmigrate.model.graph import Graph, Node, Obj
from kmigrate.weights.h5io import BadInput


def build(graph: Graph, taps: dict[str, Any] | None = None):
    """A functional Keras 3 model of built-in layers only, so that it reloads in safe mode. `taps`, when
    given, receives every node's output tensor by node name (for a model that outputs them all)."""
    keras = quiet_keras()

    tensors: dict[str, Any] = {} if taps is None else taps
    objects: dict[str, Any] = {}  # node name -> its Keras 3 layer, for the later calls of a shared one
    for node in graph.nodes:
        if node.cls == "Input":
            tensors[node.name] = keras.Input(name=node.name, **node.kwargs)
            continue
        if node.cls == "_statistics":
            x = tensors[node.inputs[0]]
            if "keep_axis" in node.kwargs:  # the reduction axes, now that the rank is known
                keep = node.kwargs.pop("keep_axis") % len(x.shape)
                node.kwargs = {"axes": tuple(i for i in range(len(x.shape)) if i != keep), **node.kwargs}
            tensors[node.name] = _statistics(keras.ops, x, **node.kwargs)
            continue
        if node.cls == "_theano_pool":
            tensors[node.name] = _theano_pool(keras, tensors[node.inputs[0]], node)
            continue
        if node.shares:
            layer = objects[node.shares]
        else:
            layer = getattr(keras.layers, node.cls)(name=node.name, **{k: _object(v) for k, v in node.kwargs.items()})
            objects[node.name] = layer
        args = [tensors[i] for i in node.inputs]
        out = layer(args if node.cls in _LIST_INPUTS else args[0])
        if _hits_bias_bug(node, out) and (node.shares or node.name in _shared(graph)):
            # the workaround builds the convolution again between two Permutes: not for a shared one
            raise BadInput(f"a shared channels_first {node.cls} that Keras 3.15 on TensorFlow computes wrongly "
                           "(its bias along the wrong axis) is not supported", node.name)
        if _hits_bias_bug(node, out):
            out = _conv_channels_last(keras, node, args[0])
        tensors[node.name] = out
    inputs = [tensors[i] for i in graph.inputs]
    outputs = [tensors[o] for o in graph.outputs]
    return keras.Model(inputs=inputs if len(inputs) > 1 else inputs[0],
                       outputs=outputs if len(outputs) > 1 else outputs[0], name=graph.name)


def _shared(graph: Graph) -> set[str]:
    return {n.shares for n in graph.nodes if n.shares}


def _statistics(ops, x, axes, epsilon, sample):
    """Keras 1 BatchNormalization mode 2 (the batch's statistics) or 1 (each sample's), as keras.ops."""
    mean = ops.mean(x, axis=list(axes), keepdims=True)
    std = ops.sqrt(ops.add(ops.var(x, axis=list(axes), keepdims=True), epsilon))
    if sample:  # mode 1 divided by (std + epsilon)
        std = ops.add(std, epsilon)
    return ops.divide(ops.subtract(x, mean), std)


def _hits_bias_bug(node: Node, out) -> bool:
    """Keras 3.15's TensorFlow `ops.add` takes a bias as NHWC whenever the output's last axis has the bias's
    length, so a channels_first convolution whose last spatial size equals its filter count adds its bias
    along that axis (measured for Conv1D/2D/3D, Conv2DTranspose and SeparableConv2D)."""
    if node.cls not in _CONVOLUTIONS or node.kwargs.get("data_format") != "channels_first":
        return False
    filters = node.kwargs.get("filters")
    return node.kwargs.get("use_bias", True) and filters != 1 and tuple(out.shape)[-1] == filters


_CONVOLUTIONS = {"Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "Conv3DTranspose", "SeparableConv2D"}


def _permutes(rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Permute dims (batch left out, from 1) to channels_last and back, for `rank` spatial axes."""
    return tuple(range(2, rank + 2)) + (1,), (rank + 1,) + tuple(range(1, rank + 1))


def _conv_channels_last(keras, node: Node, x):
    """The same convolution computed channels_last between two transposes (the kernel layout does not
    depend on data_format, so the weights are the same)."""
    node.kwargs = dict(node.kwargs, data_format="channels_last")
    node.transposed = True
    there, back = _permutes(len(x.shape) - 2)
    inner = keras.layers.Permute(there, name=f"{node.name}_to_channels_last")(x)
    inner = getattr(keras.layers, node.cls)(name=node.name, **{k: _object(v) for k, v in node.kwargs.items()})(inner)
    return keras.layers.Permute(back, name=f"{node.name}_to_channels_first")(inner)


def theano_pool_plan(shape, kwargs: dict[str, Any]):
    """Theano's 'same' pooling as Keras 3 'valid' pooling: Theano padded p = k - 1 (even k) or k - 2 (odd k)
    before (and after) each spatial axis, and kept the first ceil(n / s) outputs. Returns the pad widths
    for ops.pad, the pooling's own arguments, and the cropping that keeps ceil(n / s) outputs."""
    first = kwargs.get("data_format") == "channels_first"
    spatial = list(shape[2:] if first else shape[1:-1])
    rank = len(spatial)
    pool = kwargs["pool_size"]
    pool = (pool,) * rank if isinstance(pool, int) else tuple(pool)
    strides = kwargs.get("strides") or pool
    strides = (strides,) * rank if isinstance(strides, int) else tuple(strides)
    pads, crops = [], []
    for n, k, s in zip(spatial, pool, strides):
        p = max(k - 1 if k % 2 == 0 else k - 2, 0)
        m = -(-n // s)
        q = max((m - 1) * s + k - n - p, 0)
        crops.append((0, (n + p + q - k) // s + 1 - m))
        pads.append((p, q))
    width = [(0, 0), (0, 0)] + pads if first else [(0, 0)] + pads + [(0, 0)]
    return width, pool, strides, crops if any(c for _, c in crops) else None


def _theano_pool(keras, x, node: Node):
    """Max pooling pads with -inf (no padded value ever wins); average pooling left the padding out of
    the mean: the average of the zero-padded input over that of zero-padded ones."""
    k = dict(node.kwargs)
    cls = k.pop("layer")
    width, pool, strides, crops = theano_pool_plan(tuple(x.shape), k)
    layer = getattr(keras.layers, cls)(pool_size=pool, strides=strides, padding="valid",
                                       data_format=k.get("data_format"), name=node.name)
    if cls.startswith("Average"):
        y = keras.ops.divide(layer(keras.ops.pad(x, width)), layer(keras.ops.pad(keras.ops.ones_like(x), width)))
    else:
        y = layer(keras.ops.pad(x, width, constant_values=float("-inf")))
    if crops:
        rank = len(pool)
        y = getattr(keras.layers, f"Cropping{rank}D")(cropping=crops[0] if rank == 1 else tuple(crops),
                                                      **({} if rank == 1 else {"data_format": k.get("data_format")}),
                                                      name=f"{node.name}_crop")(y)
    node.kwargs["_plan"] = (width, pool, strides, crops)  # for the source written after the build
    return y


_LIST_INPUTS = {"Concatenate", "Add", "Multiply", "Average", "Maximum", "Dot", "Subtract", "Minimum"}


def _object(value: Any) -> Any:
    if isinstance(value, Obj):
        keras = quiet_keras()

        return getattr(getattr(keras, value.module), value.cls)(**{k: _object(v) for k, v in value.kwargs.items()})
    return value


def source(graph: Graph, origin: str) -> str:
    """Readable Keras 3 source that builds the same model, layer by layer."""
    names: dict[str, str] = {}
    shared = _shared(graph)
    lines = [f'"""The Keras 3 model converted from {origin} (written by kmigrate model convert)."""',
             "", "import keras", "from keras import layers", "", "", "def build_model():"]
    for node in graph.nodes:
        var = _variable(node.name, names)
        if node.cls == "Input":
            lines.append(f"    {var} = keras.Input({_kwargs(node.kwargs)}, name={node.name!r})")
            continue
        if node.cls == "_theano_pool":  # Theano's 'same' pooling, exactly (see build.theano_pool_plan)
            x, k = names[node.inputs[0]], node.kwargs
            width, pool, strides, crops = k["_plan"]
            fmt = k.get("data_format")
            padded = (f"keras.ops.pad({x}, {width!r}, constant_values=float('-inf'))" if k["layer"].startswith("Max")
                      else f"keras.ops.pad({x}, {width!r})")
            lines.append(f"    {var}_pool = layers.{k['layer']}(pool_size={pool!r}, strides={strides!r}, "
                         f"padding='valid', data_format={fmt!r}, name={node.name!r})")
            if k["layer"].startswith("Average"):  # Theano left the padding out of the mean
                lines.append(f"    {var} = {var}_pool({padded}) / {var}_pool(keras.ops.pad(keras.ops.ones_like({x}), "
                             f"{width!r}))")
            else:
                lines.append(f"    {var} = {var}_pool({padded})")
            if crops:
                rank = len(pool)
                extra = "" if rank == 1 else f", data_format={fmt!r}"
                lines.append(f"    {var} = layers.Cropping{rank}D(cropping={(crops[0] if rank == 1 else tuple(crops))!r}"
                             f"{extra}, name={node.name + '_crop'!r})({var})")
            continue
        if node.cls == "_statistics":  # Keras 1 BatchNormalization mode 2 (1): the batch's (sample's) statistics
            x, k = names[node.inputs[0]], node.kwargs
            axes = f"axis={list(k['axes'])!r}, keepdims=True"
            std = f"keras.ops.sqrt(keras.ops.var({x}, {axes}) + {k['epsilon']!r})"
            if k["sample"]:
                std = f"({std} + {k['epsilon']!r})"
            lines.append(f"    {var} = (({x} - keras.ops.mean({x}, {axes})) / {std})")
            continue
        inputs = [names[i] for i in node.inputs]
        arg = f"[{', '.join(inputs)}]" if node.cls in _LIST_INPUTS else inputs[0]
        call = f"layers.{node.cls}({_kwargs(dict(node.kwargs, name=node.name))})"
        if node.shares:  # a shared layer called again
            lines.append(f"    {var} = {names[node.shares]}_layer({arg})")
            continue
        if node.name in shared:  # a shared layer: kept as an object for its later calls
            lines.append(f"    {var}_layer = {call}")
            lines.append(f"    {var} = {var}_layer({arg})")
            continue
        if node.transposed:  # around Keras 3.15's channels_first bias bug (_hits_bias_bug)
            ks = node.kwargs["kernel_size"]
            there, back = _permutes(len(ks) if isinstance(ks, (tuple, list)) else 1)
            lines.append(f"    {var} = layers.Permute({there!r}, name={node.name + '_to_channels_last'!r})({arg})")
            lines.append(f"    {var} = {call}({var})")
            lines.append(f"    {var} = layers.Permute({back!r}, name={node.name + '_to_channels_first'!r})({var})")
            continue
        lines.append(f"    {var} = {call}({arg})")
    ins = [names[i] for i in graph.inputs]
    outs = [names[o] for o in graph.outputs]
    lines.append(f"    return keras.Model(inputs={_seq(ins)}, outputs={_seq(outs)}, name={graph.name!r})")
    return "\n".join(lines) + "\n"


def _seq(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"[{', '.join(items)}]"


def _kwargs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_code(v)}" for k, v in kwargs.items())


def _code(value: Any) -> str:
    if isinstance(value, Obj):
        prefix = "layers" if value.module == "layers" else f"keras.{value.module}"
        return f"{prefix}.{value.cls}({_kwargs(value.kwargs)})"
    return repr(value)  # literals only: strings, numbers, tuples, booleans, None


def _variable(name: str, taken: dict[str, str]) -> str:
    base = re.sub(r"\W", "_", name) or "x"
    if base[0].isdigit() or keyword.iskeyword(base) or base in ("keras", "layers", "build_model"):
        base = f"x_{base}"
    var, i = base, 1
    while var in taken.values():
        i += 1
        var = f"{base}_{i}"
    taken[name] = var
    return var
