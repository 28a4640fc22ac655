"""The reference profile: per-column statistics and a sample of the training data.

Monitoring compares live inputs against it to detect drift.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlops.errors import InvalidInput
from mlops.models._infer import is_null
from mlops.models._json import jsonable
from mlops.models._payload import parse_payload, to_columns

__all__ = ["PROFILE_QUANTILES", "build_reference_profile"]

#: The quantiles recorded for numeric columns.
PROFILE_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_BINS = 20
_TOP_VALUES = 100


def build_reference_profile(
    data: Any,
    *,
    columns: Sequence[str] | None = None,
    sample_size: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Describe ``data`` (a DataFrame, a 2-D array, records…) for drift monitoring.

    Numeric columns: count, nulls, mean, std (population), min, max, quantiles and a
    20-bin histogram. Other columns: the 100 most frequent values and the null count.
    Plus a random sample of at most ``sample_size`` rows, drawn with ``seed``.
    ``columns`` names the columns of a 2-D array (default "0".."n-1").
    """
    if sample_size < 0:
        raise InvalidInput(f"sample_size must be 0 or more, not {sample_size}")
    try:
        table = to_columns(parse_payload(data), columns)
    except InvalidInput as error:
        raise InvalidInput(f"cannot profile the reference data: {error}") from None
    names = list(table)
    values = {name: _as_array(table[name]) for name in names}
    rows = len(next(iter(values.values()))) if values else 0
    profiles = [_profile_column(name, values[name]) for name in names]
    generator = np.random.default_rng(seed)
    picked = np.sort(generator.choice(rows, size=min(rows, sample_size), replace=False))
    sample = [[jsonable(values[name][i]) for name in names] for i in picked.tolist()]
    return {
        "format_version": 1,
        "row_count": rows,
        "columns": profiles,
        "sample": {"columns": names, "data": sample},
        "sample_seed": seed,
    }


def _as_array(values: Any) -> np.ndarray[Any, Any]:
    if hasattr(values, "to_numpy"):
        dtype = getattr(values, "dtype", None)
        if getattr(dtype, "kind", "O") in "iufb" and getattr(values, "hasnans", False):
            return np.asarray(values.to_numpy(dtype=float, na_value=np.nan))
        return np.asarray(values.to_numpy())
    return np.asarray(values) if not isinstance(values, list) else _list_array(values)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _list_array(values: list[Any]) -> np.ndarray[Any, Any]:
    if all(_is_number(v) or is_null(v) for v in values):
        return np.array([np.nan if is_null(v) else v for v in values], dtype=float)
    array = np.empty(len(values), dtype=object)
    array[:] = [None if is_null(v) else v for v in values]
    return array


def _profile_column(name: str, values: np.ndarray[Any, Any]) -> dict[str, Any]:
    if values.dtype.kind in "iuf":
        return {"name": name, **_numeric(values.astype(np.float64))}
    if values.dtype.kind == "M":
        nulls = np.isnat(values)
        present = values[~nulls]
        return {
            "name": name,
            "kind": "datetime",
            "count": int(present.size),
            "nulls": int(nulls.sum()),
            "min": jsonable(present.min()) if present.size else None,
            "max": jsonable(present.max()) if present.size else None,
        }
    return {"name": name, **_categorical(values.tolist())}


def _numeric(values: np.ndarray[Any, Any]) -> dict[str, Any]:
    nulls = np.isnan(values)
    finite = values[np.isfinite(values)]
    profile: dict[str, Any] = {
        "kind": "numeric",
        "count": int((~nulls).sum()),
        "nulls": int(nulls.sum()),
        "infinite": int((~nulls).sum() - finite.size),
    }
    if finite.size == 0:
        empty = dict.fromkeys(("mean", "std", "min", "max"))
        quantiles = dict.fromkeys(_quantile_keys())
        return {
            **profile,
            **empty,
            "quantiles": quantiles,
            "histogram": {"edges": [], "counts": []},
        }
    counts, edges = np.histogram(finite, bins=_BINS)
    quantiles = np.quantile(finite, PROFILE_QUANTILES)
    return {
        **profile,
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "min": float(finite.min()),
        "max": float(finite.max()),
        "quantiles": dict(zip(_quantile_keys(), map(float, quantiles), strict=True)),
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }


def _quantile_keys() -> list[str]:
    return [f"p{round(q * 100)}" for q in PROFILE_QUANTILES]


def _categorical(values: list[Any]) -> dict[str, Any]:
    present = [jsonable(v) for v in values if not is_null(v)]
    counter = Counter(present)
    ranked = sorted(counter.items(), key=lambda item: (-item[1], str(item[0])))
    top = ranked[:_TOP_VALUES]
    return {
        "kind": "categorical",
        "count": len(present),
        "nulls": len(values) - len(present),
        "distinct": len(counter),
        "frequencies": [{"value": value, "count": count} for value, count in top],
        "other_count": sum(count for _, count in ranked[_TOP_VALUES:]),
    }
