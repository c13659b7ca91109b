"""A small, safe expression language for `branch` conditions and scenario `when` filters.

Python syntax, but only literals, names, attribute/item access on dicts, comparisons, `in`,
`and`/`or`/`not` and arithmetic. Nothing can call a function or reach an object's internals.
"""

from __future__ import annotations

import ast
import operator
from functools import lru_cache
from typing import Any


class ExpressionError(ValueError):
    pass


_ALLOWED = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Compare,
            ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot,
            ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.Constant, ast.List, ast.Tuple,
            ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod)

_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
        ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
        ast.NotIn: lambda a, b: a not in b, ast.Is: operator.is_, ast.IsNot: operator.is_not}
_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Mod: operator.mod}


@lru_cache(maxsize=1024)
def compile_expression(text: str) -> ast.Expression:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse condition {text!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ExpressionError(f"{type(node).__name__} is not allowed in condition {text!r}")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExpressionError(f"attribute {node.attr!r} is not allowed")
    return tree


def _eval(node: ast.AST, scope: dict[str, Any]) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body, scope)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in ("true", "True"):
            return True
        if node.id in ("false", "False"):
            return False
        if node.id in ("none", "None", "null"):
            return None
        return scope.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _eval(node.value, scope)
        return base.get(node.attr) if isinstance(base, dict) else None
    if isinstance(node, ast.Subscript):
        base = _eval(node.value, scope)
        key = _eval(node.slice, scope)
        try:
            return base[key]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, scope) for e in node.elts]
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, scope) for v in node.values)
        return any(_eval(v, scope) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, scope)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.BinOp):
        try:
            return _BIN[type(node.op)](_eval(node.left, scope), _eval(node.right, scope))
        except (TypeError, ZeroDivisionError):
            return None
    if isinstance(node, ast.Compare):
        left = _eval(node.left, scope)
        for op, comparator in zip(node.ops, node.comparators):
            right = _eval(comparator, scope)
            try:
                if not _CMP[type(op)](left, right):
                    return False
            except TypeError:
                return False
            left = right
        return True
    raise ExpressionError(f"unsupported expression node {type(node).__name__}")


def evaluate(text: str, scope: dict[str, Any]) -> bool:
    return bool(_eval(compile_expression(text), scope))
