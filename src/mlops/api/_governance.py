"""``/whoami``, ``/users``, ``/tokens`` and ``/audit``: who the caller is, users and their
API tokens, and the hash-chained audit log.

Any caller may ask ``/whoami``. Everything else needs an admin permission, reads
included: ``users.admin`` for users, ``tokens.admin`` for tokens, ``audit.read`` for the
audit log. A request with a token is checked against its user's role. A request without
one reaches these routes only on a server with auth "off", where it acts as the server's
own identity, as it does on every other route there (and as the embedded library
trusts its caller); changes are then recorded as the ``X-MLOps-Actor`` header, else the
server's user. On a server that allows anonymous reads, an anonymous read of these
routes is answered 401: they are not the reads that policy opens.

A token's secret appears in exactly one answer, the 201 of ``POST
/users/{name}/tokens`` (sent with ``Cache-Control: no-store``); only its SHA-256 is
stored, and listings show its display prefix.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from mlops.api._admin_schemas import (
    AuditEntryOut,
    AuditList,
    AuditVerificationOut,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenOut,
    UserCreate,
    UserList,
    UserOut,
    UserUpdate,
    WhoAmI,
)
from mlops.api._auth import AuthPolicy
from mlops.api._deps import ML, Actor, Caller, connection
from mlops.api._pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    decode_token,
    encode_token,
    fingerprint,
    page,
)
from mlops.api._tracking_schemas import MAX_ID
from mlops.errors import InvalidInput, NotFound, Unauthenticated
from mlops.governance import PERMISSIONS, parse_expiry

__all__ = ["router"]

router = APIRouter(tags=["governance"])

#: Epoch milliseconds the audit filters take (the year 287,396: past any real entry).
MAX_EPOCH_MS = 2**53

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
PageToken = Annotated[str | None, Query(description="next_page_token of the previous page.")]
UserName = Annotated[str, Path(max_length=250, description="The user's name.")]
TokenId = Annotated[int, Path(ge=1, le=MAX_ID, description="The token's id (not its secret).")]
EpochMs = Annotated[int | None, Query(ge=0, le=MAX_EPOCH_MS, description="Epoch ms.")]


def admin(permission: str) -> Any:
    """A dependency checking ``permission`` for every method, reads included (``require``
    checks only ``read`` for those); without a token, only a server with auth off lets
    the request act as itself."""

    async def check(request: Request, caller: Caller) -> None:
        if caller is not None:
            connection(request).access.authorize(caller, permission)
        elif request.app.state.auth is not AuthPolicy.OFF:
            raise Unauthenticated(
                f"{request.method} {request.url.path} needs the token of a user with "
                f"permission {permission!r} (an admin); send 'Authorization: Bearer mlops_…'"
            )

    return Depends(check)


USERS = [admin("users.admin")]
TOKENS = [admin("tokens.admin")]
AUDIT = [admin("audit.read")]


def _storable(value: str | None, what: str) -> str | None:
    """Refuse NUL before it reaches the database (PostgreSQL text cannot hold it)."""
    if value is not None and "\x00" in value:
        raise InvalidInput(f"{what} must not contain NUL characters")
    return value


def _user(name: str) -> str:
    if "\x00" in name:
        raise NotFound(f"there is no user {name!r}; user names are printable")
    return name


# -- who am I -------------------------------------------------------------------------------


@router.get("/whoami", summary="The caller: user, role, model scope and permissions")
def whoami(request: Request, ml: ML, caller: Caller, who: Actor) -> WhoAmI:
    policy: AuthPolicy = request.app.state.auth
    if caller is not None:
        return WhoAmI(
            user=caller.name,
            authenticated=True,
            role=caller.role,  # type: ignore[arg-type]
            models=None if caller.models is None else list(caller.models),
            token_id=caller.token_id,
            acts_as="user",
            actor=caller.name,
            auth=policy.value,
            permissions=sorted(p for p in PERMISSIONS if caller.can(p)),
        )
    server = policy is AuthPolicy.OFF
    return WhoAmI(
        user=None,
        authenticated=False,
        role=None,
        models=None,
        token_id=None,
        acts_as="server" if server else "anonymous",
        actor=(who or ml.registry.actor) if server else None,
        auth=policy.value,
        permissions=sorted(PERMISSIONS) if server else ["read"],
    )


# -- users ----------------------------------------------------------------------------------


@router.get("/users", dependencies=USERS, summary="List users by name")
def list_users(ml: ML, limit: Limit = DEFAULT_LIMIT, page_token: PageToken = None) -> UserList:
    found, token = page(
        ml.access.list_users(),
        lambda user: user.name,
        limit=limit,
        page_token=page_token,
        query=fingerprint("users"),
    )
    return UserList(users=[UserOut.of(user) for user in found], next_page_token=token)


@router.post("/users", dependencies=USERS, status_code=201, summary="Create a user")
def create_user(body: UserCreate, ml: ML, who: Actor) -> UserOut:
    user = ml.access.create_user(body.name, body.role, models=body.models, actor=who)
    return UserOut.of(user)


@router.get("/users/{name}", dependencies=USERS, summary="Get a user")
def get_user(name: UserName, ml: ML) -> UserOut:
    return UserOut.of(ml.access.get_user(_user(name)))


@router.patch(
    "/users/{name}",
    dependencies=USERS,
    summary="Change a user's role, model scope or disabled flag (only the fields given)",
)
def update_user(name: UserName, body: UserUpdate, ml: ML, who: Actor) -> UserOut:
    # One change at a time, each audited; a refusal (the last admin) stops the rest.
    access = ml.access
    user = access.get_user(_user(name))
    if body.role is not None:
        user = access.set_role(name, body.role, actor=who)
    if "models" in body.model_fields_set:
        user = access.set_models(name, body.models, actor=who)
    if body.disabled is True:
        user = access.disable_user(name, actor=who)
    elif body.disabled is False:
        user = access.enable_user(name, actor=who)
    return UserOut.of(user)


@router.delete(
    "/users/{name}",
    dependencies=USERS,
    status_code=204,
    response_class=Response,
    summary="Delete a user and all of its tokens",
)
def delete_user(name: UserName, ml: ML, who: Actor) -> None:
    ml.access.delete_user(_user(name), actor=who)


# -- tokens ---------------------------------------------------------------------------------


@router.get("/tokens", dependencies=TOKENS, summary="List API tokens, oldest first (no secrets)")
def list_tokens(
    ml: ML,
    user: Annotated[str | None, Query(max_length=250, description="Only this user's.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    page_token: PageToken = None,
) -> TokenList:
    owner = None if user is None else _user(user)
    found, token = page(
        ml.access.list_tokens(owner),
        lambda info: info.id,
        limit=limit,
        page_token=page_token,
        query=fingerprint("tokens", owner),
    )
    return TokenList(tokens=[TokenOut.of(info) for info in found], next_page_token=token)


@router.post(
    "/users/{name}/tokens",
    dependencies=TOKENS,
    status_code=201,
    summary="Create an API token for a user; its secret is in this answer only",
)
def create_token(
    name: UserName, body: TokenCreate, ml: ML, who: Actor, response: Response
) -> TokenCreated:
    lifetime = None
    if body.expires_in is not None:
        try:
            lifetime = parse_expiry(body.expires_in)
        except OverflowError:
            raise InvalidInput(
                f"expires_in {body.expires_in!r} is longer than any date; give e.g. '365d'"
            ) from None
    secret, info = ml.access.create_token(
        _user(name), name=body.name, expires_in=lifetime, actor=who
    )
    response.headers["Cache-Control"] = "no-store"
    return TokenCreated.created(secret, info)


@router.delete(
    "/tokens/{token_id}",
    dependencies=TOKENS,
    summary="Revoke a token (kept, listed as revoked; revoking again changes nothing)",
)
def revoke_token(token_id: TokenId, ml: ML, who: Actor) -> TokenOut:
    return TokenOut.of(ml.access.revoke_token(token_id, actor=who))


# -- audit ----------------------------------------------------------------------------------


@router.get("/audit", dependencies=AUDIT, summary="Audit log entries, newest first")
def list_audit(
    ml: ML,
    actor: Annotated[str | None, Query(max_length=250, description="Only this actor's.")] = None,
    action: Annotated[
        str | None,
        Query(max_length=64, description="An action such as user.created; 'token.*': a prefix."),
    ] = None,
    target: Annotated[
        str | None, Query(max_length=512, description="Exactly this target (users/ana).")
    ] = None,
    since: EpochMs = None,
    until: Annotated[
        int | None, Query(ge=0, le=MAX_EPOCH_MS, description="Epoch ms, exclusive.")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    page_token: PageToken = None,
) -> AuditList:
    actor, action, target = (
        _storable(value, what)
        for value, what in ((actor, "actor"), (action, "action"), (target, "target"))
    )
    query = fingerprint("audit", actor, action, target, since, until)
    after = decode_token(page_token, query) if page_token else None
    if after is not None and (not isinstance(after, int) or after < 1):
        raise InvalidInput("page_token is corrupted; start again from the first page")
    entries = ml.audit.list(
        actor=actor,
        action=action,
        target=target,
        since=since,
        until=until,
        limit=limit + 1,
        after_id=after,
    )
    token = encode_token(entries[limit - 1].id, query) if len(entries) > limit else None
    return AuditList(
        entries=[AuditEntryOut.of(entry) for entry in entries[:limit]], next_page_token=token
    )


@router.get(
    "/audit/verify",
    dependencies=AUDIT,
    summary="Recompute the hash chain: ok, entries checked, where it breaks",
)
def verify_audit(ml: ML) -> AuditVerificationOut:
    return AuditVerificationOut.of(ml.audit.verify())
