"""Input-converter benchmark: the serving hot path's validation cost, printed, never asserted.

    python bench/models_convert.py

Figures: one 30-column numeric record converted to a NumPy row (target: well under
100 µs), the same to a DataFrame, a mixed 6-column record to a DataFrame, and 1,000-row
batches as records and as a typed DataFrame.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mlops.models import ColumnSpec, Signature


def _per_call_us(function: Callable[[], Any], *, seconds: float = 0.5) -> float:
    function()
    calls = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            function()
        calls += 100
    return elapsed / calls * 1e6


def main() -> None:
    numeric = Signature(inputs=[ColumnSpec(f"f{i}", "double") for i in range(30)])
    mixed = Signature(
        inputs=[
            ColumnSpec("age", "long"),
            ColumnSpec("income", "double"),
            ColumnSpec("plan", "string", categories=("basic", "pro", "team")),
            ColumnSpec("active", "boolean"),
            ColumnSpec("since", "datetime"),
            ColumnSpec("note", "string", required=False),
        ]
    )
    record = {f"f{i}": float(i) for i in range(30)}
    mixed_record = {
        "age": 42,
        "income": 51.5,
        "plan": "pro",
        "active": True,
        "since": "2024-05-01T12:00:00",
    }
    batch = [record] * 1000
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(1000, 30)), columns=list(record))
    to_numpy = numeric.converter()
    to_frame = mixed.converter()
    rows = [
        ("1 record x 30 numeric -> numpy", _per_call_us(lambda: to_numpy([record], as_numpy=True))),
        ("1 record x 30 numeric -> DataFrame", _per_call_us(lambda: to_numpy([record]))),
        ("1 record x 6 mixed -> DataFrame", _per_call_us(lambda: to_frame([mixed_record]))),
        ("1000 records x 30 -> numpy", _per_call_us(lambda: to_numpy(batch, as_numpy=True))),
        ("DataFrame 1000 x 30 -> DataFrame", _per_call_us(lambda: to_numpy(frame))),
    ]
    width = max(len(name) for name, _ in rows)
    for name, micros in rows:
        print(f"{name:<{width}}  {micros:10.1f} µs")


if __name__ == "__main__":
    main()
