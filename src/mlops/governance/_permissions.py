"""Roles and permissions as data, and the check of a principal against them.

Roles are ordered, each holding the permissions of those below it::

    viewer < editor (log runs, register versions) < deployer (stages, deployments)
           < admin (users, tokens, settings)

A user scoped to model-name patterns may act only on matching models; the scope applies
to checks that name a model, nothing else.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType

from mlops.errors import InvalidInput, PermissionDenied

__all__ = ["PERMISSIONS", "ROLES", "Principal", "authorize", "parse_expiry"]

#: Roles from least to most privileged; each has every permission of those before it.
ROLES: tuple[str, ...] = ("viewer", "editor", "deployer", "admin")

#: Each permission and the least role that holds it.
PERMISSIONS: Mapping[str, str] = MappingProxyType(
    {
        "read": "viewer",
        "experiments.write": "editor",
        "runs.write": "editor",
        "models.register": "editor",
        "pipelines.run": "editor",
        "models.stage": "deployer",
        "deployments.write": "deployer",
        "alerts.write": "deployer",
        "pipelines.write": "deployer",
        "audit.read": "admin",
        "users.admin": "admin",
        "tokens.admin": "admin",
        "settings.admin": "admin",
    }
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the user behind a token."""

    user_id: int
    name: str
    role: str
    models: tuple[str, ...] | None
    token_id: int | None = None

    def can(self, permission: str, *, model: str | None = None) -> bool:
        """Whether ``authorize`` would allow it."""
        try:
            authorize(self, permission, model=model)
        except PermissionDenied:
            return False
        return True


def authorize(principal: Principal, permission: str, *, model: str | None = None) -> None:
    """Raise ``PermissionDenied`` naming what is missing unless the principal may do it."""
    needed = PERMISSIONS.get(permission)
    if needed is None:
        raise InvalidInput(
            f"unknown permission {permission!r}; known: {', '.join(sorted(PERMISSIONS))}"
        )
    rank = ROLES.index(principal.role) if principal.role in ROLES else -1
    if rank < ROLES.index(needed):
        raise PermissionDenied(
            f"user {principal.name!r} (role {principal.role}) lacks permission "
            f"{permission!r}, which needs role {needed} or higher; an admin can grant it "
            f"with `mlops users set-role {principal.name} {needed}`"
        )
    scopes = principal.models
    if (
        model is not None
        and scopes is not None
        and not any(fnmatch.fnmatchcase(model, pattern) for pattern in scopes)
    ):
        raise PermissionDenied(
            f"user {principal.name!r} may act only on models matching "
            f"{', '.join(repr(pattern) for pattern in scopes)}, not on model {model!r}"
        )


def parse_expiry(value: timedelta | float | str) -> timedelta:
    """A token lifetime from a timedelta, seconds, or text such as "12h", "30d", "2w"."""
    if isinstance(value, timedelta):
        lifetime = value
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise InvalidInput(
                f"expiry {value!r} is not a duration; give a number with s, m, h, d or w, "
                "such as '12h' or '30d'"
            )
        lifetime = timedelta(seconds=float(match.group(1)) * _DURATION_UNITS[match.group(2)])
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        lifetime = timedelta(seconds=value)
    else:
        raise InvalidInput(f"expiry must be a duration such as '30d', got {value!r}")
    if lifetime <= timedelta(0):
        raise InvalidInput(f"expiry must be a positive duration, got {value!r}")
    return lifetime
