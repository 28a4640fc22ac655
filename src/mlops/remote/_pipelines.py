"""``RemotePipelines``: ``ml.pipelines`` of a remote connection, over ``/pipelines``.

Reading, running (queueing an execution), cancelling, pausing and resuming go to the
server; its ``PipelineScheduler`` workers run what is queued. Registering a pipeline
imports its code into the server process, and ticking or working runs it there, so
those stay with whoever deploys the code (``mlops pipeline register`` on the server).
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from mlops.errors import InvalidInput, NotFound
from mlops.orchestration import (
    Attempt,
    Execution,
    ExecutionState,
    LogLine,
    Notify,
    PipelineOrchestrator,
    RegisteredPipeline,
    Trigger,
)
from mlops.pipelines import Pipeline
from mlops.remote._http import ApiClient
from mlops.remote._tracking import path_part

__all__ = ["RemotePipelines", "execution_of", "pipeline_of"]

#: Execution ids are 64-bit on the server; larger ones cannot exist.
_MAX_EXECUTION_ID = 2**63 - 1
#: The most items the API returns in one page.
_PAGE = 1000


def pipeline_of(body: Mapping[str, Any]) -> RegisteredPipeline:
    """A registered pipeline from the API's JSON (webhook secrets come back as ``***``)."""
    notify = body["notify"]
    return RegisteredPipeline(
        name=body["name"],
        source=body["source"],
        schedule=body["schedule"],
        timezone=body["timezone"],
        catchup=body["catchup"],
        max_active=body["max_active"],
        triggers=tuple(_trigger_of(item) for item in body["triggers"]),
        params=dict(body["params"]),
        retries=body["retries"],
        retry_backoff=float(body["retry_backoff"]),
        retry_max_backoff=float(body["retry_max_backoff"]),
        retry_jitter=float(body["retry_jitter"]),
        retry_on=tuple(body["retry_on"]),
        timeout=None if body["timeout"] is None else float(body["timeout"]),
        executor=body["executor"],
        notify=None
        if notify is None
        else Notify(channels=tuple(notify["channels"]), on=tuple(notify["on"])),
        paused=body["paused"],
        next_fire_at=body["next_fire_at"],
        created_by=body["created_by"],
        created_at=body["created_at"],
        updated_at=body["updated_at"],
    )


def _trigger_of(body: Mapping[str, Any]) -> Trigger:
    # Built as given, not through Trigger.from_params: a masked secret is not a valid one.
    return Trigger(
        kind=body["kind"],
        rule=body.get("rule"),
        endpoint=body.get("endpoint"),
        severity=body.get("severity"),
        labels=tuple(sorted(dict(body.get("labels") or {}).items())),
        model=body.get("model"),
        dataset_name=body.get("dataset"),
        secret=body.get("secret"),
    )


def execution_of(body: Mapping[str, Any]) -> Execution:
    """An execution from the API's JSON."""
    return Execution(
        id=body["id"],
        pipeline=body["pipeline"],
        state=ExecutionState(body["state"]),
        trigger=body["trigger"],
        trigger_detail=dict(body["trigger_detail"]),
        params=dict(body["params"]),
        created_at=body["created_at"],
        scheduled_for=body["scheduled_for"],
        attempts=tuple(
            Attempt(
                number=item["number"],
                started_at=item["started_at"],
                run_id=item["run_id"],
                ended_at=item["ended_at"],
                state=item["state"],
                error=item["error"],
                worker=item["worker"],
            )
            for item in body["attempts"]
        ),
        log=tuple(
            LogLine(
                at=item["at"],
                state=item["state"],
                attempt=item.get("attempt"),
                step=item.get("step"),
                duration_ms=item.get("duration_ms"),
                error=item.get("error"),
                message=item.get("message"),
            )
            for item in body["log"]
        ),
        error=body["error"],
        cancel_requested=body["cancel_requested"],
        next_attempt_at=body["next_attempt_at"],
        deadline_at=body["deadline_at"],
        created_by=body["created_by"],
        started_at=body["started_at"],
        finished_at=body["finished_at"],
        worker=body.get("worker"),
    )


class RemotePipelines(PipelineOrchestrator):
    """The registered pipelines of a remote server and their executions.

    The same methods and results as the embedded ``PipelineOrchestrator`` for reading,
    ``trigger``, ``cancel``, ``pause`` and ``resume``; ``register``, ``set_schedule``,
    ``unregister``, ``tick`` and ``work`` raise ``InvalidInput`` (they run on the server).
    None of the embedded constructor runs: nothing here touches a database. ``actor=``
    is sent as ``X-MLOps-Actor`` (recorded by a server without authentication; with a
    token, the token's user is recorded).
    """

    def __init__(self, api: ApiClient, *, actor: str | None = None) -> None:
        self._api = api
        self._sender = actor
        self.worker_id = ""

    def __repr__(self) -> str:
        return f"<RemotePipelines {self._api.url}>"

    @property
    def _actor(self) -> str | None:
        return self._sender

    def _who(self, actor: str | None) -> str | None:
        return actor if actor is not None else self._sender

    def now_ms(self) -> int:
        """This machine's clock, in ms since the epoch (the server keeps its own)."""
        return round(time.time() * 1000)

    # -- registration (on the server) ---------------------------------------------------

    def register(
        self,
        name: str,
        source: str | Pipeline,
        *,
        schedule: str | None = None,
        timezone: str = "UTC",
        catchup: bool = False,
        max_active: int = 1,
        triggers: Sequence[Trigger | Mapping[str, Any]] = (),
        params: Mapping[str, Any] | None = None,
        retries: int = 0,
        retry_backoff: float | str = "10s",
        retry_max_backoff: float | str = "10m",
        retry_jitter: float = 0.1,
        retry_on: Sequence[str] = (),
        timeout: float | str | None = None,
        executor: str = "local",
        notify: Notify | Mapping[str, Any] | None = None,
    ) -> RegisteredPipeline:
        self._server_side(
            "register",
            f"registering imports the pipeline's code into the server; run `mlops pipeline "
            f"register {name} SOURCE` where that code is deployed, against the server's "
            "database",
        )

    def set_schedule(
        self, name: str, schedule: str | None, *, timezone: str | None = None
    ) -> RegisteredPipeline:
        self._server_side(
            "set_schedule",
            f"a schedule change re-registers the pipeline, importing its code; run "
            f"`mlops pipeline schedule {name} ...` on the server",
        )

    def unregister(self, name: str) -> None:
        self._server_side(
            "unregister", f"run `mlops pipeline unregister {name}` against the server's database"
        )

    def tick(self, now: int | None = None) -> builtins.list[Execution]:
        self._server_side("tick", "the server's PipelineScheduler fires schedules and triggers")

    def work(
        self,
        now: int | None = None,
        *,
        max_executions: int = 1,
        stopping: Callable[[], bool] | None = None,
    ) -> builtins.list[Execution]:
        self._server_side("work", "the server's PipelineScheduler workers run queued executions")

    def _server_side(self, method: str, why: str) -> NoReturn:
        raise InvalidInput(
            f"ml.pipelines.{method}() is not available through a remote connection: {why}"
        )

    # -- pipelines ----------------------------------------------------------------------

    def get(self, name: str) -> RegisteredPipeline:
        return pipeline_of(self._api.get(f"/pipelines/{_name(name)}"))

    def list(self, *, paused: bool | None = None) -> builtins.list[RegisteredPipeline]:
        """Every registered pipeline, by name; ``paused`` filters."""
        if paused is not None and not isinstance(paused, bool):
            raise InvalidInput(f"paused must be True, False or None; got {paused!r}")
        found = self._api.pages("/pipelines", "pipelines", {"paused": paused})
        return [pipeline_of(item) for item in found]

    def pause(self, name: str, *, actor: str | None = None) -> RegisteredPipeline:
        """Stop firing the schedule and triggers (manual triggers still run)."""
        body = self._api.post(f"/pipelines/{_name(name)}/pause", actor=self._who(actor))
        return pipeline_of(body)

    def resume(self, name: str, *, actor: str | None = None) -> RegisteredPipeline:
        """Fire again (events recorded while paused are not replayed)."""
        body = self._api.post(f"/pipelines/{_name(name)}/resume", actor=self._who(actor))
        return pipeline_of(body)

    def next_due(self) -> int | None:
        """The earliest due time of any schedule not paused (ms), if there is one."""
        due = [p.next_fire_at for p in self.list(paused=False) if p.next_fire_at is not None]
        return min(due, default=None)

    # -- executions ---------------------------------------------------------------------

    def trigger(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        reason: str | None = None,
        source: str = "manual",
        actor: str | None = None,
    ) -> Execution:
        """Queue an execution now; the server's workers run it."""
        if source == Trigger.WEBHOOK:
            raise InvalidInput(
                "a webhook trigger is an outside system calling the server: POST "
                f"/v1/pipelines/{name}/trigger signed with the pipeline's webhook secret; "
                "from here, trigger it manually (source='manual')"
            )
        if source != "manual":
            raise InvalidInput(f"source must be 'manual' or 'webhook'; got {source!r}")
        if reason is not None and not isinstance(reason, str):
            raise InvalidInput(f"reason must be text; got {reason!r}")
        if params is not None and not isinstance(params, Mapping):
            raise InvalidInput(f"params must be a dict of pipeline params; got {params!r}")
        body = {"params": None if params is None else dict(params), "reason": reason}
        found = self._api.post(
            f"/pipelines/{_name(name)}/execute", json=body, actor=self._who(actor)
        )
        return execution_of(found)

    def cancel(
        self, execution_id: int, *, reason: str | None = None, actor: str | None = None
    ) -> Execution:
        """Cancel an execution: at once if it waits, is queued or is retrying; a running
        one stops before its next step starts. Conflict if it has already ended."""
        _check_execution_id(execution_id)
        if reason is not None and not isinstance(reason, str):
            raise InvalidInput(f"reason must be text; got {reason!r}")
        found = self._api.post(
            f"/pipelines/executions/{execution_id}/cancel",
            json={"reason": reason},
            actor=self._who(actor),
        )
        return execution_of(found)

    def execution(self, execution_id: int) -> Execution:
        """One execution, with its attempts and its log."""
        _check_execution_id(execution_id)
        return execution_of(self._api.get(f"/pipelines/executions/{execution_id}"))

    def executions(
        self,
        name: str | None = None,
        *,
        state: ExecutionState | str | None = None,
        limit: int = 50,
    ) -> builtins.list[Execution]:
        """Executions, newest first; of pipeline ``name``, in ``state``.

        Without ``name``, the executions of the pipelines registered now: the API lists
        executions per pipeline, so those of unregistered pipelines are left out (name
        the pipeline to see them).
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a positive integer; got {limit!r}")
        wanted = None if state is None else _state(state)
        if name is not None:
            return self._executions_of(name, wanted, limit)
        merged = [
            execution
            for pipeline in self.list()
            for execution in self._executions_of(pipeline.name, wanted, limit)
        ]
        return sorted(merged, key=lambda execution: -execution.id)[:limit]

    def _executions_of(self, name: str, state: str | None, limit: int) -> builtins.list[Execution]:
        found: builtins.list[Execution] = []
        query: dict[str, Any] = {"state": state}
        path = f"/pipelines/{_name(name)}/executions"
        while len(found) < limit:
            query["limit"] = min(limit - len(found), _PAGE)
            try:
                body = self._api.get(path, params=query)
            except NotFound:
                if found:
                    raise
                return []  # as embedded: no such pipeline and no history is no executions
            found += [execution_of(item) for item in body["executions"]]
            token = body.get("next_page_token")
            if not token:
                break
            query["page_token"] = token
        return found


def _name(name: object) -> str:
    """The name as one path segment ("." and ".." escaped, or they would move the path)."""
    if not isinstance(name, str):
        raise InvalidInput(f"a pipeline name is a string; got {name!r}")
    if not name:
        raise NotFound("there is no registered pipeline ''; see `mlops pipeline list`")
    return name.replace(".", "%2E") if name in (".", "..") else path_part(name)


def _check_execution_id(execution_id: object) -> None:
    if isinstance(execution_id, bool) or not isinstance(execution_id, int):
        raise InvalidInput(f"an execution id is an integer; got {execution_id!r}")
    if not 1 <= execution_id <= _MAX_EXECUTION_ID:
        raise NotFound(f"there is no pipeline execution {execution_id}; see `mlops pipeline runs`")


def _state(state: ExecutionState | str) -> str:
    try:
        return ExecutionState(state).value
    except ValueError:
        raise InvalidInput(
            f"execution state {state!r} is unknown; use one of "
            f"{', '.join(item.value for item in ExecutionState)}"
        ) from None
