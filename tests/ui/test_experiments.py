"""The experiment pages in a real browser: list, runs table (sort, filter, charts), run,
compare, and the 404/400 pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from mlops.models import PythonModel
from mlops.tracking import Dataset
from ui.conftest import screenshot, unique, wait_for_charts

SQLITE_ONLY = True

#: (l2, final val_f1) of the child runs; only l2=0.01 has val_f1 > 0.7 and l2 = '0.01'.
CHILDREN = (("0.001", 0.62), ("0.01", 0.81), ("0.1", 0.74), ("1.0", 0.55), ("10", 0.31))
STEPS = 12


class Constant(PythonModel):
    """A model that needs no ML framework."""

    def predict(self, inputs: Any) -> Any:
        return inputs.to_numpy().ravel() * 0


@dataclass(frozen=True)
class Seeded:
    experiment: str
    experiment_id: int
    parent_id: str
    child_ids: list[str]
    child_names: list[str]
    model: str


@pytest.fixture(scope="module")
def seeded(ui_ml: Any) -> Seeded:
    """One experiment: a parent "sweep" run and five children with params, 12-step
    histories of val_f1 and loss, a tag and an artifact; a model registered from child 2."""
    tracking = ui_ml.tracking
    name = unique("sweep-exp")
    experiment = tracking.set_experiment(name)
    tracking.set_experiment_tag(name, "team", "risk")
    child_ids: list[str] = []
    child_names: list[str] = []
    with tracking.start_run(name, name="sweep") as parent:
        parent.log_input(Dataset(name="customers", digest="c" * 64, num_rows=500), "training")
        for index, (l2, final) in enumerate(CHILDREN):
            child_name = f"l2={l2}"
            with parent.start_child(name=child_name) as run:
                run.log_params({"l2": l2, "lr": 0.01 * (index + 1), "model": "logreg"})
                for step in range(STEPS):
                    progress = (step + 1) / STEPS
                    run.log_metrics(
                        {"val_f1": final * progress, "loss": 1.0 - 0.5 * progress + 0.1 * index},
                        step=step,
                    )
                run.set_tag("team", "risk")
                run.log_dict({"l2": l2, "f1": final}, "report/summary.json")
                child_ids.append(run.id)
                child_names.append(child_name)
    model = unique("sweep-model")
    ui_ml.registry.register_model(model, Constant(), run=child_ids[1])
    return Seeded(name, experiment.id, parent.id, child_ids, child_names, model)


def _column(page: Any, header_index: int) -> list[str]:
    script = """i => Array.from(document.querySelectorAll('#runs-table tbody tr'))
        .filter(r => !r.hidden).map(r => r.children[i].dataset.sort)"""
    values: list[str] = page.evaluate(script, header_index)
    return values


def test_experiments_list_shows_counts_and_filters(
    page: Any, ui_server: Any, seeded: Seeded
) -> None:
    response = page.goto(f"{ui_server.url}/ui/experiments")
    assert response.status == 200
    row = page.locator(f"#experiments-table tr[data-experiment='{seeded.experiment_id}']")
    assert row.locator("a").inner_text() == seeded.experiment
    assert row.locator("td").nth(2).inner_text() == "6"
    assert "team=risk" in row.inner_text()
    page.fill("#experiments-filter", "no-such-experiment-name")
    assert row.is_hidden()
    page.fill("#experiments-filter", seeded.experiment)
    assert row.is_visible()


def test_runs_table_sorts_draws_charts_and_compares(
    page: Any, ui_server: Any, seeded: Seeded
) -> None:
    # plotly's parcoords renders with WebGL, in software here: slow on a loaded machine.
    page.set_default_timeout(40_000)
    assert page.goto(f"{ui_server.url}/ui/experiments/{seeded.experiment_id}").status == 200
    rows = page.locator("#runs-table tbody tr")
    assert rows.count() == 6
    # Children sit right under their parent, indented and naming it.
    assert rows.first.get_attribute("data-run") == seeded.parent_id
    assert rows.nth(1).locator("td").nth(6).inner_text() == "sweep"
    assert rows.nth(1).locator(".indent").count() == 1
    # A scatter and a parallel-coordinates plot of the runs.
    wait_for_charts(page, 2)
    assert page.locator("#runs-parcoords .parcoords").count() == 1
    assert page.evaluate("document.getElementById('runs-scatter').data[0].x.length") == 5

    header = page.locator("#runs-table th[data-metric='val_f1']")
    index = page.evaluate(
        "Array.from(document.querySelectorAll('#runs-table thead th'))"
        ".findIndex(th => th.dataset.metric === 'val_f1')"
    )
    header.click()
    ascending = [float(value) for value in _column(page, index) if value]
    assert ascending == sorted(final for _, final in CHILDREN)
    header.click()
    descending = [float(value) for value in _column(page, index) if value]
    assert descending == sorted((final for _, final in CHILDREN), reverse=True)
    assert rows.first.get_attribute("data-run") == seeded.child_ids[1]
    screenshot(page, "experiments-runs")

    for run_id in seeded.child_ids[:3]:
        page.check(f"#runs-table tr[data-run='{run_id}'] input[type=checkbox]")
    with page.expect_navigation():
        page.click("#compare-button")
    assert "/compare?" in page.url
    wait_for_charts(page, 2)
    traces = page.evaluate("document.getElementById('compare-1').data.length")
    assert traces == 3
    assert page.locator("#compare-table tr.differs[data-param='l2']").count() == 1
    assert page.locator("#compare-table tr.differs[data-param='model']").count() == 0
    screenshot(page, "experiments-compare")


def test_filter_box_narrows_the_runs(page: Any, ui_server: Any, seeded: Seeded) -> None:
    url = f"{ui_server.url}/ui/experiments/{seeded.experiment_id}?filter=" + quote(
        "params.l2 = '10'"
    )
    assert page.goto(url).status == 200
    assert page.locator("#runs-table tbody tr").count() == 1
    page.fill("#run-filter", "metrics.val_f1 > 0.7 and params.l2 = '0.01'")
    with page.expect_navigation():
        page.click("#search-form button[type=submit]")
    rows = page.locator("#runs-table tbody tr")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-run") == seeded.child_ids[1]
    assert "1 run matching" in page.inner_text("#run-count")

    # A bad filter: the page again, with the parser's message and status 400.
    page.fill("#run-filter", "metrics.val_f1 > 0.7 and params.l2 =")
    with page.expect_navigation() as navigation:
        page.click("#search-form button[type=submit]")
    assert navigation.value.status == 400
    message = page.inner_text("#filter-error")
    assert "position" in message
    assert "params.l2 =" in message
    assert page.input_value("#run-filter") == "metrics.val_f1 > 0.7 and params.l2 ="


def test_order_by_is_applied_by_the_server(ui_server: Any, seeded: Seeded) -> None:
    url = f"{ui_server.url}/ui/experiments/{seeded.experiment_id}"
    response = httpx.get(url, params={"order": "metrics.loss ASC"})
    assert response.status_code == 200
    order = [response.text.index(f'data-run="{run_id}"') for run_id in seeded.child_ids]
    assert order == sorted(order)  # loss grows with the child's index
    response = httpx.get(url, params={"order": "metrics.loss DESC"})
    order = [response.text.index(f'data-run="{run_id}"') for run_id in seeded.child_ids]
    assert order == sorted(order, reverse=True)
    bad = httpx.get(url, params={"order": "metrics.loss sideways"})
    assert bad.status_code == 400
    assert "expected &#39;asc&#39;, &#39;desc&#39;" in bad.text


def test_run_page_shows_params_curves_artifacts_and_lineage(
    page: Any, ui_server: Any, seeded: Seeded
) -> None:
    run_id = seeded.child_ids[1]
    assert page.goto(f"{ui_server.url}/ui/runs/{run_id}").status == 200
    params = page.inner_text("#params-table")
    for shown in ("l2", "0.01", "lr", "logreg"):
        assert shown in params
    wait_for_charts(page, 2)  # val_f1 and loss
    points = page.evaluate("document.getElementById('metric-2').data[0].x.length")
    assert points == STEPS
    assert page.get_attribute("#parent-link", "href").endswith(f"/runs/{seeded.parent_id}")
    assert f"{seeded.model} v1" in page.inner_text("#versions")
    href = page.locator("#artifacts-table a", has_text="report/summary.json").get_attribute("href")
    assert href.startswith(f"/ui/runs/{seeded.child_ids[1]}/artifacts/")  # the cookie works
    screenshot(page, "experiments-run")
    download = httpx.get(ui_server.url + href)
    assert download.status_code == 200
    assert download.json() == {"l2": "0.01", "f1": 0.81}

    parent = httpx.get(f"{ui_server.url}/ui/runs/{seeded.parent_id}")
    assert parent.status_code == 200
    assert parent.text.count('<li><a href="/ui/runs/') == 5  # its children
    assert "customers" in parent.text  # its dataset input


def test_unknown_run_is_a_404_page(page: Any, ui_server: Any) -> None:
    response = page.goto(f"{ui_server.url}/ui/runs/{'0' * 32}")
    assert response.status == 404
    assert "does not exist" in page.inner_text(".error-message")


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/ui/experiments/987654321", 404, "does not exist"),
        ("/ui/experiments/abc", 400, "is not an experiment id"),
        ("/ui/experiments/99999999999999999999999", 400, "is not an experiment id"),
        ("/ui/runs/not-a-run", 400, "is not a run id"),
        ("/ui/runs/compare?runs=" + "a" * 32, 400, "at least two runs"),
        ("/ui/runs/compare?runs=" + "a" * 32 + "&runs=" + "b" * 32, 404, "does not exist"),
    ],
)
def test_bad_ids_are_error_pages(ui_server: Any, path: str, status: int, text: str) -> None:
    response = httpx.get(ui_server.url + path)
    assert response.status_code == status
    assert text in response.text
