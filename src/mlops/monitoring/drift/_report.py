"""Drift results: per column, multivariate and for the whole dataset; JSON both ways."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from mlops.errors import InvalidInput, NotFound

__all__ = ["ColumnDrift", "DriftReport", "DriftStatus", "MultivariateDrift"]

DriftStatus = Literal["drift", "no_drift", "not_enough_data", "missing", "empty"]

_FORMAT_VERSION = 1


@dataclass(frozen=True)
class ColumnDrift:
    """The verdict on one column.

    ``status``: "drift" / "no_drift" (tested), "not_enough_data" (fewer non-null values
    than ``min_rows`` on a side), "missing" (absent from the current data) or "empty"
    (no non-null value on a side). ``drifted`` is None unless the column was tested.
    ``statistic`` is the test statistic or the distance; ``p_value`` is None for distances.
    ``reference_rows``/``current_rows`` count non-null values; ``nulls`` the nulls, NaN and
    infinities dropped on each side. ``histogram`` holds shared bins for both sides.
    """

    name: str
    kind: Literal["numeric", "categorical"] | None
    method: str | None
    statistic: float | None
    threshold: float | None
    p_value: float | None
    drifted: bool | None
    status: DriftStatus
    reference_rows: int = 0
    current_rows: int = 0
    nulls: Mapping[str, int] = field(default_factory=lambda: {"reference": 0, "current": 0})
    new_categories: tuple[Any, ...] = ()
    message: str = ""
    histogram: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; an infinite statistic becomes the string "inf"."""
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        data["statistic"] = _encode_float(self.statistic)
        data["nulls"] = dict(self.nulls)
        data["new_categories"] = list(self.new_categories)
        data["histogram"] = None if self.histogram is None else dict(self.histogram)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnDrift:
        values = _known_fields(cls, data)
        values["statistic"] = _decode_float(values.get("statistic"))
        values["new_categories"] = tuple(values.get("new_categories", ()))
        return cls(**values)


@dataclass(frozen=True)
class MultivariateDrift:
    """Whether the joint distribution of the numeric columns moved (PCA reconstruction).

    ``current_error`` is the mean reconstruction error of the current rows; drift when it
    falls outside [``lower``, ``upper``], the band the reference's own chunks span.
    """

    columns: tuple[str, ...]
    components: int
    explained_variance: float
    reference_error: float | None
    lower: float | None
    upper: float | None
    current_error: float | None
    drifted: bool | None
    status: Literal["drift", "no_drift", "not_enough_data"]
    reference_rows: int = 0
    current_rows: int = 0
    chunk_rows: int = 0
    chunk_errors: tuple[float, ...] = ()
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        data["columns"] = list(self.columns)
        data["chunk_errors"] = list(self.chunk_errors)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MultivariateDrift:
        values = _known_fields(cls, data)
        values["columns"] = tuple(values.get("columns", ()))
        values["chunk_errors"] = tuple(values.get("chunk_errors", ()))
        return cls(**values)


@dataclass(frozen=True)
class DriftReport:
    """The outcome of ``detect_drift``: a verdict per column and for the dataset.

    ``share`` is ``drifted_count / tested_count`` over the columns that got a verdict
    (the prediction column is not one of them); ``dataset_drift`` is
    ``share >= drift_share`` as in Evidently, and False when no column could be tested.
    """

    columns: tuple[ColumnDrift, ...]
    drift_share: float
    drifted_count: int
    tested_count: int
    share: float
    dataset_drift: bool
    reference_rows: int
    current_rows: int
    prediction: ColumnDrift | None = None
    multivariate: MultivariateDrift | None = None
    warnings: tuple[str, ...] = ()

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        """Names of the columns that drifted, in report order."""
        return tuple(column.name for column in self.columns if column.drifted)

    def column(self, name: str) -> ColumnDrift:
        """The verdict on column ``name`` (the prediction column included)."""
        for column in self.columns:
            if column.name == name:
                return column
        if self.prediction is not None and self.prediction.name == name:
            return self.prediction
        known = ", ".join(repr(column.name) for column in self.columns)
        raise NotFound(f"the report has no column {name!r}; it has {known}")

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON types (``from_dict`` reads it back)."""
        return {
            "format_version": _FORMAT_VERSION,
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "drifted_count": self.drifted_count,
            "tested_count": self.tested_count,
            "share": self.share,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "drifted_columns": list(self.drifted_columns),
            "columns": [column.to_dict() for column in self.columns],
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "multivariate": None if self.multivariate is None else self.multivariate.to_dict(),
            "warnings": list(self.warnings),
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """Strict JSON (no NaN or Infinity tokens)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        version = data.get("format_version")
        if version != _FORMAT_VERSION:
            raise InvalidInput(
                f"cannot read a drift report of format_version {version!r}; this version of "
                f"mlops reads format_version {_FORMAT_VERSION}"
            )
        values = _known_fields(cls, data)
        values["columns"] = tuple(ColumnDrift.from_dict(item) for item in data["columns"])
        if data.get("prediction") is not None:
            values["prediction"] = ColumnDrift.from_dict(data["prediction"])
        if data.get("multivariate") is not None:
            values["multivariate"] = MultivariateDrift.from_dict(data["multivariate"])
        values["warnings"] = tuple(data.get("warnings", ()))
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> DriftReport:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidInput(f"the drift report is not valid JSON: {error}") from None
        return cls.from_dict(data)

    def to_html(self, *, title: str = "Data drift report") -> str:
        """One self-contained HTML page: inline CSS and SVG, no scripts, no links."""
        from mlops.monitoring.drift._html import render_report

        return render_report(self, title=title)

    def save_html(self, path: str | Path, *, title: str = "Data drift report") -> Path:
        """Write ``to_html()`` to ``path`` (UTF-8) and return the path."""
        target = Path(path)
        target.write_text(self.to_html(title=title), encoding="utf-8")
        return target


def _known_fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {item.name for item in fields(cls)}
    missing = [
        item.name
        for item in fields(cls)
        if item.name not in data and item.default is item.default_factory  # both MISSING
    ]
    if missing:
        raise InvalidInput(f"the {cls.__name__} data lacks {', '.join(missing)}")
    return {key: value for key, value in data.items() if key in names}


def _encode_float(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "inf" if value > 0 else "-inf"


def _decode_float(value: Any) -> float | None:
    if isinstance(value, str):
        return float(value)
    return None if value is None else float(value)
