"""``RemoteRegistry``: the ``ModelRegistry`` facade over a server's REST API.

Registering packages the model here (the model's framework is on this machine, not
necessarily on the server), signs the manifest digest here when ``sign_with`` is given
(the private key never leaves this machine), and uploads one tar archive. Loading
downloads the package files into a local cache named by the manifest digest and checks
every SHA-256 against the digest the server recorded before anything is deserialized.
"""

from __future__ import annotations

import builtins
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from mlops.errors import IntegrityError, InvalidInput
from mlops.governance import key_fingerprint, load_private_key, public_key_pem, sign_digest
from mlops.governance import load_public_key as _load_public_key
from mlops.models import (
    MANIFEST_FILE,
    REFERENCE_PROFILE_FILE,
    LoadedModel,
    ModelManifest,
    load_model,
    verify_package,
)
from mlops.registry import (
    ApprovalRequest,
    ModelRegistry,
    ModelVersion,
    PromotionPolicy,
    RegisteredModel,
    Stage,
    Transition,
)
from mlops.registry._entities import (
    ApprovalStatus,
    ModelReference,
    parse_model_uri,
    parse_semver,
    parse_version_selector,
)
from mlops.registry._register import _dataset_links, build_package, check_metadata, check_metrics
from mlops.registry._rows import check_alias, check_model_name
from mlops.registry._webhooks import Delivery, DeliveryStatus, Webhook
from mlops.remote._http import ApiClient
from mlops.remote._tracking import path_part
from mlops.tracking import Dataset
from mlops.tracking._validation import check_description, check_key, check_run_id, tag_text

__all__ = ["RemoteRegistry", "RemoteWebhooks"]

VersionRef = int | str


def selector_text(reference: ModelReference) -> str:
    """The version part of a reference, as the API's ``{version}`` path segment takes it."""
    if reference.alias is not None:
        return f"@{reference.alias}"
    if reference.stage is not None:
        return reference.stage.value
    if reference.semver is not None:
        return reference.semver
    if reference.number is not None:
        return str(reference.number)
    return "latest"


def model_of(body: Mapping[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        id=body["id"],
        name=body["name"],
        created_at=body["created_at"],
        updated_at=body["updated_at"],
        description=body["description"],
        owner=body["owner"],
        tags=dict(body["tags"]),
        aliases=dict(body["aliases"]),
        latest_version=body["latest_version"],
        production_version=body["production_version"],
    )


def version_of(body: Mapping[str, Any]) -> ModelVersion:
    return ModelVersion(
        model_name=body["model_name"],
        number=body["number"],
        semver=body["semver"],
        stage=Stage(body["stage"]),
        flavor=body["flavor"],
        manifest_digest=body["manifest_digest"],
        artifact_uri=body["artifact_uri"],
        created_at=body["created_at"],
        metrics={key: float(value) for key, value in body["metrics"].items()},
        metadata=dict(body["metadata"]),
        aliases=tuple(body["aliases"]),
        run_id=body["run_id"],
        parent_version=body["parent_version"],
        datasets=tuple((d["name"], d["digest"], d["context"]) for d in body.get("datasets", [])),
        description=body["description"],
        created_by=body["created_by"],
        signed_by=body["signed_by"],
        signature=body.get("signature"),
    )


def approval_of(body: Mapping[str, Any]) -> ApprovalRequest:
    return ApprovalRequest(
        id=body["id"],
        model_name=body["model_name"],
        version=body["version"],
        semver=body["semver"],
        to_stage=Stage(body["to_stage"]),
        status=ApprovalStatus(body["status"]),
        requested_by=body["requested_by"],
        reason=body["reason"],
        created_at=body["created_at"],
        decided_by=body.get("decided_by"),
        comment=body.get("comment"),
        decided_at=body.get("decided_at"),
    )


def transition_of(name: str, body: Mapping[str, Any]) -> Transition:
    return Transition(
        model_name=name,
        version=body["version"],
        kind=body["kind"],
        name=body["name"],
        from_value=body["from_value"],
        to_value=body["to_value"],
        actor=body["actor"],
        reason=body["reason"],
        created_at=body["created_at"],
        replaced_version=body["replaced_version"],
    )


class RemoteWebhooks:
    """Registry webhooks of the server: ``add``, ``list``, ``remove``, ``deliveries``.
    (The server delivers them in the background.)"""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def add(
        self, url: str, *, secret: str | None = None, events: Sequence[str] = ("*",)
    ) -> Webhook:
        if isinstance(events, str):
            raise InvalidInput("events takes a list of event kinds, e.g. ['model.stage_changed']")
        body = self._api.post(
            "/webhooks", json={"url": url, "secret": secret, "events": list(events)}
        )
        return _webhook_of(body)

    def list(self) -> builtins.list[Webhook]:
        return [_webhook_of(item) for item in self._api.get("/webhooks")["webhooks"]]

    def remove(self, webhook_id: int) -> None:
        if isinstance(webhook_id, bool) or not isinstance(webhook_id, int):
            raise InvalidInput(f"a webhook id is an int, got {webhook_id!r}")
        self._api.delete(f"/webhooks/{webhook_id}")

    def deliveries(
        self, *, event_kind: str | None = None, status: str | None = None, limit: int = 100
    ) -> builtins.list[Delivery]:
        found = self._api.get(
            "/webhooks/deliveries",
            params={"event_kind": event_kind, "status": status, "limit": limit},
        )
        return [
            Delivery(**{**item, "status": DeliveryStatus(item["status"])})
            for item in found["deliveries"]
        ]


def _webhook_of(body: Mapping[str, Any]) -> Webhook:
    return Webhook(
        id=body["id"],
        url=body["url"],
        events=tuple(body["events"]),
        active=body["active"],
        created_at=body["created_at"],
        secret=body.get("secret"),
    )


class RemoteRegistry(ModelRegistry):
    """Models, versions, stages, aliases, policies and approvals of a remote server.

    The same methods and results as the embedded ``ModelRegistry``. ``actor=`` is sent
    as ``X-MLOps-Actor``: a server without authentication records it (as the embedded
    registry does); with a token, changes are always recorded as the token's user.
    """

    def __init__(self, api: ApiClient, cache_dir: Path, actor: str | None = None) -> None:
        self._api = api
        self._cache = cache_dir
        self._actor = actor
        self.webhooks = RemoteWebhooks(api)  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<RemoteRegistry {self._api.url}>"

    @property
    def actor(self) -> str | None:
        """The identity sent with changes when a call names none (``MLOPS_USER``); a
        server that authenticates the call records the token's user instead."""
        return self._actor

    def _who(self, actor: str | None) -> str | None:
        return actor if actor is not None else self._actor

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
        check_model_name(name)
        body = {
            "name": name,
            "description": check_description(description),
            "owner": owner,
            "tags": _tag_texts(tags),
        }
        return model_of(self._api.post("/models", json=body, actor=self._who(actor)))

    def get_model(self, name: str) -> RegisteredModel:
        return model_of(self._api.get(f"/models/{_name(name)}"))

    def list_models(self, *, stage: Stage | str | None = None) -> list[RegisteredModel]:
        wanted = None if stage is None else Stage.parse(stage).value
        return [model_of(item) for item in self._api.pages("/models", "models", {"stage": wanted})]

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        owner: str | None = None,
        actor: str | None = None,
    ) -> RegisteredModel:
        body = {"description": check_description(description), "owner": owner}
        return model_of(
            self._api.patch(f"/models/{_name(name)}", json=body, actor=self._who(actor))
        )

    def set_model_tag(self, name: str, key: str, value: Any, *, actor: str | None = None) -> None:
        check_key("tag", key)
        self._api.put(
            f"/models/{_name(name)}/tags/{path_part(key)}",
            json={"value": tag_text(key, value)},
            actor=self._who(actor),
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
        check_model_name(name)
        checked_metrics = check_metrics(metrics)
        metadata_json = check_metadata(metadata)
        run_id = None if run is None else check_run_id(str(getattr(run, "id", run)))
        if version is not None:
            parse_semver(version)
        links = _dataset_links(datasets)
        parent = (
            None
            if parent_version is None
            else selector_text(parse_version_selector(name, parent_version))
        )
        private_key = None if sign_with is None else load_private_key(sign_with)
        if private_key is not None and presigned is not None:
            raise InvalidInput("give sign_with or presigned, not both")
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
            signed = (
                (sign_digest(private_key, manifest.digest), key_fingerprint(private_key))
                if private_key is not None
                else presigned
            )
            registration = {
                "metrics": checked_metrics,
                "metadata": json.loads(metadata_json),
                "run_id": run_id,
                "datasets": [
                    {
                        "name": dataset.name,
                        "digest": dataset.digest,
                        "schema": None if dataset.schema is None else dict(dataset.schema),
                        "num_rows": dataset.num_rows,
                        "source": dataset.source,
                        "context": context,
                    }
                    for dataset, context in links
                ],
                "parent_version": parent,
                "version": version,
                "description": check_description(description),
                "signature": None if signed is None else signed[0],
                "signing_key": None if signed is None else signed[1],
            }
            archive = Path(temp) / "upload.tar.gz"
            with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
                tar.add(folder, arcname="package")
                meta = Path(temp) / "registration.json"
                meta.write_text(json.dumps(registration), encoding="utf-8")
                tar.add(meta, arcname="registration.json")
            body = self._api.post(
                f"/models/{_name(name)}/versions",
                content=archive.read_bytes(),
                headers={"Content-Type": "application/x-tar"},
                actor=self._who(actor),
            )
        return version_of(body)

    def get_version(self, name: str, version: VersionRef) -> ModelVersion:
        return self.resolve(parse_version_selector(name, version))

    def resolve(self, reference: str | ModelReference) -> ModelVersion:
        parsed = parse_model_uri(reference) if isinstance(reference, str) else reference
        return version_of(self._api.get(_version_path(parsed)))

    def list_versions(self, name: str) -> list[ModelVersion]:
        return [
            version_of(item)
            for item in self._api.pages(f"/models/{_name(name)}/versions", "versions")
        ]

    def compare_versions(
        self, name: str, versions: Sequence[VersionRef] | None = None
    ) -> list[ModelVersion]:
        if versions is None:
            return self.list_versions(name)
        return sorted((self.get_version(name, ref) for ref in versions), key=lambda v: v.number)

    def lineage(self, name: str, version: VersionRef) -> dict[str, Any]:
        found: dict[str, Any] = self._api.get(
            _version_path(parse_version_selector(name, version)) + "/lineage"
        )
        return found

    def load_model(
        self, reference: str | ModelReference, version: VersionRef | None = None
    ) -> LoadedModel:
        found = self._version_for(reference, version)
        try:
            folder = self._verified_copy(found)
        except IntegrityError:
            shutil.rmtree(self._cache / found.manifest_digest, ignore_errors=True)
            folder = self._verified_copy(found)
        return load_model(folder, verify=False)

    def reference_profile(
        self, reference: str | ModelReference, version: VersionRef | None = None
    ) -> dict[str, Any] | None:
        folder = self._verified_copy(self._version_for(reference, version))
        path = folder / REFERENCE_PROFILE_FILE
        if not path.is_file():
            return None
        profile: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return profile

    def open_package_file(self, name: str, version: VersionRef, path: str) -> BinaryIO:
        found = self.get_version(name, version)
        return (self._verified_copy(found) / path).open("rb")

    def _version_for(
        self, reference: str | ModelReference, version: VersionRef | None
    ) -> ModelVersion:
        parsed = (
            parse_version_selector(reference, version)
            if isinstance(reference, str) and version is not None
            else parse_model_uri(reference)
            if isinstance(reference, str)
            else reference
        )
        return self.resolve(parsed)

    def _verified_copy(self, found: ModelVersion) -> Path:  # type: ignore[override]
        """The package in the local cache, downloaded if missing, every file checked."""
        digest = found.manifest_digest
        target = self._cache / digest
        if not (target / MANIFEST_FILE).is_file():
            self._download(found, target)
        manifest = verify_package(target)
        if manifest.digest != digest:
            raise IntegrityError(
                f"the manifest of {found.uri} does not match the digest recorded at "
                f"registration ({manifest.digest[:12]}… vs {digest[:12]}…); the stored package "
                "was changed. Re-register the model from a trusted source"
            )
        return target

    def _download(self, found: ModelVersion, target: Path) -> None:
        base = f"/models/{_name(found.model_name)}/versions/{found.number}/files/"
        self._cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{found.manifest_digest[:12]}-", dir=self._cache))
        try:
            manifest_text = self._api.request("GET", base + MANIFEST_FILE).content
            (staging / MANIFEST_FILE).write_bytes(manifest_text)
            try:
                manifest = ModelManifest.from_json(manifest_text.decode("utf-8"))
            except (ValueError, KeyError, TypeError) as error:
                raise IntegrityError(
                    f"the manifest of {found.uri} from the server is unreadable ({error})"
                ) from None
            for relative in manifest.files:
                destination = staging / relative
                if not destination.resolve().is_relative_to(staging.resolve()):
                    raise IntegrityError(f"the manifest of {found.uri} names {relative!r}")
                destination.parent.mkdir(parents=True, exist_ok=True)
                with (
                    destination.open("wb") as file,
                    self._api.stream(base + quote(relative)) as response,
                ):
                    for chunk in response.iter_bytes(1 << 20):
                        file.write(chunk)
            try:
                staging.rename(target)
            except OSError:
                if not (target / MANIFEST_FILE).is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def dispatch_webhooks(self, *, max_seconds: float = 10.0) -> int:
        raise InvalidInput(
            "webhooks are delivered by the server (`mlops server` runs the dispatcher); "
            "a remote connection cannot deliver them"
        )

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
        reference = parse_version_selector(name, version)
        wanted = Stage.parse(stage)
        response = self._api.request(
            "POST",
            _version_path(reference) + "/stage",
            json={"stage": wanted.value, "reason": reason},
            actor=self._who(actor),
        )
        if response.status_code == 202:
            return approval_of(response.json())
        return version_of(response.json())

    def rollback(
        self, name: str, *, reason: str | None = None, actor: str | None = None
    ) -> ModelVersion:
        return version_of(
            self._api.post(
                f"/models/{_name(name)}/rollback",
                json={"reason": reason},
                actor=self._who(actor),
            )
        )

    def set_alias(
        self,
        name: str,
        alias: str,
        version: VersionRef,
        *,
        reason: str | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        reference = parse_version_selector(name, version)
        _alias_check(alias)
        value: int | str = (
            reference.number if reference.number is not None else selector_text(reference)
        )
        return version_of(
            self._api.put(
                f"/models/{_name(name)}/aliases/{path_part(alias)}",
                json={"version": value, "reason": reason},
                actor=self._who(actor),
            )
        )

    def delete_alias(self, name: str, alias: str, *, actor: str | None = None) -> None:
        if not isinstance(alias, str) or not alias:
            raise InvalidInput(f"alias {alias!r} is not an alias name")
        self._api.delete(
            f"/models/{_name(name)}/aliases/{path_part(alias)}", actor=self._who(actor)
        )

    def history(self, name: str) -> list[Transition]:
        return [
            transition_of(name, item)
            for item in self._api.pages(f"/models/{_name(name)}/history", "transitions")
        ]

    def set_policy(
        self, name: str, policy: PromotionPolicy | None, *, actor: str | None = None
    ) -> None:
        if policy is None:
            self._api.delete(f"/models/{_name(name)}/policy", actor=self._who(actor))
            return
        if not isinstance(policy, PromotionPolicy):
            raise InvalidInput("set_policy takes a mlops.registry.PromotionPolicy or None")
        self._api.put(
            f"/models/{_name(name)}/policy",
            json=json.loads(policy.to_json()),
            actor=self._who(actor),
        )

    def get_policy(self, name: str) -> PromotionPolicy | None:
        found = self._api.get(f"/models/{_name(name)}/policy")["policy"]
        return None if found is None else PromotionPolicy.from_json(json.dumps(found))

    def list_approvals(
        self, name: str | None = None, *, status: ApprovalStatus | str | None = "pending"
    ) -> list[ApprovalRequest]:
        try:
            wanted = "all" if status is None else ApprovalStatus(str(status).lower()).value
        except ValueError:
            allowed = ", ".join(s.value for s in ApprovalStatus)
            raise InvalidInput(f"approval status {status!r} is not one of {allowed}") from None
        return [
            approval_of(item)
            for item in self._api.pages(
                "/approvals", "approvals", {"model": name, "status": wanted}
            )
        ]

    def approve(
        self, request_id: int, *, comment: str | None = None, actor: str | None = None
    ) -> ApprovalRequest:
        return self._decide(request_id, "approve", comment, actor)

    def reject(
        self, request_id: int, *, comment: str | None = None, actor: str | None = None
    ) -> ApprovalRequest:
        return self._decide(request_id, "reject", comment, actor)

    def _decide(
        self, request_id: int, verb: str, comment: str | None, actor: str | None
    ) -> ApprovalRequest:
        if isinstance(request_id, bool) or not isinstance(request_id, int):
            raise InvalidInput(f"an approval request id is an int, got {request_id!r}")
        return approval_of(
            self._api.post(
                f"/approvals/{request_id}/{verb}",
                json={"comment": comment},
                actor=self._who(actor),
            )
        )

    # -- signing ------------------------------------------------------------------------

    def trust_key(
        self, public_key: Any, *, name: str | None = None, actor: str | None = None
    ) -> str:
        pem = public_key_pem(_load_public_key(public_key)).decode()
        found: str = self._api.post(
            "/keys", json={"public_key": pem, "name": name}, actor=self._who(actor)
        )["fingerprint"]
        return found

    def verify_version(self, name: str, version: VersionRef) -> bool:
        found: bool = self._api.get(
            _version_path(parse_version_selector(name, version)) + "/verify"
        )["verified"]
        return found


def _name(name: object) -> str:
    return path_part(check_model_name(name))


def _version_path(reference: ModelReference) -> str:
    return f"/models/{_name(reference.name)}/versions/{path_part(selector_text(reference))}"


def _alias_check(alias: object) -> None:
    check_alias(alias)


def _tag_texts(tags: Mapping[str, Any] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidInput("tags must be a mapping of name to value")
    return {check_key("tag", key): tag_text(key, value) for key, value in tags.items()}
