"""The second consumer of the rule table: rewrite one saved Keras 1 layer config to Keras 2 API.

Keras 2.0 itself loaded Keras 1 configs through the same shims that converted calls (a config is a
call with keyword arguments only), so the same rules apply unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kmigrate.diagnostics import Severity
from kmigrate.spec.loader import RuleSet, default_ruleset
from kmigrate.spec.model import Options
from kmigrate.spec.pipeline import Arg, Refuse, Value, Work, run


@dataclass
class ConvertedConfig:
    keras1_class: str
    rule_id: str
    target_class: str
    config: dict[str, Any]
    notes: list[tuple[Severity, str]]
    # layers of an exact construction around it (Theano padding), when context["form"] gives them a
    # place: (Keras 3 class, {parameter: Value})
    before: list = field(default_factory=list)
    after: list = field(default_factory=list)


class UnknownKeys(Refuse):
    """The config has keys the Keras 1 class never had (a fork of Keras wrote it)."""


def _tupled(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_tupled(x) for x in v)
    return v


def convert_layer_config(
    class_name: str,
    config: dict[str, Any],
    options: Options | None = None,
    context: dict[str, Any] | None = None,
    ruleset: RuleSet | None = None,
) -> ConvertedConfig:
    """Map a Keras 1 layer config (`{"nb_filter": 4, ...}`) to the Keras 2 API class and config.

    `context` may carry facts the config alone lacks: `input_shape` (the layer's input shape without
    the batch axis) and `default_dim_ordering` (for layers whose saved config omits dim_ordering).
    Raises Refuse when a value has no Keras 2 equivalent; unknown classes raise Refuse too.
    """
    ruleset = ruleset or default_ruleset()
    rule = ruleset.layer_rule(class_name)
    if rule is None:
        raise Refuse(f"no rule knows the Keras 1 layer class `{class_name}`")
    unknown = [k for k in config if k not in rule.all_params]
    if unknown:
        raise UnknownKeys(f"`{class_name}` config has keys no Keras 1 release defined (a fork of Keras?): "
                          f"{', '.join(unknown)}")
    args = [Arg(k, Value(lit=_tupled(v)), k) for k, v in config.items()]
    work = Work(rule=rule, spelling=class_name, args=args, options=options or Options(),
                context=dict(context or {}))
    result = run(work)
    out: dict[str, Any] = {}
    for a in result.args:
        v = a.value
        if v.parts is not None:
            out[a.name] = tuple(p.lit for p in v.parts)
        else:
            out[a.name] = v.lit
    return ConvertedConfig(class_name, rule.id, result.target, out, result.notes, result.before, result.after)
