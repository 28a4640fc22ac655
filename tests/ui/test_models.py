"""The model registry pages in a real browser: list, model, version, actions, 404."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mlops.models import PythonModel
from mlops.registry import PromotionPolicy
from mlops.tracking import Dataset
from mlops.ui._models_lineage import MAX_PER_COLUMN, lineage_graph
from ui.conftest import screenshot, unique, wait_for_charts

SQLITE_ONLY = True


class Scaler(PythonModel):
    """A model that needs no ML framework: multiplies its input."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def predict(self, inputs: Any) -> Any:
        return inputs.to_numpy().ravel() * self.factor


@dataclass(frozen=True)
class Seeded:
    name: str
    dataset: str
    run_id: str
    run_name: str
    endpoint: str


@pytest.fixture(scope="module")
def seeded(ui_ml: Any) -> Seeded:
    """churn-*: v1 (archived), v2 from a tracked run with a dataset input, deployed to an
    endpoint, which made it production (@champion); v3 in staging; a policy f1 ≥ 0.8."""
    name = unique("churn")
    dataset = unique("customers")
    run_name = unique("retrain")
    example = [{"x": 1.0}, {"x": 2.0}]
    registry = ui_ml.registry
    registry.register_model(
        name, Scaler(1.0), metrics={"f1": 0.81, "log_loss": 0.42}, input_example=example
    )
    registry.update_model(name, description="churn classifier")
    ui_ml.tracking.set_experiment(name)
    with ui_ml.tracking.start_run(name, name=run_name) as run:
        run.log_input(Dataset(name=dataset, digest="d" * 64), context="training")
        run.log_metrics({"f1": 0.86, "log_loss": 0.37})
    registry.register_model(
        name,
        Scaler(2.0),
        metrics={"f1": 0.86, "log_loss": 0.37},
        input_example=example,
        run=run.id,
        parent_version=1,
    )
    registry.register_model(
        name, Scaler(3.0), metrics={"f1": 0.83, "log_loss": 0.45}, input_example=example
    )
    registry.promote_to_stage(name, 1, "production", reason="first release", actor="ana")
    endpoint = unique("churn-api")
    ui_ml.deployments.deploy(endpoint, name, 2)  # direct: succeeds, so v2 → production
    deadline = time.monotonic() + 10
    while registry.get_version(name, 2).stage != "production":
        assert time.monotonic() < deadline, "the deployment did not make version 2 production"
        time.sleep(0.1)
    registry.promote_to_stage(name, 3, "staging", reason="candidate", actor="bob")
    registry.set_alias(name, "champion", 2, actor="ana")
    registry.set_policy(name, PromotionPolicy(thresholds={"f1": 0.8}))
    return Seeded(name, dataset, run.id, run_name, endpoint)


def test_models_list(page: Any, ui_server: Any, seeded: Seeded) -> None:
    page.goto(f"{ui_server.url}/ui/models")
    row = page.locator(f'#models-table tr[data-model="{seeded.name}"]')
    assert row.locator(".cell-production .badge.stage-production").count() == 1
    assert "1.1.0" in row.locator(".cell-production").inner_text()
    assert row.locator(".cell-staging .badge.stage-staging").count() == 1
    assert "1.2.0" in row.locator(".cell-staging").inner_text()
    assert "@champion" in row.inner_text()
    assert "churn classifier" in row.inner_text()
    assert row.locator("td").nth(2).inner_text() == "1.2.0"  # the latest version
    screenshot(page, "models-list")

    page.fill('input[data-filter-table="models-table"]', seeded.name)
    assert row.is_visible()
    page.fill('input[data-filter-table="models-table"]', "no-such-model-zzz")
    assert row.is_hidden()
    page.fill('input[data-filter-table="models-table"]', "")

    names = page.locator("#models-table tbody tr td:first-child")
    page.click("#models-table th:has-text('Name')")
    ascending = names.all_inner_texts()
    assert ascending == sorted(ascending, key=str.lower)
    page.click("#models-table th:has-text('Name')")
    assert names.all_inner_texts() == ascending[::-1]

    page.select_option('select[name="stage"]', "staging")
    with page.expect_navigation():
        page.click("form.inline button:has-text('Filter')")
    assert row.count() == 1
    response = page.goto(f"{ui_server.url}/ui/models?stage=shipped")
    assert response is not None
    assert response.status == 400
    assert "is not one of" in page.locator(".error-message").inner_text()


def test_model_page(page: Any, ui_server: Any, seeded: Seeded) -> None:
    # The lineage graph shows the version picked with ?version= (the latest by default).
    page.goto(f"{ui_server.url}/ui/models/{seeded.name}?version=2")
    assert page.locator("#versions-table tbody tr").count() == 3
    v1 = page.locator('#versions-table tr[data-version="1"]')
    assert v1.locator(".badge.stage-archived").count() == 1
    v2 = page.locator('#versions-table tr[data-version="2"]')
    assert v2.locator(".badge.stage-production").count() == 1
    assert v2.locator(".badge.alias").inner_text() == "@champion"
    assert v2.locator(f'a[href="/ui/runs/{seeded.run_id}"]').count() == 1
    assert "schema" in v2.locator(".signature").inner_text()
    v3 = page.locator('#versions-table tr[data-version="3"]')
    assert v3.locator(".badge.stage-staging").count() == 1
    headers = page.locator("#versions-table th.metric").all_text_contents()
    assert [h.strip() for h in headers] == ["f1", "log_loss"]

    # One trace per metric, versions on x.
    wait_for_charts(page, 1)
    chart = "document.getElementById('metrics-chart')"
    assert page.evaluate(f"{chart}.data.map(t => t.name)") == ["f1", "log_loss"]
    assert page.evaluate(f"{chart}.data[0].x") == [1, 2, 3]
    assert page.evaluate(f"{chart}.data[0].y") == [0.81, 0.86, 0.83]

    svg = page.locator("#lineage svg")
    assert seeded.dataset in svg.locator('[data-kind="dataset"]').text_content()
    assert seeded.run_name in svg.locator('[data-kind="run"]').text_content()
    assert "1.1.0" in svg.locator('[data-kind="version"]').text_content()
    assert "1.0.0" in svg.locator('[data-kind="parent"]').text_content()
    assert seeded.endpoint in svg.locator('[data-kind="deployment"]').text_content()
    # dataset → run, run → version, parent → version, version → deployment
    assert svg.locator("path.edge").count() == 4

    history = page.locator("#history li").all_inner_texts()
    assert any("first release" in item and "ana" in item for item in history)
    assert any("candidate" in item and "bob" in item for item in history)
    assert any(f"to {seeded.endpoint} succeeded" in item for item in history)
    assert any("@champion" in item for item in history)
    assert "f1 ≥ 0.8" in page.locator("#policy").inner_text()
    assert page.locator('button[data-action="roll back"]').count() == 1  # 2 replaced 1
    screenshot(page, "models-model")


def test_version_page(page: Any, ui_server: Any, seeded: Seeded) -> None:
    page.goto(f"{ui_server.url}/ui/models/{seeded.name}/versions/1.1.0")
    assert "1.1.0" in page.locator("h1").inner_text()
    assert page.locator("#inputs-table td code").inner_text() == "x"
    files = page.locator("#files-table").inner_text()
    assert "python_model.pkl" in files
    assert "mlops-model.json" in files
    assert "not signed" in page.locator("#verification").inner_text()
    graph = page.locator("#lineage svg")
    assert seeded.dataset in graph.locator("[data-kind='dataset']").text_content()
    assert seeded.run_name in graph.locator("[data-kind='run']").text_content()
    assert "1.1.0" in graph.locator("[data-kind='version']").text_content()
    assert "0.86" in page.locator("#metrics-table").inner_text()
    screenshot(page, "models-version")


def test_policy_refusal_shows_the_rule(
    page: Any, ui_server: Any, ui_ml: Any, seeded: Seeded
) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    ui_ml.registry.set_policy(seeded.name, PromotionPolicy(thresholds={"f1": 0.9}))
    try:
        page.goto(f"{ui_server.url}/ui/models/{seeded.name}/versions/3")
        with page.expect_navigation():
            page.click('button[data-action="promote to production"]')
    finally:
        ui_ml.registry.set_policy(seeded.name, PromotionPolicy(thresholds={"f1": 0.8}))
    assert "f1 = 0.83 breaks the rule f1 ≥ 0.9" in page.locator(".notice.error").inner_text()
    assert ui_ml.registry.get_version(seeded.name, 3).stage == "staging"


def test_promote_and_roll_back(page: Any, ui_server: Any, ui_ml: Any, seeded: Seeded) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{ui_server.url}/ui/models/{seeded.name}/versions/3")
    with page.expect_navigation():
        page.click('button[data-action="promote to production"]')
    assert "moved to its new stage" in page.locator(".notice.done").inner_text()
    assert ui_ml.registry.get_version(seeded.name, 3).stage == "production"
    assert ui_ml.registry.get_version(seeded.name, 2).stage == "archived"

    with page.expect_navigation():
        page.click('button[data-action="roll back"]')
    assert "Rolled back" in page.locator(".notice.done").inner_text()
    assert "1.1.0" in page.locator("h1").inner_text()  # the restored version's page
    assert ui_ml.registry.get_version(seeded.name, 2).stage == "production"
    assert ui_ml.registry.get_version(seeded.name, 3).stage == "archived"


def test_unknown_model_and_version_are_404(page: Any, ui_server: Any, seeded: Seeded) -> None:
    response = page.goto(f"{ui_server.url}/ui/models/no-such-model-{seeded.name}")
    assert response is not None
    assert response.status == 404
    assert f"no-such-model-{seeded.name}" in page.locator(".error-message").inner_text()
    response = page.goto(f"{ui_server.url}/ui/models/{seeded.name}/versions/9")
    assert response is not None
    assert response.status == 404
    assert "has no version '9'" in page.locator(".error-message").inner_text()


def test_actions_need_the_csrf_token(ui_server: Any, seeded: Seeded) -> None:
    url = f"{ui_server.url}/ui/models/{seeded.name}/versions/3/promote"
    response = httpx.post(url, data={"stage": "staging"})
    assert response.status_code == 403
    assert "CSRF" in response.text


def test_lineage_graph_caps_long_columns() -> None:
    """Many datasets draw as five nodes plus "+N more", all feeding the version (no run)."""
    lineage = {
        "model": "m",
        "version": 4,
        "semver": "2.0.0",
        "run": None,
        "datasets": [
            {"name": f"part-{i}", "digest": f"{i:064d}", "context": "training"} for i in range(9)
        ],
        "parents": [],
    }
    graph = lineage_graph(lineage, [], stage="none")
    kinds = [node.kind for node in graph.nodes]
    assert kinds.count("dataset") == MAX_PER_COLUMN - 1
    assert [n.label for n in graph.nodes if n.kind == "more"] == ["+4 more"]
    assert kinds.count("version") == 1
    assert len(graph.edges) == MAX_PER_COLUMN  # every dataset node → the version
    assert max(node.x + node.width for node in graph.nodes) <= graph.width
