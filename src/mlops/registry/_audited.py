"""Audit entries for registry changes, written in the change's own transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from mlops.governance import append

#: The actor recorded when neither the call nor the registry names one.
UNKNOWN_ACTOR = "unknown"


def audit(
    connection: Connection,
    action: str,
    target: str,
    *,
    actor: str | None,
    before: Any = None,
    after: Any = None,
) -> None:
    """Append an audit entry; call it last in the ``store.write()`` block of the change.

    On PostgreSQL the append holds the audit lock until commit, so the later it comes,
    the shorter other writers wait.
    """
    append(
        connection,
        actor=actor or UNKNOWN_ACTOR,
        action=action,
        target=target,
        before=before,
        after=after,
    )


def version_target(model: str, number: int) -> str:
    return f"models/{model}/{number}"
