"""Evidently's default choice of drift method for a column.

From ``evidently/legacy/calculations/stattests/registry.py`` (``_get_default_stattest``),
with ``n`` the non-null reference rows and ``v`` the distinct values of both sides pooled:

    n <= 1000, numeric:      v <= 2 → z,  3 <= v <= 5 → chisquare,  v > 5 → ks
    n <= 1000, categorical:  v <= 2 → z,  v > 2 → chisquare
    n > 1000,  numeric:      v <= 5 → jensenshannon,  v > 5 → wasserstein
    n > 1000,  categorical:  jensenshannon
"""

from __future__ import annotations

from mlops.monitoring.drift._methods import DRIFT_METHODS, DriftMethod
from mlops.monitoring.drift._sample import ColumnSample

__all__ = ["SMALL_REFERENCE_ROWS", "default_method"]

#: A reference of at most this many non-null values gets statistical tests (p-values);
#: a larger one gets distances, which do not alarm on tiny differences in big samples.
SMALL_REFERENCE_ROWS = 1000


def default_method(sample: ColumnSample) -> DriftMethod:
    """The method Evidently's ``DataDriftPreset`` would pick for ``sample``."""
    distinct = sample.pooled_distinct(5)
    if sample.reference_rows <= SMALL_REFERENCE_ROWS:
        if sample.kind == "numeric" and distinct > 5:
            return DRIFT_METHODS["ks"]
        return DRIFT_METHODS["chisquare" if distinct > 2 else "z"]
    if sample.kind == "numeric" and distinct > 5:
        return DRIFT_METHODS["wasserstein"]
    return DRIFT_METHODS["jensenshannon"]
