"""Registering a version: package, sign, upload, then one transaction for the rows."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlops.artifacts import ArtifactStore
from mlops.errors import AlreadyExists, Conflict, InvalidInput
from mlops.governance import key_fingerprint, load_private_key, sign_digest
from mlops.models import (
    MANIFEST_FILE,
    ModelManifest,
    import_mlflow_model,
    save_model,
    verify_package,
)
from mlops.registry._audited import audit, version_target
from mlops.registry._entities import ModelReference, Stage, parse_semver
from mlops.registry._rows import check_model_name, version_row
from mlops.registry._webhooks import record_event
from mlops.store import Store
from mlops.store._schema import (
    datasets,
    model_version_inputs,
    model_versions,
    registered_models,
    run_inputs,
    runs,
)
from mlops.tracking import Dataset
from mlops.tracking._validation import check_run_id, now_ms


def check_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise InvalidInput("metrics must map metric names to numbers, e.g. {'f1': 0.87}")
    checked = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key:
            raise InvalidInput(f"metric name {key!r} must be a non-empty string")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"metric {key!r} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise InvalidInput(f"metric {key!r} is {value}; registry metrics must be finite")
        checked[key] = float(value)
    return checked


def check_metadata(metadata: Mapping[str, Any] | None) -> str:
    if metadata is None:
        return "{}"
    if not isinstance(metadata, Mapping):
        raise InvalidInput("metadata must be a mapping of JSON-serializable values")
    try:
        return json.dumps(dict(metadata), sort_keys=True)
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"metadata is not JSON-serializable: {error}") from error


def build_package(
    model: Any,
    folder: Path,
    *,
    flavor: str | None,
    input_example: Any,
    signature: Any,
    reference_data: Any,
    metadata: Mapping[str, Any] | None,
) -> tuple[Path, ModelManifest]:
    """A verified package folder for ``model``: an object, a package folder, or an MLflow one."""
    if isinstance(model, (str, os.PathLike)):
        source = Path(model)
        if (source / MANIFEST_FILE).is_file():
            return source, verify_package(source)
        if (source / "MLmodel").is_file():
            target = folder / "package"
            return target, import_mlflow_model(source, target)
        raise InvalidInput(
            f"{source} is neither an mlops model package (no {MANIFEST_FILE}) nor an MLflow "
            "model folder (no MLmodel); pass the model object, or save it with "
            "mlops.models.save_model first"
        )
    target = folder / "package"
    manifest = save_model(
        model,
        target,
        flavor=flavor,
        input_example=input_example,
        signature=signature,
        reference_data=reference_data,
        metadata=metadata,
    )
    return target, manifest


def next_semver(
    connection: Connection, model_id: int, manifest: ModelManifest, explicit: str | None
) -> str:
    """1.0.0 first; a compatible signature bumps the minor number, an incompatible the major."""
    existing = connection.execute(
        sa.select(model_versions.c.semver, model_versions.c.manifest)
        .where(model_versions.c.model_id == model_id)
        .order_by(model_versions.c.number.desc())
    ).all()
    taken = {row.semver for row in existing}
    if explicit is not None:
        parse_semver(explicit)
        if explicit in taken:
            raise AlreadyExists(f"version {explicit} of this model already exists")
        return explicit
    if not existing:
        return "1.0.0"
    major, minor, _ = max(parse_semver(semver) for semver in taken)
    previous = ModelManifest.from_json(existing[0].manifest).signature
    current = manifest.signature
    if previous is None and current is None:
        compatible = True
    elif previous is None or current is None:
        compatible = False
    else:
        compatible = current.is_compatible_with(previous)
    return f"{major}.{minor + 1}.0" if compatible else f"{major + 1}.0.0"


class VersionWriter:
    """Writes new versions: files first under a fresh prefix, then the rows in one go."""

    def __init__(self, store: Store, artifacts: ArtifactStore) -> None:
        self._store = store
        self._artifacts = artifacts

    def register(
        self,
        name: str,
        model: Any,
        *,
        actor: str | None,
        metrics: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        input_example: Any = None,
        signature: Any = None,
        flavor: str | None = None,
        reference_data: Any = None,
        run_id: str | None = None,
        datasets_used: Iterable[Dataset | tuple[Dataset, str]] = (),
        parent_version: ModelReference | None = None,
        version: str | None = None,
        description: str | None = None,
        sign_with: Any = None,
        presigned: tuple[str, str] | None = None,
    ) -> int:
        """Register and return the new version's number.

        ``presigned`` is a (signature, key fingerprint) pair made where the private key
        lives (a remote client signs the manifest digest before uploading)."""
        check_model_name(name)
        checked_metrics = check_metrics(metrics)
        metadata_json = check_metadata(metadata)
        if run_id is not None:
            check_run_id(run_id)
        if version is not None:
            parse_semver(version)
        links = _dataset_links(datasets_used)
        private_key = None if sign_with is None else load_private_key(sign_with)
        if presigned is not None:
            _check_presigned(presigned, private_key)
        with tempfile.TemporaryDirectory(prefix="mlops-register-") as temp:
            folder, manifest = build_package(
                model,
                Path(temp),
                flavor=flavor,
                input_example=input_example,
                signature=signature,
                reference_data=reference_data,
                metadata=metadata,
            )
            prefix = f"models/{name}/{uuid.uuid4().hex}"
            self._artifacts.put_dir(folder, prefix)
        try:
            return self._insert(
                name,
                manifest,
                prefix,
                actor=actor,
                metrics=checked_metrics,
                metadata_json=metadata_json,
                run_id=run_id,
                links=links,
                parent_version=parent_version,
                version=version,
                description=description,
                signed=presigned
                if private_key is None
                else (
                    sign_digest(private_key, manifest.digest),
                    key_fingerprint(private_key),
                ),
            )
        except BaseException:
            # Nothing half-registered: the rows rolled back, so the files go too.
            self._artifacts.delete(prefix)
            raise

    def _insert(
        self,
        name: str,
        manifest: ModelManifest,
        prefix: str,
        *,
        actor: str | None,
        metrics: dict[str, float],
        metadata_json: str,
        run_id: str | None,
        links: list[tuple[Dataset, str]],
        parent_version: ModelReference | None,
        version: str | None,
        description: str | None,
        signed: tuple[str, str] | None,
    ) -> int:
        created = now_ms()
        with self._store.write() as connection:
            model_id, model_created = self._ensure_model(connection, name, actor, created)
            if (
                run_id is not None
                and connection.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first()
                is None
            ):
                raise InvalidInput(f"run '{run_id}' does not exist; lineage needs a real run")
            parent_id = None
            if parent_version is not None:
                parent_id = version_row(connection, parent_version).id
            number = (
                connection.execute(
                    sa.select(sa.func.coalesce(sa.func.max(model_versions.c.number), 0)).where(
                        model_versions.c.model_id == model_id
                    )
                ).scalar_one()
                + 1
            )
            semver = next_semver(connection, model_id, manifest, version)
            inserted = connection.execute(
                model_versions.insert().values(
                    model_id=model_id,
                    number=number,
                    semver=semver,
                    stage=Stage.NONE.value,
                    flavor=manifest.flavor,
                    manifest=manifest.to_json(),
                    manifest_digest=manifest.digest,
                    artifact_uri=self._artifacts.url(prefix),
                    artifact_prefix=prefix,
                    run_id=run_id,
                    parent_version_id=parent_id,
                    description=description,
                    metrics=json.dumps(metrics, sort_keys=True),
                    extra=metadata_json,
                    signature=None if signed is None else signed[0],
                    signing_key=None if signed is None else signed[1],
                    created_by=actor,
                    created_at=created,
                )
            )
            version_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
            self._link_datasets(connection, version_id, run_id, links, created)
            connection.execute(
                registered_models.update()
                .where(registered_models.c.id == model_id)
                .values(updated_at=created)
            )
            record_event(
                connection,
                kind="model.version_created",
                subject=f"models:/{name}/{semver}",
                payload={
                    "model": name,
                    "version": number,
                    "semver": semver,
                    "flavor": manifest.flavor,
                    "metrics": metrics,
                    "run_id": run_id,
                },
                actor=actor,
            )
            if model_created:
                audit(
                    connection,
                    "model.created",
                    f"models/{name}",
                    actor=actor,
                    after={"owner": actor},
                )
            audit(
                connection,
                "model.version_registered",
                version_target(name, number),
                actor=actor,
                after={"semver": semver, "run_id": run_id, "digest": manifest.digest},
            )
            return int(number)

    def _ensure_model(
        self, connection: Connection, name: str, actor: str | None, now: int
    ) -> tuple[int, bool]:
        """The model's id, and whether this call created it, with its row locked (PostgreSQL)."""
        insert = self._store.upsert(registered_models).on_conflict_do_nothing(
            index_elements=[registered_models.c.name]
        )
        inserted = connection.execute(
            insert.returning(registered_models.c.id),
            {"name": name, "owner": actor, "created_at": now, "updated_at": now},
        ).first()
        if inserted is not None:  # a new row: this transaction holds its lock already
            return int(inserted.id), True
        row = connection.execute(
            sa.select(registered_models.c.id)
            .where(registered_models.c.name == name)
            .with_for_update()
        ).first()
        if row is None:  # pragma: no cover - the insert above guarantees the row
            raise Conflict(f"model {name!r} vanished while registering; try again")
        return int(row.id), False

    def _link_datasets(
        self,
        connection: Connection,
        version_id: int,
        run_id: str | None,
        links: list[tuple[Dataset, str]],
        now: int,
    ) -> None:
        dataset_ids: dict[tuple[int, str], None] = {}
        if run_id is not None:
            for dataset_id, context in connection.execute(
                sa.select(run_inputs.c.dataset_id, run_inputs.c.context).where(
                    run_inputs.c.run_id == run_id
                )
            ):
                dataset_ids[(dataset_id, context)] = None
        for dataset, context in links:
            insert = self._store.upsert(datasets).on_conflict_do_nothing(
                index_elements=[datasets.c.name, datasets.c.digest]
            )
            connection.execute(
                insert,
                {
                    "name": dataset.name,
                    "digest": dataset.digest,
                    "schema": None
                    if dataset.schema is None
                    else json.dumps(dataset.schema, sort_keys=True),
                    "num_rows": dataset.num_rows,
                    "source": dataset.source,
                    "created_at": now,
                },
            )
            dataset_id = connection.execute(
                sa.select(datasets.c.id).where(
                    datasets.c.name == dataset.name, datasets.c.digest == dataset.digest
                )
            ).scalar_one()
            dataset_ids[(dataset_id, context)] = None
        if dataset_ids:
            connection.execute(
                model_version_inputs.insert(),
                [
                    {"version_id": version_id, "dataset_id": dataset_id, "context": context}
                    for dataset_id, context in dataset_ids
                ],
            )


def _check_presigned(presigned: object, private_key: object) -> None:
    if private_key is not None:
        raise InvalidInput("give sign_with or presigned, not both")
    if (
        not isinstance(presigned, tuple)
        or len(presigned) != 2
        or not all(isinstance(part, str) and 0 < len(part) <= 512 for part in presigned)
    ):
        raise InvalidInput(
            "presigned must be a (signature, key fingerprint) pair of strings, as made by "
            "mlops.governance.sign_digest and key_fingerprint"
        )


def _dataset_links(items: Iterable[Dataset | tuple[Dataset, str]]) -> list[tuple[Dataset, str]]:
    links = []
    for item in items or ():
        dataset, context = (item, "training") if isinstance(item, Dataset) else item
        if not isinstance(dataset, Dataset) or not isinstance(context, str):
            raise InvalidInput(
                "datasets takes Dataset objects or (Dataset, context) pairs; build one with "
                "mlops.tracking.dataset_from_data(name, data)"
            )
        links.append((dataset, context))
    return links


def download_package(artifacts: ArtifactStore, prefix: str, cache: Path, digest: str) -> Path:
    """The package files in a local cache folder named by the manifest digest."""
    target = cache / digest
    if (target / MANIFEST_FILE).is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=cache))
    try:
        artifacts.get_dir(prefix, staging)
        try:
            staging.rename(target)
        except OSError:
            if not (target / MANIFEST_FILE).is_file():  # lost a race to another loader: fine
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
