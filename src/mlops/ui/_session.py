"""Who is looking at the dashboard: the API token in a cookie, sign-in, and CSRF.

A browser signs in by pasting an API token (`mlops tokens create USER`); it is kept in
an HttpOnly, SameSite=Strict cookie and checked on every request like a Bearer token.
Without one, the server's ``AuthPolicy`` decides: "off" acts as the server's identity
(as the API does), "anonymous-read" shows pages but no actions, "required" sends the
browser to the sign-in page. Every form POST carries a token that must equal the
``mlops_csrf`` cookie (double submit): a page of another site cannot read or send it.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlops.api._auth import AuthPolicy
from mlops.errors import InvalidInput, PermissionDenied, Unauthenticated
from mlops.governance import Principal

__all__ = [
    "CSRF_COOKIE",
    "SESSION_COOKIE",
    "UISession",
    "check_csrf",
    "csrf_token",
    "login_form",
    "login_submit",
    "logout",
]

SESSION_COOKIE = "mlops_session"
CSRF_COOKIE = "mlops_csrf"
_OPEN_PATHS = ("/login", "/static/")


class UISession:
    """Puts the caller (a ``Principal``, or None for the server's identity / anonymous)
    on ``request.state.principal``; sends browsers without a usable token to sign in."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: AuthPolicy,
        authenticate: Callable[[str | None], Principal],
    ) -> None:
        self.app = app
        self.policy = policy
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        token = request.cookies.get(SESSION_COOKIE) or _bearer(request)
        principal: Principal | None = None
        if token:
            try:
                principal = await run_in_threadpool(self.authenticate, token)
            except Unauthenticated as exc:
                if not path.startswith(_OPEN_PATHS):
                    response = _to_login(request, str(exc))
                    response.delete_cookie(SESSION_COOKIE, path=_cookie_path(request))
                    await response(scope, receive, send)
                    return
        elif self.policy is AuthPolicy.REQUIRED and not path.startswith(_OPEN_PATHS):
            await _to_login(request, None)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        state["anonymous"] = principal is None and self.policy is not AuthPolicy.OFF
        state["auth_policy"] = self.policy
        csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        state["csrf"] = csrf
        if CSRF_COOKIE in request.cookies:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.append(
                    "set-cookie",
                    f"{CSRF_COOKIE}={csrf}; Path={_cookie_path(request)}; SameSite=Strict"
                    + ("; Secure" if request.url.scheme == "https" else ""),
                )
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def csrf_token(request: Request) -> str:
    """The token a form of this page must send back as ``csrf``."""
    token: str = request.state.csrf
    return token


async def check_csrf(request: Request) -> dict[str, str]:
    """The POSTed form, once its ``csrf`` field matches the cookie (else PermissionDenied)."""
    form = await request.form()
    sent = form.get("csrf")
    cookie = request.cookies.get(CSRF_COOKIE)
    if not isinstance(sent, str) or not cookie or not hmac.compare_digest(sent, cookie):
        raise PermissionDenied(
            "this form is stale or came from another site (CSRF check failed); "
            "reload the page and try again"
        )
    return {key: value for key, value in form.items() if isinstance(value, str)}


async def login_form(request: Request) -> Response:
    from mlops.ui._common import render

    return render(
        request,
        "login.html",
        {"next": _safe_next(request.query_params.get("next")), "message": None},
    )


async def login_submit(request: Request) -> Response:
    from mlops.ui._common import render

    form = await check_csrf(request)
    target = _safe_next(form.get("next"))
    token = (form.get("token") or "").strip()
    authenticate: Callable[[str | None], Principal] = request.app.state.ml.access.authenticate
    try:
        if not token:
            raise InvalidInput(
                "paste an API token (an admin creates one: mlops tokens create USER)"
            )
        await run_in_threadpool(authenticate, token)
    except (Unauthenticated, InvalidInput) as exc:
        context = {"next": target, "message": str(exc)}
        return render(request, "login.html", context, status_code=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path=_cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    await check_csrf(request)
    response = RedirectResponse(str(request.url_for("login")), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=_cookie_path(request))
    return response


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def _cookie_path(request: Request) -> str:
    root: str = request.scope.get("root_path", "") or "/"
    return root


def _to_login(request: Request, message: str | None) -> Response:
    root = request.scope.get("root_path", "")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"{root}/login?next={quote(target, safe='')}"
    if message:
        url += "&expired=1"
    return RedirectResponse(url, status_code=303)


def _safe_next(value: str | None) -> str:
    """Only a path of the dashboard: never an open redirect to another site."""
    if value and value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/"
