"""The deployments pages in a real browser: endpoint splits, the rollout view with its
analysis timeline and share chart, actions, an A/B test, a shadow, 404s, and a viewer."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import mlops
from live_server import LiveServer
from mlops.config import Settings
from mlops.deployment import ABTest, Analysis, Canary, DeploymentManager, Shadow
from mlops.serving import create_serving_app
from mlops.store._schema import prediction_feedback, prediction_log
from ui.conftest import screenshot, unique, wait_for_charts

SQLITE_ONLY = True

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")


class Clock:
    """The wall clock shifted by hand: rollouts are seeded hours in the past, so each
    check is due when the seed says and no real-time ``advance()`` (every direct deploy
    of any test on the shared server calls one) finds them due again for an hour."""

    def __init__(self, hours_ago: float) -> None:
        self.offset = -hours_ago * 3600

    def __call__(self) -> float:
        return time.time() + self.offset

    def tick(self, hours: float) -> None:
        self.offset += hours * 3600


def register(ml: Any, name: str) -> None:
    """Two versions of a small classifier with the same signature."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"tenure": rng.normal(30, 10, 40), "charges": rng.normal(70, 15, 40)})
    labels = (frame["tenure"] < 30).astype(int)
    for _ in range(2):
        model = LogisticRegression().fit(frame, labels)
        ml.registry.register_model(name, model, input_example=frame.head(3))


def traffic(
    ml: Any,
    clock: Clock,
    endpoint: str,
    version: int,
    count: int,
    *,
    route: str,
    actual: Callable[[int], Any] | None = None,
    outputs: Callable[[int], Any] | None = None,
) -> None:
    """Prediction log rows (and feedback) as the serving gateway writes them."""
    now = int(clock() * 1000)
    rows, feedback = [], []
    for index in range(count):
        request_id = uuid.uuid4().hex
        rows.append(
            {
                "request_id": request_id,
                "endpoint": endpoint,
                "version": version,
                "route": route,
                "ts": now,
                "latency_ms": 2.0 + index % 3,
                "status": 200,
                "outputs": json.dumps(outputs(index) if outputs else {"predictions": [1]}),
            }
        )
        if actual is not None:
            feedback.append(
                {
                    "request_id": request_id,
                    "endpoint": endpoint,
                    "actual": json.dumps(actual(index)),
                    "ts": now,
                }
            )
    with ml.store.write() as connection:
        connection.execute(prediction_log.insert(), rows)
        if feedback:
            connection.execute(prediction_feedback.insert(), feedback)


@pytest.fixture
def tab(page: Any) -> Any:
    """A page of the session's shared browser context (plotly.js parsed once)."""
    return page


@dataclass
class Seeded:
    model: str
    canary_endpoint: str
    canary_id: int
    ab_id: int
    shadow_id: int


@pytest.fixture(scope="module")
def seeded(ui_ml: Any) -> Seeded:
    """A canary at step 2 with analyses, an A/B test with a result, a shadow with traffic."""
    ml = ui_ml
    model = unique("dep-model")
    register(ml, model)
    # Managers of their own clock; they move only these rollouts (``_advance_one``), never
    # the other areas' ones on the shared server.
    clock = Clock(hours_ago=5)
    manager = DeploymentManager(ml.store, ml.registry, actor="root", clock=clock)

    canary_endpoint = unique("dep-canary")
    manager.deploy(canary_endpoint, model, 1)
    gate = Analysis(min_requests=10)
    canary = manager.deploy(
        canary_endpoint,
        model,
        2,
        strategy=Canary(steps_percent=(10, 40, 100), interval_seconds="2h", gate=gate),
    )
    clock.tick(2)
    traffic(ml, clock, canary_endpoint, 1, 40, route="stable")
    traffic(ml, clock, canary_endpoint, 2, 20, route="canary")
    assert manager._advance_one(canary.id)  # step 1 passes → 40%
    clock.tick(2)
    traffic(ml, clock, canary_endpoint, 2, 3, route="canary")
    assert manager._advance_one(canary.id)  # too few requests: inconclusive, held

    clock = Clock(hours_ago=3)
    manager = DeploymentManager(ml.store, ml.registry, actor="root", clock=clock)
    ab_endpoint = unique("dep-ab")
    manager.deploy(ab_endpoint, model, 1)
    strategy = ABTest(minimum_detectable_effect=0.2, check_seconds="2h", auto_promote=False)
    ab = manager.deploy(ab_endpoint, model, 2, strategy=strategy)
    rng = np.random.default_rng(3)
    clock.tick(2)
    traffic(
        ml, clock, ab_endpoint, 1, 300, route="control", actual=lambda i: int(rng.random() < 0.3)
    )
    traffic(
        ml, clock, ab_endpoint, 2, 300, route="treatment", actual=lambda i: int(rng.random() < 0.6)
    )
    assert manager._advance_one(ab.id)

    shadow_endpoint = unique("dep-shadow")
    manager.deploy(shadow_endpoint, model, 1)
    shadow = manager.deploy(shadow_endpoint, model, 2, strategy=Shadow(share=0.25))
    traffic(ml, clock, shadow_endpoint, 1, 20, route="stable")
    traffic(
        ml,
        clock,
        shadow_endpoint,
        2,
        20,
        route="shadow",
        outputs=lambda i: {"predictions": [1], "agree": i % 4 != 0},
    )
    return Seeded(model, canary_endpoint, canary.id, ab.id, shadow.id)


def test_list_shows_each_endpoints_split_and_every_deployment(
    tab: Any, ui_server: LiveServer, seeded: Seeded
) -> None:
    tab.goto(ui_server.url + "/ui/deployments")
    endpoint = tab.locator(f'.endpoint[data-endpoint="{seeded.canary_endpoint}"]')
    stable = endpoint.locator(".split-bar .stable")
    candidate = endpoint.locator(".split-bar .candidate")
    assert stable.get_attribute("data-percent") == "60.0"
    assert candidate.get_attribute("data-percent") == "40.0"
    assert "v1 stable 60.0%" in stable.inner_text()
    assert "v2 candidate 40.0%" in candidate.inner_text()
    assert f"#{seeded.canary_id} canary of v2" in endpoint.inner_text()
    assert tab.locator("main").get_attribute("data-refresh") == "5"

    row = tab.locator(f'#deployments-table tr[data-id="{seeded.canary_id}"]')
    assert "v1 → v2" in row.inner_text()
    assert "progressing" in row.locator(".badge").inner_text()
    tab.fill("input[data-filter-table=deployments-table]", seeded.canary_endpoint)
    visible = tab.locator("#deployments-table tbody tr:not([hidden])")
    assert visible.count() == 2  # the first (direct) deployment and the canary
    screenshot(tab, "deployments-list")
    tab.fill("input[data-filter-table=deployments-table]", "")
    tab.click("#deployments-table th:has-text('ID')")
    tab.click("#deployments-table th:has-text('ID')")  # descending
    ids = tab.locator("#deployments-table tbody tr").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.id))"
    )
    assert ids == sorted(ids, reverse=True)


def test_canary_view_shows_the_timeline_and_the_share_chart(
    tab: Any, ui_server: LiveServer, seeded: Seeded
) -> None:
    tab.goto(ui_server.url + f"/ui/deployments/{seeded.canary_id}")
    stats = tab.locator("#rollout-stats").inner_text()
    assert "canary" in stats
    assert "v1 → v2" in stats
    assert "2 of 3" in stats
    assert "40.0%" in stats
    wait_for_charts(tab, 1)
    steps = tab.locator('#timeline li[data-kind="step"]')
    assert steps.count() == 1
    assert "step 1 at 10.0% traffic" in steps.inner_text()
    assert "pass" in steps.locator(".badge").inner_text()
    held = tab.locator('#timeline li[data-kind="analysis"]')
    assert "inconclusive" in held.inner_text()
    assert "step 2 at 40.0% traffic" in held.inner_text()
    assert "error rate" in held.locator("table.compare").inner_text()
    shown = {b.get_attribute("data-action") for b in tab.locator("#actions button").all()}
    assert shown == {"promote", "pause", "abort"}
    screenshot(tab, "deployments-canary")


def test_promote_button_finishes_the_rollout(
    tab: Any, ui_server: LiveServer, ui_ml: Any, seeded: Seeded
) -> None:
    endpoint = unique("dep-promote")
    ui_ml.deployments.deploy(endpoint, seeded.model, 1)
    rollout = ui_ml.deployments.deploy(endpoint, seeded.model, 2, strategy=Canary())
    tab.on("dialog", lambda dialog: dialog.accept())
    tab.goto(ui_server.url + f"/ui/deployments/{rollout.id}")
    tab.click("button[data-action=pause]")
    tab.wait_for_selector("#done")
    assert ui_ml.deployments.status(rollout.id).state.value == "paused"
    shown = {b.get_attribute("data-action") for b in tab.locator("#actions button").all()}
    assert shown == {"promote", "resume", "abort"}
    tab.click("button[data-action=resume]")
    tab.wait_for_selector("#done:has-text('Resumed')")
    assert ui_ml.deployments.status(rollout.id).state.value == "progressing"
    tab.click("button[data-action=promote]")
    tab.wait_for_selector("#done:has-text('Promoted')")
    assert ui_ml.deployments.status(rollout.id).state.value == "succeeded"
    assert tab.locator("main").get_attribute("data-refresh") is None
    shown = {b.get_attribute("data-action") for b in tab.locator("#actions button").all()}
    assert shown == {"rollback"}

    # Promoting it again is a conflict: the page says why, with the rollout as it is.
    with httpx.Client(base_url=ui_server.url) as client:
        client.get(f"/ui/deployments/{rollout.id}")
        refused = client.post(
            f"/ui/deployments/{rollout.id}/promote",
            data={"csrf": client.cookies["mlops_csrf"]},
        )
        assert refused.status_code == 409
        assert f"deployment {rollout.id} is succeeded; it cannot change now" in refused.text
        forged = client.post(f"/ui/deployments/{rollout.id}/abort", data={"csrf": "nope"})
        assert forged.status_code == 403


def test_ab_test_shows_arms_the_interval_and_the_verdict(
    tab: Any, ui_server: LiveServer, seeded: Seeded
) -> None:
    tab.goto(ui_server.url + f"/ui/deployments/{seeded.ab_id}")
    wait_for_charts(tab, 2)
    section = tab.locator("#ab-test")
    assert "winner b" in section.locator("#ab-verdict").inner_text()
    arms = section.locator("#ab-arms tbody tr")
    assert arms.count() == 2
    assert "300" in arms.nth(0).inner_text()
    assert "300" in arms.nth(1).inner_text()
    assert float(section.locator("#ab-p-value").inner_text()) < 0.05
    figure = json.loads(tab.locator("#ab-chart-figure").text_content() or "{}")
    low, high = (figure["data"][0]["error_x"][k][0] for k in ("arrayminus", "array"))
    assert low > 0
    assert high > 0
    screenshot(tab, "deployments-ab")


def test_shadow_shows_agreement_and_latencies(
    tab: Any, ui_server: LiveServer, seeded: Seeded
) -> None:
    tab.goto(ui_server.url + f"/ui/deployments/{seeded.shadow_id}")
    text = tab.locator("#shadow").inner_text()
    assert "75.0%" in text
    assert "15 of 20 compared" in text
    assert "shadow latency" in text.lower()


def test_unknown_deployments_are_404_pages(tab: Any, ui_server: LiveServer) -> None:
    missing = tab.goto(ui_server.url + "/ui/deployments/987654321")
    assert missing is not None
    assert missing.status == 404
    assert "deployment 987654321 does not exist" in tab.locator(".error-message").inner_text()
    word = tab.goto(ui_server.url + "/ui/deployments/latest-one")
    assert word is not None
    assert word.status == 404
    assert "there is no deployment 'latest-one'" in tab.locator(".error-message").inner_text()


# -- a viewer on a server that requires sign-in -------------------------------------------


@dataclass
class Strict:
    url: str
    ml: Any
    canary_id: int
    viewer_token: str


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strict]:
    folder: Path = tmp_path_factory.mktemp("ui-strict")
    settings = Settings.from_env().with_overrides(auth="required")
    ml = mlops.connect(
        f"sqlite:///{folder / 'mlops.db'}",
        artifacts=str(folder / "artifacts"),
        home=str(folder / "home"),
        settings=settings,
    )
    model = unique("dep-strict")
    register(ml, model)
    ml.deployments.deploy("strict", model, 1)
    canary = ml.deployments.deploy("strict", model, 2, strategy=Canary())
    ml.access.create_user("vera", "viewer")
    token, _ = ml.access.create_token("vera", name="ui-tests")
    live = LiveServer(create_serving_app(ml, poll_interval=0.5), ready_path="/ui/login").start()
    try:
        yield Strict(live.url, ml, canary.id, token)
    finally:
        live.stop()
        ml.close()


def test_a_viewer_sees_no_actions_and_cannot_promote(page: Any, strict: Strict) -> None:
    target = f"/ui/deployments/{strict.canary_id}"
    page.goto(strict.url + target)
    assert "/ui/login" in page.url  # sign-in required
    page.fill("input[name=token]", strict.viewer_token)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{target}")
    assert "vera" in page.locator(".topbar .who").inner_text()
    assert page.locator("#rollout-stats").is_visible()
    assert page.locator("#actions").count() == 0
    assert page.locator("button[data-action]").count() == 0

    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    refused = page.request.post(
        strict.url + target + "/promote", form={"csrf": cookies["mlops_csrf"]}
    )
    assert refused.status == 403
    assert "lacks permission" in refused.text()
    assert "deployments.write" in refused.text()
    assert strict.ml.deployments.status(strict.canary_id).state.value == "progressing"
