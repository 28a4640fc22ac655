"""The reference profile stored with a package for drift monitoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.errors import InvalidInput
from mlops.models import build_reference_profile, load_model, save_model


def _by_name(profile: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {column["name"]: column for column in profile["columns"]}


def test_numeric_column_statistics() -> None:
    values = np.random.default_rng(3).normal(10.0, 2.0, 500)
    values[:5] = np.nan
    profile = build_reference_profile(pd.DataFrame({"x": values}))
    column = _by_name(profile)["x"]
    finite = values[~np.isnan(values)]
    assert column["kind"] == "numeric"
    assert (column["count"], column["nulls"]) == (495, 5)
    assert column["mean"] == pytest.approx(finite.mean())
    assert column["std"] == pytest.approx(finite.std())
    assert (column["min"], column["max"]) == (finite.min(), finite.max())
    assert list(column["quantiles"]) == ["p1", "p5", "p25", "p50", "p75", "p95", "p99"]
    assert column["quantiles"]["p50"] == pytest.approx(np.median(finite))
    histogram = column["histogram"]
    assert len(histogram["edges"]) == 21
    assert len(histogram["counts"]) == 20
    assert sum(histogram["counts"]) == 495


def test_categorical_column_keeps_the_top_hundred() -> None:
    values = [f"v{i:03d}" for i in range(150)] + ["v000"] * 10 + [None] * 3
    column = _by_name(build_reference_profile(pd.DataFrame({"c": values})))["c"]
    assert column["kind"] == "categorical"
    assert (column["count"], column["nulls"], column["distinct"]) == (160, 3, 150)
    assert len(column["frequencies"]) == 100
    assert column["frequencies"][0] == {"value": "v000", "count": 11}
    assert column["other_count"] == 50


def test_sample_is_bounded_and_seeded() -> None:
    frame = pd.DataFrame({"a": np.arange(3000), "b": ["x", "y", "z"] * 1000})
    first = build_reference_profile(frame, seed=1)
    assert first["row_count"] == 3000
    assert len(first["sample"]["data"]) == 1000
    assert first["sample"]["columns"] == ["a", "b"]
    assert build_reference_profile(frame, seed=1)["sample"] == first["sample"]
    assert build_reference_profile(frame, seed=2)["sample"] != first["sample"]
    small = build_reference_profile(frame.head(10), sample_size=1000)
    assert len(small["sample"]["data"]) == 10


def test_arrays_records_and_edge_cases() -> None:
    profile = build_reference_profile(np.ones((4, 2)), columns=["p", "q"])
    assert [c["name"] for c in profile["columns"]] == ["p", "q"]
    constant = _by_name(profile)["p"]
    assert constant["std"] == 0.0
    assert sum(constant["histogram"]["counts"]) == 4
    records = build_reference_profile([{"n": 1, "s": "a"}, {"n": None, "s": "b"}])
    assert _by_name(records)["n"]["nulls"] == 1
    empty = _by_name(build_reference_profile(pd.DataFrame({"z": [np.nan, np.nan]})))["z"]
    assert empty["mean"] is None
    assert empty["histogram"] == {"edges": [], "counts": []}
    dates = build_reference_profile(pd.DataFrame({"d": pd.to_datetime(["2024-01-01", None])}))
    assert _by_name(dates)["d"]["kind"] == "datetime"
    with pytest.raises(InvalidInput, match="cannot profile"):
        build_reference_profile("not data")


def test_profile_is_stored_and_loaded(customers: Any, churn_pipeline: Any, tmp_path: Path) -> None:
    features = customers.drop(columns="churn")
    manifest = save_model(
        churn_pipeline, tmp_path / "m", input_example=features.head(2), reference_data=features
    )
    assert manifest.has_reference_profile
    assert "reference_profile.json" in manifest.files
    profile = load_model(tmp_path / "m").reference_profile
    assert profile is not None
    assert profile["row_count"] == len(features)
    assert [c["name"] for c in profile["columns"]] == list(features.columns)
