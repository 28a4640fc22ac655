"""Silences: label matchers that mute notifications for a while.

A silenced alert still changes state (and records its events); only its notifications
are held back. An alert is silenced when every matcher of an active silence matches its
labels: ``name=value`` (equal), ``name!=value``, ``name=~regex``, ``name!~regex``
(regexes match the whole value; a missing label is the empty string), as in Alertmanager.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from mlops.errors import InvalidInput, NotFound
from mlops.registry._audited import audit
from mlops.store import Store
from mlops.store._schema import alert_silences

__all__ = [
    "Matcher",
    "Silence",
    "SilenceState",
    "check_matchers",
    "create_silence",
    "expire_silence",
    "is_silenced",
    "list_silences",
]

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.DOTALL)
_OPERATORS = ("=", "!=", "=~", "!~")
_COMMENT_MAX = 2000


@dataclass(frozen=True, slots=True)
class Matcher:
    """``name <op> value`` on one label; op is one of ``=``, ``!=``, ``=~``, ``!~``."""

    name: str
    value: str
    op: str = "="
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            raise InvalidInput(f"silence matcher label {self.name!r} is not a label name")
        if not isinstance(self.value, str):
            raise InvalidInput(f"silence matcher value for {self.name!r} must be a string")
        if self.op not in _OPERATORS:
            raise InvalidInput(
                f"silence matcher operator {self.op!r} is unknown; use {' '.join(_OPERATORS)}"
            )
        if self.op in ("=~", "!~"):
            try:
                object.__setattr__(self, "_pattern", re.compile(self.value))
            except re.error as error:
                raise InvalidInput(
                    f"silence matcher {self.name}{self.op}{self.value!r}: the regex does not "
                    f"compile ({error})"
                ) from None

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``"endpoint=churn"``, ``"severity=~warning|critical"``, ``"rule!=x"``."""
        match = _MATCHER.match(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidInput(
                f"silence matcher {text!r} is not like 'label=value' (or !=, =~ regex, !~)"
            )
        name, op, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        return cls(name=name, value=value, op=op)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self._pattern is not None:
            found = self._pattern.fullmatch(actual) is not None
            return found if self.op == "=~" else not found
        return (actual == self.value) == (self.op == "=")

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}


class SilenceState(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes notifications of alerts its matchers all match, from ``starts_at`` until
    ``ends_at`` (ms since the epoch)."""

    id: int
    matchers: tuple[Matcher, ...]
    starts_at: int
    ends_at: int
    comment: str
    created_by: str | None
    created_at: int

    def state(self, now_ms: int) -> SilenceState:
        if now_ms >= self.ends_at:
            return SilenceState.EXPIRED
        return SilenceState.ACTIVE if now_ms >= self.starts_at else SilenceState.PENDING

    def mutes(self, labels: Mapping[str, str], now_ms: int) -> bool:
        return self.state(now_ms) is SilenceState.ACTIVE and all(
            matcher.matches(labels) for matcher in self.matchers
        )

    def to_json(self, now_ms: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [str(matcher) for matcher in self.matchers],
            "state": self.state(now_ms).value,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "comment": self.comment,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }


def check_matchers(matchers: Mapping[str, str] | Sequence[str | Matcher]) -> tuple[Matcher, ...]:
    """Matchers from ``{"endpoint": "churn"}`` (equality) or ``["endpoint=churn", ...]``."""
    if isinstance(matchers, Mapping):
        checked = tuple(Matcher(name=name, value=value) for name, value in matchers.items())
    elif isinstance(matchers, Sequence) and not isinstance(matchers, str):
        checked = tuple(
            item if isinstance(item, Matcher) else Matcher.parse(item) for item in matchers
        )
    else:
        raise InvalidInput(
            f"silence matchers must be a mapping or a list like ['endpoint=churn']; "
            f"got {matchers!r}"
        )
    if not any(not matcher.matches({}) for matcher in checked):
        raise InvalidInput(
            "a silence needs at least one matcher that an empty label does not match, so it "
            "cannot mute everything; e.g. rule=latency-p95 or endpoint=churn"
        )
    return checked


def is_silenced(labels: Mapping[str, str], silences: Sequence[Silence], now_ms: int) -> bool:
    return any(silence.mutes(labels, now_ms) for silence in silences)


def create_silence(
    store: Store,
    matchers: tuple[Matcher, ...],
    *,
    starts_at: int,
    ends_at: int,
    comment: str,
    created_by: str | None,
    now_ms: int,
) -> Silence:
    if not isinstance(comment, str) or not comment.strip() or len(comment) > _COMMENT_MAX:
        raise InvalidInput(
            f"a silence needs a comment (at most {_COMMENT_MAX} characters) saying why, "
            "e.g. 'planned maintenance of churn'"
        )
    if ends_at <= starts_at or ends_at <= now_ms:
        raise InvalidInput(
            "a silence must end after it starts and in the future; give a positive duration "
            "such as '2h'"
        )
    encoded = json.dumps([matcher.to_json() for matcher in matchers])
    with store.write() as connection:
        inserted = connection.execute(
            alert_silences.insert().values(
                matchers=encoded,
                starts_at=starts_at,
                ends_at=ends_at,
                comment=comment,
                created_by=created_by,
                created_at=now_ms,
            )
        )
        silence_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
        silence = Silence(silence_id, matchers, starts_at, ends_at, comment, created_by, now_ms)
        audit(
            connection,
            "alert_silence.created",
            _target(silence_id),
            actor=created_by,
            after=_audited(silence),
        )
    return silence


def list_silences(
    store: Store, now_ms: int, *, state: SilenceState | str | None = None, limit: int = 1000
) -> list[Silence]:
    """Silences, newest first; ``state`` filters on pending, active or expired at now."""
    query = sa.select(alert_silences).order_by(alert_silences.c.id.desc()).limit(limit)
    if state is not None:
        if state not in set(SilenceState):
            choices = ", ".join(item.value for item in SilenceState)
            raise InvalidInput(f"silence state {state!r} is unknown; use one of {choices}")
        wanted = SilenceState(state)
        if wanted is SilenceState.EXPIRED:
            query = query.where(alert_silences.c.ends_at <= now_ms)
        else:
            query = query.where(alert_silences.c.ends_at > now_ms)
            starts = alert_silences.c.starts_at
            query = query.where(
                starts <= now_ms if wanted is SilenceState.ACTIVE else starts > now_ms
            )
    with store.read() as connection:
        rows = connection.execute(query).all()
    return [_silence(row._mapping) for row in rows]


def active_silences(store: Store, now_ms: int) -> list[Silence]:
    return list_silences(store, now_ms, state=SilenceState.ACTIVE)


def expire_silence(store: Store, silence_id: int, now_ms: int, *, actor: str | None) -> Silence:
    """End a silence now, audited as ``actor`` (an expired one stays as it was)."""
    query = sa.select(alert_silences).where(alert_silences.c.id == silence_id)
    with store.write() as connection:
        before = connection.execute(query if store.is_sqlite else query.with_for_update()).first()
        if before is None:
            raise NotFound(
                f"there is no silence with id {silence_id!r}; see `mlops alerts silences --all`"
            )
        changed = connection.execute(
            alert_silences.update()
            .where(alert_silences.c.id == silence_id, alert_silences.c.ends_at > now_ms)
            .values(ends_at=now_ms)
        ).rowcount
        row = connection.execute(query).one()
        if changed:
            audit(
                connection,
                "alert_silence.expired",
                _target(silence_id),
                actor=actor,
                before=_audited(_silence(before._mapping)),
                after=_audited(_silence(row._mapping)),
            )
    return _silence(row._mapping)


def _target(silence_id: int) -> str:
    """A silence as the audit log names it."""
    return f"alert_silences/{silence_id}"


def _audited(silence: Silence) -> dict[str, Any]:
    return {
        "matchers": [matcher.to_json() for matcher in silence.matchers],
        "starts_at": silence.starts_at,
        "ends_at": silence.ends_at,
        "comment": silence.comment,
    }


def _silence(row: Any) -> Silence:
    matchers = tuple(Matcher(**item) for item in json.loads(row["matchers"]))
    return Silence(
        id=int(row["id"]),
        matchers=matchers,
        starts_at=int(row["starts_at"]),
        ends_at=int(row["ends_at"]),
        comment=row["comment"],
        created_by=row["created_by"],
        created_at=int(row["created_at"]),
    )
