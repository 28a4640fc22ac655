"""Stage and alias changes, promotion policies, approvals, history and rollback."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from mlops.errors import Conflict, NotFound, PermissionDenied, PolicyViolation
from mlops.governance import load_public_key, verify_digest
from mlops.registry._audited import audit, version_target
from mlops.registry._entities import (
    ApprovalRequest,
    ApprovalStatus,
    ModelReference,
    Stage,
    Transition,
)
from mlops.registry._policy import PromotionPolicy
from mlops.registry._rows import check_alias, model_row, version_row
from mlops.registry._webhooks import record_event
from mlops.store import Store
from mlops.store._schema import (
    approval_requests,
    model_aliases,
    model_policies,
    model_transitions,
    model_versions,
    registered_models,
    trusted_keys,
)
from mlops.tracking._validation import now_ms


class StageManager:
    """Moves versions between stages and aliases, under the model's policy."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- policies -----------------------------------------------------------------------

    def set_policy(self, name: str, policy: PromotionPolicy | None, *, actor: str | None) -> None:
        with self._store.write() as connection:
            model = model_row(connection, name, lock=True)
            old = connection.execute(
                model_policies.delete()
                .where(model_policies.c.model_id == model.id)
                .returning(model_policies.c.policy)
            ).scalar()
            if policy is not None:
                connection.execute(
                    model_policies.insert().values(
                        model_id=model.id, policy=policy.to_json(), updated_at=now_ms()
                    )
                )
            if old is not None or policy is not None:
                audit(
                    connection,
                    "model.policy_set" if policy is not None else "model.policy_cleared",
                    f"models/{name}",
                    actor=actor,
                    before=None if old is None else {"policy": json.loads(old)},
                    after=None if policy is None else {"policy": json.loads(policy.to_json())},
                )

    def get_policy(self, name: str) -> PromotionPolicy | None:
        with self._store.read() as connection:
            return self._policy(connection, model_row(connection, name).id)

    @staticmethod
    def _policy(connection: Connection, model_id: int) -> PromotionPolicy | None:
        text = connection.execute(
            sa.select(model_policies.c.policy).where(model_policies.c.model_id == model_id)
        ).scalar()
        return None if text is None else PromotionPolicy.from_json(text)

    # -- stages -------------------------------------------------------------------------

    def promote(
        self, reference: ModelReference, stage: Stage, *, actor: str | None, reason: str | None
    ) -> int | ApprovalRequest:
        """Move a version to ``stage``; a gated production move becomes an approval request.

        Returns the version number, or the ApprovalRequest when approval is required.
        """
        with self._store.write() as connection:
            model = model_row(connection, reference.name, lock=True)
            version = version_row(connection, reference)
            if version.stage == stage.value:
                return int(version.number)
            if version.stage == Stage.ARCHIVED.value and stage is not Stage.ARCHIVED:
                raise Conflict(
                    f"version {version.semver} of model {model.name!r} is archived and cannot "
                    f"move to {stage.value}; register it again, or use "
                    f"`mlops models rollback {model.name}` to restore the previous production"
                )
            if stage is Stage.PRODUCTION:
                policy = self._policy(connection, model.id)
                if policy is not None:
                    self._check_policy(connection, model, version, policy)
                    if policy.require_approval:
                        return self._request_approval(connection, model, version, actor, reason)
            replaced = self._apply(connection, model, version, stage, actor=actor, reason=reason)
            audit(
                connection,
                "model.stage_changed",
                version_target(model.name, version.number),
                actor=actor,
                before={"stage": version.stage},
                after={"stage": stage.value, "replaced_version": replaced, "reason": reason},
            )
            return int(version.number)

    def _check_policy(
        self, connection: Connection, model: Row[Any], version: Row[Any], policy: PromotionPolicy
    ) -> None:
        if policy.require_signature:
            self._require_trusted_signature(connection, model, version)
        current = connection.execute(
            sa.select(model_versions.c.semver, model_versions.c.metrics).where(
                model_versions.c.model_id == model.id,
                model_versions.c.stage == Stage.PRODUCTION.value,
                model_versions.c.id != version.id,
            )
        ).first()
        policy.check(
            model.name,
            version.semver,
            json.loads(version.metrics),
            None if current is None else (current.semver, json.loads(current.metrics)),
        )

    @staticmethod
    def _require_trusted_signature(
        connection: Connection, model: Row[Any], version: Row[Any]
    ) -> None:
        where = f"model {model.name!r} version {version.semver}"
        if version.signature is None:
            raise PolicyViolation(
                f"{where} is not signed, and the policy requires a signature for production; "
                "register it with sign_with=<private key> (see `mlops keys generate`)"
            )
        key = connection.execute(
            sa.select(trusted_keys.c.public_key).where(
                trusted_keys.c.fingerprint == version.signing_key
            )
        ).scalar()
        if key is None:
            raise PolicyViolation(
                f"{where} is signed by key {version.signing_key[:16]}…, which is not trusted; "
                "trust its public key with ml.registry.trust_key(...)"
            )
        if not verify_digest(load_public_key(key), version.manifest_digest, version.signature):
            raise PolicyViolation(f"{where} has a signature that does not verify")

    def _apply(
        self,
        connection: Connection,
        model: Row[Any],
        version: Row[Any],
        stage: Stage,
        *,
        actor: str | None,
        reason: str | None,
        replaced_override: int | None = None,
    ) -> int | None:
        """Move the version; returns the number of the production version it archived."""
        now = now_ms()
        replaced = None
        replaced_number = None
        if stage is Stage.PRODUCTION:
            current = connection.execute(
                sa.select(model_versions).where(
                    model_versions.c.model_id == model.id,
                    model_versions.c.stage == Stage.PRODUCTION.value,
                )
            ).first()
            if current is not None:
                replaced = current.id
                replaced_number = int(current.number)
                self._set_stage(
                    connection,
                    model,
                    current,
                    Stage.ARCHIVED,
                    actor,
                    now,
                    f"replaced by version {version.semver}",
                    None,
                )
        self._set_stage(connection, model, version, stage, actor, now, reason, replaced)
        return replaced_number

    @staticmethod
    def _set_stage(
        connection: Connection,
        model: Row[Any],
        version: Row[Any],
        stage: Stage,
        actor: str | None,
        now: int,
        reason: str | None,
        replaced: int | None,
    ) -> None:
        connection.execute(
            model_versions.update()
            .where(model_versions.c.id == version.id)
            .values(stage=stage.value)
        )
        connection.execute(
            model_transitions.insert().values(
                model_id=model.id,
                version_id=version.id,
                kind="stage",
                from_value=version.stage,
                to_value=stage.value,
                replaced_version_id=replaced,
                actor=actor,
                reason=reason,
                created_at=now,
            )
        )
        record_event(
            connection,
            kind="model.stage_changed",
            subject=f"models:/{model.name}/{version.semver}",
            payload={
                "model": model.name,
                "version": version.number,
                "semver": version.semver,
                "from": version.stage,
                "to": stage.value,
                "reason": reason,
            },
            actor=actor,
        )

    def rollback(self, name: str, *, actor: str | None, reason: str | None) -> int:
        """Put back the production version that the current one replaced; returns its number."""
        with self._store.write() as connection:
            model = model_row(connection, name, lock=True)
            current = connection.execute(
                sa.select(model_versions).where(
                    model_versions.c.model_id == model.id,
                    model_versions.c.stage == Stage.PRODUCTION.value,
                )
            ).first()
            if current is None:
                raise Conflict(f"model {name!r} has no production version to roll back")
            replaced_id = connection.execute(
                sa.select(model_transitions.c.replaced_version_id)
                .where(
                    model_transitions.c.version_id == current.id,
                    model_transitions.c.kind == "stage",
                    model_transitions.c.to_value == Stage.PRODUCTION.value,
                )
                .order_by(model_transitions.c.id.desc())
                .limit(1)
            ).scalar()
            if replaced_id is None:
                raise Conflict(
                    f"production version {current.semver} of model {name!r} did not replace "
                    "another version, so there is nothing to roll back to"
                )
            previous = connection.execute(
                sa.select(model_versions).where(model_versions.c.id == replaced_id)
            ).one()
            why = reason or f"rollback from version {current.semver}"
            # Rollback is the emergency path: it skips policies and approvals on purpose.
            self._apply(connection, model, previous, Stage.PRODUCTION, actor=actor, reason=why)
            record_event(
                connection,
                kind="model.rolled_back",
                subject=f"models:/{name}/{previous.semver}",
                payload={"model": name, "from": current.semver, "to": previous.semver},
                actor=actor,
            )
            audit(
                connection,
                "model.rolled_back",
                f"models/{name}",
                actor=actor,
                before={"production": current.number, "semver": current.semver},
                after={"production": previous.number, "semver": previous.semver, "reason": why},
            )
            return int(previous.number)

    # -- aliases ------------------------------------------------------------------------

    def set_alias(
        self, reference: ModelReference, alias: str, *, actor: str | None, reason: str | None
    ) -> None:
        check_alias(alias)
        with self._store.write() as connection:
            model = model_row(connection, reference.name, lock=True)
            version = version_row(connection, reference)
            old = connection.execute(
                sa.select(model_versions.c.number, model_versions.c.semver)
                .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
                .where(model_aliases.c.model_id == model.id, model_aliases.c.alias == alias)
            ).first()
            connection.execute(
                model_aliases.delete().where(
                    model_aliases.c.model_id == model.id, model_aliases.c.alias == alias
                )
            )
            connection.execute(
                model_aliases.insert().values(model_id=model.id, alias=alias, version_id=version.id)
            )
            self._record_alias(
                connection,
                model,
                version,
                alias,
                None if old is None else old.semver,
                version.semver,
                actor,
                reason,
            )
            audit(
                connection,
                "model.alias_set",
                f"models/{model.name}/aliases/{alias}",
                actor=actor,
                before=None if old is None else {"version": old.number, "semver": old.semver},
                after={"version": version.number, "semver": version.semver, "reason": reason},
            )

    def delete_alias(self, name: str, alias: str, *, actor: str | None) -> None:
        with self._store.write() as connection:
            model = model_row(connection, name, lock=True)
            version = version_row(connection, ModelReference(name, alias=alias))
            connection.execute(
                model_aliases.delete().where(
                    model_aliases.c.model_id == model.id, model_aliases.c.alias == alias
                )
            )
            self._record_alias(connection, model, version, alias, version.semver, None, actor, None)
            audit(
                connection,
                "model.alias_deleted",
                f"models/{model.name}/aliases/{alias}",
                actor=actor,
                before={"version": version.number, "semver": version.semver},
            )

    @staticmethod
    def _record_alias(
        connection: Connection,
        model: Row[Any],
        version: Row[Any],
        alias: str,
        old: str | None,
        new: str | None,
        actor: str | None,
        reason: str | None,
    ) -> None:
        connection.execute(
            model_transitions.insert().values(
                model_id=model.id,
                version_id=version.id,
                kind="alias",
                name=alias,
                from_value=old,
                to_value=new,
                actor=actor,
                reason=reason,
                created_at=now_ms(),
            )
        )
        record_event(
            connection,
            kind="model.alias_set" if new is not None else "model.alias_deleted",
            subject=f"models:/{model.name}@{alias}",
            payload={"model": model.name, "alias": alias, "from": old, "to": new},
            actor=actor,
        )

    # -- history and approvals ----------------------------------------------------------

    def history(self, name: str) -> list[Transition]:
        with self._store.read() as connection:
            model = model_row(connection, name)
            number = dict(
                connection.execute(
                    sa.select(model_versions.c.id, model_versions.c.number).where(
                        model_versions.c.model_id == model.id
                    )
                ).all()
            )
            rows = connection.execute(
                sa.select(model_transitions)
                .where(model_transitions.c.model_id == model.id)
                .order_by(model_transitions.c.id)
            ).all()
        return [
            Transition(
                model_name=name,
                version=number[row.version_id],
                kind=row.kind,
                name=row.name,
                from_value=row.from_value,
                to_value=row.to_value,
                actor=row.actor,
                reason=row.reason,
                created_at=row.created_at,
                replaced_version=number.get(row.replaced_version_id),
            )
            for row in rows
        ]

    def _request_approval(
        self,
        connection: Connection,
        model: Row[Any],
        version: Row[Any],
        actor: str | None,
        reason: str | None,
    ) -> ApprovalRequest:
        pending = connection.execute(
            sa.select(approval_requests.c.id).where(
                approval_requests.c.version_id == version.id,
                approval_requests.c.to_stage == Stage.PRODUCTION.value,
                approval_requests.c.status == ApprovalStatus.PENDING.value,
            )
        ).scalar()
        if pending is None:
            pending = connection.execute(
                approval_requests.insert().values(
                    model_id=model.id,
                    version_id=version.id,
                    to_stage=Stage.PRODUCTION.value,
                    status=ApprovalStatus.PENDING.value,
                    requested_by=actor,
                    reason=reason,
                    created_at=now_ms(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            record_event(
                connection,
                kind="model.approval_requested",
                subject=f"models:/{model.name}/{version.semver}",
                payload={
                    "model": model.name,
                    "version": version.number,
                    "semver": version.semver,
                    "request_id": pending,
                    "to": Stage.PRODUCTION.value,
                    "reason": reason,
                },
                actor=actor,
            )
            requested = self._approval(connection, int(pending))
            audit(
                connection,
                "model.approval_requested",
                version_target(model.name, version.number),
                actor=actor,
                before={"stage": version.stage},
                after={"request_id": pending, "stage": Stage.PRODUCTION.value, "reason": reason},
            )
            return requested
        return self._approval(connection, int(pending))

    def list_approvals(
        self, name: str | None = None, status: ApprovalStatus | None = ApprovalStatus.PENDING
    ) -> list[ApprovalRequest]:
        with self._store.read() as connection:
            query = sa.select(approval_requests.c.id).order_by(approval_requests.c.id)
            if name is not None:
                query = query.where(approval_requests.c.model_id == model_row(connection, name).id)
            if status is not None:
                query = query.where(approval_requests.c.status == status.value)
            ids = list(connection.execute(query).scalars())
            return [self._approval(connection, request_id) for request_id in ids]

    def decide(
        self, request_id: int, *, approve: bool, actor: str | None, comment: str | None
    ) -> ApprovalRequest:
        with self._store.write() as connection:
            request = connection.execute(
                sa.select(approval_requests)
                .where(approval_requests.c.id == request_id)
                .with_for_update()
            ).first()
            if request is None:
                raise NotFound(
                    f"approval request {request_id} does not exist (see `mlops models approvals`)"
                )
            if request.status != ApprovalStatus.PENDING.value:
                raise Conflict(f"approval request {request_id} is already {request.status}")
            if approve and actor is None:
                raise PermissionDenied(
                    "approving needs an identity; set MLOPS_USER or pass actor=..."
                )
            if approve and actor == request.requested_by:
                raise PermissionDenied(
                    f"{actor!r} requested approval {request_id} and cannot approve it; "
                    "a second identity must approve production transitions"
                )
            version = connection.execute(
                sa.select(model_versions).where(model_versions.c.id == request.version_id)
            ).one()
            model = connection.execute(
                sa.select(registered_models)
                .where(registered_models.c.id == request.model_id)
                .with_for_update()
            ).one()
            status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
            replaced = None
            if approve:
                policy = self._policy(connection, model.id)
                if policy is not None:  # the world may have changed since the request
                    self._check_policy(connection, model, version, policy)
                why = f"approved request {request_id}" + (f": {comment}" if comment else "")
                replaced = self._apply(
                    connection, model, version, Stage(request.to_stage), actor=actor, reason=why
                )
            connection.execute(
                approval_requests.update()
                .where(approval_requests.c.id == request_id)
                .values(
                    status=status.value,
                    decided_by=actor,
                    comment=comment,
                    decided_at=now_ms(),
                )
            )
            record_event(
                connection,
                kind="model.approval_decided",
                subject=f"models:/{model.name}/{version.semver}",
                payload={
                    "model": model.name,
                    "semver": version.semver,
                    "request_id": request_id,
                    "approved": approve,
                    "comment": comment,
                },
                actor=actor,
            )
            decided = self._approval(connection, request_id)
            after: dict[str, Any] = {
                "request_id": request_id,
                "status": status.value,
                "comment": comment,
            }
            if approve:
                after.update(stage=request.to_stage, replaced_version=replaced)
            audit(
                connection,
                "model.approval_decided",
                version_target(model.name, version.number),
                actor=actor,
                before={"request_id": request_id, "status": request.status, "stage": version.stage},
                after=after,
            )
            return decided

    @staticmethod
    def _approval(connection: Connection, request_id: int) -> ApprovalRequest:
        row = connection.execute(
            sa.select(
                approval_requests,
                registered_models.c.name.label("model_name"),
                model_versions.c.number,
                model_versions.c.semver,
            )
            .join(registered_models, registered_models.c.id == approval_requests.c.model_id)
            .join(model_versions, model_versions.c.id == approval_requests.c.version_id)
            .where(approval_requests.c.id == request_id)
        ).one()
        return ApprovalRequest(
            id=row.id,
            model_name=row.model_name,
            version=row.number,
            semver=row.semver,
            to_stage=Stage(row.to_stage),
            status=ApprovalStatus(row.status),
            requested_by=row.requested_by,
            reason=row.reason,
            created_at=row.created_at,
            decided_by=row.decided_by,
            comment=row.comment,
            decided_at=row.decided_at,
        )
