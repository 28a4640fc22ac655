"""Drift reports: lookups, strict JSON both ways, the self-contained HTML page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops.errors import InvalidInput, NotFound
from mlops.monitoring.drift import ColumnDrift, DriftReport, detect_drift


def _report() -> DriftReport:
    generator = np.random.default_rng(0)
    rows = 1500
    reference = {
        "age": generator.normal(40, 10, rows),
        "<b>plan</b>": generator.choice(["basic", "pro", "team"], rows).tolist(),
        "empty": [None] * rows,
        "x": generator.normal(size=rows),
        "y": generator.normal(size=rows),
        "proba": generator.uniform(size=rows),
    }
    current = {
        "age": generator.normal(50, 10, rows),
        "<b>plan</b>": generator.choice(
            ["basic", "pro", '<script>alert("x")</script>'], rows
        ).tolist(),
        "empty": [None] * rows,
        "x": generator.normal(size=rows),
        "y": generator.normal(size=rows),
        "proba": generator.uniform(size=rows),
    }
    return detect_drift(reference, current, prediction="proba", multivariate=True)


REPORT = _report()


def test_lookups_and_drifted_columns() -> None:
    assert REPORT.drifted_columns == ("age", "<b>plan</b>")
    assert REPORT.column("age").status == "drift"
    assert REPORT.column("empty").status == "empty"
    with pytest.raises(NotFound, match="has no column 'agee'; it has 'age'"):
        REPORT.column("agee")


def test_histograms_share_bins_between_the_two_sides() -> None:
    age = REPORT.column("age").histogram
    assert age is not None
    assert age["kind"] == "numeric"
    assert len(age["edges"]) == 21
    assert len(age["reference"]) == len(age["current"]) == 20
    assert sum(age["reference"]) == 1500  # outliers land in the outer bins
    plan = REPORT.column("<b>plan</b>").histogram
    assert plan is not None
    assert plan["kind"] == "categorical"
    assert set(plan["values"]) == {"basic", "pro", "team", '<script>alert("x")</script>'}
    assert plan["other_reference"] == plan["other_current"] == 0
    assert REPORT.column("empty").histogram is None


def _strict(text: str) -> Any:
    def refuse(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_json_is_strict_and_reads_back_to_an_equal_report() -> None:
    data = _strict(REPORT.to_json())
    assert data["format_version"] == 1
    assert data["drifted_columns"] == ["age", "<b>plan</b>"]
    assert data["prediction"]["name"] == "proba"
    assert data["multivariate"]["columns"] == ["age", "x", "y"]
    assert DriftReport.from_json(REPORT.to_json(indent=2)) == REPORT


def test_an_infinite_statistic_survives_the_round_trip_as_text() -> None:
    report = detect_drift({"c": ["a", "b"] * 100}, {"c": ["a", "b", "new"] * 50})
    data = _strict(report.to_json())
    assert data["columns"][0]["statistic"] == "inf"
    assert DriftReport.from_json(report.to_json()).column("c").statistic == float("inf")


def test_reading_other_formats_or_broken_json_fails_clearly() -> None:
    with pytest.raises(InvalidInput, match="format_version 2"):
        DriftReport.from_dict({**REPORT.to_dict(), "format_version": 2})
    with pytest.raises(InvalidInput, match="not valid JSON"):
        DriftReport.from_json("{")
    column = REPORT.columns[0].to_dict()
    del column["status"]
    with pytest.raises(InvalidInput, match="lacks status"):
        ColumnDrift.from_dict(column)


def test_html_is_one_self_contained_page_with_every_column(tmp_path: Path) -> None:
    page = REPORT.to_html(title="Churn <inputs>")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Churn &lt;inputs&gt;</title>" in page
    for name in ("age", "empty", "x", "y", "proba", "&lt;b&gt;plan&lt;/b&gt;"):
        assert f'">{name}</a>' in page  # a summary row linking to its chart
        assert f"<h3>{name} " in page
    assert "<b>plan</b>" not in page
    assert "<script" not in page  # the current's category is escaped, and we ship no JS
    assert "&lt;script&gt;" in page
    assert not re.search(r"https?://|src=|<link|@import|url\(", page)
    assert page.count("<svg") == 5  # every column with values on both sides
    assert "Multivariate drift" in page
    path = REPORT.save_html(tmp_path / "drift.html")
    assert path.read_text(encoding="utf-8") == REPORT.to_html()
