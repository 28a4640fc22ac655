"""The pipelines pages in a real browser: the list, a pipeline's DAG, steps and history,
an execution, the actions (trigger, cancel, pause, resume) and the 404 pages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mlops.orchestration import ExecutionState, Trigger
from mlops.pipelines import Pipeline, step
from mlops.ui._pipelines_steps import StepView, layout_dag
from ui.conftest import screenshot, unique, wait_for_charts

SQLITE_ONLY = True
SCHEDULE = "0 3 * * *"


@step(cache=False)
def load(rows: int = 4) -> list[int]:
    return list(range(rows))


@step(cache=False)
def double(load: list[int]) -> list[int]:
    return [value * 2 for value in load]


@step(cache=False)
def square(load: list[int], fail: bool = False) -> list[int]:
    if fail:
        raise ValueError("square was told to fail")
    return [value * value for value in load]


@step(cache=False)
def combine(double: list[int], square: list[int]) -> int:
    return sum(double) + sum(square)


# A diamond: load -> (double, square) -> combine; registered as "ui.test_pipelines:diamond".
diamond = Pipeline("ui-diamond", [load, double, square, combine])


@dataclass(frozen=True)
class Seeded:
    name: str  # run once successfully, then once with `square` failing
    idle: str  # never run, paused, with a trigger: the actions act on it
    succeeded: int
    failed: int


@pytest.fixture(scope="module")
def seeded(ui_ml: Any) -> Seeded:
    name, idle = unique("ui-diamond"), unique("ui-idle")
    pipelines = ui_ml.pipelines
    pipelines.register(name, diamond, schedule=SCHEDULE, executor="threads")
    pipelines.register(
        idle, diamond, triggers=[Trigger.alert(rule="ui-accuracy-drop")], executor="threads"
    )
    pipelines.pause(idle)
    pipelines.trigger(name, reason="first run")
    (succeeded,) = pipelines.work()
    pipelines.trigger(name, params={"fail": True}, reason="make it fail")
    (failed,) = pipelines.work()
    assert succeeded.state is ExecutionState.SUCCEEDED, succeeded.error
    assert failed.state is ExecutionState.FAILED
    return Seeded(name, idle, succeeded.id, failed.id)


def test_list_shows_pipelines_with_schedule_state_and_success_rate(
    page: Any, ui_server: Any, seeded: Seeded
) -> None:
    page.goto(ui_server.url + "/ui/pipelines")
    row = page.locator(f'tr[data-pipeline="{seeded.name}"]')
    assert SCHEDULE in row.inner_text()
    assert row.locator(".badge.state-failed").is_visible()
    assert "50.0%" in row.inner_text()
    idle = page.locator(f'tr[data-pipeline="{seeded.idle}"]')
    assert idle.locator(".badge.state-paused").is_visible()
    assert "alert" in idle.inner_text()
    assert "never run" in idle.inner_text()
    screenshot(page, "pipelines-list")

    page.fill('input[data-filter-table="pipelines"]', seeded.idle)
    assert row.is_hidden()
    assert idle.is_visible()
    page.fill('input[data-filter-table="pipelines"]', "")
    page.click("#pipelines th:has-text('Name')")
    page.click("#pipelines th:has-text('Name')")  # descending: "ui-idle-…" above "ui-diamond-…"
    names = page.locator("#pipelines tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.pipeline)"
    )
    assert names.index(seeded.idle) < names.index(seeded.name)

    page.goto(ui_server.url + "/ui/pipelines?paused=true")
    assert page.locator(f'tr[data-pipeline="{seeded.idle}"]').is_visible()
    assert page.locator(f'tr[data-pipeline="{seeded.name}"]').count() == 0


def test_pipeline_page_draws_the_latest_execution_and_links_to_each(
    page: Any, ui_server: Any, seeded: Seeded
) -> None:
    page.goto(f"{ui_server.url}/ui/pipelines/{seeded.name}")
    nodes = page.locator(".dag svg g.node")
    assert nodes.count() == 4
    states = {node.get_attribute("data-step"): node.get_attribute("class") for node in nodes.all()}
    assert states == {
        "load": "node succeeded",
        "double": "node succeeded",
        "square": "node failed",
        "combine": "node skipped",
    }
    edges = page.locator(".dag svg path.edge").evaluate_all(
        "paths => paths.map(p => p.dataset.source + '>' + p.dataset.target)"
    )
    assert sorted(edges) == ["double>combine", "load>double", "load>square", "square>combine"]
    assert "square was told to fail" in page.locator("#steps").inner_text()
    for name in ("load", "double", "square"):
        duration = page.locator(f'#steps tr[data-step="{name}"] td.num').first.inner_text()
        assert re.fullmatch(r"\d+ ms|[\d.]+ s", duration), duration
    history = page.locator("#executions tbody tr")
    assert history.count() == 2
    assert "failed" in history.first.inner_text()
    assert "succeeded" in history.last.inner_text()
    assert page.locator("#schedule .next-runs li").count() == 5
    assert "03:00:00" in page.locator("#schedule").inner_text()
    assert page.locator("main").get_attribute("data-refresh") is None  # nothing running
    wait_for_charts(page, 1)
    assert page.locator("#pipeline-history .bars .point").count() == 2
    screenshot(page, "pipelines-pipeline")

    page.click(f'#executions a:text-is("#{seeded.succeeded}")')
    page.wait_for_url(f"**/executions/{seeded.succeeded}")
    classes = page.locator(".dag svg g.node").evaluate_all(
        "nodes => nodes.map(n => n.getAttribute('class'))"
    )
    assert classes == ["node succeeded"] * 4
    assert page.locator(".dag svg path.edge").count() == 4
    assert page.locator("#steps tbody tr").count() == 4
    assert "first run" in page.locator("#params").inner_text()
    assert page.locator("#attempts tbody tr").count() == 1

    page.goto(f"{ui_server.url}/ui/pipelines/{seeded.name}/executions/{seeded.failed}")
    assert "fail" in page.locator("#params").inner_text()
    assert "square was told to fail" in page.locator(".error-message").first.inner_text()
    screenshot(page, "pipelines-execution")


def test_actions_trigger_cancel_pause_and_resume(
    page: Any, ui_server: Any, ui_ml: Any, seeded: Seeded
) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{ui_server.url}/ui/pipelines/{seeded.idle}")
    assert page.locator("button[data-action=pause]").count() == 0  # it is paused
    page.click("button[data-action=resume]")
    page.wait_for_url("**done=resumed")
    assert not ui_ml.pipelines.get(seeded.idle).paused

    page.click("button[data-action=trigger]")
    page.wait_for_url("**done=triggered")
    (queued,) = ui_ml.pipelines.executions(seeded.idle)
    assert queued.state is ExecutionState.QUEUED
    assert queued.trigger == "manual"
    assert page.locator("main").get_attribute("data-refresh") == "5"
    assert page.locator('.dag g.node.pending[data-step="load"]').is_visible()

    page.click("button[data-action=cancel]")
    page.wait_for_url(f"**/executions/{queued.id}?done=cancelled")
    assert ui_ml.pipelines.execution(queued.id).state is ExecutionState.CANCELLED

    page.goto(f"{ui_server.url}/ui/pipelines/{seeded.idle}")
    page.click("button[data-action=pause]")
    page.wait_for_url("**done=paused")
    assert ui_ml.pipelines.get(seeded.idle).paused


def test_unknown_pipeline_or_execution_is_a_404_page(
    page: Any, ui_server: Any, seeded: Seeded
) -> None:
    response = page.goto(ui_server.url + "/ui/pipelines/no-such-pipeline")
    assert response.status == 404
    assert "no-such-pipeline" in page.locator(".error-message").inner_text()

    response = page.goto(f"{ui_server.url}/ui/pipelines/{seeded.name}/executions/999999")
    assert response.status == 404
    assert "has no execution 999999" in page.locator(".error-message").inner_text()

    response = page.goto(f"{ui_server.url}/ui/pipelines/{seeded.idle}/executions/{seeded.failed}")
    assert response.status == 404
    assert f"belongs to pipeline {seeded.name!r}" in page.locator(".error-message").inner_text()

    response = page.goto(f"{ui_server.url}/ui/pipelines/{seeded.name}?execution=abc")
    assert response.status == 400


def test_actions_refuse_a_post_without_the_csrf_token(ui_server: Any, seeded: Seeded) -> None:
    response = httpx.post(f"{ui_server.url}/ui/pipelines/{seeded.name}/trigger", data={})
    assert response.status_code == 403
    assert "CSRF" in response.text


def test_dag_layout_puts_steps_in_columns_by_dependency_depth() -> None:
    steps = [
        StepView("load", "succeeded"),
        StepView("double", "succeeded", upstream=("load",)),
        StepView("square", "failed", upstream=("load",)),
        StepView("combine", "skipped", upstream=("double", "square")),
        StepView("report", "skipped", upstream=("load", "combine")),
    ]
    dag = layout_dag(steps)
    columns = {node.step.name: node.x for node in dag.nodes}
    assert columns["load"] < columns["double"] == columns["square"] < columns["combine"]
    assert columns["combine"] < columns["report"]
    rows = {node.step.name: node.y for node in dag.nodes}
    assert rows["double"] != rows["square"]
    assert len(dag.edges) == 6
    assert all(node.x + node.width <= dag.width for node in dag.nodes)
    assert all(node.y + node.height <= dag.height for node in dag.nodes)
