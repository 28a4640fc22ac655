"""Small data sets and fitted models shared by the model-packaging tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")


@pytest.fixture(scope="session")
def numeric_data() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """120 rows of four float features and a binary label."""
    rng = np.random.default_rng(7)
    features = rng.normal(size=(120, 4))
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).astype(np.int64)
    return features, labels


@pytest.fixture(scope="session")
def customers() -> Any:
    """A small customers table: numeric and string columns, plus a churn label."""
    rng = np.random.default_rng(11)
    size = 150
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, size),
            "income": rng.normal(50.0, 12.0, size).round(2),
            "plan": rng.choice(["basic", "pro", "team"], size),
            "region": rng.choice(["north", "south"], size),
        }
    )
    frame["churn"] = ((frame["age"] < 35) | (frame["plan"] == "basic")).astype(np.int64)
    return frame


@pytest.fixture(scope="session")
def churn_pipeline(customers: Any) -> Any:
    """A Pipeline with a ColumnTransformer over numeric and string columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = customers.drop(columns="churn")
    pre = ColumnTransformer(
        [
            ("numbers", StandardScaler(), ["age", "income"]),
            ("strings", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]),
        ]
    )
    model = Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=500))])
    return model.fit(features, customers["churn"])
