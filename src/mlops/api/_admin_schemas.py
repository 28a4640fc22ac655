"""Request and response bodies of the pipeline and governance routes (users, tokens, audit)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from mlops.governance import AuditEntry, AuditVerification, TokenInfo, User
from mlops.orchestration import Attempt, Execution, LogLine, RegisteredPipeline

__all__ = [
    "AttemptOut",
    "AuditEntryOut",
    "AuditList",
    "AuditVerificationOut",
    "CancelIn",
    "ExecuteIn",
    "ExecutionList",
    "ExecutionOut",
    "ExecutionStateName",
    "ExecutionSummary",
    "LogLineOut",
    "NotifyOut",
    "PipelineList",
    "PipelineOut",
    "PipelineStatus",
    "RoleName",
    "StepOut",
    "TokenCreate",
    "TokenCreated",
    "TokenList",
    "TokenOut",
    "UserCreate",
    "UserList",
    "UserOut",
    "UserUpdate",
    "WhoAmI",
]

RoleName = Literal["viewer", "editor", "deployer", "admin"]
ExecutionStateName = Literal[
    "scheduled",
    "queued",
    "running",
    "retrying",
    "succeeded",
    "failed",
    "cancelled",
    "timed_out",
    "cached",
]


def _storable(text: str) -> str:
    # PostgreSQL text cannot hold NUL; refused here as bad input, not a storage failure.
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


#: Text that goes into a database column as it is.
StoredText = Annotated[str, AfterValidator(_storable)]


class _In(BaseModel):
    """A request body: unknown fields are refused, so a typo is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")


# -- pipelines --------------------------------------------------------------------------


class NotifyOut(BaseModel):
    channels: list[str]
    on: list[str] = Field(description="failure and/or success.")


class PipelineOut(BaseModel):
    """A registered pipeline; webhook trigger secrets are masked."""

    name: str
    source: str = Field(description="'package.module:attribute' or a YAML path.")
    schedule: str | None = Field(description="A cron expression read in timezone.")
    timezone: str
    catchup: bool
    max_active: int
    triggers: list[dict[str, Any]]
    params: dict[str, Any]
    retries: int
    retry_backoff: float = Field(description="Seconds.")
    retry_max_backoff: float
    retry_jitter: float
    retry_on: list[str]
    timeout: float | None = Field(description="Seconds per attempt.")
    executor: str
    notify: NotifyOut | None
    paused: bool
    next_fire_at: int | None = Field(description="Next due time of the schedule (ms).")
    created_by: str | None
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, pipeline: RegisteredPipeline) -> PipelineOut:
        return cls.model_validate(pipeline.to_json())


class PipelineList(BaseModel):
    pipelines: list[PipelineOut]
    next_page_token: str | None


class ExecuteIn(_In):
    params: dict[str, Any] | None = Field(
        default=None, description="Override the registered params for this execution."
    )
    reason: StoredText | None = Field(default=None, max_length=2000)


class CancelIn(_In):
    reason: StoredText | None = Field(default=None, max_length=2000)


class AttemptOut(BaseModel):
    number: int
    run_id: str | None = Field(description="The tracked pipeline run of the attempt.")
    started_at: int
    ended_at: int | None
    duration_ms: int | None
    state: str | None
    error: str | None
    worker: str | None

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        return cls.model_validate(attempt.to_json())


class LogLineOut(BaseModel):
    at: int
    state: str
    attempt: int | None = None
    step: str | None = None
    duration_ms: float | None = None
    error: str | None = None
    message: str | None = None

    @classmethod
    def of(cls, line: LogLine) -> LogLineOut:
        return cls.model_validate(line.to_json())


class StepOut(BaseModel):
    """How a step of the latest attempt ended (steps not reached yet are absent)."""

    step: str
    state: str
    attempt: int | None
    at: int
    duration_ms: float | None
    error: str | None

    @classmethod
    def steps_of(cls, execution: Execution) -> list[StepOut]:
        latest = len(execution.attempts) or None
        return [
            cls(
                step=line.step,
                state=line.state,
                attempt=line.attempt,
                at=line.at,
                duration_ms=line.duration_ms,
                error=line.error,
            )
            for line in execution.log
            if line.step is not None and (latest is None or line.attempt in (None, latest))
        ]


class ExecutionOut(BaseModel):
    id: int
    pipeline: str
    state: ExecutionStateName
    trigger: str = Field(description="manual, webhook, schedule, alert, dataset…")
    trigger_detail: dict[str, Any]
    scheduled_for: int | None
    params: dict[str, Any]
    attempts: list[AttemptOut]
    run_ids: list[str]
    error: str | None
    cancel_requested: bool
    next_attempt_at: int | None
    deadline_at: int | None
    created_by: str | None
    created_at: int
    started_at: int | None
    finished_at: int | None
    duration_ms: int | None
    steps: list[StepOut] = Field(description="The steps of the latest attempt.")
    log: list[LogLineOut]
    worker: str | None = Field(
        default=None, description="The worker running (or last to run) the execution."
    )

    @classmethod
    def of(cls, execution: Execution) -> ExecutionOut:
        return cls(
            id=execution.id,
            pipeline=execution.pipeline,
            state=execution.state.value,
            trigger=execution.trigger,
            trigger_detail=dict(execution.trigger_detail),
            scheduled_for=execution.scheduled_for,
            params=dict(execution.params),
            attempts=[AttemptOut.of(attempt) for attempt in execution.attempts],
            run_ids=list(execution.run_ids),
            error=execution.error,
            cancel_requested=execution.cancel_requested,
            next_attempt_at=execution.next_attempt_at,
            deadline_at=execution.deadline_at,
            created_by=execution.created_by,
            created_at=execution.created_at,
            started_at=execution.started_at,
            finished_at=execution.finished_at,
            duration_ms=execution.duration_ms,
            steps=StepOut.steps_of(execution),
            log=[LogLineOut.of(line) for line in execution.log],
            worker=execution.worker,
        )


class ExecutionList(BaseModel):
    executions: list[ExecutionOut]
    next_page_token: str | None


class ExecutionSummary(BaseModel):
    id: int
    state: ExecutionStateName
    trigger: str
    attempts: int
    created_at: int
    started_at: int | None
    finished_at: int | None
    error: str | None
    cancel_requested: bool
    steps: list[StepOut] = Field(description="The steps of the latest attempt.")

    @classmethod
    def of(cls, execution: Execution) -> ExecutionSummary:
        return cls(
            id=execution.id,
            state=execution.state.value,
            trigger=execution.trigger,
            attempts=len(execution.attempts),
            created_at=execution.created_at,
            started_at=execution.started_at,
            finished_at=execution.finished_at,
            error=execution.error,
            cancel_requested=execution.cancel_requested,
            steps=StepOut.steps_of(execution),
        )


class PipelineStatus(BaseModel):
    name: str
    schedule: str | None
    timezone: str
    paused: bool
    next_due_at: int | None = Field(
        description="When the schedule fires next (ms); null without one or while paused."
    )
    latest_execution: ExecutionSummary | None


# -- governance -------------------------------------------------------------------------

ModelPattern = Annotated[StoredText, Field(min_length=1, max_length=250, examples=["churn-*"])]


class WhoAmI(BaseModel):
    user: str | None = Field(description="The token's user; null without a token.")
    authenticated: bool
    role: RoleName | None
    models: list[str] | None = Field(description="Model-name patterns; null: every model.")
    token_id: int | None
    acts_as: Literal["user", "server", "anonymous"] = Field(
        description="user: the token's; server: no token on a server with auth off (it "
        "acts as the server's own identity); anonymous: no token, reads only."
    )
    actor: str | None = Field(
        description="Who the caller's changes are recorded as (null: anonymous, no changes)."
    )
    auth: Literal["required", "anonymous-read", "off"]
    permissions: list[str] = Field(description="What the caller may do, sorted.")


class UserCreate(_In):
    name: str = Field(min_length=1, max_length=250, examples=["ana"])
    role: RoleName
    models: list[ModelPattern] | None = Field(
        default=None, min_length=1, description="Limit to these model-name globs; null: all."
    )


class UserUpdate(_In):
    """Only the fields given change; ``"models": null`` lifts the model scope."""

    role: RoleName | None = None
    models: list[ModelPattern] | None = Field(default=None, min_length=1)
    disabled: bool | None = None


class UserOut(BaseModel):
    id: int
    name: str
    role: RoleName
    models: list[str] | None = Field(description="Model-name globs; null: every model.")
    created_at: int
    disabled: bool
    disabled_at: int | None

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            name=user.name,
            role=user.role,  # type: ignore[arg-type]
            models=None if user.models is None else list(user.models),
            created_at=user.created_at,
            disabled=user.disabled,
            disabled_at=user.disabled_at,
        )


class UserList(BaseModel):
    users: list[UserOut]
    next_page_token: str | None


class TokenCreate(_In):
    name: StoredText = Field(
        min_length=1, max_length=250, description="What the token is for.", examples=["ci"]
    )
    expires_in: str | None = Field(
        default=None,
        max_length=32,
        description="Lifetime such as '12h', '30d' or '2w'; null: never expires.",
        examples=["30d"],
    )


class TokenOut(BaseModel):
    """What is kept of a token: never the secret, only its display prefix."""

    id: int
    user: str
    name: str
    prefix: str
    status: Literal["active", "revoked", "expired"]
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    last_used_at: int | None

    @classmethod
    def of(cls, info: TokenInfo) -> TokenOut:
        return cls.model_validate(info.to_json())


class TokenCreated(TokenOut):
    token: str = Field(
        repr=False,
        description="The secret, shown only in this answer: store it now "
        "(send it as 'Authorization: Bearer …').",
    )

    @classmethod
    def created(cls, token: str, info: TokenInfo) -> TokenCreated:
        return cls.model_validate({**info.to_json(), "token": token})


class TokenList(BaseModel):
    tokens: list[TokenOut]
    next_page_token: str | None


class AuditEntryOut(BaseModel):
    id: int
    at: int = Field(description="Milliseconds since the epoch.")
    actor: str
    action: str
    target: str
    before: Any
    after: Any
    request_id: str | None
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls.model_validate(entry.to_json())


class AuditList(BaseModel):
    entries: list[AuditEntryOut]
    next_page_token: str | None


class AuditVerificationOut(BaseModel):
    ok: bool
    checked: int = Field(description="Entries checked before the first break (or all).")
    head_id: int | None = Field(description="The last intact entry.")
    head_hash: str | None
    broken_at: int | None = Field(description="The first entry that fails.")
    problem: Literal["changed", "missing"] | None
    message: str

    @classmethod
    def of(cls, result: AuditVerification) -> AuditVerificationOut:
        return cls.model_validate(result.to_json())
