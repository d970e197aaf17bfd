"""Apply the collected plans to the libcst tree; everything not planned is left byte for byte."""

from __future__ import annotations

import libcst as cst
from libcst import MaybeSentinel
from libcst.helpers import get_full_name_for_node

from kmigrate.rewrite.imports import ImportApplier
from kmigrate.rewrite.literals import render_node
from kmigrate.rewrite.plans import FunctionPlan, LayerPlan, ModulePlans
from kmigrate.spec.loader import RuleSet
from kmigrate.spec.model import Options
from kmigrate.spec.pipeline import NOLIT, Value

NO_EQUAL_SPACE = dict(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))


class Applier(ImportApplier, cst.CSTTransformer):
    """Apply the collected plans; everything not planned is left byte for byte."""

    def __init__(self, plans: ModulePlans, ruleset: RuleSet, options: Options,
                 touched: set[cst.CSTNode] | None = None) -> None:
        super().__init__()
        self.plans = plans
        self.extras: dict[cst.Call, tuple[list[cst.Call], list[cst.Call]]] = {}
        self.rs = ruleset
        self.module_map = ruleset.module_map() if options.enabled("module-paths") else {}
        self.touched = touched  # the planned nodes and their ancestors (None: visit everything)

    # No `visit_<Node>_<attribute>` methods here: libcst would look them up for every child of every node.
    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        pass

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        pass

    def on_visit(self, node: cst.CSTNode) -> bool:
        """A subtree with no planned node in it is left as it is, without visiting it."""
        if self.touched is not None and node not in self.touched:
            return False
        return super().on_visit(node)

    def leave_SimpleString(self, original: cst.SimpleString, updated: cst.SimpleString) -> cst.BaseExpression:
        new = self.plans.strings.get(original)
        return render_node(new, like=original) if new is not None else updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        new = self.plans.attributes.get(original)
        if new is None:
            return updated
        return updated.value if new is original.value else new

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        wrapped = self.plans.wraps.get(original)
        if wrapped is not None:  # `Layer(...)(x)` -> `Crop(...)(Layer(...)(Pad(...)(x)))`
            before, after = self.extras[wrapped]
            arg = updated.args[0]
            value = arg.value
            for layer in before:
                value = cst.Call(func=layer, args=[cst.Arg(value)])
            result: cst.BaseExpression = updated.with_changes(args=[arg.with_changes(value=value)])
            for layer in after:
                result = cst.Call(func=layer, args=[cst.Arg(result)])
            return result
        plan = self.plans.calls.get(original)
        if plan is None:
            return updated
        if isinstance(plan, FunctionPlan):
            if plan.constant is not NOLIT:
                return render_node(plan.constant)
            args = list(updated.args)
            if plan.mapped_arg is not None:  # K.set_image_data_format({'th': 'channels_first', ...}[x])
                mapping = cst.parse_expression(repr(plan.mapped_arg))
                args[0] = args[0].with_changes(value=cst.Subscript(
                    mapping, [cst.SubscriptElement(cst.Index(args[0].value))]))
                keyword = args[0].keyword
                if keyword is not None and keyword.value in plan.rule.rename:
                    args[0] = args[0].with_changes(keyword=keyword.with_changes(value=plan.rule.rename[keyword.value]))
            if plan.first_arg is not NOLIT:
                args[0] = args[0].with_changes(value=render_node(plan.first_arg, like=args[0].value))
                keyword = args[0].keyword
                if keyword is not None and keyword.value in plan.rule.rename:
                    args[0] = args[0].with_changes(keyword=keyword.with_changes(value=plan.rule.rename[keyword.value]))
            call = updated.with_changes(func=_renamed(updated.func, plan.new_name) if plan.new_name else updated.func,
                                        args=args)
            if plan.as_keras1_value:
                (first, old_first), (_, old_other) = sorted(plan.as_keras1_value.items())
                # ('th' if K.image_data_format() == 'channels_first' else 'tf')
                return cst.IfExp(
                    test=cst.Comparison(call, [cst.ComparisonTarget(cst.Equal(), render_node(first))]),
                    body=render_node(old_first), orelse=render_node(old_other),
                    lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
            return call
        return self.emit(original, plan, updated)

    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine,
                                  updated: cst.SimpleStatementLine):
        wrapped = self.plans.wraps.get(original)
        if wrapped is None:
            return updated
        before, after = self.extras[wrapped]
        add_call = updated.body[0].value

        def line(layer: cst.Call) -> cst.SimpleStatementLine:
            arg = add_call.args[0].with_changes(value=layer)
            return updated.with_changes(body=[updated.body[0].with_changes(value=add_call.with_changes(args=[arg]))],
                                        leading_lines=(), trailing_whitespace=cst.TrailingWhitespace())
        lines = [line(layer) for layer in before] + [updated.with_changes(leading_lines=())] + \
            [line(layer) for layer in after]
        lines[0] = lines[0].with_changes(leading_lines=updated.leading_lines)
        return cst.FlattenSentinel(lines)

    def emit(self, original: cst.Call, plan: LayerPlan, call: cst.Call) -> cst.Call:
        written = list(call.args)
        if plan.before or plan.after:
            self.extras[original] = ([self.extra_layer(call.func, *b, written) for b in plan.before],
                                     [self.extra_layer(call.func, *a, written) for a in plan.after])
        out: list[cst.Arg] = []
        positional_ok = True
        for i, a in enumerate(plan.args):
            base = written[plan.index[a.source]] if a.source in plan.index else None
            node = self.value_node(a.value, written)
            positional = positional_ok and i < plan.rule.positional and a.positional and base is not None
            positional_ok = positional
            if base is not None and a.comma_from in plan.index:
                base = base.with_changes(comma=written[plan.index[a.comma_from]].comma)
            if base is None:
                out.append(cst.Arg(value=node, keyword=cst.Name(a.name), equal=cst.AssignEqual(**NO_EQUAL_SPACE)))
                continue
            if positional:
                out.append(base.with_changes(value=node, keyword=None, equal=MaybeSentinel.DEFAULT))
            else:
                equal = base.equal if base.keyword is not None else cst.AssignEqual(**NO_EQUAL_SPACE)
                out.append(base.with_changes(value=node, keyword=cst.Name(a.name), equal=equal))
        if written and out:
            # Whatever ends the call now takes the written call's closing comma (or none); an
            # argument that was last and moved inward, or a new one, takes a written separator.
            separator = written[-2].comma if len(written) > 1 else MaybeSentinel.DEFAULT
            for j, arg in enumerate(out[:-1]):
                if arg.comma is written[-1].comma:
                    out[j] = arg.with_changes(comma=separator)
            own, closing = out[-1].comma, written[-1].comma
            if closing is MaybeSentinel.DEFAULT or own is MaybeSentinel.DEFAULT:
                out[-1] = out[-1].with_changes(comma=closing)
            elif isinstance(own.whitespace_after, cst.ParenthesizedWhitespace) and \
                    isinstance(closing.whitespace_after, cst.ParenthesizedWhitespace):
                # keep this argument's own comment, but indent the closing bracket as written
                ws = own.whitespace_after.with_changes(indent=closing.whitespace_after.indent,
                                                       last_line=closing.whitespace_after.last_line)
                out[-1] = out[-1].with_changes(comma=own.with_changes(whitespace_after=ws))
        func = _renamed(call.func, plan.new_func_name) if plan.new_func_name else call.func
        new = call.with_changes(func=func, args=out)
        if plan.wrap:
            return cst.parse_expression(plan.wrap.format(call=cst.Module([]).code_for_node(new)))
        return new

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        """`import math` / `import keras` for what the new code calls, after the last top-level import."""
        body = list(updated.body)
        have = {get_full_name_for_node(a.name) for stmt in body if isinstance(stmt, cst.SimpleStatementLine)
                for small in stmt.body if isinstance(small, cst.Import) for a in small.names if a.asname is None}
        missing = sorted(self.plans.modules_needed - have)
        if not missing:
            return updated
        at = 0
        for i, stmt in enumerate(body):
            if isinstance(stmt, cst.SimpleStatementLine) and (
                    isinstance(stmt.body[0], (cst.Import, cst.ImportFrom))
                    or (i == 0 and isinstance(stmt.body[0], cst.Expr) and isinstance(stmt.body[0].value, cst.SimpleString))):
                at = i + 1
            elif not isinstance(stmt, cst.SimpleStatementLine) and at:
                break
        new = [cst.parse_statement(f"import {m}\n") for m in missing]
        return updated.with_changes(body=body[:at] + new + body[at:])

    def extra_layer(self, func: cst.BaseExpression, cls: str, kwargs: dict, written: list[cst.Arg]) -> cst.Call:
        """`ZeroPadding2D(padding=..., data_format=...)`, spelled like the call it accompanies."""
        name = func.with_changes(attr=cst.Name(cls)) if isinstance(func, cst.Attribute) else cst.Name(cls)
        args = [cst.Arg(value=self.value_node(v, written), keyword=cst.Name(k), equal=cst.AssignEqual(**NO_EQUAL_SPACE))
                for k, v in kwargs.items()]
        return cst.Call(func=name, args=args)

    def value_node(self, value: Value, written: list[cst.Arg]) -> cst.BaseExpression:
        if value.template is not None:
            parts = [_as_operand(self.value_node(p, written)) for p in value.parts or ()]
            return cst.parse_expression(value.template.format(*parts))
        if value.parts is not None:
            return cst.Tuple([cst.Element(self.value_node(p, written)) for p in value.parts])
        if isinstance(value.payload, cst.CSTNode):
            return value.payload
        like = written[value.payload].value if value.payload is not None else None
        if value.changed:
            return render_node(value.lit, like=like)
        return like


def _as_operand(node: cst.BaseExpression) -> str:
    """Source of an expression, parenthesised unless it is an atom (`n + 1` inside `ceil({0} / 2)`)."""
    code = cst.Module([]).code_for_node(node)
    atoms = (cst.Name, cst.Attribute, cst.Integer, cst.Float, cst.SimpleString, cst.Call, cst.Subscript,
             cst.Tuple, cst.List, cst.Dict)
    return code if isinstance(node, atoms) or node.lpar else f"({code})"


def _renamed(func: cst.BaseExpression, name: str) -> cst.BaseExpression:
    if isinstance(func, cst.Name):
        return func.with_changes(value=name)
    if isinstance(func, cst.Attribute):
        return func.with_changes(attr=func.attr.with_changes(value=name))
    return func
