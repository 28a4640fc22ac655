"""``detect_drift``: test every column, then decide for the dataset as Evidently does."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mlops.errors import InvalidInput
from mlops.monitoring.drift._columns import (
    ColumnKind,
    EmptySide,
    LabelSide,
    NumericSide,
    Side,
    Table,
    UnsupportedSide,
    convert_side,
    infer_kind,
    read_side,
    read_tables,
)
from mlops.monitoring.drift._histogram import histogram, json_label
from mlops.monitoring.drift._methods import DRIFT_METHODS, DriftMethod, drift_method
from mlops.monitoring.drift._multivariate import multivariate_from_tables
from mlops.monitoring.drift._report import ColumnDrift, DriftReport
from mlops.monitoring.drift._sample import ColumnSample
from mlops.monitoring.drift._select import default_method

__all__ = ["DEFAULT_MIN_ROWS", "detect_drift"]

#: Fewer non-null values than this on either side: no verdict ("not_enough_data").
DEFAULT_MIN_ROWS = 30
#: Inputs at least this long are tested on two threads (NumPy sorts release the GIL).
_THREADED_ROWS = 50_000
_WORKERS = 2
#: How many new categories a column lists (the message gives the full count).
_NEW_CATEGORIES_LISTED = 50

MethodSpec = str | DriftMethod
_KINDS = ("numeric", "categorical")


def detect_drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    column_types: Mapping[str, str] | None = None,
    method: MethodSpec | Mapping[str, MethodSpec] | None = None,
    threshold: float | Mapping[str, float] | None = None,
    drift_share: float = 0.5,
    prediction: str | None = None,
    min_rows: int = DEFAULT_MIN_ROWS,
    multivariate: bool = False,
    bins: int | None = None,
) -> DriftReport:
    """Compare ``current`` data with ``reference`` data column by column.

    Args:
        reference: a pandas DataFrame, a dict of columns, a list of records, a 2-D array
            or a model's reference profile (its ``sample`` rows are used).
        current: the same shapes (not a profile).
        columns: the columns to test (default: every reference column); for 2-D arrays,
            the names of all their columns.
        column_types: ``{"name": "numeric" | "categorical"}`` overriding the inferred kind.
        method: a method name (or ``DriftMethod``) for all columns, or a dict per column;
            None picks Evidently's default per column (see ``default_method``).
        threshold: a number for all columns or a dict per column; None uses each
            method's default.
        drift_share: the dataset drifts when at least this share of the tested columns do.
        prediction: a column of model outputs, tested on its own (``report.prediction``)
            and left out of the dataset share.
        min_rows: fewer non-null values on a side give "not_enough_data", no verdict.
        multivariate: also run ``multivariate_drift`` on the numeric columns.
        bins: equal-width bins for the binned methods (jensenshannon, psi, kl_div) on
            numeric columns; None uses Sturges' rule like Evidently.
    """
    _check_options(drift_share, min_rows, bins)
    reference_table, current_table = read_tables(reference, current, columns)
    warnings: list[str] = []
    names = _selected(reference_table, current_table, columns, prediction, warnings)
    known = set(reference_table.names)
    plan = _Plan(
        kinds=_column_types(column_types, known),
        methods=_per_column(method, known, "method"),
        thresholds=_per_column(threshold, known, "threshold"),
        min_rows=min_rows,
        bins=bins,
        explicit=frozenset(columns or ()),
    )
    evaluated = [*names, prediction] if prediction is not None else names
    threaded = max(reference_table.rows, current_table.rows) >= _THREADED_ROWS
    results: dict[str, ColumnDrift] = {}
    outcomes = _test_columns(evaluated, plan, reference_table, current_table, threaded)
    for name, (result, notes) in zip(evaluated, outcomes, strict=True):
        warnings.extend(notes)
        if result is not None:
            results[name] = result
    tested = [results[name] for name in names if name in results]
    verdicts = [column for column in tested if column.drifted is not None]
    drifted = sum(1 for column in verdicts if column.drifted)
    share = drifted / len(verdicts) if verdicts else 0.0
    if not verdicts:
        warnings.append(
            "no column could be tested (see each column's status); the dataset verdict is "
            "no drift for lack of evidence"
        )
    multivariate_result = None
    if multivariate:
        numeric = [column.name for column in tested if column.kind == "numeric"]
        multivariate_result = multivariate_from_tables(
            reference_table, current_table, numeric, min_rows=min_rows
        )
    return DriftReport(
        columns=tuple(tested),
        drift_share=float(drift_share),
        drifted_count=drifted,
        tested_count=len(verdicts),
        share=share,
        dataset_drift=bool(verdicts) and share >= drift_share,
        reference_rows=reference_table.rows,
        current_rows=current_table.rows,
        prediction=results.get(prediction) if prediction is not None else None,
        multivariate=multivariate_result,
        warnings=tuple(warnings),
    )


def _check_options(drift_share: float, min_rows: int, bins: int | None) -> None:
    if not isinstance(drift_share, (int, float)) or not 0 < drift_share <= 1:
        raise InvalidInput(
            f"drift_share is the share of columns that must drift, above 0 and at most 1 "
            f"(default 0.5), not {drift_share!r}"
        )
    if not isinstance(min_rows, int) or isinstance(min_rows, bool) or min_rows < 1:
        raise InvalidInput(f"min_rows must be a whole number of 1 or more, not {min_rows!r}")
    if bins is not None and (not isinstance(bins, int) or isinstance(bins, bool) or bins < 1):
        raise InvalidInput(f"bins must be a whole number of 1 or more (or None), not {bins!r}")


def _selected(
    reference: Table,
    current: Table,
    columns: Sequence[str] | None,
    prediction: str | None,
    warnings: list[str],
) -> list[str]:
    available = ", ".join(reference.names)
    if prediction is not None and prediction not in reference.columns:
        raise InvalidInput(
            f"the prediction column {prediction!r} is not in the reference data; "
            f"it has: {available}"
        )
    if columns is None:
        names = [name for name in reference.names if name != prediction]
        extra = [name for name in current.names if name not in reference.columns]
        if extra:
            listed = ", ".join(repr(name) for name in extra)
            warnings.append(f"current columns not in the reference are ignored: {listed}")
    else:
        unknown = [name for name in columns if name not in reference.columns]
        if unknown:
            raise InvalidInput(
                f"columns {unknown} are not in the reference data; it has: {available}"
            )
        names = [name for name in dict.fromkeys(columns) if name != prediction]
    for name in [*names, *([prediction] if prediction else [])]:
        if name not in current.columns:
            warnings.append(
                f"column {name!r} is missing from the current data; it is reported as "
                "'missing' and not counted"
            )
    return names


def _column_types(declared: Mapping[str, str] | None, known: set[str]) -> dict[str, ColumnKind]:
    if declared is None:
        return {}
    if not isinstance(declared, Mapping):
        raise InvalidInput('column_types must be a dict like {"age": "numeric"}')
    kinds: dict[str, ColumnKind] = {}
    for name, kind in declared.items():
        _check_known(name, known, "column_types")
        if kind not in _KINDS:
            raise InvalidInput(
                f"column_types[{name!r}] is {kind!r}; use 'numeric' or 'categorical'"
            )
        kinds[name] = "numeric" if kind == "numeric" else "categorical"
    return kinds


def _per_column(value: Any, known: set[str], what: str) -> Callable[[str], Any]:
    if isinstance(value, Mapping):
        for name in value:
            _check_known(name, known, what)
        if what == "method":
            resolved = {name: drift_method(spec) for name, spec in value.items()}
            return resolved.get
        return dict(value).get
    if what == "method" and value is not None:
        shared = drift_method(value)
        return lambda name: shared
    return lambda name: value


def _check_known(name: str, known: set[str], what: str) -> None:
    if name not in known:
        raise InvalidInput(
            f"{what} names column {name!r}, which is not in the reference data; "
            f"it has: {', '.join(sorted(known))}"
        )


def _test_columns(
    names: list[str], plan: _Plan, reference: Table, current: Table, threaded: bool
) -> list[tuple[ColumnDrift | None, list[str]]]:
    """Read (convert, clean, sort) and test each column, on two threads for big inputs:
    NumPy's sorts and counting release the GIL. Each column's arrays live only while its
    own task runs, so memory stays near the size of the input."""

    def test(name: str) -> tuple[ColumnDrift | None, list[str]]:
        current_values = current.columns.get(name)
        notes: list[str] = []
        result = plan.evaluate(
            name,
            read_side(reference.columns[name]),
            None if current_values is None else read_side(current_values),
            notes,
        )
        return result, notes

    if not threaded:
        return [test(name) for name in names]
    with ThreadPoolExecutor(_WORKERS, thread_name_prefix="mlops-drift") as pool:
        return list(pool.map(test, names))


@dataclass(frozen=True)
class _Plan:
    """The options of one ``detect_drift`` call, applied column by column."""

    kinds: dict[str, ColumnKind]
    methods: Callable[[str], DriftMethod | None]
    thresholds: Callable[[str], float | None]
    min_rows: int
    bins: int | None
    explicit: frozenset[str]

    def _threshold(self, name: str, method: DriftMethod) -> float:
        threshold = self.thresholds(name)
        threshold = method.default_threshold if threshold is None else threshold
        method.check_threshold(threshold)
        return float(threshold)

    def evaluate(
        self, name: str, reference: Side, current: Side | None, notes: list[str]
    ) -> ColumnDrift | None:
        """The verdict on one column (None: skipped); warnings go to ``notes``."""
        if current is None:
            kind = self.kinds.get(name) or _side_kind(reference)
            message = "the column is missing from the current data"
            return _no_verdict(name, kind, "missing", reference, EmptySide(0), message)
        unsupported = next(
            (side for side in (reference, current) if isinstance(side, UnsupportedSide)), None
        )
        if unsupported is not None:
            text = (
                f"column {name!r} holds {unsupported.type_name} values, which drift tests "
                "do not compare"
            )
            if name in self.explicit:
                raise InvalidInput(f"{text}; convert them to numbers or leave the column out")
            notes.append(f"{text}; it is skipped")
            return None
        kind = self.kinds.get(name) or infer_kind(name, reference, current)
        if kind is None:
            message = "no value on either side (every value is null)"
            return _no_verdict(name, None, "empty", reference, current, message)
        chosen = self.methods(name)
        if chosen is not None:  # a configuration error shows whatever the data
            _check_fit(chosen, kind, name)
            self._threshold(name, chosen)
        reference = convert_side(reference, kind, name, "reference")
        current = convert_side(current, kind, name, "current")
        for side, role in ((reference, "reference"), (current, "current")):
            if isinstance(side, EmptySide):
                message = f"no value in the {role} data (every value is null)"
                return _no_verdict(name, kind, "empty", reference, current, message)
        assert isinstance(reference, (NumericSide, LabelSide))
        assert isinstance(current, (NumericSide, LabelSide))
        new = _new_categories(reference, current)
        looks_like_text = reference.distinct_exceeds(reference.rows // 2)
        if kind == "categorical" and looks_like_text and reference.rows >= self.min_rows:
            notes.append(
                f"column {name!r} has {reference.distinct()} distinct values in "
                f"{reference.rows} reference rows: it looks like free text or an identifier, "
                "for which a categorical test says little; consider leaving it out"
            )
        if min(reference.rows, current.rows) < self.min_rows:
            message = (
                f"{reference.rows} reference and {current.rows} current values; at least "
                f"{self.min_rows} are needed on each side (min_rows)"
            )
            return _no_verdict(name, kind, "not_enough_data", reference, current, message, new)
        sample = ColumnSample(name, kind, reference, current, bins=self.bins)
        method = chosen or default_method(sample)
        threshold = self._threshold(name, method)
        score = method.score(sample)
        judged = score.p_value if method.kind == "p_value" else score.statistic
        if judged is None or math.isnan(judged) or math.isnan(score.statistic):
            message = f"{method.name} gave no result on these values (NaN)"
            return _no_verdict(name, kind, "not_enough_data", reference, current, message, new)
        drifted = method.drifted(score, threshold)
        return ColumnDrift(
            name=name,
            kind=kind,
            method=method.name,
            statistic=score.statistic,
            threshold=threshold,
            p_value=score.p_value,
            drifted=drifted,
            status="drift" if drifted else "no_drift",
            reference_rows=reference.rows,
            current_rows=current.rows,
            nulls={"reference": reference.nulls, "current": current.nulls},
            new_categories=tuple(new[:_NEW_CATEGORIES_LISTED]),
            message=_verdict_message(method, judged, threshold, drifted, len(new)),
            histogram=histogram(reference, current),
        )


def _check_fit(method: DriftMethod, kind: ColumnKind, name: str) -> None:
    if kind not in method.column_kinds:
        fitting = [m.name for m in DRIFT_METHODS.values() if kind in m.column_kinds]
        raise InvalidInput(
            f"method {method.name!r} cannot test the {kind} column {name!r}; methods for "
            f"{kind} columns: {', '.join(fitting)}"
        )


def _side_kind(side: Side) -> ColumnKind | None:
    if isinstance(side, NumericSide):
        return "numeric"
    return "categorical" if isinstance(side, LabelSide) else None


def _no_verdict(
    name: str,
    kind: ColumnKind | None,
    status: Any,
    reference: Side,
    current: Side,
    message: str,
    new: Sequence[Any] = (),
) -> ColumnDrift:
    return ColumnDrift(
        name=name,
        kind=kind,
        method=None,
        statistic=None,
        threshold=None,
        p_value=None,
        drifted=None,
        status=status,
        reference_rows=reference.rows,
        current_rows=current.rows,
        nulls={"reference": reference.nulls, "current": current.nulls},
        new_categories=tuple(new[:_NEW_CATEGORIES_LISTED]),
        message=message,
        histogram=histogram(reference, current),
    )


def _new_categories(reference: Side, current: Side) -> list[Any]:
    """Current labels the reference never had, the most frequent first."""
    if not isinstance(reference, LabelSide) or not isinstance(current, LabelSide):
        return []
    new = [label for label in current.counts if label not in reference.counts]
    new.sort(key=lambda label: -current.counts[label])
    return [json_label(label) for label in new]


def _verdict_message(
    method: DriftMethod, value: float, threshold: float, drifted: bool, new: int
) -> str:
    what = "p-value" if method.kind == "p_value" else "distance"
    if method.kind == "p_value":
        relation = (
            ("≤" if method.drift_at_threshold else "<")
            if drifted
            else (">" if method.drift_at_threshold else "≥")
        )
    else:
        relation = (
            ("≥" if method.drift_at_threshold else ">")
            if drifted
            else ("<" if method.drift_at_threshold else "≤")
        )
    verdict = "drift" if drifted else "no drift"
    text = f"{method.name} {what} {value:.4g} {relation} threshold {threshold:g}: {verdict}"
    if new:
        text += f"; {new} value(s) unseen in the reference"
    return text
