"""Config errors people can act on: pydantic's errors as "where: what; what is allowed".

Every problem names its place in the config the way one would write it by hand,
``train.candidates[1].paramz``, and an unknown key comes with the keys allowed there.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from mlops.errors import InvalidInput

__all__ = ["ConfigProblem", "UnknownKey", "config_error", "format_path"]

Loc = tuple[str | int, ...]


class ConfigProblem(ValueError):
    """Raised in a validator: ``message`` about the place ``at`` below the validated value."""

    def __init__(self, message: str, *, at: Loc = ()) -> None:
        super().__init__(message)
        self.message = message
        self.at = at


class UnknownKey(ConfigProblem):
    """A key that is not allowed at ``at`` (relative to the validated value)."""

    def __init__(self, key: str, allowed: Iterable[str], *, at: Loc = ()) -> None:
        self.key = key
        self.allowed = sorted(allowed)
        super().__init__(f"unknown key {key!r}", at=at)


def format_path(loc: Sequence[str | int]) -> str:
    """``("train", "candidates", 1, "paramz")`` as ``train.candidates[1].paramz``."""
    text = ""
    for item in loc:
        if isinstance(item, int):
            text += f"[{item}]"
        elif item.isidentifier() or item.replace("-", "_").isidentifier():
            text += f".{item}" if text else item
        else:
            text += f"[{item!r}]"
    return text or "the config"


def unknown_key_message(where: Sequence[str | int], key: str, allowed: Iterable[str]) -> str:
    place = format_path(where) if where else "the top level"
    keys = ", ".join(sorted(allowed)) or "none"
    path = format_path([*where, key])
    return f"{path}: unknown key {key!r}; the keys allowed in {place} are: {keys}"


def config_error(
    error: ValidationError, model: type[BaseModel], source: str | None
) -> InvalidInput:
    """One ``InvalidInput`` listing every problem pydantic found, in config terms."""
    lines: dict[str, str] = {}
    expected: dict[str, list[str]] = {}
    for detail in error.errors(include_url=False):
        line = _describe(detail, model)
        path = line.split(":", 1)[0]
        noun = _NOUNS.get(detail["type"])
        if noun is not None:
            # A value failing a union of scalars fails once per member: say it once.
            expected.setdefault(path, []).append(noun)
            if len(expected[path]) > 1:
                nouns = expected[path]
                lines[path] = (
                    f"{path}: expected {', '.join(nouns[:-1])} or {nouns[-1]}, "
                    f"got {_short(detail.get('input'))}"
                )
                continue
        lines.setdefault(line if noun is None else path, line)
    where = f" in {source}" if source else ""
    count = f"{len(lines)} problem{'s' if len(lines) != 1 else ''}"
    return InvalidInput(
        f"invalid training pipeline config{where} ({count}):\n"
        + "\n".join(f"  - {line}" for line in lines.values())
    )


_NOUNS = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "none_required": "null",
}


def _describe(detail: Any, model: type[BaseModel]) -> str:
    loc: Loc = tuple(detail["loc"])
    kind: str = detail["type"]
    message: str = detail["msg"]
    given = detail.get("input")
    context = detail.get("ctx") or {}
    problem = context.get("error")
    if isinstance(problem, ConfigProblem):
        where, _ = _walk(model, loc)
        where = [*where, *problem.at]
        if isinstance(problem, UnknownKey):
            return unknown_key_message(where, problem.key, problem.allowed)
        return f"{format_path(where)}: {problem.message}"
    if kind == "extra_forbidden":
        where, owner = _walk(model, loc[:-1])
        return unknown_key_message(where, str(loc[-1]), _keys(owner))
    where, owner = _walk(model, loc)
    path = format_path(where)
    if kind == "missing":
        return f"{path}: required, but missing"
    if kind == "union_tag_not_found":
        tags = ", ".join(_tags(owner)) or "?"
        return f"{path}: give a 'type', one of {tags}"
    if kind == "union_tag_invalid":
        return f"{path}.type: {context.get('tag')!r} is not one of {', '.join(_tags(owner))}"
    if kind in {"value_error", "assertion_error"}:
        text = (
            message.split(", ", 1)[1]
            if message.startswith(("Value error", "Assertion"))
            else message
        )
        return f"{path}: {text}"
    if kind == "model_type" or kind == "dict_type":
        return f"{path}: expected a mapping of keys to values, got {_short(given)}"
    if kind == "list_type":
        return f"{path}: expected a list, got {_short(given)}"
    return f"{path}: {message[:1].lower()}{message[1:]}, got {_short(given)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _walk(model: type[BaseModel], loc: Loc) -> tuple[list[str | int], Any]:
    """The printable part of ``loc`` and the type found at its end.

    Union member names and discriminator tags that pydantic puts in locations are not
    keys of the config; they are consumed here without being printed.
    """
    printed: list[str | int] = []
    current: Any = model
    for item in loc:
        current = _strip(current)
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(item, str):
            field = _field(current, item)
            if field is None:
                break
            name, info = field
            printed.append(name)
            current = info.annotation
            if info.discriminator is not None:
                current = typing.Annotated[current, info.discriminator]
            continue
        origin = typing.get_origin(current)
        if origin is typing.Annotated:
            members = _members(typing.get_args(current)[0])
            chosen = next((m for m in members if item in _tags(m)), None)
            if chosen is not None:
                current = chosen
                continue
            current = typing.get_args(current)[0]
            origin = typing.get_origin(current)
        if origin in (list, tuple, Sequence) and isinstance(item, int):
            printed.append(item)
            current = typing.get_args(current)[0]
        elif origin is dict and isinstance(item, str):
            printed.append(item)
            current = typing.get_args(current)[1]
        else:
            break  # a scalar union's member name, or somewhere the types do not go
    return printed, _strip(current)


def _strip(annotation: Any) -> Any:
    """``X | None`` as ``X``; anything else as it is."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _field(model: type[BaseModel], key: str) -> tuple[str, Any] | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.alias or name, info
    return None


def _keys(owner: Any) -> list[str]:
    if isinstance(owner, type) and issubclass(owner, BaseModel):
        return [info.alias or name for name, info in owner.model_fields.items()]
    return []


def _tags(annotation: Any) -> list[str]:
    """The discriminator values of a union (or of one member model)."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    tags: list[str] = []
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            field = member.model_fields.get("type")
            if field is not None and typing.get_origin(field.annotation) is typing.Literal:
                tags.extend(str(value) for value in typing.get_args(field.annotation))
    return tags
