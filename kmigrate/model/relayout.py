"""`model convert --to`: the Keras 3 model of a Graph re-laid out in the other data format, or refused by name.

`--to` means for a whole model what it means for `weights convert` (the layout the converted model works
in), carried through: every layer with a `data_format` gets the target's, the model takes its inputs in
that layout, axes that name a feature map's axis (BatchNormalization, Concatenate, PReLU's shared axes,
BatchNormalization mode 2's statistics) follow the channel axis, and the arrays that follow a feature map's
layout move with it: a Dense's rows right after a Flatten (the Dense family's `dense_after_flatten`, as
`weights convert --to` moves them) and a PReLU's alphas (the PReLU family's `alphas_to`). A layer that
reads a feature map in a way that does not follow the channel axis (Reshape, Permute, a recurrent layer,
mode 1's per-sample statistics over the last axis, ...) is refused by name.

A tensor is followed by its `lead`: the number of axes before its channel axis in Keras 1's `th` layout
(the batch; 2 for a sequence of images), 0 for a flattened feature map, None for a tensor with no layout.
Nothing here imports Keras.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from kmigrate.model.graph import Graph, Node, Obj
from kmigrate.weights.h5io import BadInput
from kmigrate.weights.plan import DATA_FORMAT, LAYOUT_OF

FLAT = 0  # a feature map flattened in its source layout's order

# layers that compute each value (or each channel, with data_format) alone: any layout passes through
_ELEMENTWISE = {"Activation", "Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout", "LeakyReLU", "ELU",
                "ReLU", "ActivityRegularization"}
_SAME_SHAPE_MERGES = {"Add", "Multiply", "Average", "Maximum", "Minimum", "Subtract"}
_SEQUENCE_OF_MAPS = {"ConvLSTM2D", "TimeDistributed"}  # their data_format describes (batch, time, ...)


@dataclass
class Relaid:
    """The graph in the target layout, and how to move a source-layout array of a node to it."""

    graph: Graph
    source: str  # 'th' | 'tf'
    target: str
    leads: dict[str, tuple[int, int]] = field(default_factory=dict)  # node -> (lead, ndim) of a feature map
    dense_rows: dict[str, str] = field(default_factory=dict)  # Keras 1 Dense -> the node its Flatten flattens
    alphas: set[str] = field(default_factory=set)  # Keras 1 PReLUs on a feature map

    def arrays(self, layer: str, arrays: list[np.ndarray], shape_of) -> list[np.ndarray]:
        """A layer's converted arrays (in Keras 1's layout, as the weight families wrote them) for the
        re-laid-out model; `shape_of(node)` is a node's output shape in the target layout, batch left out."""
        from kmigrate.weights.families.dense import dense_after_flatten
        from kmigrate.weights.families.prelu import alphas_to

        if layer in self.dense_rows:  # old: rows in the source's flatten order   new: the target's
            fed = self.dense_rows[layer]
            feature = _move(tuple(shape_of(fed)), self.leads[fed][0] - 1, self.target)  # back to the source's
            arrays = [dense_after_flatten(arrays[0], feature, self.source, self.target)] + arrays[1:]
        if layer in self.alphas:  # old: (c, s...) / (s..., c)   new: the other
            arrays = [alphas_to(arrays[0], self.source, self.target)] + arrays[1:]
        return arrays

    def to_target(self, node: str, x: np.ndarray) -> np.ndarray:
        """A node's output (or an input) as Keras 1 computed it, moved to the target layout."""
        if node not in self.leads:
            return x
        lead, _ = self.leads[node]
        return np.moveaxis(x, lead, -1) if self.source == "th" else np.moveaxis(x, -1, lead)

    def to_source(self, node: str, x: np.ndarray) -> np.ndarray:
        if node not in self.leads:
            return x
        lead, _ = self.leads[node]
        return np.moveaxis(x, -1, lead) if self.source == "th" else np.moveaxis(x, lead, -1)


def relayout(graph: Graph, model_layout: str | None, to: str) -> Relaid | None:
    """The graph re-laid out for `to` ('channels_first' | 'channels_last'); None when nothing changes (the
    model already works in that layout, or no layer has a layout). BadInput names the first layer that
    cannot follow."""
    source = layout_of(graph, model_layout)
    target = LAYOUT_OF[to]
    if source is None or source == target:
        return None
    out = Relaid(replace(graph, nodes=[]), source, target)
    consumers: dict[str, list[Node]] = {}
    for n in graph.nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n)
    state: dict[str, tuple[int, int] | None] = {}  # node -> (lead, ndim), (FLAT, 2) or None
    owners = _owners(graph)
    for node in graph.nodes:
        new = replace(node, kwargs=dict(node.kwargs), inputs=list(node.inputs))
        if node.cls == "Input":
            state[node.name] = _input(new, consumers.get(node.name, []), source, target)
        else:
            ins = [(state[i], i) for i in node.inputs]
            try:
                state[node.name] = _layer(new, ins, out, source, target)
            except BadInput as e:  # named by its Keras 1 layer
                raise BadInput(str(e), owners[node.name]) from None
        if state[node.name] is not None and state[node.name][0] != FLAT:
            out.leads[node.name] = state[node.name]
        out.graph.nodes.append(new)
    return out


def layout_of(graph: Graph, model_layout: str | None) -> str | None:
    """The layout ('th' | 'tf') the model's feature maps are in: the model's, else that of the layers with a
    2D or 3D data_format (a TimeDistributed one's is its inner layer's); None when no layer has one."""
    formats = {_kw(n)["data_format"] for n in graph.nodes if _kw(n).get("data_format") and not _name(n).endswith("1D")}
    if not formats:
        return None
    return model_layout or (LAYOUT_OF[formats.pop()] if len(formats) == 1 else None)


def _name(node: Node) -> str:
    """The class that computes: a wrapper's inner layer, a Theano pooling construction's pooling."""
    inner = node.kwargs.get("layer")
    return inner.cls if isinstance(inner, Obj) else inner if isinstance(inner, str) else node.cls


def _kw(node: Node) -> dict[str, Any]:
    inner = node.kwargs.get("layer")
    return dict(node.kwargs, **(inner.kwargs if isinstance(inner, Obj) else {}))


def _input(node: Node, readers: list[Node], source: str, target: str):
    """An image (3 axes) or a volume or sequence of images (4 axes) is a feature map in the source layout."""
    batch = node.kwargs.get("batch_shape")
    shape = tuple(batch[1:]) if batch else tuple(node.kwargs["shape"])
    if len(shape) not in (3, 4):
        return None
    lead = 2 if len(shape) == 4 and any(r.cls in _SEQUENCE_OF_MAPS for r in readers) else 1
    moved = _move(shape, lead - 1, source)
    if batch:
        node.kwargs["batch_shape"] = (batch[0],) + moved
    else:
        node.kwargs["shape"] = moved
    return lead, len(shape) + 1


def _move(shape: tuple, channel: int, source: str) -> tuple:
    """A shape's channel axis (at `channel` in th) moved: th (.., c, s...) -> tf (.., s..., c), or back."""
    s = list(shape)
    if source == "th":
        return tuple(s[:channel] + s[channel + 1:] + [s[channel]])
    return tuple(s[:channel] + [s[-1]] + s[channel:-1])


def _axis(axis: int, lead: int, ndim: int, source: str) -> int:
    """Where an axis of a feature map is in the target layout (the channel axis: last in tf, `lead` in th)."""
    a = axis % ndim
    order = list(range(ndim))  # order[i] = the source axis at target position i
    if source == "th":  # (.., c, s...) -> (.., s..., c)
        order = order[:lead] + order[lead + 1:] + [lead]
    else:  # (.., s..., c) -> (.., c, s...)
        order = order[:lead] + [ndim - 1] + order[lead:-1]
    i = order.index(a)
    return -1 if i == ndim - 1 and axis < 0 else i


def _refuse(node: Node, what: str, source: str, target: str) -> BadInput:
    """Why a node cannot follow (relayout names its Keras 1 layer)."""
    return BadInput(f"--to {DATA_FORMAT[target]}: {what} of a {DATA_FORMAT[source]} feature map cannot be "
                    f"re-laid out (convert without --to, or with --to {DATA_FORMAT[source]})")


def _owners(graph: Graph) -> dict[str, str]:
    """The Keras 1 layer of every node: its own, or for a node of a construction around a layer (named
    `{layer}_...` by kmigrate.model.graph) the longest layer name it starts with."""
    layers = sorted({name for name, _, _ in graph.calls}, key=len, reverse=True)
    return {n.name: n.keras1_name or next((x for x in layers if n.name.startswith(x + "_")), n.name)
            for n in graph.nodes}


def _layer(node: Node, inputs: list, out: Relaid, source: str, target: str):
    """The node moved to the target layout (in place) and its output's state; `inputs` are (state, node)."""
    ins = [s for s, _ in inputs]
    x = ins[0] if ins else None
    maps = [s for s in ins if s is not None]
    if not maps:
        if _kw(node).get("data_format") and not _name(node).endswith("1D"):
            raise _refuse(node, f"{node.cls} reading a tensor that is not a feature map (a Reshape's output?) "
                          "as one", source, target)
        if node.shares in out.dense_rows or node.shares in out.alphas:  # its arrays moved for its first call
            raise _refuse(node, f"a shared {node.cls} called on a feature map and on another tensor", source, target)
        return None
    if any(s == (FLAT, 2) for s in ins) and (len(ins) > 1 or node.cls != "Dense"):
        raise _refuse(node, f"{node.cls} reading the Flatten (only a Dense right after it takes its rows in the "
                      "target's order)", source, target)
    if len(maps) != len(ins) or len(set(maps)) > 1:
        raise _refuse(node, f"{node.cls} of tensors laid out differently", source, target)
    lead, ndim = x
    if lead == FLAT:
        if not node.shares and node.keras1_name:
            # the Flatten's own input: its shape is known once the model is built
            flattened = next(n for n in out.graph.nodes if n.name == inputs[0][1]).inputs[0]
            out.dense_rows[node.keras1_name] = flattened
            return None
        raise _refuse(node, "a shared Dense reading the Flatten", source, target)
    cls = node.cls
    inner = node.kwargs.get("layer") if cls == "TimeDistributed" else None
    kw = inner.kwargs if isinstance(inner, Obj) else node.kwargs
    if "data_format" in kw:
        if kw["data_format"] != DATA_FORMAT[source]:
            raise _refuse(node, f"{cls} in {kw['data_format']} (the model's layers disagree)", source, target)
        want = 2 if cls in _SEQUENCE_OF_MAPS else 1
        if lead != want:
            raise _refuse(node, f"{cls} on a tensor of {ndim} axes", source, target)
        if inner is not None:
            node.kwargs["layer"] = replace(inner, kwargs=dict(inner.kwargs, data_format=DATA_FORMAT[target]))
        else:
            node.kwargs["data_format"] = DATA_FORMAT[target]
        name = inner.cls if inner is not None else cls
        if name.startswith("Global"):
            return None
        if cls == "ConvLSTM2D" and not node.kwargs.get("return_sequences"):
            return 1, ndim - 1
        return lead, ndim
    if inner is not None:
        if inner.cls == "Flatten":
            raise _refuse(node, "TimeDistributed(Flatten) (the layer after it takes its rows in the source's "
                          "order)", source, target)
        if inner.cls not in _ELEMENTWISE:
            raise _refuse(node, f"TimeDistributed({inner.cls})", source, target)
        return x
    if cls in _ELEMENTWISE or cls in _SAME_SHAPE_MERGES:
        return x
    if cls == "Flatten":
        return FLAT, 2
    if cls == "Concatenate":
        node.kwargs["axis"] = _axis(node.kwargs.get("axis", -1), lead, ndim, source)
        return x
    if cls == "BatchNormalization":
        node.kwargs["axis"] = _axis(node.kwargs.get("axis", -1), lead, ndim, source)
        return x
    if cls == "_statistics":  # BatchNormalization mode 2 keeps its feature axis; mode 1 reduces the last
        if node.kwargs.get("sample"):
            raise _refuse(node, "BatchNormalization mode=1 (each sample over its last axis, which --to changes)",
                          source, target)
        node.kwargs["keep_axis"] = _axis(node.kwargs["keep_axis"], lead, ndim, source)
        return x
    if cls == "PReLU":
        if lead != 1 or node.shares or not node.keras1_name:  # alphas_to moves the channel axis of an image
            raise _refuse(node, f"{'a shared ' if node.shares else ''}PReLU", source, target)
        out.alphas.add(node.keras1_name)
        shared = node.kwargs.get("shared_axes")
        if shared:
            node.kwargs["shared_axes"] = tuple(sorted(_axis(a, lead, ndim, source) for a in shared))
        return x
    raise _refuse(node, cls, source, target)
