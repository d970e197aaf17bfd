"""Bind a written call's arguments to a rule's parameter names, for every engine that reads calls.

Pure functions over a neutral view of the written arguments (keyword, literal value, star), so the
libcst engine and the ast decision read a call the same way, from one piece of code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kmigrate.spec.model import TARGET_LAYER_KWARGS, Rule
from kmigrate.spec.pipeline import NOLIT, Refuse
from kmigrate.spec.special import REGISTRY


@dataclass(frozen=True)
class Written:
    """One argument as written: its keyword (None: positional), its literal value (NOLIT if not a
    literal) and its star ("", "*" or "**")."""

    keyword: str | None
    lit: Any
    star: str = ""


def bind_names(rule: Rule, spelling: str, written: list[Written],
               force: bool = False) -> tuple[list[str] | None, str | None]:
    """The Keras 1 parameter names of the positional arguments, or None when the call is (or may be)
    Keras 2 API already; and a warning to report instead of planning, if any. Raises Refuse.
    `force`: the module is certainly Keras 1, so a dual spelling is read with Keras 1's defaults."""
    for a in written:
        if a.star:
            raise Refuse(f"`{a.star}` arguments hide which Keras 1 parameters are passed")
    positional = [a for a in written if a.keyword is None]
    if len(positional) > len(rule.signature):
        raise Refuse(f"{len(positional)} positional arguments; Keras 1 `{spelling}` takes at most "
                     f"{len(rule.signature)}")
    k1 = set(rule.all_params)
    # a keyword a rule's named function consumes means what Keras 1 meant even where Keras 3 takes
    # the word too (`LSTM(8, input_dim=4)`: Keras 3 reads input_shape=(4,), Keras 1 meant (None, 4))
    consumed = {c for name in rule.special for c in getattr(REGISTRY.get(name), "consumes", ())}
    k2 = (set(rule.target_params) | set(TARGET_LAYER_KWARGS)) - consumed
    keywords = [a.keyword for a in written if a.keyword is not None]
    unknown = [k for k in keywords if k not in k1 and k not in k2]
    if unknown:
        raise Refuse(f"unknown keyword `{unknown[0]}` for Keras 1 `{spelling}`")
    k1_keywords = [k for k in keywords if k in k1 and k not in k2]
    k2_keywords = [k for k in keywords if k not in k1]
    k1_positional = []  # an integer where Keras 1 had a kernel dimension and Keras 2 has strides
    for dim in rule.kernel_dims:
        i = rule.signature.index(dim)
        if i < len(positional):
            lit = positional[i].lit
            if isinstance(lit, int) and not isinstance(lit, bool):
                k1_positional.append(f"integer positional argument {i + 1}, `{dim}`")
            elif lit is NOLIT and not k2_keywords and not k1_keywords and spelling in rule.dual:
                return None, (f"{spelling}(...) left as written: positional argument {i + 1} is "
                              f"`{dim}` in Keras 1 but `strides` in Keras 2/3 and is not a literal")
    for i, a in enumerate(positional[:len(rule.signature)]):
        vmap = rule.value_maps.get(rule.signature[i])  # `SpatialDropout2D(0.2, 'th')`: a Keras 1 value
        lit = a.lit
        if vmap is not None and lit is not NOLIT and isinstance(lit, str) and (lit in vmap.mapping or lit in vmap.drop):
            k1_positional.append(f"positional argument {i + 1}, `{rule.signature[i]}={lit!r}`")
    if k1_positional and k2_keywords:
        raise Refuse(f"it mixes Keras 1 ({k1_positional[0]}) and Keras 2 (`{k2_keywords[0]}`) arguments")
    # Keras 2 positionals (a kernel_size tuple) or Keras 2 keywords: bind in the Keras 2 order and
    # rename only the Keras 1 keywords, as Keras 2.0's own shim did.
    keras2_form = bool(k2_keywords) or _kernel_tuple(rule, positional)
    if keras2_form:
        if not k1_keywords and spelling in rule.dual and not force:
            return None, None  # already Keras 2 API
        if len(positional) > rule.positional:
            raise Refuse(f"{len(positional)} positional arguments in the Keras 2 form: which parameters "
                         "they are is not certain")
        keras1_of = {new: old for old, new in rule.rename.items()}
        return [keras1_of.get(t, t) for t in rule.target_params[:len(positional)]], None
    if spelling in rule.dual and not (k1_keywords or k1_positional) and not force:
        return None, None  # Keras 2 API, or not certainly Keras 1: decided when the module is seen
    return list(rule.signature[:len(positional)]), None


def _kernel_tuple(rule: Rule, positional: list[Written]) -> bool:
    """A literal tuple where Keras 1 had its first kernel dimension: the Keras 2 `kernel_size`."""
    first = rule.pack.get("kernel_size", ("",))[0]
    if first not in rule.signature:
        return False
    i = rule.signature.index(first)
    return i < len(positional) and isinstance(positional[i].lit, tuple)


def positionals_differ(rule: Rule, spelling: str, count: int) -> str | None:
    """A name Keras 1 and Keras 3 share, called with `count` positionals whose meaning differs between
    them (`Dense(10, 'he_normal')`: init in Keras 1, activation in Keras 3): the warning, else None."""
    if rule.kernel_dims:
        return None  # told apart by the kernel dimensions
    packed = {m: new for new, members in rule.pack.items() for m in members}
    for i in range(count):
        old = rule.signature[i] if i < len(rule.signature) else None
        new = packed.get(old) or rule.rename.get(old, old)
        if i >= len(rule.target_params) or new != rule.target_params[i]:
            return (f"{spelling}(...) left as written: positional argument {i + 1} is `{old}` in Keras 1 "
                    f"but `{rule.target_params[i] if i < len(rule.target_params) else '?'}` in Keras 2/3; "
                    "pass it by keyword")
    return None


def changes(result, rule: Rule, spelling: str, new_name: str | None, written: int) -> bool:
    """Whether the pipeline's result differs from the call as written. A positional argument that
    stays positional is written the same whatever its parameter is called (`MaxPooling1D(2)`: Keras
    1's pool_length is Keras 2's pool_size)."""
    return bool(new_name not in (None, spelling) or result.before or result.after or result.wrap
                or len(result.args) != written
                or any(a.value.changed or (a.positional and i >= rule.positional)
                       or (a.name != a.source and not a.positional)
                       for i, a in enumerate(result.args)))


def renamed_name(rs, module: str, imported: str) -> str | None:
    """The Keras 2/3 name of a name imported from `module`, if it changes."""
    rule = rs.rule_for(module, imported)
    if rule is not None:
        target = rule.names[imported]
        return target if target != imported else None
    for fn in rs.of_kind("function"):
        if f"{module}.{imported}" in fn.names:
            return fn.names[f"{module}.{imported}"]
    return None
