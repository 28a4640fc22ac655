"""The exception tree of mlops.

Every error raised on purpose by mlops derives from ``MLOpsError``; its message says
what failed and what to do about it.

    MLOpsError
    ├── NotFound            (also LookupError)   an experiment, run, model… does not exist
    ├── AlreadyExists                            a name or key is taken
    ├── InvalidInput        (also ValueError)    an argument is malformed
    │   └── FilterSyntaxError                    a search filter does not parse
    ├── Conflict                                 the request contradicts stored state
    │   ├── RunNotActive                         logging to a run that has ended
    │   └── PolicyViolation                      a promotion breaks the model's policy
    ├── Unauthenticated                          no API token, or one that is not valid
    ├── PermissionDenied    (also PermissionError)
    ├── IntegrityError                           stored bytes do not match their digest
    ├── StorageError        (also OSError)       the database or artifact store failed
    └── MissingDependency   (also ImportError)   an optional extra is not installed
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "Conflict",
    "FilterSyntaxError",
    "IntegrityError",
    "InvalidInput",
    "MLOpsError",
    "MissingDependency",
    "NotFound",
    "PermissionDenied",
    "PolicyViolation",
    "RunNotActive",
    "StorageError",
    "Unauthenticated",
]


class MLOpsError(Exception):
    """Base class of every error that mlops raises on purpose."""

    #: A stable, machine-readable code (used by the REST API's error bodies).
    code = "mlops_error"


class NotFound(MLOpsError, LookupError):
    """The named entity does not exist."""

    code = "not_found"


class AlreadyExists(MLOpsError):
    """An entity with that name or key already exists."""

    code = "already_exists"


class InvalidInput(MLOpsError, ValueError):
    """An argument is malformed: a bad name, a wrong type, an out-of-range value."""

    code = "invalid_input"


class FilterSyntaxError(InvalidInput):
    """A search filter string does not parse; ``position`` points at the offending text."""

    code = "invalid_filter"

    def __init__(self, message: str, *, text: str, position: int) -> None:
        pointer = " " * position + "^"
        super().__init__(f"{message} at position {position}:\n  {text}\n  {pointer}")
        self.text = text
        self.position = position


class Conflict(MLOpsError):
    """The request contradicts stored state (a changed param, a concurrent update)."""

    code = "conflict"


class RunNotActive(Conflict):
    """A run that has ended cannot take new data."""

    code = "run_not_active"


class PolicyViolation(Conflict):
    """A stage change breaks the model's promotion policy; the message names the rule."""

    code = "policy_violation"


class Unauthenticated(MLOpsError):
    """No API token was given, or it is unknown, revoked, expired or its user disabled."""

    code = "unauthenticated"


class PermissionDenied(MLOpsError, PermissionError):
    """The caller lacks the permission the action needs."""

    code = "permission_denied"


class IntegrityError(MLOpsError):
    """Stored bytes do not match the digest recorded for them."""

    code = "integrity_error"


class StorageError(MLOpsError, OSError):
    """The metadata database or the artifact store failed."""

    code = "storage_error"


class MissingDependency(MLOpsError, ImportError):
    """An optional dependency is not installed; the message names the extra."""

    code = "missing_dependency"

    @classmethod
    def for_extra(cls, module: str, extra: str, purpose: str) -> MissingDependency:
        return cls(
            f"{purpose} needs the '{module}' package, which is not installed; "
            f"install it with: pip install 'mlops[{extra}]'"
        )
