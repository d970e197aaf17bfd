"""The layers of a Keras 1 model config (Sequential list or functional graph), in file order."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from kmigrate.weights.h5io import BadInput, K1File, K1Layer, K1Weight


@dataclass
class Entry:
    name: str
    class_name: str
    config: dict[str, Any]
    inbound: list[str] | None  # None: sequential predecessor
    # the layer's Keras 2/3 class and config when a file or template gave them (the Keras 1 class and
    # config above are then their Keras 1 view): used as they are, not derived through the rules
    keras2: tuple[str, dict[str, Any]] | None = None


def entries(model_config: dict[str, Any]) -> list[Entry]:
    """Read the layer entries of a Keras 1 `model_config` (data only; nothing is imported or run)."""
    cls = model_config.get("class_name")
    cfg = model_config.get("config")
    if cls == "Sequential":
        layers = cfg if isinstance(cfg, list) else (cfg or {}).get("layers")
        if not isinstance(layers, list):
            raise BadInput("Sequential model_config has no layer list")
        out = []
        for item in layers:
            if not isinstance(item, dict) or "class_name" not in item:
                raise BadInput("model_config layer entry without class_name")
            c = dict(item.get("config") or {})
            if item["class_name"] in ("Sequential", "Model"):
                raise BadInput("nested models are not supported", c.get("name"))
            out.append(Entry(c.get("name", ""), item["class_name"], c, None))
        return out
    if cls == "Model":
        out = []
        for item in cfg.get("layers", []):
            c = dict(item.get("config") or {})
            if item.get("class_name") in ("Sequential", "Model"):
                raise BadInput("nested models are not supported", item.get("name"))
            inbound = []
            for node in item.get("inbound_nodes") or []:
                for ref in node:
                    inbound.append(ref[0])
            out.append(Entry(item.get("name") or c.get("name", ""), item["class_name"], c, inbound))
        return out
    raise BadInput(f"model_config class {cls!r} is not Sequential or Model")


CONTAINERS = ("Sequential", "Model")


def has_models(model_config: dict[str, Any]) -> bool:
    """Whether a Keras 1 model config uses a model (Sequential or Model) as one of its layers."""
    cfg = model_config.get("config")
    items = cfg if isinstance(cfg, list) else (cfg or {}).get("layers") or []
    return any(isinstance(i, dict) and i.get("class_name") in CONTAINERS for i in items)


def inline_models(model_config: dict[str, Any], k1: K1File) -> tuple[dict[str, Any], K1File]:
    """A Keras 1 model config with models used as layers, as one functional config of their layers: each
    nested model's layers are called wherever the model was called (once per call, so a model applied to
    two inputs becomes shared layers), and the file's group of each nested model is split into its
    layers' groups (Keras 1 stored a nested model's arrays under its own name, as `<layer>_W`, ...). The
    layers' config dicts are the model config's own."""
    cfg = model_config.get("config")
    # a Sequential config names none of its layers that are models: the file's groups do, in its order
    name, layers, ins, outs = _functional(model_config.get("class_name"), cfg,
                                          cfg.get("name") if isinstance(cfg, dict) else None, k1.layer_names)
    layers, ins, outs, leaves = _inline(layers, ins, outs)
    # (the nested models' own groups in the file: only the outermost ones have one)
    names = [item["name"] for item in layers]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise BadInput("two layers of the nested models share a name", twice)
    flat = {"class_name": "Model", "config": {"name": name or "model", "layers": layers, "input_layers": ins,
                                              "output_layers": outs}}
    layer_names: list[str] = []
    split: dict[str, K1Layer] = {}
    for file_name in k1.layer_names:
        if file_name not in leaves:
            layer_names.append(file_name)
            split[file_name] = k1.layers[file_name]
            continue
        inner = leaves[file_name]
        owned: dict[str, list[K1Weight]] = {n: [] for n in inner}
        for w in k1.layers[file_name].weights:
            owner = max((n for n in inner if w.name.startswith(f"{n}_")), key=len, default=None)
            if owner is None:
                raise BadInput(f"weight {w.name} of the nested model belongs to none of its layers", file_name)
            owned[owner].append(w)
        layer_names.extend(inner)
        split.update({n: K1Layer(n, ws) for n, ws in owned.items()})
    return flat, replace(k1, layer_names=layer_names, layers=split, model_config=flat)


def _functional(cls: str | None, cfg: Any, name: str | None,
                file_names: list[str] | None = None) -> tuple[str | None, list, list, list]:
    """A Sequential or functional config as (name, layers with their calls, input refs, output refs); a
    Sequential gets the Input its first layer's batch_input_shape described. Keras 1.2.2 saved a model
    inside a Sequential as a bare list of layers, without its name: the file's group at the same place
    (`file_names`, the outermost Sequential's) gives it, else a name is made up (no group holds its
    arrays then: the outermost model's does)."""
    if cls == "Model" and isinstance(cfg, dict):
        return cfg.get("name") or name, list(cfg.get("layers") or []), list(cfg.get("input_layers") or []), \
            list(cfg.get("output_layers") or [])
    items = cfg if isinstance(cfg, list) else (cfg or {}).get("layers")
    if cls != "Sequential" or not isinstance(items, list) or not items:
        raise BadInput(f"a nested model config of class {cls!r} is not a Sequential or Model", name)
    first = items[0]
    while first.get("class_name") == "Sequential":  # a Sequential whose first layer is a Sequential
        inner = first.get("config")
        first = (inner if isinstance(inner, list) else inner.get("layers"))[0]
    shape = (first.get("config") or {}).get("batch_input_shape")
    if not shape:
        raise BadInput("a nested Sequential model's first layer has no input shape", name)
    source = f"{name or 'sequential'}_input"
    layers = [{"name": source, "class_name": "InputLayer", "inbound_nodes": [],
               "config": {"name": source, "batch_input_shape": shape,
                          "input_dtype": (first.get("config") or {}).get("input_dtype", "float32")}}]
    prev = [source, 0, 0]
    positional = file_names is not None and len(file_names) == len(items)
    for index, item in enumerate(items):
        item_name = (item.get("config") or {}).get("name") if item.get("class_name") not in CONTAINERS else \
            item.get("name") or _container_name(item) or (
                file_names[index] if positional else f"{name or 'sequential'}_model_{index}")
        layers.append(dict(item, name=item_name, inbound_nodes=[[prev]]))
        prev = [item_name, 1 if item.get("class_name") in CONTAINERS else 0, 0]  # a model's calls start at 1
    return name, layers, [[source, 0, 0]], [prev]


def _container_name(item: dict[str, Any]) -> str | None:
    cfg = item.get("config")
    return cfg.get("name") if isinstance(cfg, dict) else None


def _inline(layers: list, ins: list, outs: list) -> tuple[list, list, list, dict[str, list[str]]]:
    """Replace each model among `layers` by its own layers (recursively), renumbering calls: Keras 1.2.2
    numbered a nested model's calls from 1 (its call 0 joined its own input to its output)."""
    flat: list[dict[str, Any]] = []
    leaves: dict[str, list[str]] = {}  # nested model -> its layers (that store weights in its group)
    rename: dict[tuple[str, int], list] = {}  # (model, call) -> the ref of the layer giving its output
    for item in layers:
        if item.get("class_name") not in CONTAINERS:
            flat.append(dict(item))  # its calls are renumbered below; its config stays the model config's
            continue
        model = item.get("name") or _container_name(item)
        _, inner, inner_ins, inner_outs = _functional(item["class_name"], item.get("config"), model)
        inner, inner_ins, inner_outs, inner_leaves = _inline(inner, inner_ins, inner_outs)
        sources = [r[0] for r in inner_ins]
        calls = item.get("inbound_nodes") or []
        count = {i["name"]: max(len(i.get("inbound_nodes") or []), 1) for i in inner}
        own = []
        for layer in inner:
            if layer["name"] in sources:
                continue  # the nested model's Inputs: each call's inputs take their place
            nodes = []
            for j, call in enumerate(calls):
                for node in layer.get("inbound_nodes") or []:
                    nodes.append([list(call[sources.index(r[0])]) if r[0] in sources else
                                  [r[0], j * count[r[0]] + r[1], r[2] if len(r) > 2 else 0] for r in node])
            flat.append(dict(layer, inbound_nodes=nodes))
            own.append(layer["name"])
        leaves[model] = own  # `inner` is already inlined: these are layers, not models
        for j in range(len(calls)):
            for t, out in enumerate(inner_outs):
                rename[(model, j + 1, t)] = [out[0], j * count[out[0]] + out[1], out[2] if len(out) > 2 else 0]

    def renamed(ref: list) -> list:
        key = (ref[0], ref[1] if len(ref) > 1 else 0, ref[2] if len(ref) > 2 else 0)
        return list(rename.get(key, ref))

    for item in flat:
        item["inbound_nodes"] = [[renamed(r) for r in node] for node in item.get("inbound_nodes") or []]
    return flat, [renamed(r) for r in ins], [renamed(r) for r in outs], leaves
