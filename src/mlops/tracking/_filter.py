"""The run search language: parse filters and sort orders, and translate them to SQL.

    metrics.f1 > 0.9 and (params.optimizer = 'adam' or tags.team ilike 'ml-%')

An identifier is ``entity.key``: entity is metrics, params, tags or attributes (aliases
metric, param, tag, attribute, attr, run); a key with spaces is quoted: metrics.`val loss`.
Metrics compare with numbers, params and tags as strings (``=``, ``!=``, like, ilike, in).

SQL semantics, the same on SQLite and PostgreSQL:

- A comparison on a metric, param or tag matches runs that have the key with a matching
  value; ``!=`` and ``not in`` too ("has the key and differs").
- ``is null`` matches runs without the key, ``is not null`` runs with it.
- A NaN metric (stored as NULL) matches no comparison, only ``is not null``.
- ``like`` is case-sensitive, ``ilike`` is not; ``\\`` escapes ``%`` and ``_``.
- Sorting puts a missing key or NaN last in both directions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import sqlalchemy as sa
from sqlalchemy import ColumnElement, FromClause
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from mlops.errors import FilterSyntaxError
from mlops.store._schema import latest_metrics, params, run_tags
from mlops.store._schema import runs as runs_table

__all__ = [
    "And",
    "Comparison",
    "Entity",
    "Expr",
    "Op",
    "Or",
    "OrderKey",
    "filter_to_sql",
    "order_by_to_sql",
    "parse_filter",
    "parse_order_by",
]

Entity: TypeAlias = Literal["metrics", "params", "tags", "attributes"]
Op: TypeAlias = Literal[
    "=", "!=", "<", "<=", ">", ">=", "like", "ilike", "in", "not in", "is null", "is not null"
]
Scalar: TypeAlias = str | int | float
Value: TypeAlias = Scalar | tuple[Scalar, ...] | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """``entity.key op value``; value is a tuple for (not) in and None for is (not) null."""

    entity: Entity
    key: str
    op: Op
    value: Value


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]


Expr: TypeAlias = Comparison | And | Or


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One sort key; attributes use their canonical names (``run_id``, ``start_time``…)."""

    entity: Entity
    key: str
    descending: bool = False


_ENTITIES: dict[str, Entity] = {
    "metrics": "metrics", "metric": "metrics", "params": "params", "param": "params",
    "tags": "tags", "tag": "tags", "attributes": "attributes", "attribute": "attributes",
    "attr": "attributes", "run": "attributes",
}  # fmt: skip
_ATTRIBUTE_NAMES = ("status", "name", "run_id", "start_time", "end_time", "user", "parent_run_id")
_ATTRIBUTES = {name: name for name in _ATTRIBUTE_NAMES} | {"run_name": "name", "id": "run_id"}
_TIME_ATTRIBUTES = ("start_time", "end_time")
_STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
_OPERATORS: dict[str, Op] = {
    "==": "=", "!=": "!=", "<>": "!=", "<=": "<=", ">=": ">=", "=": "=", "<": "<", ">": ">",
    "like": "like", "ilike": "ilike", "in": "in",
}  # fmt: skip
_SYMBOLS = [symbol for symbol in _OPERATORS if not symbol.isalpha()]  # longest first
_ORDERING = ("<", "<=", ">", ">=")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_\-./]+")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z0-9_.])")
_SNIPPET = re.compile(r"'[^']*'?|\"[^\"]*\"?|[A-Za-z0-9_\-.]+|\S")


@dataclass(frozen=True, slots=True)
class _Subject:
    """What a comparison or sort key is about; ``text`` is as written, for messages."""

    entity: Entity
    key: str
    text: str

    @property
    def kind(self) -> Literal["number", "integer", "text"]:
        if self.entity == "metrics":
            return "number"
        is_time = self.entity == "attributes" and self.key in _TIME_ATTRIBUTES
        return "integer" if is_time else "text"


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Scalar
    text: str
    position: int


class _Parser:
    """A recursive descent parser that lexes on demand (keys may contain dots and dashes)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str, position: int | None = None) -> FilterSyntaxError:
        position = self.pos if position is None else position
        return FilterSyntaxError(message, text=self.text, position=position)

    def skip(self) -> int:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.pos

    def at_end(self) -> bool:
        return self.skip() >= len(self.text)

    def found(self) -> str:
        """What is at the cursor, for messages: "'xyz'" or 'the end'."""
        match = _SNIPPET.match(self.text, self.skip())
        return repr(match.group()) if match else "the end"

    def keyword(self, word: str) -> int | None:
        """Consume ``word`` (any case) if it is next; return where it started."""
        start = self.skip()
        match = _WORD.match(self.text, start)
        if match is None or match.group().lower() != word:
            return None
        self.pos = match.end()
        return start

    def parse_or(self) -> Expr:
        items = [self.parse_and()]
        while (start := self.keyword("or")) is not None:
            self.require_more(start)
            items.append(self.parse_and())
        return _combine(Or, items)

    def parse_and(self) -> Expr:
        items = [self.parse_atom()]
        while (start := self.keyword("and")) is not None:
            self.require_more(start)
            items.append(self.parse_atom())
        return _combine(And, items)

    def require_more(self, keyword_start: int) -> None:
        if self.at_end():
            word = self.text[keyword_start : self.pos].strip()
            message = f"unexpected '{word}' at the end; add a comparison after it or remove it"
            raise self.error(message, keyword_start)

    def parse_atom(self) -> Expr:
        start = self.skip()
        if not self.text.startswith("(", start):
            return self.parse_comparison()
        self.pos += 1
        inner = self.parse_or()
        if not self.text.startswith(")", self.skip()):
            raise self.error(
                f"expected ')' to close the '(' at position {start}, found {self.found()}"
            )
        self.pos += 1
        return inner

    def parse_comparison(self) -> Comparison:
        subject = self.parse_identifier(bare_attributes=False)
        op, op_start = self.parse_operator(subject.text)
        self.check_operator(subject, op, op_start)
        value: Value = None
        if op in ("in", "not in"):
            value = tuple(self.check_value(subject, op, item) for item in self.parse_list(op))
        elif op not in ("is null", "is not null"):
            literal = self.parse_literal(after=self.text[op_start : self.pos])
            value = self.check_value(subject, op, literal)
        return Comparison(subject.entity, subject.key, op, value)

    def parse_identifier(self, *, bare_attributes: bool) -> _Subject:
        """Parse ``entity.key``, or a bare attribute name where ``bare_attributes``."""
        start = self.skip()
        match = _WORD.match(self.text, start)
        example = "an identifier such as metrics.f1, params.lr, tags.team or attributes.status"
        if match is None:
            raise self.error(f"expected {example}, found {self.found()}")
        word = match.group()
        if not self.text.startswith(".", match.end()):
            if word.lower() in _ATTRIBUTES:
                if bare_attributes:
                    self.pos = match.end()
                    return _Subject("attributes", _ATTRIBUTES[word.lower()], word)
                raise self.error(f"'{word}' needs its entity; write attributes.{word}", start)
            raise self.error(f"expected {example}, found '{word}'", start)
        entity = _ENTITIES.get(word.lower())
        if entity is None:
            message = f"unknown entity '{word}'; use metrics, params, tags or attributes"
            raise self.error(message, start)
        self.pos = key_start = match.end() + 1
        if key_start < len(self.text) and self.text[key_start] in '`"':
            key = self.parse_quoted()
            if not key:
                raise self.error("the key is empty; write a name between the quotes", key_start)
        elif key_match := _BARE_KEY.match(self.text, key_start):
            key = key_match.group()
            self.pos = key_match.end()
        else:
            raise self.error(f"expected a key after '{self.text[start:key_start]}'")
        if entity == "attributes":
            if key.lower() not in _ATTRIBUTES:
                message = f"unknown attribute '{key}'; use one of {', '.join(_ATTRIBUTE_NAMES)}"
                raise self.error(message, key_start)
            key = _ATTRIBUTES[key.lower()]
        return _Subject(entity, key, self.text[start : self.pos])

    def parse_operator(self, identifier: str) -> tuple[Op, int]:
        start = self.skip()
        for symbol in _SYMBOLS:
            if self.text.startswith(symbol, start):
                self.pos = start + len(symbol)
                return _OPERATORS[symbol], start
        for word in ("like", "ilike", "in"):
            if self.keyword(word) is not None:
                return _OPERATORS[word], start
        if self.keyword("not") is not None:
            if self.keyword("in") is None:
                raise self.error(f"expected 'in' after 'not', found {self.found()}")
            return "not in", start
        if self.keyword("is") is not None:
            negated = self.keyword("not") is not None
            if self.keyword("null") is None:
                raise self.error(f"expected 'null' or 'not null' after 'is', found {self.found()}")
            return ("is not null" if negated else "is null"), start
        raise self.error(
            f"expected a comparison operator such as '=' or '>' after '{identifier}', "
            f"found {self.found()}"
        )

    def parse_list(self, op: str) -> list[_Literal]:
        if not self.text.startswith("(", self.skip()):
            raise self.error(f"expected '(' after '{op}' to start a list such as ('a', 'b')")
        self.pos += 1
        items = [self.parse_literal(after="(")]
        while True:
            position = self.skip()
            if self.text.startswith(")", position):
                self.pos += 1
                return items
            if not self.text.startswith(",", position):
                raise self.error(
                    f"expected ',' or ')' in the list after '{op}', found {self.found()}"
                )
            self.pos += 1
            items.append(self.parse_literal(after=","))

    def parse_literal(self, *, after: str) -> _Literal:
        start = self.skip()
        if start < len(self.text) and self.text[start] in "'\"":
            value = self.parse_quoted()
            return _Literal(value, self.text[start : self.pos], start)
        if number := _NUMBER.match(self.text, start):
            self.pos = number.end()
            raw = number.group()
            return _Literal(int(raw) if raw.lstrip("-").isdigit() else float(raw), raw, start)
        hint = ""
        if word := _WORD.match(self.text, start):
            is_null = word.group().lower() == "null"
            hint = "; test a missing key with 'is null'" if is_null else "; quote strings"
        raise self.error(
            f"expected a value (a number or a quoted string) after '{after}', "
            f"found {self.found()}{hint}"
        )

    def parse_quoted(self) -> str:
        """A quoted key or string; the quote is escaped by doubling it or by a backslash."""
        start, quote = self.pos, self.text[self.pos]
        chars: list[str] = []
        i = start + 1
        while i < len(self.text):
            char = self.text[i]
            following = self.text[i + 1 : i + 2]
            # Other backslashes stay, so like patterns keep their escapes ('50\%').
            if (char == "\\" and following in (quote, "\\")) or (char == quote == following):
                chars.append(following)
                i += 2
            elif char == quote:
                self.pos = i + 1
                return "".join(chars)
            else:
                chars.append(char)
                i += 1
        raise self.error(f"unterminated string; close it with {quote}", start)

    def check_operator(self, subject: _Subject, op: Op, position: int) -> None:
        entity, key, identifier, kind = subject.entity, subject.key, subject.text, subject.kind
        likeable = kind == "text" and (entity != "attributes" or key in ("name", "status"))
        if op in ("like", "ilike") and not likeable:
            message = f"'{op}' applies to params, tags, attributes.name and attributes.status"
            raise self.error(f"{message}, not to {identifier}", position)
        if op in _ORDERING and kind == "text":
            raise self.error(
                f"{identifier} compares as a string, so '{op}' is not supported; "
                "use =, !=, like, ilike, in or not in",
                position,
            )

    def check_value(self, subject: _Subject, op: Op, literal: _Literal) -> Scalar:
        """Check a literal's type against the subject; return the value to compare."""
        entity, key, identifier, kind = subject.entity, subject.key, subject.text, subject.kind
        value = literal.value
        if kind == "number":
            if isinstance(value, str):
                number = value if _NUMBER.fullmatch(value) else "0.9"
                message = f"metrics compare with numbers; write {number} instead of {literal.text}"
                raise self.error(message, literal.position)
            return float(value)
        if kind == "integer":
            if isinstance(value, str) or not float(value).is_integer() or abs(value) >= 2**63:
                message = f"{identifier} compares with integers (milliseconds since the epoch)"
                raise self.error(f"{message}, not {literal.text}", literal.position)
            return int(value)
        if not isinstance(value, str):
            noun = f"{identifier} compares" if entity == "attributes" else f"{entity} compare"
            quoted = f"'{literal.text}'"
            fix = quoted if op in ("in", "not in") else f"{identifier} {op} {quoted}"
            raise self.error(f"{noun} as strings; write {fix}", literal.position)
        if op in ("like", "ilike"):
            if (len(value) - len(value.rstrip("\\"))) % 2:
                message = "a like pattern cannot end with the escape character '\\'"
                raise self.error(message, literal.position)
        elif entity == "attributes" and key == "status":
            if value.upper() not in _STATUSES:
                message = f"unknown status {literal.text}; use one of {', '.join(_STATUSES)}"
                raise self.error(message, literal.position)
            return value.upper()
        return value


def _combine(kind: type[And] | type[Or], items: list[Expr]) -> Expr:
    if len(items) == 1:
        return items[0]
    flat: list[Expr] = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else (item,))
    return kind(tuple(flat))


def parse_filter(text: str) -> Expr | None:
    """Parse a run filter; None when it is empty. Raises FilterSyntaxError."""
    if not text.strip():
        return None
    parser = _Parser(text)
    expr = parser.parse_or()
    if not parser.at_end():
        if text[parser.pos] == ")":
            raise parser.error("unexpected ')' without a matching '('")
        raise parser.error(
            f"unexpected {parser.found()}; expected 'and', 'or' or the end of the filter"
        )
    return expr


def parse_order_by(clauses: Sequence[str] | str | None) -> list[OrderKey]:
    """Parse sort clauses such as ``"metrics.f1 desc"`` or ``"start_time, params.lr asc"``.

    Each clause may hold several comma-separated keys; bare attribute names are allowed.
    """
    if clauses is None:
        return []
    keys: list[OrderKey] = []
    for clause in [clauses] if isinstance(clauses, str) else clauses:
        parser = _Parser(clause)
        while not parser.at_end():
            subject = parser.parse_identifier(bare_attributes=True)
            descending = parser.keyword("desc") is not None
            if not descending:
                parser.keyword("asc")
            keys.append(OrderKey(subject.entity, subject.key, descending))
            if parser.at_end():
                break
            if not clause.startswith(",", parser.pos):
                raise parser.error(
                    f"expected 'asc', 'desc' or ',' after '{subject.text}', found {parser.found()}"
                )
            parser.pos += 1
            if parser.at_end():
                raise parser.error("unexpected ',' at the end; add a sort key after it")
    return keys


_KEY_VALUE_TABLES = {"metrics": latest_metrics, "params": params, "tags": run_tags}
_SQL_OPERATORS = {
    "=": operators.eq, "!=": operators.ne, "<": operators.lt, "<=": operators.le,
    ">": operators.gt, ">=": operators.ge, "in": operators.in_op, "not in": operators.not_in_op,
}  # fmt: skip


def _attribute_column(runs: FromClause, key: str) -> ColumnElement[Any]:
    return runs.c["id" if key == "run_id" else key]


def filter_to_sql(expr: Expr, runs: FromClause = runs_table) -> ColumnElement[bool]:
    """A WHERE clause on ``runs`` (or an alias of it); see the module docstring for semantics.

    Metrics, params and tags become correlated EXISTS subqueries, so ``!=`` means "has the
    key and its value differs" and ``is null`` means "has no such key".
    """
    if isinstance(expr, And):
        return sa.and_(*(filter_to_sql(item, runs) for item in expr.items))
    if isinstance(expr, Or):
        return sa.or_(*(filter_to_sql(item, runs) for item in expr.items))
    if expr.entity == "attributes":
        return _compare(_attribute_column(runs, expr.key), expr.op, expr.value)
    table = _KEY_VALUE_TABLES[expr.entity]
    has_key = [table.c.run_id == runs.c.id, table.c.key == expr.key]
    if expr.op == "is null":
        return ~sa.exists().where(*has_key)
    if expr.op == "is not null":
        return sa.exists().where(*has_key)
    return sa.exists().where(*has_key, _compare(table.c.value, expr.op, expr.value))


def _compare(column: ColumnElement[Any], op: Op, value: Value) -> ColumnElement[bool]:
    if op == "is null":
        return column.is_(None)
    if op == "is not null":
        return column.is_not(None)
    if op == "like":
        return _CaseSensitiveLike(column, str(value))
    if op == "ilike":
        # SQLAlchemy renders ILIKE on PostgreSQL and lower() LIKE lower() on SQLite.
        return column.ilike(str(value), escape="\\")
    return column.operate(_SQL_OPERATORS[op], list(value) if isinstance(value, tuple) else value)


class _CaseSensitiveLike(FunctionElement[bool]):
    """``column LIKE pattern``, case-sensitive on SQLite too (its LIKE ignores ASCII case)."""

    name = "case_sensitive_like"
    type = sa.Boolean()
    inherit_cache = True

    def __init__(self, column: ColumnElement[Any], pattern: str) -> None:
        super().__init__(
            column,
            sa.literal(pattern, sa.String()),
            sa.literal(_like_to_glob(pattern), sa.String()),
        )


@compiles(_CaseSensitiveLike)
def _compile_like(element: _CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    column, pattern, _ = element.clauses
    return compiler.process(column.like(pattern, escape="\\"), **kw)


@compiles(_CaseSensitiveLike, "sqlite")
def _compile_glob(element: _CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    column, _, glob = element.clauses
    return compiler.process(column.op("GLOB", is_comparison=True)(glob), **kw)


def _like_to_glob(pattern: str) -> str:
    """Translate a LIKE pattern (``\\`` escapes) to SQLite's case-sensitive GLOB syntax."""
    glob: list[str] = []
    escaped = False
    for char in pattern:
        if escaped or char not in "%_\\":
            glob.append(f"[{char}]" if char in "*?[" else char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            glob.append("*" if char == "%" else "?")
    return "".join(glob)


def order_by_to_sql(
    keys: Sequence[OrderKey], runs: FromClause = runs_table
) -> list[ColumnElement[Any]]:
    """ORDER BY expressions on ``runs``, missing values last, with a deterministic tiebreak.

    Metrics, params and tags sort through correlated scalar subqueries, so the caller
    needs no joins. Ties break on ``start_time DESC`` (unless sorted on already), then id.
    """
    order: list[ColumnElement[Any]] = []
    for key in keys:
        if key.entity == "attributes":
            column = _attribute_column(runs, key.key)
        else:
            table = _KEY_VALUE_TABLES[key.entity]
            column = (
                sa.select(table.c.value)
                .where(table.c.run_id == runs.c.id, table.c.key == key.key)
                .scalar_subquery()
            )
        order.append((column.desc() if key.descending else column.asc()).nulls_last())
    if not any(key.entity == "attributes" and key.key == "start_time" for key in keys):
        order.append(runs.c.start_time.desc())
    order.append(runs.c.id.asc())
    return order
