"""ModelRegistry: registered models, versions, stages, aliases, lineage and loading."""

from __future__ import annotations

import getpass
import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa

from mlops.artifacts import ArtifactStore
from mlops.errors import AlreadyExists, IntegrityError, InvalidInput, NotFound
from mlops.governance import key_fingerprint, load_public_key, public_key_pem, verify_digest
from mlops.models import (
    MANIFEST_FILE,
    REFERENCE_PROFILE_FILE,
    LoadedModel,
    ModelManifest,
    load_model,
    verify_package,
)
from mlops.registry._audited import audit
from mlops.registry._entities import (
    ApprovalRequest,
    ApprovalStatus,
    ModelReference,
    ModelVersion,
    RegisteredModel,
    Stage,
    Transition,
    parse_model_uri,
    parse_version_selector,
)
from mlops.registry._policy import PromotionPolicy
from mlops.registry._register import VersionWriter, download_package
from mlops.registry._rows import (
    check_model_name,
    load_model_record,
    load_versions,
    model_row,
    version_row,
)
from mlops.registry._stages import StageManager
from mlops.registry._webhooks import WebhookDispatcher, WebhookManager
from mlops.store import Store
from mlops.store._schema import model_tags, model_versions, registered_models, runs, trusted_keys
from mlops.tracking import Dataset
from mlops.tracking._validation import check_description, check_key, now_ms, tag_text

VersionRef = int | str


class ModelRegistry:
    """Registered models and their versions, stages, aliases, approvals and history.

    Thread-safe; returned records are immutable snapshots. ``actor`` is the identity
    recorded for changes unless a call names another.
    """

    def __init__(
        self, store: Store, artifacts: ArtifactStore, *, cache_dir: Path, actor: str | None = None
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._cache = cache_dir
        self._actor = actor or _os_user()
        self._versions = VersionWriter(store, artifacts)
        self._stages = StageManager(store)
        self.webhooks = WebhookManager(store)

    @property
    def actor(self) -> str | None:
        """The identity recorded for changes when a call names none."""
        return self._actor

    # -- models -------------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        owner: str | None = None,
        tags: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> RegisteredModel:
        """Create an empty registered model (``register_model`` creates it as needed)."""
        check_model_name(name)
        description = check_description(description)
        rows = _tag_rows(tags)
        now = now_ms()
        who = actor or self._actor
        owner = owner or who
        with self._store.write() as connection:
            if connection.execute(
                sa.select(registered_models.c.id).where(registered_models.c.name == name)
            ).first():
                raise AlreadyExists(f"model {name!r} already exists")
            model_id = connection.execute(
                registered_models.insert().values(
                    name=name,
                    description=description,
                    owner=owner,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            if rows:
                connection.execute(
                    model_tags.insert(), [{"model_id": model_id, **row} for row in rows]
                )
            created = load_model_record(connection, model_row(connection, name))
            audit(
                connection,
                "model.created",
                f"models/{name}",
                actor=who,
                after={
                    "description": description,
                    "owner": owner,
                    "tags": {row["key"]: row["value"] for row in rows},
                },
            )
            return created

    def get_model(self, name: str) -> RegisteredModel:
        with self._store.read() as connection:
            return load_model_record(connection, model_row(connection, name))

    def list_models(self, *, stage: Stage | str | None = None) -> list[RegisteredModel]:
        """Every model, or those with a version in ``stage`` (e.g. "production")."""
        with self._store.read() as connection:
            query = sa.select(registered_models).order_by(registered_models.c.name)
            if stage is not None:
                wanted = Stage.parse(stage)
                query = query.where(
                    registered_models.c.id.in_(
                        sa.select(model_versions.c.model_id).where(
                            model_versions.c.stage == wanted.value
                        )
                    )
                )
            return [load_model_record(connection, row) for row in connection.execute(query)]

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        owner: str | None = None,
        actor: str | None = None,
    ) -> RegisteredModel:
        description = check_description(description)
        with self._store.write() as connection:
            model = model_row(connection, name, lock=True)
            values: dict[str, Any] = {"updated_at": now_ms()}
            if description is not None:
                values["description"] = description
            if owner is not None:
                values["owner"] = owner
            connection.execute(
                registered_models.update().where(registered_models.c.id == model.id).values(values)
            )
            updated = load_model_record(connection, model_row(connection, name))
            changed = [field for field in ("description", "owner") if field in values]
            audit(
                connection,
                "model.updated",
                f"models/{name}",
                actor=actor or self._actor,
                before={field: model._mapping[field] for field in changed},
                after={field: values[field] for field in changed},
            )
            return updated

    def set_model_tag(self, name: str, key: str, value: Any, *, actor: str | None = None) -> None:
        row = _tag_rows({key: value})[0]
        with self._store.write() as connection:
            model = model_row(connection, name, lock=True)
            old = connection.execute(
                model_tags.delete()
                .where(model_tags.c.model_id == model.id, model_tags.c.key == key)
                .returning(model_tags.c.value)
            ).scalar()
            connection.execute(model_tags.insert().values(model_id=model.id, **row))
            audit(
                connection,
                "model.tag_set",
                f"models/{name}/tags/{key}",
                actor=actor or self._actor,
                before=None if old is None else {"value": old},
                after={"value": row["value"]},
            )

    # -- versions -----------------------------------------------------------------------

    def register_model(
        self,
        name: str,
        model: Any,
        *,
        metrics: Mapping[str, float] | None = None,
        metadata: Mapping[str, Any] | None = None,
        input_example: Any = None,
        signature: Any = None,
        flavor: str | None = None,
        reference_data: Any = None,
        run: Any = None,
        datasets: Iterable[Dataset | tuple[Dataset, str]] = (),
        parent_version: VersionRef | None = None,
        version: str | None = None,
        description: str | None = None,
        sign_with: Any = None,
        presigned: tuple[str, str] | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Package ``model`` (an object, an mlops package folder or an MLflow model folder),
        store it with its SHA-256 digests, and record a new version.

        The first version is 1.0.0; a compatible signature bumps the minor number, an
        incompatible one the major; ``version="2.0.0"`` overrides. ``run`` (a run id or an
        ActiveRun) links lineage, including the run's dataset inputs. Nothing is left
        behind when any step fails. ``presigned`` carries a (signature, key fingerprint)
        pair made elsewhere instead of ``sign_with`` (how a remote client signs: its private
        key never leaves it).
        """
        run_id = None if run is None else str(getattr(run, "id", run))
        number = self._versions.register(
            name,
            model,
            actor=actor or self._actor,
            metrics=metrics,
            metadata=metadata,
            input_example=input_example,
            signature=signature,
            flavor=flavor,
            reference_data=reference_data,
            run_id=run_id,
            datasets_used=datasets,
            parent_version=None
            if parent_version is None
            else parse_version_selector(name, parent_version),
            version=version,
            description=check_description(description),
            sign_with=sign_with,
            presigned=presigned,
        )
        return self.get_version(name, number)

    def get_version(self, name: str, version: VersionRef) -> ModelVersion:
        """A version by number (3), semantic version ("1.2.0"), stage, "@alias" or "latest"."""
        return self.resolve(parse_version_selector(name, version))

    def resolve(self, reference: str | ModelReference) -> ModelVersion:
        """The version a model URI names, such as ``models:/churn/production``."""
        parsed = parse_model_uri(reference) if isinstance(reference, str) else reference
        with self._store.read() as connection:
            row = version_row(connection, parsed)
            return load_versions(connection, parsed.name, [row])[0]

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self._store.read() as connection:
            model = model_row(connection, name)
            rows = connection.execute(
                sa.select(model_versions)
                .where(model_versions.c.model_id == model.id)
                .order_by(model_versions.c.number)
            ).all()
            return load_versions(connection, name, rows)

    def compare_versions(
        self, name: str, versions: Sequence[VersionRef] | None = None
    ) -> list[ModelVersion]:
        """Versions side by side (all of them by default), oldest first."""
        if versions is None:
            return self.list_versions(name)
        found = [self.get_version(name, ref) for ref in versions]
        return sorted(found, key=lambda v: v.number)

    def lineage(self, name: str, version: VersionRef) -> dict[str, Any]:
        """Where a version came from: its run, datasets and parent versions."""
        found = self.get_version(name, version)
        chain: list[dict[str, Any]] = []
        parent = found.parent_version
        while parent is not None and len(chain) < 100:
            previous = self.get_version(name, parent)
            chain.append({"version": previous.number, "semver": previous.semver})
            parent = previous.parent_version
        run_info = None
        if found.run_id is not None:
            with self._store.read() as connection:
                row = connection.execute(
                    sa.select(runs.c.id, runs.c.name, runs.c.experiment_id, runs.c.status).where(
                        runs.c.id == found.run_id
                    )
                ).first()
            if row is not None:
                run_info = {
                    "id": row.id,
                    "name": row.name,
                    "experiment_id": row.experiment_id,
                    "status": row.status,
                }
        return {
            "model": name,
            "version": found.number,
            "semver": found.semver,
            "run": run_info,
            "datasets": [
                {"name": dataset, "digest": digest, "context": context}
                for dataset, digest, context in found.datasets
            ],
            "parents": chain,
        }

    def load_model(
        self, reference: str | ModelReference, version: VersionRef | None = None
    ) -> LoadedModel:
        """Download (cached), verify every SHA-256, then load a version.

        ``reference`` is a model URI, or a model name with ``version``. A tampered file
        raises ``IntegrityError`` before anything is deserialized.
        """
        parsed = (
            parse_version_selector(reference, version)
            if isinstance(reference, str) and version is not None
            else parse_model_uri(reference)
            if isinstance(reference, str)
            else reference
        )
        with self._store.read() as connection:
            row = version_row(connection, parsed)
        try:
            folder = self._verified_copy(row.artifact_prefix, row.manifest_digest, str(parsed))
        except IntegrityError:
            # The local copy may be what was damaged: drop it and fetch the store's once more.
            shutil.rmtree(self._cache / row.manifest_digest, ignore_errors=True)
            folder = self._verified_copy(row.artifact_prefix, row.manifest_digest, str(parsed))
        return load_model(folder, verify=False)  # _verified_copy just checked every file

    def open_package_file(self, name: str, version: VersionRef, path: str) -> BinaryIO:
        """A stream of one file of a version's package (``mlops-model.json`` or a file its
        manifest lists). Nothing is verified here: the reader checks the SHA-256 that the
        manifest gives (a remote client does, before loading anything)."""
        with self._store.read() as connection:
            row = version_row(connection, parse_version_selector(name, version))
        if path != MANIFEST_FILE:
            listed = ModelManifest.from_json(row.manifest).files
            if path not in listed:
                raise NotFound(
                    f"version {row.semver} of {name!r} has no file {path!r}; its manifest "
                    f"({MANIFEST_FILE}) lists the files"
                )
        key = f"{row.artifact_prefix}/{path}"
        return self._artifacts.open(key)

    def reference_profile(
        self, reference: str | ModelReference, version: VersionRef | None = None
    ) -> dict[str, Any] | None:
        """A version's reference profile (training-data statistics and sample), or None.

        Verifies the package like ``load_model`` but never deserializes the model, so
        monitoring can read it without the model's framework installed.
        """
        parsed = (
            parse_version_selector(reference, version)
            if isinstance(reference, str) and version is not None
            else parse_model_uri(reference)
            if isinstance(reference, str)
            else reference
        )
        with self._store.read() as connection:
            row = version_row(connection, parsed)
        folder = self._verified_copy(row.artifact_prefix, row.manifest_digest, str(parsed))
        path = folder / REFERENCE_PROFILE_FILE
        if not path.is_file():
            return None
        profile: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return profile

    def _verified_copy(self, prefix: str, digest: str, label: str) -> Path:
        folder = download_package(self._artifacts, prefix, self._cache, digest)
        manifest = verify_package(folder)
        if manifest.digest != digest:
            raise IntegrityError(
                f"the manifest of {label} does not match the digest recorded at registration "
                f"({manifest.digest[:12]}… vs {digest[:12]}…); the stored package was changed. "
                "Re-register the model from a trusted source"
            )
        return folder

    def dispatch_webhooks(self, *, max_seconds: float = 10.0) -> int:
        """Deliver pending webhook events now (a server runs this in the background)."""
        with WebhookDispatcher(self._store) as dispatcher:
            return dispatcher.run_until_idle(max_seconds=max_seconds)

    # -- stages, aliases, policies, approvals -------------------------------------------

    def promote_to_stage(
        self,
        name: str,
        version: VersionRef,
        stage: Stage | str,
        *,
        reason: str | None = None,
        actor: str | None = None,
    ) -> ModelVersion | ApprovalRequest:
        """Move a version to a stage; promoting to production archives the previous one.

        Under a policy with ``require_approval``, a production move returns a pending
        ApprovalRequest instead; a policy rule that fails raises ``PolicyViolation``.
        """
        result = self._stages.promote(
            parse_version_selector(name, version),
            Stage.parse(stage),
            actor=actor or self._actor,
            reason=reason,
        )
        if isinstance(result, ApprovalRequest):
            return result
        return self.get_version(name, result)

    def rollback(
        self, name: str, *, reason: str | None = None, actor: str | None = None
    ) -> ModelVersion:
        """Restore the production version that the current one replaced, in one call."""
        number = self._stages.rollback(name, actor=actor or self._actor, reason=reason)
        return self.get_version(name, number)

    def set_alias(
        self,
        name: str,
        alias: str,
        version: VersionRef,
        *,
        reason: str | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Point ``alias`` (e.g. "champion") at a version; moves it if already set."""
        self._stages.set_alias(
            parse_version_selector(name, version), alias, actor=actor or self._actor, reason=reason
        )
        return self.get_version(name, f"@{alias}")

    def delete_alias(self, name: str, alias: str, *, actor: str | None = None) -> None:
        self._stages.delete_alias(name, alias, actor=actor or self._actor)

    def history(self, name: str) -> list[Transition]:
        """Every stage and alias change of a model, oldest first."""
        return self._stages.history(name)

    def set_policy(
        self, name: str, policy: PromotionPolicy | None, *, actor: str | None = None
    ) -> None:
        """Gate production for a model (None removes the policy)."""
        if policy is not None and not isinstance(policy, PromotionPolicy):
            raise InvalidInput("set_policy takes a mlops.registry.PromotionPolicy or None")
        self._stages.set_policy(name, policy, actor=actor or self._actor)

    def get_policy(self, name: str) -> PromotionPolicy | None:
        return self._stages.get_policy(name)

    def list_approvals(
        self, name: str | None = None, *, status: ApprovalStatus | str | None = "pending"
    ) -> list[ApprovalRequest]:
        try:
            wanted = None if status is None else ApprovalStatus(str(status).lower())
        except ValueError:
            allowed = ", ".join(s.value for s in ApprovalStatus)
            raise InvalidInput(f"approval status {status!r} is not one of {allowed}") from None
        return self._stages.list_approvals(name, wanted)

    def approve(
        self, request_id: int, *, comment: str | None = None, actor: str | None = None
    ) -> ApprovalRequest:
        """Approve a pending request (not one's own) and apply the transition."""
        return self._stages.decide(
            request_id, approve=True, actor=actor or self._actor, comment=comment
        )

    def reject(
        self, request_id: int, *, comment: str | None = None, actor: str | None = None
    ) -> ApprovalRequest:
        return self._stages.decide(
            request_id, approve=False, actor=actor or self._actor, comment=comment
        )

    # -- signing ------------------------------------------------------------------------

    def trust_key(
        self, public_key: Any, *, name: str | None = None, actor: str | None = None
    ) -> str:
        """Trust an Ed25519 public key (PEM text, bytes or a path); returns its fingerprint."""
        key = load_public_key(public_key)
        fingerprint = key_fingerprint(key)
        pem = public_key_pem(key).decode()
        with self._store.write() as connection:
            connection.execute(
                trusted_keys.delete().where(trusted_keys.c.fingerprint == fingerprint)
            )
            connection.execute(
                trusted_keys.insert().values(
                    fingerprint=fingerprint, public_key=pem, name=name, created_at=now_ms()
                )
            )
            audit(
                connection,
                "key.trusted",
                f"keys/{fingerprint}",
                actor=actor or self._actor,
                after={"name": name, "public_key": pem},
            )
        return fingerprint

    def verify_version(self, name: str, version: VersionRef) -> bool:
        """Whether a version carries a valid signature from a trusted key."""
        with self._store.read() as connection:
            row = version_row(connection, parse_version_selector(name, version))
            if row.signature is None:
                return False
            key = connection.execute(
                sa.select(trusted_keys.c.public_key).where(
                    trusted_keys.c.fingerprint == row.signing_key
                )
            ).scalar()
        return key is not None and verify_digest(
            load_public_key(key), row.manifest_digest, row.signature
        )


def _tag_rows(tags: Mapping[str, Any] | None) -> list[dict[str, str]]:
    if tags is None:
        return []
    if not isinstance(tags, Mapping):
        raise InvalidInput("tags must be a mapping of name to value")
    return [{"key": check_key("tag", k), "value": tag_text(k, v)} for k, v in tags.items()]


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
