"""Layer names: Keras 1 default names, the classes they imply, and the Keras 3 names a layer gets."""

from __future__ import annotations

import re

from kmigrate.spec.loader import default_ruleset


def snake(name: str) -> str:
    """Keras 3's default layer name stem for a class name (Conv2DTranspose -> conv2d_transpose)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def keras1_default(name: str, keras1_class: str | None) -> bool:
    """Is `name` what Keras 1 would have called a layer of this class (`convolution2d_3`)?"""
    prefix = "input" if keras1_class == "InputLayer" else (keras1_class or "").lower()
    return bool(keras1_class) and re.fullmatch(re.escape(prefix) + r"_\d+", name) is not None


def class_from_name(name: str) -> str | None:
    """Keras 1 default names are `classname_N` (lower case); weights-only files only have names."""
    m = re.fullmatch(r"([a-z0-9]+)_\d+", name)
    if not m:
        return None
    if m.group(1) == "input":
        return "InputLayer"
    for rule in default_ruleset().of_kind("layer"):
        for spelling in rule.names:
            if spelling.lower() == m.group(1):
                return spelling
    return None


class Keras3Names:
    """Keras 3 names in model order: a Keras 1 default name becomes the Keras 3 default (conv2d,
    conv2d_1, ...), a name the user chose is kept."""

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}

    def name(self, old: str, keras1_class: str | None, target_class: str | None) -> str:
        if not target_class or not keras1_default(old, keras1_class):
            return old
        prefix = snake(target_class) if keras1_class != "InputLayer" else "input_layer"
        n = self._counters.get(prefix, 0)
        self._counters[prefix] = n + 1
        return prefix if n == 0 else f"{prefix}_{n}"
