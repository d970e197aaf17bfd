"""What the rewrite says of a Keras name it leaves as written, worded once for both readings of a
module: the libcst engine (names.py, calls.py) and the `ast` reading (quick.py)."""

from __future__ import annotations

from typing import Callable

from kmigrate.diagnostics import Severity
from kmigrate.spec.loader import RuleSet
from kmigrate.spec.model import Options, Rule

Finding = tuple[Severity, str, str]  # severity, rule id, message


def removed(rule: Rule, qname: str, rs: RuleSet) -> Finding:
    """A call or import of a name Keras 3 removed (`SReLU`, `np_utils.probas_to_classes`)."""
    advice = rule.names.get(qname) or next(a for q, a in rule.names.items() if rs.moved(q) == qname)
    short = qname.rsplit(".", 1)[1]  # the same message before and after module paths move
    return Severity.WARNING, rule.id, f"`{short}` does not exist in Keras 3: {advice}"


def of_name(qname: str, rs: RuleSet, options: Options, removed_rules: dict[str, Rule], names_rule: Rule | None,
            handled: Callable[[str], bool], alias: bool) -> Finding | None:
    """The never-silent names check: a removed name where it is imported (`alias`; its calls are
    reported where they are), or a `keras.` name that no rule rewrites and Keras 3 lacks."""
    gone = removed_rules.get(qname)
    if gone is not None and alias and options.enabled(gone.id):
        return removed(gone, qname, rs)
    if names_rule is None or qname.split(".")[0] != "keras" or handled(qname):
        return None
    missing = rs.keras3_lacks(qname)
    if missing is None:
        return None
    hint = ""
    for module, elsewhere in names_rule.names.items():
        if missing.startswith(module + ".") and f"{elsewhere}{missing[len(module):]}" in rs.keras3:
            hint = f": use {elsewhere}{missing[len(module):]}"
    if missing == qname:
        return Severity.WARNING, names_rule.id, f"`{qname}` is not in Keras 3{hint}"
    return Severity.WARNING, names_rule.id, f"`{qname}`: Keras 3 has no `{missing}`{hint}"


def method_without_keras(rule: Rule, spelling: str, keywords: list[str]) -> Finding | None:
    """`model.fit(X, y, nb_epoch=5)` in a module that has imported nothing from Keras (yet): the
    engine does not read it as a Keras model's method, but a keyword Keras 1 alone spelled that way
    (one the rule renames or drops) says it probably is one."""
    keras1 = [k for k in keywords if k in rule.rename or k in rule.drop]
    if not keras1:
        return None
    return (Severity.WARNING, rule.id, f"`{spelling}(..., {keras1[0]}=...)` looks like a Keras 1 model's, but "
            "nothing from Keras is imported above it, so it is left as written: if the receiver is a Keras "
            "model, import keras in this file and run kmigrate again")
