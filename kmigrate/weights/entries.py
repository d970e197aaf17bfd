"""The layers of a Keras 1 model config (Sequential list or functional graph), in file order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kmigrate.weights.h5io import BadInput


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
