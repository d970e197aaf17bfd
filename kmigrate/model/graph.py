"""The Keras 3 model a Keras 1 model config describes, as data: layers, their wiring, constructions.

Every layer config goes through the same rules as the code rewrite (a saved config is a call with
keyword arguments only). Nothing here imports Keras: `build.py` makes the model and writes its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from kmigrate.spec.loader import default_ruleset
from kmigrate.spec.model import Options
from kmigrate.spec.pipeline import NOLIT, Refuse
from kmigrate.weights.config import convert_layer_config
from kmigrate.weights.h5io import BadInput
from kmigrate.weights.keras2 import KERAS2_DROPPED, THEANO_AVERAGE_SAME, keras2_only
from kmigrate.weights.plan import Plan


@dataclass
class Obj:
    """A Keras 3 object given as an argument: `keras.regularizers.L1L2(l1=0.0, l2=0.01)`."""

    module: str  # "regularizers" | "constraints" | "layers"
    cls: str
    kwargs: dict[str, Any]


@dataclass
class Node:
    """One Keras 3 layer call: `cls(**kwargs, name=name)(inputs)`; an Input when cls is "Input"."""

    name: str
    cls: str
    kwargs: dict[str, Any]
    inputs: list[str] = field(default_factory=list)
    keras1_name: str | None = None  # the Keras 1 layer whose weights it carries (None: a construction)
    fixed: dict[int, float] = field(default_factory=dict)  # weights set to a constant, by index
    transposed: bool = False  # built channels_last between two Permutes (set by build.py: a Keras 3.15 bias bug)
    shares: str | None = None  # a later call of a shared layer: the node whose Keras 3 layer it calls again


@dataclass
class Graph:
    name: str
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    notes: list[str] = field(default_factory=list)
    # every call of a Keras 1 layer in the order they are made: (layer, call, the (layer, call) of each
    # input, or None for a Sequential's first layer), and the node that gives each call's output
    calls: list[tuple[str, int, list[tuple[str, int]] | None]] = field(default_factory=list)
    call_out: dict[tuple[str, int], str] = field(default_factory=dict)

    def input_shape(self, name: str) -> tuple:
        """An Input node's shape, batch axis left out."""
        kw = next(n for n in self.nodes if n.name == name).kwargs
        return tuple(kw["batch_shape"][1:]) if "batch_shape" in kw else tuple(kw["shape"])


# What the rules make of a Keras 1 layer's input keys (batch_input_shape, input_dim, input_dtype) is
# the model's Input, which carries it: not the layer's.
_INPUT_KWARGS = ("input_shape", "input_dim", "dtype")


def graph_from_plan(plan: Plan, model_config: dict[str, Any] | None, backend: str | None,
                    keras2: bool = False) -> Graph:
    """The model of a planned Keras 1 file and its model config (`{"class_name": "Sequential", ...}`);
    `keras2`: a Keras 2 file, whose layer configs the plan holds in their Keras 1 view."""
    if not plan.has_config:
        raise BadInput("the file has no model config (it was written by save_weights): convert its weights "
                       "with `kmigrate weights convert` and build the model from the migrated code")
    lambdas = [p for p in plan.layers if p.keras1_class == "Lambda" or (p.refused and p.target_class is None)]
    if lambdas:  # each other layer's config is translated again below, for a whole model
        raise BadInput(lambdas[0].refused or "not converted", lambdas[0].old_name)
    options = Options(default_dim_ordering=plan.model_layout, backend=backend)
    nodes: list[Node] = []
    inputs: list[str] = []
    notes: list[str] = []
    call_out: dict[tuple[str, int], str] = {}  # (Keras 1 layer, call) -> the node that gives its output
    model_cfg = model_config or {}
    cfg = model_cfg.get("config")
    functional = model_cfg.get("class_name") == "Model" and isinstance(cfg, dict)
    # every call of every layer, (layer, call index, its inputs as (layer, call)): a Sequential model's
    # layers are called once each, in order; a functional model's config lists each layer's calls
    todo: list[tuple[Any, int, list[tuple[str, int]] | None]] = []
    calls = _calls(cfg) if functional else {}
    for p in plan.layers:
        if p.keras1_class == "InputLayer" or not functional:
            todo.append((p, 0, [(i, 0) for i in p.inbound] if p.inbound else None))
        else:
            todo.extend((p, j, refs) for j, refs in enumerate(calls.get(p.old_name) or [None]))
    made: dict[str, tuple[list[Node], Node, list[Node]]] = {}
    made_calls: list[tuple[str, int, list[tuple[str, int]] | None]] = []
    last: str | None = None
    while todo:  # a layer's later call may take a tensor made after its first: call when the inputs exist
        ready = [t for t in todo if all(ref in call_out for ref in t[2] or ())]
        if not ready:
            p = todo[0][0]
            raise BadInput("a call's input is not made by any layer of the model config", p.old_name)
        for p, j, refs in ready:
            todo.remove((p, j, refs))
            made_calls.append((p.old_name, j, refs))
            last = _call(p, j, refs, made, nodes, inputs, call_out, options, notes, keras2)
    if functional:
        outputs = [call_out[(ref[0], ref[1] if len(ref) > 1 else 0)] for ref in cfg.get("output_layers", [])]
        inputs = [ref[0] for ref in cfg.get("input_layers", [])] or inputs
        name = cfg.get("name")
    else:
        outputs = [last] if last else []
        name = cfg.get("name") if isinstance(cfg, dict) else None
    return Graph(name or "model", nodes, inputs, outputs, notes, made_calls, call_out)


def _calls(cfg: dict[str, Any]) -> dict[str, list[list[tuple[str, int]]]]:
    """Each layer's calls in a functional Keras 1 config: the (layer, call) each input comes from. A
    model used as a layer (its calls numbered from 1) is not one: kmigrate.weights.entries inlines
    those first. Only single-output layers: a tensor index other than 0 is refused."""
    out: dict[str, list[list[tuple[str, int]]]] = {}
    for item in cfg.get("layers") or []:
        name = item.get("name") or (item.get("config") or {}).get("name", "")
        node_list = []
        for node in item.get("inbound_nodes") or []:
            refs = []
            for ref in node:
                if len(ref) > 2 and ref[2] != 0:
                    raise BadInput(f"takes output {ref[2]} of {ref[0]}: layers with several outputs are not "
                                   "supported", name)
                refs.append((ref[0], ref[1] if len(ref) > 1 else 0))
            node_list.append(refs)
        out[name] = node_list
    return out


def _call(p, j: int, refs, made, nodes: list[Node], inputs: list[str], call_out: dict, options: Options,
          notes: list[str], keras2: bool) -> str:
    """The nodes of call `j` of layer `p` on the outputs of `refs` (None: the model's own input). A layer
    called more than once (shared) is one Keras 3 layer called again: its later calls are nodes that
    share it; the weightless layers of a construction around it are made again for each call."""
    k1 = dict(p.keras1_config or {})
    if p.keras1_class == "InputLayer":
        nodes.append(_input(p.old_name, k1))
        inputs.append(p.old_name)
        call_out[(p.old_name, 0)] = p.old_name
        return p.old_name
    if refs is None:  # the first layer of a Sequential model: its input comes from its config
        name = sequential_input(p.old_name)
        nodes.append(_input(name, k1))
        inputs.append(name)
        chain = [name]
    else:
        chain = [call_out[r] for r in refs]
    if len(chain) > 1 and p.target_class not in _MERGES:
        raise BadInput("a layer called on a list of inputs that is not a merge is not supported", p.old_name)
    if p.old_name not in made:
        made[p.old_name] = _layer_nodes(p, k1, options, notes, keras2)
    before, main, after = made[p.old_name]
    if j:
        def again(n: Node) -> Node:
            return replace(n, name=f"{n.name}_call{j}", kwargs=dict(n.kwargs), inputs=[], keras1_name=None)
        before, after = [again(n) for n in before], [again(n) for n in after]
        main = replace(again(main), shares=main.name)
    for n in before + [main] + after:
        n.inputs = chain
        nodes.append(n)
        chain = [n.name]
    call_out[(p.old_name, j)] = chain[0]
    return chain[0]


def sequential_input(first_layer: str) -> str:
    """The Input made for a Sequential model's first layer (its config carries the shape)."""
    return f"{first_layer}_input"


_MERGES = {"Concatenate", "Add", "Multiply", "Average", "Maximum", "Dot"}


def _input(name: str, k1: dict[str, Any]) -> Node:
    shape = k1.get("batch_input_shape")
    if not shape:
        raise BadInput("an input has no shape in the config", name)
    # a fixed Keras 1 batch size (stateful recurrent layers need one) stays fixed
    kwargs: dict[str, Any] = {"shape": tuple(shape[1:])} if shape[0] is None else {"batch_shape": tuple(shape)}
    dtype = k1.get("input_dtype") or k1.get("dtype")
    if dtype and dtype != "float32":
        kwargs["dtype"] = dtype
    return Node(name, "Input", kwargs)


def _layer_nodes(p, k1: dict[str, Any], options: Options, notes: list[str],
                 keras2: bool = False) -> tuple[list[Node], Node, list[Node]]:
    """The Keras 3 layer of a Keras 1 layer config, with the layers of an exact construction around it."""
    config = dict(k1)
    if p.keras1_class == "PReLU" and not config.get("shared_axes") and p.weights and p.input_shape:
        # Keras 1.2.2's PReLU.get_config() leaves shared_axes out; its alphas keep the shape: an axis
        # of size 1 where the input's is larger was shared
        alphas = p.weights[0].shape
        shared = [i + 1 for i, (a, d) in enumerate(zip(alphas, p.input_shape)) if a == 1 and d != 1]
        if shared:
            config["shared_axes"] = shared
    statistics = _batchnorm_statistics(p, config)
    if p.keras1_class == "ConvLSTM2D" and not keras2:
        # its subsample, also unsaved, was given or inferred before (kmigrate.model.lost)
        notes.append(f"{p.old_name}: Keras 1.2.2 did not save ConvLSTM2D's dropout_W/U or regularizers: "
                     "built with none of them")
    # graph_from_plan makes the Inputs; Theano 'same' pooling is built here (_theano_pool)
    context: dict[str, Any] = {"form": "functional", "model_input": True, "theano_pool": True}
    if p.input_shape is not None:
        context["input_shape"] = tuple(p.input_shape)
        context["spatial_input"] = _spatial(p.input_shape, k1, options)
    conv = _converted(p.keras1_class, config, p.old_name, keras2, options=options, context=context)
    notes.extend(f"{p.old_name}: {sev.value}: {msg}" for sev, msg in conv.notes)
    if (keras2 and options.backend == "theano" and conv.target_class.startswith("AveragePooling")
            and conv.config.get("padding") == "same"):
        raise BadInput(THEANO_AVERAGE_SAME, p.old_name)
    kwargs = _kwargs(conv.config, p.old_name, conv.rule_id, keras2)
    main = Node(p.old_name, conv.target_class, kwargs, keras1_name=p.old_name)
    if _is_theano_same_pool(conv, options):
        main = Node(p.old_name, "_theano_pool", {"layer": conv.target_class, **kwargs}, keras1_name=p.old_name)
    before = [Node(f"{p.old_name}_{cls.lower()}_{i}", cls, _kwargs({k: _lit(v) for k, v in kw.items()}, p.old_name))
              for i, (cls, kw) in enumerate(conv.before)]
    after = [Node(f"{p.old_name}_{cls.lower()}_{i}", cls, _kwargs({k: _lit(v) for k, v in kw.items()}, p.old_name))
             for i, (cls, kw) in enumerate(conv.after)]
    if statistics is not None:  # normalise with keras.ops, then the layer scales and shifts
        before.append(statistics)
        main.kwargs["epsilon"] = 0.0
        main.fixed = {2: 0.0, 3: 1.0}  # moving mean 0, variance 1: the layer is gamma * x + beta
    return before, main, after


def _is_theano_same_pool(conv, options: Options) -> bool:
    """A Theano-trained 'same' pooling layer whose windows Keras 3's padding='same' places otherwise."""
    from kmigrate.spec.special import theano_same_pool_differs

    rule = default_ruleset().by_id[conv.rule_id]
    if "theano-same-pool" not in rule.special or options.backend != "theano" or conv.config.get("padding") != "same":
        return False
    pool = conv.config.get("pool_size")
    sizes = [pool] if isinstance(pool, int) else list(pool or ())
    return theano_same_pool_differs(sizes, conv.config.get("strides"))


def _batchnorm_statistics(p, config: dict[str, Any]) -> Node | None:
    """Keras 1 BatchNormalization mode 2 normalised with the current batch's mean and (biased) variance
    at inference too, and mode 1 each sample over its last axis; Keras 3's layer always uses its moving
    statistics in predict(). The normalisation becomes keras.ops calls in the graph (they reload in
    safe mode) and the layer is left to scale and shift. `config` loses its `mode`."""
    if p.keras1_class != "BatchNormalization" or config.get("mode", 0) == 0:
        return None
    mode = config.pop("mode")
    eps = float(config.get("epsilon", 1e-3))
    if mode == 1:
        return Node(f"{p.old_name}_statistics", "_statistics", {"axes": (-1,), "epsilon": eps, "sample": True})
    if mode != 2:
        raise BadInput(f"BatchNormalization mode={mode} is not a mode Keras 1 had", p.old_name)
    # every axis but the feature axis; the rank is known once the model is built (build.py)
    return Node(f"{p.old_name}_statistics", "_statistics",
                {"keep_axis": config.get("axis", -1), "epsilon": eps, "sample": False})


def _converted(cls: str, config: dict[str, Any], layer: str, keras2: bool, what: str = "", **kw):
    """A layer config through the rules. A Keras 2 config's keys that Keras 1 had go through them like a
    Keras 1 file's (so Theano's padding gets the same constructions); the keys only Keras 2 had are
    already Keras 3's names and values, and are kept where the Keras 3 class takes them."""
    extra: dict[str, Any] = {}
    if keras2:
        config, extra = keras2_only(cls, config)
    try:
        conv = convert_layer_config(cls, config, **kw)
    except Refuse as why:
        raise BadInput(f"{what}{cls} config not converted: {why}", layer) from None
    takes = set(default_ruleset().by_id[conv.rule_id].target_params)
    for key, value in extra.items():
        if key in KERAS2_DROPPED:
            continue
        if key not in takes:
            raise BadInput(f"{what}{conv.target_class}: the Keras 2 config key `{key}` has no Keras 3 "
                           "counterpart here", layer)
        conv.config.setdefault(key, value)
    return conv


def _kwargs(config: dict[str, Any], layer: str, rule_id: str | None = None, keras2: bool = False) -> dict[str, Any]:
    """A translated config as constructor arguments, without what Keras 3 defaults to anyway (None
    objects, trainable=True) or what the model's Input carries (unless the class itself takes it:
    Embedding's input_dim)."""
    own = set(default_ruleset().by_id[rule_id].target_params) if rule_id else set()
    return {k: _value(k, v, layer, keras2) for k, v in config.items()
            if k != "name" and (k not in _INPUT_KWARGS or k in own) and v is not None
            and not (k == "trainable" and v is True)}


def _spatial(shape, k1: dict[str, Any], options: Options):
    """The spatial sizes of a Keras 1 input shape (no batch axis), by the layer's ordering."""
    ordering = k1.get("dim_ordering") or "default"
    if ordering == "default":
        ordering = options.default_dim_ordering or "tf"
    sizes = tuple(shape[1:]) if ordering == "th" else tuple(shape[:-1])
    return sizes if all(isinstance(s, int) for s in sizes) else None


def _lit(v) -> Any:
    if getattr(v, "parts", None) is not None:
        return tuple(_lit(x) for x in v.parts)
    lit = getattr(v, "lit", v)
    if lit is NOLIT:
        raise BadInput("a construction value is not known from the config")
    return lit


def _value(key: str, value: Any, layer: str, keras2: bool = False) -> Any:
    """Config values Keras 3 takes as they are, or as objects: Keras 1 saved its regularizer and
    constraint objects as dicts named by class, which the same rules translate."""
    if key == "layer" and isinstance(value, dict):  # TimeDistributed / Bidirectional: the wrapped layer
        inner = value.get("config") or {}
        conv = _converted(value.get("class_name"), dict(inner), layer, keras2, what="wrapped ")
        return Obj("layers", conv.target_class, _kwargs(conv.config, layer, conv.rule_id, keras2))
    if isinstance(value, dict) and "name" in value and key.endswith(("_regularizer", "_constraint")):
        cls = value["name"]
        args = {k: v for k, v in value.items() if k != "name"}
        try:
            conv = convert_layer_config(cls, args)
        except Refuse as why:
            raise BadInput(f"`{key}` {cls} not converted: {why}", layer) from None
        rule = default_ruleset().layer_rule(cls)
        module = rule.modules[0].rsplit(".", 1)[1] if rule and rule.modules else "regularizers"
        return Obj(module, conv.target_class, dict(conv.config))
    if isinstance(value, list):
        return tuple(value)
    return value
