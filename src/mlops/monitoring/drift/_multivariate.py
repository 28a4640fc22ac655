"""Multivariate drift: does the joint shape of the numeric columns still hold?

PCA (the eigenvectors of the covariance, by NumPy's SVD) is fitted on the standardised
reference and keeps the fewest components that explain ``variance`` (65%) of it. Each
row's reconstruction error is the distance between the row and its projection back from
those components. Changes a column-by-column test cannot see, such as a correlation that
flips sign while every marginal stays the same, move the mean error.

The reference rows are split alternately in two halves: one fits the PCA, the other gives
errors the PCA has not seen, so reference and current errors are comparable (in-sample
errors would be biased low). The held-out half is cut into consecutive chunks; the spread
of the chunk means, rescaled to the current's row count and widened for the uncertainty of
the reference mean, sets the band ``mean ± sigmas * sd``. Drift when the current mean error
falls outside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlops.errors import InvalidInput
from mlops.monitoring.drift._columns import FloatArray, Table, numeric_column, read_tables
from mlops.monitoring.drift._report import MultivariateDrift

__all__ = ["multivariate_drift", "multivariate_from_tables"]

_ROW_BLOCK = 65_536
_MAX_CHUNKS = 100


def multivariate_drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    variance: float = 0.65,
    chunks: int = 20,
    sigmas: float = 3.0,
    min_rows: int = 30,
) -> MultivariateDrift:
    """Compare the joint distribution of the numeric columns by PCA reconstruction error.

    Args:
        reference, current: the shapes ``detect_drift`` reads.
        columns: numeric columns to use (default: every column holding numbers in both).
        variance: the share of reference variance the kept components explain.
        chunks: at least this many reference chunks estimate the natural spread.
        sigmas: half-width of the band, in standard deviations.
        min_rows: complete rows (no null in the used columns) needed in the current data;
            the reference needs twice as many, and at least ``8 * chunks``.
    """
    if not 0 < variance < 1:
        raise InvalidInput(f"variance is a share between 0 and 1 (default 0.65), not {variance}")
    if not isinstance(chunks, int) or chunks < 2:
        raise InvalidInput(f"chunks must be a whole number of 2 or more, not {chunks!r}")
    if not sigmas > 0:
        raise InvalidInput(f"sigmas must be above 0 (default 3), not {sigmas}")
    if not isinstance(min_rows, int) or min_rows < 1:
        raise InvalidInput(f"min_rows must be a whole number of 1 or more, not {min_rows!r}")
    reference_table, current_table = read_tables(reference, current, columns)
    if columns is None:
        names = [name for name in reference_table.names if name in current_table.columns]
        strict = False
    else:
        names = list(dict.fromkeys(columns))
        strict = True
    return multivariate_from_tables(
        reference_table,
        current_table,
        names,
        variance=variance,
        chunks=chunks,
        sigmas=sigmas,
        min_rows=min_rows,
        strict=strict,
    )


def multivariate_from_tables(
    reference: Table,
    current: Table,
    names: Sequence[str],
    *,
    variance: float = 0.65,
    chunks: int = 20,
    sigmas: float = 3.0,
    min_rows: int = 30,
    strict: bool = False,
) -> MultivariateDrift:
    """``multivariate_drift`` on tables already read; ``strict`` rejects non-numeric columns."""
    used: list[str] = []
    reference_columns: list[FloatArray] = []
    current_columns: list[FloatArray] = []
    for name in names:
        if name not in reference.columns or name not in current.columns:
            if strict:
                raise InvalidInput(f"column {name!r} is not in both the reference and current data")
            continue
        reference_values = numeric_column(reference.columns[name])
        current_values = numeric_column(current.columns[name])
        if reference_values is None or current_values is None:
            if strict:
                raise InvalidInput(
                    f"column {name!r} does not hold numbers on both sides; multivariate drift "
                    "compares numeric columns only"
                )
            continue
        used.append(name)
        reference_columns.append(reference_values)
        current_columns.append(current_values)
    if len(used) < 2:
        return _undecided(used, "multivariate drift needs at least 2 numeric columns")
    reference_rows = np.flatnonzero(_complete(reference_columns))
    current_rows = np.flatnonzero(_complete(current_columns))
    needed = max(2 * min_rows, 8 * chunks)  # the held-out half: 4 rows or more per chunk
    if reference_rows.size < needed or current_rows.size < min_rows:
        return _undecided(
            used,
            f"{reference_rows.size} complete reference rows and {current_rows.size} current "
            f"rows; at least {needed} and {min_rows} are needed",
            reference_rows.size,
            current_rows.size,
        )
    fit_rows, held_rows = reference_rows[0::2], reference_rows[1::2]
    center = np.array([column[fit_rows].mean() for column in reference_columns])
    scale = np.array([column[fit_rows].std() for column in reference_columns])
    scale[scale == 0] = 1.0  # a constant column: any change in it is reconstruction error
    covariance = np.zeros((len(used), len(used)))
    for block in _blocks(fit_rows):
        standard = (_gather(reference_columns, block) - center) / scale
        covariance += standard.T @ standard
    covariance /= max(fit_rows.size - 1, 1)
    vectors, eigenvalues, _ = np.linalg.svd(covariance)
    total = float(eigenvalues.sum())
    if total <= 0:
        return _undecided(used, "the reference numeric columns are constant", fit_rows.size)
    cumulative = np.cumsum(eigenvalues) / total
    components = min(int(np.searchsorted(cumulative, variance - 1e-12)) + 1, len(used))
    basis = vectors[:, :components]

    def errors(columns: list[FloatArray], rows: np.ndarray[Any, Any]) -> FloatArray:
        out = np.empty(rows.size)
        for start in range(0, rows.size, _ROW_BLOCK):
            block = rows[start : start + _ROW_BLOCK]
            standard = (_gather(columns, block) - center) / scale
            projected = standard @ basis
            squared = np.einsum("ij,ij->i", standard, standard)
            squared -= np.einsum("ij,ij->i", projected, projected)
            out[start : start + block.size] = np.sqrt(np.maximum(squared, 0.0))
        return out

    held = errors(reference_columns, held_rows)
    observed = float(errors(current_columns, current_rows).mean())
    chunk_rows = max(min(current_rows.size, held.size // chunks), -(-held.size // _MAX_CHUNKS))
    count = held.size // chunk_rows
    chunk_means = held[: count * chunk_rows].reshape(count, chunk_rows).mean(axis=1)
    spread = float(chunk_means.std(ddof=1)) * math.sqrt(chunk_rows) if count > 1 else 0.0
    expected = float(held.mean())
    half_width = sigmas * spread * math.sqrt(1 / current_rows.size + 1 / held.size)
    lower, upper = expected - half_width, expected + half_width
    drifted = not lower <= observed <= upper
    relation = "outside" if drifted else "inside"
    return MultivariateDrift(
        columns=tuple(used),
        components=components,
        explained_variance=float(cumulative[components - 1]),
        reference_error=expected,
        lower=lower,
        upper=upper,
        current_error=observed,
        drifted=drifted,
        status="drift" if drifted else "no_drift",
        reference_rows=int(reference_rows.size),
        current_rows=int(current_rows.size),
        chunk_rows=int(chunk_rows),
        chunk_errors=tuple(float(mean) for mean in chunk_means),
        message=(
            f"mean reconstruction error {observed:.4g} is {relation} the reference band "
            f"[{lower:.4g}, {upper:.4g}] ({components} of {len(used)} components, "
            f"{cumulative[components - 1]:.0%} of the variance)"
        ),
    )


def _complete(columns: list[FloatArray]) -> np.ndarray[Any, np.dtype[np.bool_]]:
    mask = np.isfinite(columns[0])
    for column in columns[1:]:
        mask &= np.isfinite(column)
    return mask


def _blocks(rows: np.ndarray[Any, Any]) -> list[np.ndarray[Any, Any]]:
    return [rows[start : start + _ROW_BLOCK] for start in range(0, rows.size, _ROW_BLOCK)]


def _gather(
    columns: list[FloatArray], rows: np.ndarray[Any, Any]
) -> np.ndarray[tuple[int, int], np.dtype[np.float64]]:
    block = np.empty((rows.size, len(columns)))
    for index, column in enumerate(columns):
        block[:, index] = column[rows]
    return block


def _undecided(
    columns: Sequence[str], message: str, reference_rows: int = 0, current_rows: int = 0
) -> MultivariateDrift:
    return MultivariateDrift(
        columns=tuple(columns),
        components=0,
        explained_variance=0.0,
        reference_error=None,
        lower=None,
        upper=None,
        current_error=None,
        drifted=None,
        status="not_enough_data",
        reference_rows=int(reference_rows),
        current_rows=int(current_rows),
        message=message,
    )
