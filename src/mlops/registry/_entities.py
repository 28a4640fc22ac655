"""Records returned by the model registry, and model URIs."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops.errors import InvalidInput

__all__ = [
    "ApprovalRequest",
    "ApprovalStatus",
    "ModelReference",
    "ModelVersion",
    "RegisteredModel",
    "Stage",
    "Transition",
    "parse_model_uri",
]


class Stage(enum.StrEnum):
    """A version's stage; at most one version of a model is in production."""

    NONE = "none"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"

    @classmethod
    def parse(cls, value: object) -> Stage:
        try:
            return cls(str(value).lower())
        except ValueError:
            allowed = ", ".join(stage.value for stage in cls)
            raise InvalidInput(f"stage {value!r} is not one of {allowed}") from None


class ApprovalStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model; its versions hold the packages."""

    id: int
    name: str
    created_at: int
    updated_at: int
    description: str | None = None
    owner: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, int] = field(default_factory=dict)
    latest_version: int | None = None
    production_version: int | None = None


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered package of a model, with its lineage and integrity records."""

    model_name: str
    number: int
    semver: str
    stage: Stage
    flavor: str
    manifest_digest: str
    artifact_uri: str
    created_at: int
    metrics: Mapping[str, float] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    run_id: str | None = None
    parent_version: int | None = None
    datasets: tuple[tuple[str, str, str], ...] = ()
    description: str | None = None
    created_by: str | None = None
    signed_by: str | None = None
    signature: Mapping[str, Any] | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.model_name}/{self.semver}"


@dataclass(frozen=True, slots=True)
class Transition:
    """A recorded stage or alias change."""

    model_name: str
    version: int
    kind: str  # "stage" or "alias"
    name: str | None
    from_value: str | None
    to_value: str | None
    actor: str | None
    reason: str | None
    created_at: int
    replaced_version: int | None = None


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A production transition waiting for a second identity to approve it."""

    id: int
    model_name: str
    version: int
    semver: str
    to_stage: Stage
    status: ApprovalStatus
    requested_by: str | None
    reason: str | None
    created_at: int
    decided_by: str | None = None
    comment: str | None = None
    decided_at: int | None = None


@dataclass(frozen=True, slots=True)
class ModelReference:
    """A parsed model reference: exactly one of stage, alias, semver, number, latest."""

    name: str
    stage: Stage | None = None
    alias: str | None = None
    semver: str | None = None
    number: int | None = None
    latest: bool = False

    def __str__(self) -> str:
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        selector = (
            self.stage.value
            if self.stage is not None
            else self.semver or (str(self.number) if self.number is not None else "latest")
        )
        return f"models:/{self.name}/{selector}"


_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<selector>[^/]+))$")


def parse_version_selector(name: str, selector: object) -> ModelReference:
    """A version given as a number, a semver string, a stage, or "latest"."""
    if isinstance(selector, bool):
        raise InvalidInput(f"version {selector!r} of model {name!r} is not a version")
    if isinstance(selector, int):
        if selector < 1:
            raise InvalidInput(f"version numbers start at 1, got {selector}")
        return ModelReference(name, number=selector)
    if not isinstance(selector, str) or not selector:
        raise InvalidInput(
            f"a version of model {name!r} is a number (3), a semantic version ('1.2.0'), "
            f"a stage ('production') or 'latest', got {selector!r}"
        )
    if selector.isdigit():
        return parse_version_selector(name, int(selector))
    if _SEMVER.match(selector):
        return ModelReference(name, semver=selector)
    if selector.lower() == "latest":
        return ModelReference(name, latest=True)
    if selector.lower() in {stage.value for stage in Stage}:
        return ModelReference(name, stage=Stage(selector.lower()))
    if selector.startswith("@"):
        return ModelReference(name, alias=selector[1:])
    raise InvalidInput(
        f"{selector!r} is not a version of model {name!r}: give a number (3), a semantic "
        "version ('1.2.0'), a stage ('production'), '@alias' or 'latest'"
    )


def parse_model_uri(uri: str) -> ModelReference:
    """Parse ``models:/name/production``, ``models:/name@champion``, ``models:/name/1.2.0``."""
    match = _URI.match(uri) if isinstance(uri, str) else None
    if match is None:
        raise InvalidInput(
            f"{uri!r} is not a model URI; write models:/NAME/STAGE, models:/NAME@ALIAS, "
            "models:/NAME/1.2.0 or models:/NAME/3"
        )
    if match.group("alias") is not None:
        return ModelReference(match.group("name"), alias=match.group("alias"))
    return parse_version_selector(match.group("name"), match.group("selector"))


def parse_semver(text: str) -> tuple[int, int, int]:
    if not isinstance(text, str) or not _SEMVER.match(text):
        raise InvalidInput(
            f"{text!r} is not a semantic version; write MAJOR.MINOR.PATCH such as '1.4.0'"
        )
    major, minor, patch = (int(part) for part in text.split("."))
    return major, minor, patch
