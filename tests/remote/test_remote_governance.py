"""The remote ``pipelines``, ``audit`` and ``access`` facades against a real server that
requires tokens, on SQLite and PostgreSQL: what they return equals what the embedded
facades on the server's connection return; roles the server refuses come back as
``PermissionDenied``; what only the server can do raises ``InvalidInput``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette

from api.conftest import unique
from live_server import LiveServer
from mlops.api import api_routes
from mlops.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from mlops.governance import PERMISSIONS, Principal, append
from mlops.orchestration import ExecutionState, Trigger
from mlops.remote._governance import RemoteAccessControl, RemoteAuditLog
from mlops.remote._http import ApiClient
from mlops.remote._pipelines import RemotePipelines

HELLO = "orchestration.flows:hello"  # extract -> total, param rows=3
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def live(ml: Any) -> Iterator[LiveServer]:
    server = LiveServer(Starlette(routes=api_routes(ml, auth="required")), ready_status=401)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Remote:
    """The remote facades of one token's user."""

    def __init__(self, live: LiveServer, user: str, token: str) -> None:
        self.user = user
        self.api = ApiClient(live.url, token=token, retries=0)
        self.access = RemoteAccessControl(self.api)
        self.audit = RemoteAuditLog(self.api)
        self.pipelines = RemotePipelines(self.api)


@pytest.fixture(scope="module")
def as_role(ml: Any, live: LiveServer) -> Iterator[Any]:
    """``as_role("editor")``: the remote facades of a new user with that role."""
    opened: list[Remote] = []

    def make(role: str) -> Remote:
        user = unique(role)
        ml.access.create_user(user, role, actor="bootstrap")
        token, _ = ml.access.create_token(user, name="remote-tests", actor="bootstrap")
        opened.append(Remote(live, user, token))
        return opened[-1]

    yield make
    for remote in opened:
        remote.api.close()


@pytest.fixture(scope="module")
def admin(as_role: Any) -> Remote:
    remote: Remote = as_role("admin")
    return remote


def register(ml: Any, **options: Any) -> str:
    """A pipeline registered on the server's connection (registering is server-side)."""
    name = unique("pipe")
    ml.pipelines.register(name, HELLO, executor="threads", **options)
    return name


def run_until_finished(ml: Any, execution_id: int) -> None:
    for _ in range(20):
        if ml.pipelines.execution(execution_id).state.finished:
            return
        ml.pipelines.work()
    pytest.fail(f"execution {execution_id} did not finish")


# -- users and tokens -----------------------------------------------------------------------


def test_admin_manages_users_as_embedded(admin: Remote, ml: Any) -> None:
    access = admin.access
    name = unique("ana")
    created = access.create_user(name, "viewer", models="churn-*")
    assert created == ml.access.get_user(name)
    assert (created.role, created.models, created.disabled) == ("viewer", ("churn-*",), False)
    assert access.get_user(name) == created
    with pytest.raises(AlreadyExists):
        access.create_user(name, "viewer")
    with pytest.raises(InvalidInput):
        access.create_user(unique("x"), "boss")

    assert access.set_role(name, "editor") == ml.access.get_user(name)
    assert access.set_models(name, ["fraud-*", "churn-*"]).models == ("fraud-*", "churn-*")
    lifted = access.set_models(name, None)
    assert lifted == ml.access.get_user(name)
    assert (lifted.role, lifted.models) == ("editor", None)
    disabled = access.disable_user(name)
    assert disabled.disabled
    assert disabled == ml.access.get_user(name)
    assert access.enable_user(name) == ml.access.get_user(name)
    listed = access.list_users()
    assert listed == ml.access.list_users()
    assert {name, admin.user} <= {user.name for user in listed}

    access.delete_user(name)
    for facade in (access, ml.access):
        with pytest.raises(NotFound):
            facade.get_user(name)
    with pytest.raises(NotFound):
        access.delete_user(name)
    with pytest.raises(NotFound):
        access.get_user("")
    # Every change above was recorded as the token's user.
    actions = [e.action for e in ml.audit.list(target=f"users/{name}", actor=admin.user)]
    assert actions[0] == "user.deleted"
    assert actions[-1] == "user.created"


def test_the_last_admin_is_refused_as_embedded(admin: Remote, ml: Any) -> None:
    others = [u.name for u in ml.access.list_users() if u.role == "admin" and u.name != admin.user]
    for other in others:
        ml.access.set_role(other, "editor", actor="bootstrap")
    try:
        with pytest.raises(Conflict, match="last active admin"):
            admin.access.set_role(admin.user, "viewer")
    finally:
        for other in others:
            ml.access.set_role(other, "admin", actor="bootstrap")


def test_admin_manages_tokens_as_embedded(admin: Remote, ml: Any, live: LiveServer) -> None:
    access = admin.access
    user = unique("bot")
    access.create_user(user, "editor")
    secret, info = access.create_token(user, name="ci", expires_in="30d")
    assert secret.startswith("mlops_")
    assert info.prefix == secret[: len(info.prefix)]
    assert (info.user, info.name, info.status(), info.expires_at - info.created_at) == (
        user,
        "ci",
        "active",
        30 * DAY_MS,
    )
    _, hourly = access.create_token(user, name="hour", expires_in=timedelta(hours=1))
    assert hourly.expires_at is not None
    assert hourly.expires_at - hourly.created_at == 3_600_000
    _, forever = access.create_token(user, name="forever")
    assert forever.expires_at is None
    with pytest.raises(InvalidInput, match="not a duration"):
        access.create_token(user, name="bad", expires_in="soon")

    # The secret is a working token of that user.
    own = ApiClient(live.url, token=secret, retries=0)
    try:
        assert RemoteAccessControl(own).whoami()["user"] == user
        listed = access.list_tokens(user)
        assert listed == ml.access.list_tokens(user)
        assert [token.id for token in listed] == [info.id, hourly.id, forever.id]
        assert access.list_tokens() == ml.access.list_tokens()

        revoked = access.revoke_token(info.id)
        assert revoked.revoked_at is not None
        assert revoked == ml.access.list_tokens(user)[0]
        assert access.revoke_token(info.id) == revoked  # again: no change
        with pytest.raises(Unauthenticated, match="revoked"):
            RemoteAccessControl(own).whoami()
    finally:
        own.close()
    with pytest.raises(NotFound):
        access.revoke_token(987_654_321)
    with pytest.raises(NotFound):
        access.list_tokens(unique("missing"))
    target = f"users/{user}/tokens/{info.id}"
    assert [e.action for e in admin.audit.list(action="token.*", target=target)] == [
        "token.revoked",
        "token.created",
    ]


def test_whoami_and_the_pure_authorize(admin: Remote, as_role: Any) -> None:
    me = admin.access.whoami()
    assert (me["user"], me["role"], me["acts_as"], me["auth"]) == (
        admin.user,
        "admin",
        "user",
        "required",
    )
    assert me["permissions"] == sorted(PERMISSIONS)
    viewer = as_role("viewer")
    assert viewer.access.whoami()["permissions"] == ["read"]
    principal = Principal(1, "ana", "viewer", None)
    viewer.access.authorize(principal, "read")
    with pytest.raises(PermissionDenied, match=r"pipelines\.run"):
        viewer.access.authorize(principal, "pipelines.run")


def test_other_roles_are_refused(as_role: Any, admin: Remote) -> None:
    for role in ("viewer", "editor", "deployer"):
        remote = as_role(role)
        with pytest.raises(PermissionDenied, match=r"users\.admin"):
            remote.access.list_users()
        with pytest.raises(PermissionDenied, match=r"users\.admin"):
            remote.access.create_user(unique("x"), "admin")
        with pytest.raises(PermissionDenied, match=r"tokens\.admin"):
            remote.access.create_token(admin.user, name="steal")
        with pytest.raises(PermissionDenied, match=r"audit\.read"):
            remote.audit.list()
        with pytest.raises(PermissionDenied, match=r"audit\.read"):
            remote.audit.verify()


def test_what_only_the_server_does_is_refused(admin: Remote) -> None:
    access, audit, pipelines = admin.access, admin.audit, admin.pipelines
    refusals: list[tuple[Any, tuple[Any, ...], str]] = [
        (audit.record, ("model.created", "models/x"), "server appends"),
        (access.authenticate, ("mlops_x",), "whoami"),
        (access.create_inference_token, ("churn",), "mlops endpoints token create churn"),
        (access.list_inference_tokens, (), "mlops endpoints token list"),
        (access.revoke_inference_token, (3,), "mlops endpoints token revoke 3"),
        (access.require_inference_token, ("churn",), "mlops endpoints require-token churn"),
        (access.endpoints_requiring_tokens, (), "mlops endpoints"),
        (access.find_inference_token, ("mlopsi_x",), "serving replicas"),
        (access.check_inference_token, ("churn", "mlopsi_x"), "serving replicas"),
        (pipelines.register, ("p", HELLO), "mlops pipeline register p"),
        (pipelines.set_schedule, ("p", "0 3 * * *"), "mlops pipeline schedule p"),
        (pipelines.unregister, ("p",), "mlops pipeline unregister p"),
        (pipelines.tick, (), "PipelineScheduler"),
        (pipelines.work, (), "PipelineScheduler"),
    ]
    for method, args, hint in refusals:
        with pytest.raises(InvalidInput, match="not available through a remote connection") as e:
            method(*args)
        assert hint in str(e.value)


# -- audit ----------------------------------------------------------------------------------


def test_audit_lists_and_verifies_as_embedded(admin: Remote, ml: Any) -> None:
    audit = admin.audit
    names = [unique("audited") for _ in range(3)]
    for name in names:
        admin.access.create_user(name, "viewer")
        admin.access.set_role(name, "editor")
    assert audit.list() == ml.audit.list()
    assert audit.list(limit=3) == ml.audit.list(limit=3)
    newest = ml.audit.list(limit=1)[0]
    filters: list[dict[str, Any]] = [
        {"actor": admin.user},
        {"actor": "bootstrap", "limit": 2},
        {"action": "user.*"},
        {"action": "user.role_changed"},
        {"target": f"users/{names[1]}"},
        {"since": newest.at},
        {"until": newest.at + 1, "limit": 5},
        {"since": datetime.fromtimestamp(newest.at / 1000 - 60, UTC), "actor": admin.user},
        {"after_id": newest.id, "limit": 4},
        {"after_id": newest.id - 2, "action": "user.created"},
        {"actor": unique("nobody")},
    ]
    for given in filters:
        assert audit.list(**given) == ml.audit.list(**given), given
    [created] = audit.list(target=f"users/{names[0]}", action="user.created")
    assert created.actor == admin.user
    assert created.after == {"role": "viewer", "models": None, "disabled": False}
    assert audit.get(created.id) == ml.audit.get(created.id) == created
    with pytest.raises(NotFound):
        audit.get(newest.id + 1000)
    with pytest.raises(InvalidInput):
        audit.list(limit=0)
    with pytest.raises(InvalidInput):
        audit.list(since=datetime(2026, 1, 1))  # naive

    verified = audit.verify()
    assert verified.ok
    assert verified == ml.audit.verify()


def test_audit_pages_past_a_thousand_entries(admin: Remote, ml: Any) -> None:
    # Entries written on the server's side, in one transaction to be quick.
    with ml.store.write() as connection:
        for number in range(1005):
            append(connection, actor="bootstrap", action="test.filler", target=f"filler/{number}")
    assert admin.audit.list(limit=1200) == ml.audit.list(limit=1200)
    oldest = ml.audit.list(action="test.filler", limit=2000)[-1]
    assert admin.audit.get(oldest.id) == oldest
    assert admin.audit.list(after_id=oldest.id + 1, limit=1) == [oldest]


# -- pipelines ------------------------------------------------------------------------------


def test_pipelines_read_as_embedded(admin: Remote, ml: Any) -> None:
    pipelines = admin.pipelines
    plain = register(ml)
    scheduled = register(
        ml,
        schedule="0 3 * * *",
        params={"rows": 5},
        retries=2,
        retry_on=["ValueError"],
        timeout="30m",
        triggers=[Trigger.dataset("churn"), Trigger.alert(labels={"team": "ml"})],
    )
    for name in (plain, scheduled):
        assert pipelines.get(name) == ml.pipelines.get(name)
    assert pipelines.list() == ml.pipelines.list()
    assert pipelines.list(paused=False) == ml.pipelines.list(paused=False)
    assert pipelines.next_due() == ml.pipelines.next_due()
    with pytest.raises(NotFound):
        pipelines.get(unique("missing"))

    secret = "s" * 20
    hooked = register(ml, triggers=[Trigger.webhook(secret)])
    [shown] = pipelines.get(hooked).triggers
    assert (shown.kind, shown.secret) == ("webhook", "***")  # never sent back


def test_trigger_remotely_then_a_server_worker_runs_it(admin: Remote, ml: Any) -> None:
    pipelines = admin.pipelines
    name = register(ml)
    queued = pipelines.trigger(name, {"rows": 4}, reason="from afar")
    assert (queued.pipeline, queued.state, queued.trigger) == (
        name,
        ExecutionState.QUEUED,
        "manual",
    )
    assert (dict(queued.params), queued.trigger_detail["reason"]) == ({"rows": 4}, "from afar")
    assert queued == ml.pipelines.execution(queued.id)
    assert queued.created_by == admin.user  # the token's user, as the audit log says
    [triggered] = ml.audit.list(
        action="pipeline.triggered", target=f"pipelines/{name}/executions/{queued.id}"
    )
    assert triggered.actor == admin.user

    run_until_finished(ml, queued.id)
    done = pipelines.execution(queued.id)
    assert done == ml.pipelines.execution(queued.id)
    assert done.state is ExecutionState.SUCCEEDED
    assert [line.step for line in done.log if line.step] == ["extract", "total"]
    assert done.run_ids == ml.pipelines.execution(queued.id).run_ids
    assert done.attempts[0].worker == ml.pipelines.worker_id

    second = pipelines.trigger(name)
    assert dict(second.params) == {}  # the registered params: none
    assert pipelines.executions(name) == ml.pipelines.executions(name)
    assert [e.id for e in pipelines.executions(name)] == [second.id, queued.id]
    assert pipelines.executions(name, limit=1) == ml.pipelines.executions(name, limit=1)
    for state in ("succeeded", ExecutionState.QUEUED, "failed"):
        assert pipelines.executions(name, state=state) == ml.pipelines.executions(name, state=state)
    assert pipelines.executions(limit=3) == ml.pipelines.executions(limit=3)
    assert pipelines.executions(unique("missing")) == []
    with pytest.raises(InvalidInput, match="unknown"):
        pipelines.executions(name, state="sleeping")
    with pytest.raises(InvalidInput):
        pipelines.trigger(name, {"trials": 5})
    with pytest.raises(InvalidInput, match="webhook"):
        pipelines.trigger(name, source="webhook")
    with pytest.raises(NotFound):
        pipelines.trigger(unique("missing"))

    cancelled = pipelines.cancel(second.id, reason="not today")
    assert cancelled.state is ExecutionState.CANCELLED
    assert cancelled.error is not None
    assert cancelled.error.endswith("not today")
    assert cancelled == ml.pipelines.execution(second.id)
    with pytest.raises(Conflict):
        pipelines.cancel(second.id)
    for missing in (0, 987_654_321, 2**70):
        with pytest.raises(NotFound):
            pipelines.execution(missing)
    with pytest.raises(InvalidInput):
        pipelines.execution("1")  # type: ignore[arg-type]


def test_executions_page_beyond_one_request(admin: Remote, ml: Any) -> None:
    name = register(ml, max_active=5)
    ids = [admin.pipelines.trigger(name).id for _ in range(3)]
    try:
        listed = admin.pipelines.executions(name, limit=2)
        assert [e.id for e in listed] == ids[:0:-1]
        assert admin.pipelines.executions(name, limit=1000) == ml.pipelines.executions(name)
    finally:
        for execution_id in ids:
            ml.pipelines.cancel(execution_id)


def test_pause_and_resume(admin: Remote, ml: Any) -> None:
    name = register(ml, schedule="0 3 * * *")
    paused = admin.pipelines.pause(name)
    assert paused.paused
    assert paused == ml.pipelines.get(name)
    assert name in [p.name for p in admin.pipelines.list(paused=True)]
    resumed = admin.pipelines.resume(name)
    assert not resumed.paused
    assert resumed == ml.pipelines.get(name)
    with pytest.raises(NotFound):
        admin.pipelines.pause(unique("missing"))


def test_roles_gate_pipelines(as_role: Any, ml: Any) -> None:
    viewer, editor = as_role("viewer"), as_role("editor")
    name = register(ml)
    assert viewer.pipelines.get(name) == ml.pipelines.get(name)
    with pytest.raises(PermissionDenied, match=r"pipelines\.run"):
        viewer.pipelines.trigger(name)
    queued = editor.pipelines.trigger(name)
    with pytest.raises(PermissionDenied, match=r"pipelines\.run"):
        viewer.pipelines.cancel(queued.id)
    with pytest.raises(PermissionDenied, match=r"pipelines\.write"):
        editor.pipelines.pause(name)
    assert editor.pipelines.cancel(queued.id).state is ExecutionState.CANCELLED


#: SQLite only (see tests/conftest.py): compared with the embedded facades; both stores are
#: covered by the governance and orchestration suites.
SQLITE_ONLY = True
