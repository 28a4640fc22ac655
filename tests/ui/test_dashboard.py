"""The dashboard's frame: overview, error pages, assets, sign-in and CSRF, in Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from live_server import LiveServer
from mlops.api import AuthPolicy, api_routes
from mlops.ui import _app as ui_app
from mlops.ui import ui_routes
from ui.conftest import screenshot, unique

SQLITE_ONLY = True


@pytest.fixture(scope="module")
def strict(ui_ml: Any) -> Iterator[LiveServer]:
    """The API and dashboard of a server that requires a token on every request."""
    app = Starlette(
        routes=[*api_routes(ui_ml, auth="required"), *ui_routes(ui_ml, auth=AuthPolicy.REQUIRED)]
    )
    live = LiveServer(app, ready_path="/ui/login").start()
    try:
        yield live
    finally:
        live.stop()


def _token(ml: Any, role: str) -> tuple[str, str]:
    user = unique(role)
    ml.access.create_user(user, role)
    token, _ = ml.access.create_token(user, name="ui-tests")
    return user, str(token)


def test_overview_counts_what_is_stored(page: Any, ui_server: Any, ui_ml: Any) -> None:
    experiment = unique("overview-exp")
    ui_ml.tracking.create_experiment(experiment)
    response = page.goto(f"{ui_server.url}/")
    assert response.status == 200
    assert page.url == f"{ui_server.url}/ui/"
    assert page.title() == "Overview · mlops"
    stats = page.locator(".stat")
    assert stats.count() == 5
    count = len(ui_ml.tracking.list_experiments())
    assert page.locator(".stat", has_text="experiments").locator(".stat-value").inner_text() == (
        str(count)
    )
    assert page.get_by_role("link", name=experiment).is_visible()
    for label in ("Experiments", "Models", "Deployments", "Monitoring", "Pipelines"):
        assert page.locator(".topbar nav").get_by_role("link", name=label).is_visible()
    assert page.locator(".who").inner_text().strip() == "local"
    screenshot(page, "overview")


def test_unknown_pages_show_a_clear_not_found_page(page: Any, ui_server: Any) -> None:
    response = page.goto(f"{ui_server.url}/ui/no/such/page")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Not found"
    assert "/ui/no/such/page" in page.locator(".error-message").inner_text()
    assert page.get_by_role("link", name="Back to the overview").is_visible()


def test_assets_come_from_the_server_not_a_cdn(page: Any, ui_server: Any) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{ui_server.url}/ui/")
    assert requested
    assert all(url.startswith(ui_server.url) for url in requested), requested
    with httpx.Client(base_url=ui_server.url) as client:
        plotly = client.get("/ui/static/vendor/plotly.min.js")
        assert plotly.status_code == 200
        assert "javascript" in plotly.headers["content-type"]
        assert client.get("/ui/static/mlops.css").status_code == 200
        assert client.get("/ui/static/nothing.js").status_code == 404
        for entry in ("/", "/ui"):
            moved = client.get(entry)
            assert (moved.status_code, moved.headers["location"]) == (307, "/ui/")


def test_sign_in_with_a_token_then_out(page: Any, strict: LiveServer, ui_ml: Any) -> None:
    user, token = _token(ui_ml, "viewer")
    response = page.goto(f"{strict.url}/ui/models")
    assert response.status == 200
    assert "/ui/login?next=%2Fui%2Fmodels" in page.url
    page.fill("input[name=token]", "mlops_not-a-token")
    page.click("button[type=submit]")
    assert "API token" in page.locator(".error-message").inner_text()
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{strict.url}/ui/models")
    assert user in page.locator(".who .user").inner_text()
    assert "viewer" in page.locator(".who .badge.role").inner_text()
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert cookies["mlops_session"]["httpOnly"] is True
    assert cookies["mlops_session"]["sameSite"] == "Strict"
    screenshot(page, "signed-in")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{strict.url}/ui/login")
    page.goto(f"{strict.url}/ui/")
    assert "/ui/login" in page.url


def test_a_revoked_token_sends_the_browser_back_to_sign_in(
    page: Any, strict: LiveServer, ui_ml: Any
) -> None:
    _user, token = _token(ui_ml, "viewer")
    page.goto(f"{strict.url}/ui/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{strict.url}/ui/")
    token_id = ui_ml.access.authenticate(token).token_id
    ui_ml.access.revoke_token(token_id)
    page.goto(f"{strict.url}/ui/models")
    assert "/ui/login" in page.url
    assert "no longer valid" in page.locator(".error-message").inner_text()


def test_sign_in_never_redirects_off_the_dashboard(strict: LiveServer, ui_ml: Any) -> None:
    _user, token = _token(ui_ml, "viewer")
    with httpx.Client(base_url=strict.url) as client:
        form = client.get("/ui/login")
        csrf = client.cookies["mlops_csrf"]
        assert f'value="{csrf}"' in form.text
        answer = client.post(
            "/ui/login", data={"csrf": csrf, "token": token, "next": "https://evil.example/"}
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/"


def test_forms_without_the_csrf_token_are_refused(strict: LiveServer, ui_ml: Any) -> None:
    _user, token = _token(ui_ml, "viewer")
    with httpx.Client(base_url=strict.url) as client:
        client.get("/ui/login")
        answer = client.post("/ui/login", data={"csrf": "forged", "token": token})
        assert answer.status_code == 403
        assert "CSRF" in answer.text
        assert "mlops_session" not in answer.cookies


def test_without_the_ui_extra_the_server_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, ui_ml: Any
) -> None:
    monkeypatch.setattr(ui_app, "ui_available", lambda: False)
    live = LiveServer(
        Starlette(routes=ui_app.ui_routes(ui_ml, auth=AuthPolicy.OFF)), ready_path="/"
    )
    live.ready_status = 307
    live.start()
    try:
        with live.client() as client:
            answer = client.get("/ui/")
            assert answer.status_code == 503
            assert "pip install 'mlops[ui]'" in answer.text
    finally:
        live.stop()
