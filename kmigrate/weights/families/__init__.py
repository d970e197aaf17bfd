"""The weight families, found by name: a rule says `weights = "<name>"`, this registry gives the family.

Adding a family = one module here (a `Family` subclass, listed in FAMILIES) + the `weights` key on its
rule(s) + a test with fixtures.
"""

from __future__ import annotations

from kmigrate.weights.families.base import Family
from kmigrate.weights.families.batchnorm import BatchNorm
from kmigrate.weights.families.conv import Conv
from kmigrate.weights.families.conv1d import Conv1D
from kmigrate.weights.families.conv_lstm2d import ConvLSTM2D
from kmigrate.weights.families.conv_transpose import ConvTranspose
from kmigrate.weights.families.dense import Dense
from kmigrate.weights.families.embedding import Embedding
from kmigrate.weights.families.gru import GRU
from kmigrate.weights.families.lstm import LSTM
from kmigrate.weights.families.prelu import PReLU
from kmigrate.weights.families.separable import Separable
from kmigrate.weights.families.simple_rnn import SimpleRNN
from kmigrate.weights.families.wrappers import Bidirectional, TimeDistributed

FAMILIES: tuple[type[Family], ...] = (Conv, Conv1D, ConvTranspose, Separable, Dense, BatchNorm, Embedding, SimpleRNN,
                                      GRU, LSTM, ConvLSTM2D, PReLU, TimeDistributed, Bidirectional)
REGISTRY: dict[str, Family] = {cls.name: cls() for cls in FAMILIES}


def get(name: str) -> Family:
    """The family a rule names; KeyError names the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no weight family {name!r} (known: {', '.join(sorted(REGISTRY))})") from None


def for_class(keras1_class: str | None) -> Family | None:
    """The family of a Keras 1 layer class, as its rule declares it (None: the class carries no weights
    kmigrate converts)."""
    from kmigrate.spec.loader import default_ruleset

    rule = default_ruleset().layer_rule(keras1_class) if keras1_class else None
    if rule is None or rule.weights is None:
        return None
    return get(rule.weights)
