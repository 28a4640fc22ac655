"""``RemoteTracker``: the ``ExperimentTracker`` facade over a server's REST API.

Arguments are checked here with the same functions the embedded tracker uses, so a bad
call fails with the same error before anything is sent; the server checks again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from mlops.artifacts import ArtifactInfo, validate_artifact_path
from mlops.errors import AlreadyExists, Conflict, IntegrityError, InvalidInput, NotFound
from mlops.remote._http import ApiClient
from mlops.tracking import ExperimentTracker
from mlops.tracking._async import MetricBuffer
from mlops.tracking._entities import (
    Dataset,
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    Run,
    RunPage,
    RunStatus,
)
from mlops.tracking._run import ActiveRun
from mlops.tracking._tracker import ExperimentRef
from mlops.tracking._validation import (
    check_description,
    check_key,
    check_name,
    check_run_id,
    param_text,
    tag_text,
)
from mlops.tracking._writer import MetricLike, MetricPoint, coerce_metric, metric_point

__all__ = ["RemoteTracker"]

#: Points per request of the background writer (well under the server's 1 MiB body limit).
_CHUNK = 5000
_MAX_RESULTS = 1000


def path_part(text: str) -> str:
    """One URL path segment (names may hold spaces, '%', '?' …)."""
    return quote(text, safe="")


def _number(value: float | None) -> float | str:
    if value is None or value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _float(value: float | str) -> float:
    return float(value)  # "NaN", "Infinity" and "-Infinity" parse as the values they name


def _points_json(points: Sequence[MetricPoint]) -> list[dict[str, Any]]:
    return [
        {"key": key, "value": _number(value), "step": step, "timestamp": timestamp}
        for key, value, step, timestamp in points
    ]


def experiment_of(body: Mapping[str, Any]) -> Experiment:
    return Experiment(
        id=body["id"],
        name=body["name"],
        artifact_location=body["artifact_location"],
        lifecycle_stage=LifecycleStage(body["lifecycle_stage"]),
        created_at=body["created_at"],
        updated_at=body["updated_at"],
        description=body["description"],
        tags=dict(body["tags"]),
    )


def run_of(body: Mapping[str, Any]) -> Run:
    return Run(
        id=body["id"],
        experiment_id=body["experiment_id"],
        name=body["name"],
        status=RunStatus(body["status"]),
        start_time=body["start_time"],
        end_time=body["end_time"],
        artifact_uri=body["artifact_uri"],
        lifecycle_stage=LifecycleStage(body["lifecycle_stage"]),
        parent_run_id=body["parent_run_id"],
        user=body["user"],
        params=dict(body["params"]),
        metrics={key: _float(value) for key, value in body["metrics"].items()},
        tags=dict(body["tags"]),
        inputs=tuple(
            DatasetInput(
                Dataset(
                    name=item["name"],
                    digest=item["digest"],
                    schema=item.get("schema"),
                    num_rows=item["num_rows"],
                    source=item["source"],
                ),
                item["context"],
            )
            for item in body["inputs"]
        ),
    )


class _RemoteWriter:
    """What a run's background ``MetricBuffer`` writes through: POSTs of metric batches."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def log_points(self, run_id: str, points: list[MetricPoint]) -> None:
        for start in range(0, len(points), _CHUNK):
            self._api.post(
                f"/runs/{run_id}/metrics",
                content=_compact({"metrics": _points_json(points[start : start + _CHUNK])}),
                headers={"Content-Type": "application/json"},
            )


def _compact(body: Any) -> bytes:
    """JSON bytes, fast (orjson): the hot path of batched logging. Non-finite values were
    turned into "NaN"/"Infinity" strings before; a float that is still one is a bug."""
    return orjson.dumps(body)


class RemoteTracker(ExperimentTracker):
    """Experiments, runs, their data and artifacts, kept by a remote ``mlops server``.

    The same methods and results as the embedded ``ExperimentTracker``; every call is one
    or a few HTTP requests. ``async_logging=True`` runs send their metrics in batches
    from a background thread, which is the fast way to log many points.
    """

    def __init__(self, api: ApiClient, actor: str | None = None) -> None:
        self._api = api
        self._sent_actor = actor
        self._remote_writer = _RemoteWriter(api)
        self._buffers: dict[str, MetricBuffer] = {}
        self._buffers_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<RemoteTracker {self._api.url}>"

    def _who(self, actor: str | None) -> str | None:
        """Sent as X-MLOps-Actor: honoured by a server without authentication only."""
        return actor if actor is not None else self._sent_actor

    # -- experiments --------------------------------------------------------------------

    def create_experiment(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> Experiment:
        check_name("experiment", name)
        body = {
            "name": name,
            "description": check_description(description),
            "tags": _texts("tag", tags),
        }
        return experiment_of(self._api.post("/experiments", json=body, actor=self._who(actor)))

    def set_experiment(self, name: str) -> Experiment:
        check_name("experiment", name)
        try:
            return self.create_experiment(name)
        except AlreadyExists:
            experiment = self.get_experiment(name)
            if experiment.lifecycle_stage is LifecycleStage.DELETED:
                raise Conflict(
                    f"experiment {name!r} is deleted; restore it with "
                    f"`ml.tracking.restore_experiment({name!r})` or pick another name"
                ) from None
            return experiment

    def get_experiment(self, experiment: ExperimentRef) -> Experiment:
        return experiment_of(self._api.get(self._experiment_path(experiment)))

    def _experiment_path(self, experiment: ExperimentRef) -> str:
        if isinstance(experiment, bool) or not isinstance(experiment, (int, str)):
            raise InvalidInput(
                f"an experiment is named by its id (int) or name (str), got {experiment!r}"
            )
        if isinstance(experiment, int):
            return f"/experiments/{experiment}"
        if not experiment:
            raise NotFound(
                "experiment '' does not exist; create it with "
                "ml.tracking.create_experiment(name) (see `mlops experiments list`)"
            )
        return f"/experiments/by-name/{path_part(experiment)}"

    def _remote_experiment_id(self, experiment: ExperimentRef) -> int:
        if isinstance(experiment, int) and not isinstance(experiment, bool):
            return experiment
        return self.get_experiment(experiment).id

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        return [
            experiment_of(item)
            for item in self._api.pages(
                "/experiments", "experiments", {"include_deleted": include_deleted}
            )
        ]

    def rename_experiment(
        self, experiment: ExperimentRef, new_name: str, *, actor: str | None = None
    ) -> Experiment:
        check_name("experiment", new_name)
        experiment_id = self._remote_experiment_id(experiment)
        return experiment_of(
            self._api.patch(
                f"/experiments/{experiment_id}",
                json={"name": new_name},
                actor=self._who(actor),
            )
        )

    def delete_experiment(self, experiment: ExperimentRef, *, actor: str | None = None) -> None:
        self._api.delete(
            f"/experiments/{self._remote_experiment_id(experiment)}", actor=self._who(actor)
        )

    def restore_experiment(self, experiment: ExperimentRef, *, actor: str | None = None) -> None:
        self._api.post(
            f"/experiments/{self._remote_experiment_id(experiment)}/restore",
            actor=self._who(actor),
        )

    def set_experiment_tag(self, experiment: ExperimentRef, key: str, value: Any) -> None:
        check_key("tag", key)
        text = tag_text(key, value)
        self._api.put(
            f"/experiments/{self._remote_experiment_id(experiment)}/tags/{path_part(key)}",
            json={"value": text},
        )

    # -- runs ---------------------------------------------------------------------------

    def start_run(
        self,
        experiment: ExperimentRef | None = None,
        *,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent: str | ActiveRun | Run | None = None,
        async_logging: bool = False,
    ) -> ActiveRun:
        if name is not None:
            check_name("run", name)
        texts = _texts("tag", tags)
        parent_id = None if parent is None else check_run_id(getattr(parent, "id", parent))
        experiment_id = None if experiment is None else self._remote_experiment_id(experiment)
        body = {
            "experiment_id": experiment_id,
            "name": name,
            "tags": texts,
            "parent_run_id": parent_id,
        }
        created = run_of(self._api.post("/runs", json=body))
        return ActiveRun(self, created.id, created.experiment_id, async_logging=async_logging)

    def resume_run(self, run_id: str, *, async_logging: bool = False) -> ActiveRun:
        found = self.get_run(run_id)
        if found.status is not RunStatus.RUNNING:
            from mlops.errors import RunNotActive

            raise RunNotActive(
                f"run '{run_id}' is {found.status}; it no longer accepts data. "
                "Start a new run (or a child run) to log more"
            )
        return ActiveRun(self, found.id, found.experiment_id, async_logging=async_logging)

    def end_run(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED) -> None:
        check_run_id(run_id)
        try:
            final = RunStatus(str(status).upper())
        except ValueError:
            final = RunStatus.RUNNING
        if final is RunStatus.RUNNING:
            raise InvalidInput(f"a run ends as FINISHED, FAILED or KILLED, not {status!r}")
        buffer = self._buffers.pop(run_id, None)
        try:
            if buffer is not None:
                buffer.close()
        finally:
            self._api.patch(f"/runs/{run_id}", json={"status": final.value})

    def open_buffer(self, run_id: str) -> MetricBuffer:
        with self._buffers_lock:
            buffer = self._buffers.get(run_id)
            if buffer is None:
                buffer = self._buffers[run_id] = MetricBuffer(
                    self._remote_writer,  # type: ignore[arg-type]
                    run_id,
                )
            return buffer

    def get_run(self, run_id: str) -> Run:
        return run_of(self._api.get(f"/runs/{check_run_id(run_id)}"))

    def delete_run(self, run_id: str, *, actor: str | None = None) -> None:
        self._api.delete(f"/runs/{check_run_id(run_id)}", actor=self._who(actor))

    def restore_run(self, run_id: str, *, actor: str | None = None) -> None:
        self._api.post(f"/runs/{check_run_id(run_id)}/restore", actor=self._who(actor))

    def search_runs(
        self,
        experiments: ExperimentRef | Sequence[ExperimentRef] | None = None,
        filter: str | None = None,
        *,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> RunPage:
        if filter is not None and not isinstance(filter, str):
            raise InvalidInput(f"filter must be a string, got {type(filter).__name__}")
        if (
            isinstance(max_results, bool)
            or not isinstance(max_results, int)
            or not 1 <= max_results <= _MAX_RESULTS
        ):
            raise InvalidInput(
                f"max_results must be an integer from 1 to {_MAX_RESULTS}, got {max_results!r}"
            )
        ids = None
        if experiments is not None:
            refs = [experiments] if isinstance(experiments, (int, str)) else list(experiments)
            ids = [self._remote_experiment_id(ref) for ref in refs]
        orders = [order_by] if isinstance(order_by, str) else list(order_by or [])
        body = {
            "experiment_ids": ids,
            "filter": filter,
            "order_by": orders,
            "include_deleted": include_deleted,
            "limit": max_results,
            "page_token": page_token,
        }
        found = self._api.post("/runs/search", json=body)
        return RunPage([run_of(item) for item in found["runs"]], found["next_page_token"])

    # -- run data -----------------------------------------------------------------------

    def log_metric(
        self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        self._send_points(check_run_id(run_id), [metric_point(key, value, step, timestamp)])

    def log_metrics(
        self, run_id: str, values: Mapping[str, float], step: int = 0, timestamp: int | None = None
    ) -> None:
        if not isinstance(values, Mapping):
            raise InvalidInput("log_metrics takes a mapping of metric name to value")
        points = [metric_point(key, value, step, timestamp) for key, value in values.items()]
        if points:
            self._send_points(check_run_id(run_id), points)

    def _send_points(self, run_id: str, points: list[MetricPoint]) -> None:
        self._api.post(
            f"/runs/{run_id}/metrics",
            content=_compact({"metrics": _points_json(points)}),
            headers={"Content-Type": "application/json"},
        )

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.log_params(run_id, {key: value})

    def log_params(self, run_id: str, values: Mapping[str, Any]) -> None:
        check_run_id(run_id)
        texts = _texts("param", values, param=True)
        if texts:
            self._api.post(f"/runs/{run_id}/params", json={"params": texts})

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.set_tags(run_id, {key: value})

    def set_tags(self, run_id: str, values: Mapping[str, Any]) -> None:
        check_run_id(run_id)
        texts = _texts("tag", values)
        if texts:
            self._api.post(f"/runs/{run_id}/tags", json={"tags": texts})

    def delete_tag(self, run_id: str, key: str) -> None:
        check_run_id(run_id)
        check_key("tag", key)
        self._api.delete(f"/runs/{run_id}/tags/{path_part(key)}")

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[MetricLike] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        check_run_id(run_id)
        points = [coerce_metric(item) for item in metrics]
        body = {
            "metrics": _points_json(points),
            "params": _texts("param", params or {}, param=True),
            "tags": _texts("tag", tags or {}),
        }
        if points or body["params"] or body["tags"]:
            self._api.post(
                f"/runs/{run_id}/log-batch",
                content=_compact(body),
                headers={"Content-Type": "application/json"},
            )

    def log_input(self, run_id: str, dataset: Dataset, context: str = "training") -> None:
        check_run_id(run_id)
        if not isinstance(dataset, Dataset):
            raise InvalidInput(
                f"log_input takes a mlops.tracking.Dataset, got {type(dataset).__name__}; "
                "build one with Dataset(name=..., digest=...) or dataset_from_data(...)"
            )
        check_name("dataset", dataset.name)
        check_key("dataset context", context)
        if not isinstance(dataset.digest, str) or not dataset.digest or len(dataset.digest) > 64:
            raise InvalidInput(
                f"dataset {dataset.name!r} needs a digest of 1 to 64 characters, "
                f"got {dataset.digest!r}"
            )
        if dataset.num_rows is not None and (
            not isinstance(dataset.num_rows, int) or not 0 <= dataset.num_rows < 2**63
        ):
            raise InvalidInput(f"dataset {dataset.name!r} num_rows must be a non-negative int")
        self._api.post(
            f"/runs/{run_id}/inputs",
            json={
                "dataset": {
                    "name": dataset.name,
                    "digest": dataset.digest,
                    "schema": None if dataset.schema is None else dict(dataset.schema),
                    "num_rows": dataset.num_rows,
                    "source": dataset.source,
                },
                "context": context,
            },
        )

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        check_key("metric", key)
        check_run_id(run_id)
        return [
            Metric(key, _float(point["value"]), point["step"], point["timestamp"])
            for point in self._api.pages(f"/runs/{run_id}/metrics/{path_part(key)}", "points")
        ]

    # -- artifacts ----------------------------------------------------------------------

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactInfo]:
        check_run_id(run_id)
        source = Path(local_path)
        if not source.exists():
            raise InvalidInput(f"cannot log artifact: {source} does not exist")
        folder = "" if artifact_path is None else validate_artifact_path(artifact_path)
        target = "/".join(part for part in (folder, source.name) if part)
        files = (
            [(p, f"{target}/{p.relative_to(source).as_posix()}") for p in sorted(source.rglob("*"))]
            if source.is_dir()
            else [(source, target)]
        )
        files = [(p, path) for p, path in files if p.is_file()]
        taken = {info.path for info in self.list_artifacts(run_id)}
        clash = next((path for _, path in files if path in taken), None)
        if clash is not None:
            raise Conflict(
                f"run '{run_id}' already has artifact {clash!r}; logged artifacts are "
                "immutable, so log under another artifact_path"
            )
        written = []
        for file, path in files:
            with file.open("rb") as stream:
                body = self._api.put(
                    f"/runs/{run_id}/artifacts/{quote(path)}",
                    content=stream.read(),
                    headers={"Content-Type": "application/octet-stream"},
                )
            written.append(ArtifactInfo(body["path"], body["size"], body["sha256"]))
        return written

    def log_text(self, run_id: str, text: str, artifact_file: str) -> ArtifactInfo:
        return self._log_bytes(run_id, text.encode(), artifact_file)

    def log_dict(self, run_id: str, data: Mapping[str, Any], artifact_file: str) -> ArtifactInfo:
        return self._log_bytes(
            run_id, json.dumps(data, indent=2, sort_keys=True).encode(), artifact_file
        )

    def _log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> ArtifactInfo:
        check_run_id(run_id)
        path = validate_artifact_path(artifact_file)
        if any(info.path == path for info in self.list_artifacts(run_id, path)):
            raise Conflict(
                f"run '{run_id}' already has artifact {path!r}; logged artifacts are "
                "immutable, so log under another artifact_path"
            )
        body = self._api.put(
            f"/runs/{run_id}/artifacts/{quote(path)}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return ArtifactInfo(body["path"], body["size"], body["sha256"])

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[ArtifactInfo]:
        check_run_id(run_id)
        folder = "" if not path else validate_artifact_path(path)
        return [
            ArtifactInfo(item["path"], item["size"], item["sha256"])
            for item in self._api.pages(f"/runs/{run_id}/artifacts", "artifacts", {"path": folder})
        ]

    def download_artifacts(
        self, run_id: str, path: str, destination: str | os.PathLike[str]
    ) -> Path:
        listed = self.list_artifacts(run_id, path)
        if not listed:
            raise NotFound(f"run '{run_id}' has no artifact {path!r} (see list_artifacts)")
        folder = validate_artifact_path(path)
        target = Path(destination) / Path(folder).name
        if len(listed) == 1 and listed[0].path == folder:
            self._download(run_id, listed[0], target)
            return target
        for info in listed:
            self._download(run_id, info, target / info.path[len(folder) + 1 :])
        return target

    def _download(self, run_id: str, info: ArtifactInfo, target: Path) -> None:
        """Stream one file to ``target``, checking its SHA-256 before it appears there."""
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        handle, partial = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
        try:
            with (
                os.fdopen(handle, "wb") as file,
                self._api.stream(f"/runs/{run_id}/artifacts/{quote(info.path)}") as response,
            ):
                for chunk in response.iter_bytes(1 << 20):
                    digest.update(chunk)
                    file.write(chunk)
            if digest.hexdigest() != info.sha256:
                raise IntegrityError(
                    f"artifact {info.path!r} of run '{run_id}' arrived with SHA-256 "
                    f"{digest.hexdigest()[:12]}…, not the recorded {info.sha256[:12]}…; "
                    "download it again"
                )
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)

    # -- what only the embedded tracker has ---------------------------------------------

    def close(self) -> None:
        with self._buffers_lock:
            buffers, self._buffers = list(self._buffers.values()), {}
        for buffer in buffers:
            buffer.close(raise_errors=False)


def _texts(kind: str, values: object, *, param: bool = False) -> dict[str, str]:
    """Params or tags as the text the server stores, checked like the embedded tracker."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        plural = "params" if param else "tags"
        raise InvalidInput(
            f"{plural} must be a mapping of name to value, got {type(values).__name__}"
        )
    convert = param_text if param else tag_text
    return {check_key(kind, key): convert(key, value) for key, value in values.items()}
