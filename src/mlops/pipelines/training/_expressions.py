"""Derived-feature expressions: column arithmetic only, evaluated over NumPy arrays.

``monthly_charges / (tenure_months + 1)`` is parsed with ``ast`` and may hold only column
names, numbers, arithmetic, comparisons, ``&``/``|``/``~`` and a few math functions (the
subset of ``DataFrame.eval``'s language that is arithmetic). Nothing is handed to
``eval`` or to pandas' expression engine: the checked tree is walked here, one NumPy
operation per node, so attribute access, ``@local`` variables or calls cannot run, and
a served model computes a feature in microseconds rather than the milliseconds pandas'
parser takes per call.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["FUNCTIONS", "evaluate_expression", "expression_columns"]

_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": np.abs, "exp": np.exp, "expm1": np.expm1, "log": np.log, "log10": np.log10,
    "log1p": np.log1p, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
    "arctan2": np.arctan2,
}  # fmt: skip
#: The functions an expression may call.
FUNCTIONS = frozenset(_FUNCTIONS)
_BINARY: dict[type[ast.AST], Callable[[Any, Any], Any]] = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide, ast.Mod: np.mod, ast.Pow: np.power,
    ast.BitAnd: np.logical_and, ast.BitOr: np.logical_or,
}  # fmt: skip
_UNARY: dict[type[ast.AST], Callable[[Any], Any]] = {
    ast.USub: np.negative, ast.UAdd: np.positive, ast.Invert: np.logical_not,
    ast.Not: np.logical_not,
}  # fmt: skip
_COMPARE: dict[type[ast.AST], Callable[[Any, Any], Any]] = {
    ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
    ast.Eq: np.equal, ast.NotEq: np.not_equal,
}  # fmt: skip

_OPERATORS = (
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.BitAnd, ast.BitOr, ast.Invert, ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or,
    ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq,
)  # fmt: skip
_ALLOWED = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Name, ast.Load,
    ast.Constant, ast.Call, *_OPERATORS,
)  # fmt: skip
_WHAT = {
    ast.Attribute: "attribute access (a.b)",
    ast.Subscript: "indexing (a[...])",
    ast.Lambda: "lambda",
    ast.IfExp: "conditional expressions (a if b else c)",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.ListComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.NamedExpr: "assignment (:=)",
    ast.Starred: "unpacking (*a)",
    ast.JoinedStr: "f-strings",
}


def expression_columns(expr: str) -> list[str]:
    """The column names ``expr`` uses, in order; ``ValueError`` says what is not allowed."""
    return list(_checked(expr)[1])


def evaluate_expression(expr: str, columns: Mapping[str, Any], rows: int) -> Any:
    """``expr`` over the arrays in ``columns`` as a float64 array of ``rows`` values.

    Division by zero gives ±inf (or NaN), never an error; ``&``, ``|``, ``~``, ``and``,
    ``or`` and ``not`` are element-wise logic, comparisons give 1.0 or 0.0.
    """
    tree, names = _checked(expr)
    missing = [name for name in names if name not in columns]
    if missing:
        raise ValueError(f"{expr!r} uses {missing}, which the input does not have")
    with np.errstate(all="ignore"):
        value = _evaluate(tree.body, columns)
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (rows,)).copy()


def _evaluate(node: ast.AST, columns: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        return columns[node.id]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, columns), _evaluate(node.right, columns)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, columns))
    if isinstance(node, ast.BoolOp):
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        return functools.reduce(combine, (_evaluate(v, columns) for v in node.values))
    if isinstance(node, ast.Compare):
        result: Any = True
        left = _evaluate(node.left, columns)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator, columns)
            result = np.logical_and(result, _COMPARE[type(op)](left, right))
            left = right
        return result
    assert isinstance(node, ast.Call)  # the only node left after the checks
    assert isinstance(node.func, ast.Name)
    return _FUNCTIONS[node.func.id](*(_evaluate(arg, columns) for arg in node.args))


@functools.lru_cache(maxsize=512)
def _checked(expr: str) -> tuple[ast.Expression, tuple[str, ...]]:
    """The parsed, checked tree of ``expr`` and the columns it uses (parsed once)."""
    if not isinstance(expr, str) or not expr.strip():
        raise ValueError("the expression is empty; write column arithmetic such as 'a / (b + 1)'")
    if "@" in expr or "`" in expr:
        raise ValueError(
            "'@' (local variables) and backticks are not allowed; name columns directly"
        )
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as error:
        raise ValueError(f"{expr!r} is not a valid expression: {error.msg}") from None
    columns: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            what = _WHAT.get(type(node), type(node).__name__)
            raise ValueError(
                f"{what} is not allowed in {expr!r}; use column names, numbers, "
                "+ - * / // % **, comparisons, & | ~ and the functions "
                f"{', '.join(sorted(FUNCTIONS))}"
            )
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                raise ValueError(
                    f"{name}() is not allowed in {expr!r}; the functions are "
                    f"{', '.join(sorted(FUNCTIONS))}"
                )
            if node.keywords:
                raise ValueError(f"keyword arguments are not allowed in {expr!r}")
        elif isinstance(node, ast.Constant) and (
            isinstance(node.value, (str, bytes)) or node.value is None
        ):
            raise ValueError(f"only numbers and True/False may appear as constants in {expr!r}")
        elif isinstance(node, ast.Name) and not _is_function(tree, node) and node.id not in columns:
            columns.append(node.id)
    return tree, tuple(columns)


def _is_function(tree: ast.AST, name: ast.Name) -> bool:
    return any(isinstance(node, ast.Call) and node.func is name for node in ast.walk(tree))
