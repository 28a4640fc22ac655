"""JSON helpers: NumPy/pandas values to plain JSON, canonical text, lazy optional imports."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import math
from types import ModuleType
from typing import Any

import numpy as np

from mlops.errors import InvalidInput, MissingDependency

__all__ = ["canonical_json", "jsonable", "require"]


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import an optional module or raise ``MissingDependency`` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".")[0]
        raise MissingDependency.for_extra(top, extra, purpose) from error


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: NaN and NaT become None, dates ISO 8601 strings."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64):
            return None if np.isnat(value) else str(np.datetime_as_string(value))
        return jsonable(value.item())
    if isinstance(value, (dt.datetime, dt.date)):
        if type(value).__name__ == "NaTType":  # pandas.NaT is a datetime subclass
            return None
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return [jsonable(item) for item in value.tolist()]
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if type(value).__name__ in {"NAType", "NaTType"}:
        return None
    raise InvalidInput(
        f"cannot store a {type(value).__name__} as JSON; use numbers, strings, booleans, "
        "lists and dicts"
    )


def canonical_json(value: Any) -> str:
    """Deterministic JSON text: sorted keys, two-space indent, UTF-8, trailing newline."""
    try:
        return (
            json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        )
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"cannot write the value as canonical JSON: {error}") from error
