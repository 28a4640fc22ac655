"""Shared reads of registry rows: models, versions, version resolution."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from mlops.errors import InvalidInput, NotFound
from mlops.registry._entities import ModelReference, ModelVersion, RegisteredModel, Stage
from mlops.store._schema import (
    datasets,
    model_aliases,
    model_tags,
    model_version_inputs,
    model_versions,
    registered_models,
)

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][\w\-.]{0,249}$")
_ALIAS = re.compile(r"^[A-Za-z][\w\-]{0,62}$")


def check_model_name(name: object) -> str:
    """Model names appear in URIs (models:/NAME/...), so no '/', '@' or spaces."""
    if not isinstance(name, str) or _MODEL_NAME.match(name) is None:
        raise InvalidInput(
            f"model name {name!r} is not valid; use 1-250 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (e.g. 'churn-classifier')"
        )
    return name


def check_alias(alias: object) -> str:
    if not isinstance(alias, str) or _ALIAS.match(alias) is None:
        raise InvalidInput(
            f"alias {alias!r} is not valid; use a letter then letters, digits, '_' or '-' "
            "(e.g. 'champion')"
        )
    if alias.lower() in {stage.value for stage in Stage} or alias.lower() == "latest":
        raise InvalidInput(f"alias {alias!r} would read as a stage; pick another name")
    return alias


def model_row(connection: Connection, name: str, *, lock: bool = False) -> Row[Any]:
    query = sa.select(registered_models).where(registered_models.c.name == name)
    if lock:
        query = query.with_for_update()
    row = connection.execute(query).first()
    if row is None:
        raise NotFound(
            f"model {name!r} does not exist; register a version with "
            "ml.registry.register_model(name, model) (see `mlops models list`)"
        )
    return row


def version_row(connection: Connection, reference: ModelReference) -> Row[Any]:
    """The version row a reference points at, or NotFound that says what exists."""
    model = model_row(connection, reference.name)
    query = sa.select(model_versions).where(model_versions.c.model_id == model.id)
    if reference.alias is not None:
        query = query.join(
            model_aliases,
            sa.and_(
                model_aliases.c.version_id == model_versions.c.id,
                model_aliases.c.alias == reference.alias,
            ),
        )
    elif reference.stage is not None:
        query = query.where(model_versions.c.stage == reference.stage.value).order_by(
            model_versions.c.number.desc()
        )
    elif reference.semver is not None:
        query = query.where(model_versions.c.semver == reference.semver)
    elif reference.number is not None:
        query = query.where(model_versions.c.number == reference.number)
    else:
        query = query.order_by(model_versions.c.number.desc())
    row = connection.execute(query.limit(1)).first()
    if row is None:
        latest = connection.execute(
            sa.select(sa.func.max(model_versions.c.number)).where(
                model_versions.c.model_id == model.id
            )
        ).scalar()
        what = (
            f"alias {reference.alias!r}"
            if reference.alias is not None
            else f"version in {reference.stage.value}"
            if reference.stage is not None
            else f"version {reference.semver or reference.number}"
        )
        hint = f"the latest is version {latest}" if latest else "it has no versions yet"
        raise NotFound(
            f"model {reference.name!r} has no {what}; {hint} "
            f"(see `mlops models versions {reference.name}`)"
        )
    return row


def load_versions(
    connection: Connection, model_name: str, rows: Sequence[Row[Any]]
) -> list[ModelVersion]:
    """Build ModelVersion records (with aliases and datasets) from version rows."""
    if not rows:
        return []
    ids = [row.id for row in rows]
    number_of = dict(
        connection.execute(
            sa.select(model_versions.c.id, model_versions.c.number).where(
                model_versions.c.model_id == rows[0].model_id
            )
        ).all()
    )
    aliases: dict[int, list[str]] = {}
    for version_id, alias in connection.execute(
        sa.select(model_aliases.c.version_id, model_aliases.c.alias)
        .where(model_aliases.c.version_id.in_(ids))
        .order_by(model_aliases.c.alias)
    ):
        aliases.setdefault(version_id, []).append(alias)
    inputs: dict[int, list[tuple[str, str, str]]] = {}
    for version_id, name, digest, context in connection.execute(
        sa.select(
            model_version_inputs.c.version_id,
            datasets.c.name,
            datasets.c.digest,
            model_version_inputs.c.context,
        )
        .join(datasets, datasets.c.id == model_version_inputs.c.dataset_id)
        .where(model_version_inputs.c.version_id.in_(ids))
        .order_by(datasets.c.name)
    ):
        inputs.setdefault(version_id, []).append((name, digest, context))
    return [
        ModelVersion(
            model_name=model_name,
            number=row.number,
            semver=row.semver,
            stage=Stage(row.stage),
            flavor=row.flavor,
            manifest_digest=row.manifest_digest,
            artifact_uri=row.artifact_uri,
            created_at=row.created_at,
            metrics=json.loads(row.metrics),
            metadata=json.loads(row.extra),
            aliases=tuple(aliases.get(row.id, ())),
            run_id=row.run_id,
            parent_version=number_of.get(row.parent_version_id),
            datasets=tuple(inputs.get(row.id, ())),
            description=row.description,
            created_by=row.created_by,
            signed_by=row.signing_key,
        )
        for row in rows
    ]


def load_model_record(connection: Connection, row: Row[Any]) -> RegisteredModel:
    tags = dict(
        connection.execute(
            sa.select(model_tags.c.key, model_tags.c.value).where(model_tags.c.model_id == row.id)
        ).all()
    )
    aliases = dict(
        connection.execute(
            sa.select(model_aliases.c.alias, model_versions.c.number)
            .join(model_versions, model_versions.c.id == model_aliases.c.version_id)
            .where(model_aliases.c.model_id == row.id)
        ).all()
    )
    latest, production = connection.execute(
        sa.select(
            sa.func.max(model_versions.c.number),
            sa.func.max(
                sa.case((model_versions.c.stage == Stage.PRODUCTION.value, model_versions.c.number))
            ),
        ).where(model_versions.c.model_id == row.id)
    ).one()
    return RegisteredModel(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        updated_at=row.updated_at,
        description=row.description,
        owner=row.owner,
        tags=tags,
        aliases=aliases,
        latest_version=latest,
        production_version=production,
    )
