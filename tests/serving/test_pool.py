"""The model pool: one warm load per version, shared; unused versions dropped after a delay."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

import mlops
from mlops.serving import ModelPool
from serving.conftest import category_frame, fit_category, numeric_frame, register


def test_versions_load_once_warm_and_are_dropped_after_a_delay(
    ml: mlops.MLOps, numeric_model: Any, flipped_model: Any
) -> None:
    example = numeric_frame().head(5)
    register(ml, "churn", numeric_model, example)
    register(ml, "churn", flipped_model, example)
    loaded: list[Any] = []
    pool = ModelPool(ml.registry, on_load=loaded.append)
    found: list[Any] = []
    threads = [
        threading.Thread(target=lambda: found.append(pool.load("churn", 1))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(served) for served in found}) == 1
    assert len(loaded) == 1
    first = found[0]
    assert first.fast_path  # numeric columns: a float array, no DataFrame per request
    assert first.predict_seconds > 0
    assert first.load_seconds >= first.predict_seconds
    frame = numeric_frame(rows=3, seed=2)
    answer = first.run(frame.to_dict("records"))
    assert answer.predictions == numeric_model.predict(frame).tolist()
    assert np.allclose(answer.probabilities, numeric_model.predict_proba(frame))

    pool.load("churn", 2)
    assert pool.retain([("churn", 1)], delay=60) == []  # v2 stays warm for a rollback
    assert pool.get("churn", 2) is not None
    assert pool.retain([("churn", 2)], delay=60) == []  # needed again: the clock restarts
    assert pool.retain([("churn", 1)], delay=0) == [("churn", 2)]
    assert pool.keys() == [("churn", 1)]


def test_a_string_column_model_takes_the_dataframe_path(ml: mlops.MLOps) -> None:
    frame = category_frame()
    register(ml, "plans", fit_category(), frame.head(5), reference_data=frame)
    served = ModelPool(ml.registry).load("plans", 1)
    assert not served.fast_path
    rows = frame.head(4)
    assert served.run(rows.to_dict("records")).predictions == fit_category().predict(rows).tolist()
