"""The values a conversion is planned with: what the user said, and what is decided for each layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kmigrate.weights.h5io import K1Weight

if TYPE_CHECKING:  # pragma: no cover
    from kmigrate.weights.families.base import Family


@dataclass
class Settings:
    """What the user told us; None = not told."""

    layout: str | None = None  # 'th' | 'tf'
    backend: str | None = None  # 'theano' | 'tensorflow'
    to: str | None = None  # 'channels_first' | 'channels_last' (None: keep each layer's ordering)
    model_config: dict[str, Any] | None = None  # Keras 1 model JSON for weights-only files
    template: list[dict[str, Any]] | None = None  # the migrated model's weighted layers (--template), as data
    classes: dict[str, str] = field(default_factory=dict)  # --class LAYER=CLASS: the user's answers
    lenient: bool = False  # inspect: record open questions instead of stopping at the first
    # model convert: a model used as a layer is inlined into one graph (weights convert refuses it: the
    # migrated code's nested model needs the file's nested layout)
    inline_models: bool = False


@dataclass
class LayerPlan:
    """One layer of the file: its Keras 1 and Keras 3 identities, and how its arrays move."""

    old_name: str
    keras1_class: str | None
    new_name: str
    target_class: str | None = None
    keras1_config: dict[str, Any] | None = None
    keras2_config: dict[str, Any] | None = None
    input_shape: tuple | None = None  # Keras 1 layout, no batch axis; None entries = unknown sizes
    output_shape: tuple | None = None
    inbound: list[str] = field(default_factory=list)
    family: Family | None = None  # the weight family; None for weightless layers
    weights: list[K1Weight] = field(default_factory=list)
    roles: tuple[str, ...] = ()  # what each stored weight is, in the family's words (Keras 1 suffixes)
    new_weight_names: tuple[str, ...] = ()
    layout: str | None = None
    layout_source: str | None = None  # 'config' | 'shapes' | '--layout'
    flip: bool = False
    backend: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # what the family decided (read by its own code)
    notes: list[str] = field(default_factory=list)  # for the report (warnings and facts)
    unknown: list[str] = field(default_factory=list)  # questions the file leaves open (inspect)
    refused: str | None = None  # why the config was not converted
    full_padding: bool = False  # Keras 1 border_mode='full': converted as 'valid' after explicit padding
    fork: bool = False  # the config has keys no Keras release had: refused whatever the family

    @property
    def transform(self) -> str:
        """One phrase for the summary table."""
        return self.family.transform(self) if self.family else "-"


@dataclass
class Context:
    """What a family may consult while planning one layer: the user's answers and the layers before it."""

    settings: Settings
    has_config: bool
    model_layout: str | None
    previous: list[LayerPlan]
    by_name: dict[str, LayerPlan]
