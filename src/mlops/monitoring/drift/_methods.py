"""The drift methods: statistical tests (p-values) and distances, named as in Evidently.

Each method is a small stateless object: a name, the column kinds it fits, whether it
returns a p-value or a distance, Evidently's default threshold and which side of the
threshold (and whether the threshold itself) means drift.
"""

from __future__ import annotations

import difflib
import math
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
from scipy import special  # type: ignore[import-untyped]

from mlops.errors import InvalidInput
from mlops.monitoring.drift._columns import ColumnKind, FloatArray
from mlops.monitoring.drift._sample import ColumnSample, histogram_counts, sturges_edges

__all__ = [
    "DRIFT_METHODS",
    "DriftMethod",
    "Score",
    "check_drift_method",
    "drift_method",
]

MethodKind = Literal["p_value", "distance"]

_WARNINGS_LOCK = threading.Lock()
#: Rows per block where a computation would otherwise allocate several full-size arrays.
_BLOCK = 1 << 18
#: ks_2samp computes the exact p-value up to this size, like SciPy's own ``auto`` mode.
_KS_EXACT_MAX = 10_000


class Score(NamedTuple):
    """What a method measured: its statistic, and the p-value for tests (None otherwise)."""

    statistic: float
    p_value: float | None


class DriftMethod(ABC):
    """A way to tell whether one column drifted; stateless and safe to share.

    ``detect_drift`` calls ``score`` from worker threads, so it must not touch global
    state (``warnings.catch_warnings`` included) without a lock.

    ``kind`` says whether ``score`` yields a p-value (drift when it is small) or a
    distance (drift when it is large); ``drift_at_threshold`` whether a value equal to the
    threshold counts as drift. ``score`` raises ``InvalidInput`` for a column kind outside
    ``column_kinds``.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    kind: ClassVar[MethodKind]
    default_threshold: ClassVar[float]
    column_kinds: ClassVar[frozenset[ColumnKind]]
    drift_at_threshold: ClassVar[bool]

    @abstractmethod
    def score(self, sample: ColumnSample) -> Score:
        """Compare the two sides of ``sample``."""

    def drifted(self, score: Score, threshold: float) -> bool:
        """Whether ``score`` means drift at ``threshold``."""
        if self.kind == "p_value":
            value = score.p_value if score.p_value is not None else 1.0
            return value <= threshold if self.drift_at_threshold else value < threshold
        value = score.statistic
        return value >= threshold if self.drift_at_threshold else value > threshold

    def check_threshold(self, threshold: float) -> None:
        """Raise ``InvalidInput`` for a threshold this method cannot use."""
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
            raise InvalidInput(f"the {self.name} threshold must be a number, not {threshold!r}")
        if self.kind == "p_value" and not 0 < threshold < 1:
            raise InvalidInput(
                f"the {self.name} threshold is a p-value: give a number between 0 and 1 "
                f"(default {self.default_threshold}), not {threshold}"
            )
        if self.kind == "distance" and not (threshold >= 0 and math.isfinite(threshold)):
            raise InvalidInput(
                f"the {self.name} threshold is a distance: give a finite number of 0 or more "
                f"(default {self.default_threshold}), not {threshold}"
            )

    def get_params(self) -> dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"drift_method({self.name!r})"


class KolmogorovSmirnov(DriftMethod):
    name = "ks"
    title = "Kolmogorov-Smirnov p-value"
    kind = "p_value"
    default_threshold = 0.05
    column_kinds = frozenset({"numeric"})
    drift_at_threshold = True

    def score(self, sample: ColumnSample) -> Score:
        reference, current = sample.reference_values, sample.current_values
        if max(reference.size, current.size) <= _KS_EXACT_MAX:
            result = _stats().ks_2samp(reference, current)
            return Score(float(result.statistic), float(result.pvalue))
        gaps, _ = _cdf_gaps(reference, current)
        distance = float(np.abs(gaps).max()) if gaps.size else 0.0
        larger, smaller = max(reference.size, current.size), min(reference.size, current.size)
        effective = round(larger * smaller / (larger + smaller))
        p_value = float(np.clip(_stats().kstwo.sf(distance, effective), 0.0, 1.0))
        return Score(distance, p_value)


class ChiSquare(DriftMethod):
    name = "chisquare"
    title = "chi-square p-value"
    kind = "p_value"
    default_threshold = 0.05
    column_kinds = frozenset({"categorical", "numeric"})
    drift_at_threshold = False

    def score(self, sample: ColumnSample) -> Score:
        counts = sample.counts
        observed = counts.current.astype(np.float64)
        expected = counts.reference * (sample.current_rows / sample.reference_rows)
        if observed.size < 2:
            return Score(0.0, 1.0)  # one value on both sides: nothing to compare
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(expected > 0, (observed - expected) ** 2 / expected, np.inf)
        statistic = float(terms.sum())
        return Score(statistic, float(_stats().chi2.sf(statistic, observed.size - 1)))


class ProportionsZ(DriftMethod):
    name = "z"
    title = "Z-test p-value"
    kind = "p_value"
    default_threshold = 0.05
    column_kinds = frozenset({"categorical", "numeric"})
    drift_at_threshold = False

    def score(self, sample: ColumnSample) -> Score:
        counts = sample.counts
        first = _first_label(counts.labels)
        # the share of values other than the first label, on each side
        reference_other = sample.reference_rows - int(counts.reference[first])
        current_other = sample.current_rows - int(counts.current[first])
        n1, n2 = sample.reference_rows, sample.current_rows
        pooled = (reference_other + current_other) / (n1 + n2)
        if pooled in (0.0, 1.0):
            return Score(0.0, 1.0)  # one and the same value on both sides
        z = (reference_other / n1 - current_other / n2) / math.sqrt(
            pooled * (1 - pooled) * (1 / n1 + 1 / n2)
        )
        return Score(z, float(2 * _stats().norm.sf(abs(z))))


class Wasserstein(DriftMethod):
    name = "wasserstein"
    title = "Wasserstein distance (normed)"
    kind = "distance"
    default_threshold = 0.1
    column_kinds = frozenset({"numeric"})
    drift_at_threshold = True

    def score(self, sample: ColumnSample) -> Score:
        reference, current = sample.reference_values, sample.current_values
        norm = max(float(np.std(reference)), 0.001)
        return Score(_wasserstein(reference, current) / norm, None)


class JensenShannon(DriftMethod):
    name = "jensenshannon"
    title = "Jensen-Shannon distance"
    kind = "distance"
    default_threshold = 0.1
    column_kinds = frozenset({"categorical", "numeric"})
    drift_at_threshold = True

    def score(self, sample: ColumnSample) -> Score:
        reference, current = sample.binned(fill_zeros=False)
        p, q = reference / reference.sum(), current / current.sum()
        middle = (p + q) / 2
        divergence = float(special.rel_entr(p, middle).sum() + special.rel_entr(q, middle).sum())
        return Score(math.sqrt(max(divergence, 0.0) / 2), None)


class PopulationStability(DriftMethod):
    name = "psi"
    title = "PSI"
    kind = "distance"
    default_threshold = 0.1
    column_kinds = frozenset({"categorical", "numeric"})
    drift_at_threshold = True

    def score(self, sample: ColumnSample) -> Score:
        reference, current = sample.binned(fill_zeros=True)
        return Score(float(np.sum((reference - current) * np.log(reference / current))), None)


class KullbackLeibler(DriftMethod):
    name = "kl_div"
    title = "Kullback-Leibler divergence"
    kind = "distance"
    default_threshold = 0.1
    column_kinds = frozenset({"categorical", "numeric"})
    drift_at_threshold = True

    def score(self, sample: ColumnSample) -> Score:
        reference, current = sample.binned(fill_zeros=True)
        p, q = reference / reference.sum(), current / current.sum()
        return Score(float(special.rel_entr(p, q).sum()), None)


class Hellinger(DriftMethod):
    name = "hellinger"
    title = "Hellinger distance"
    kind = "distance"
    default_threshold = 0.1
    column_kinds = frozenset({"categorical", "numeric"})
    drift_at_threshold = True

    def score(self, sample: ColumnSample) -> Score:
        if sample.kind == "categorical":
            counts = sample.counts
            p = counts.reference / sample.reference_rows
            q = counts.current / sample.current_rows
            overlap = float(np.sum(np.sqrt(p * q)))
        else:
            overlap = _numeric_hellinger_overlap(sample)
        return Score(math.sqrt(1 - min(max(overlap, 0.0), 1.0)), None)


def _numeric_hellinger_overlap(sample: ColumnSample) -> float:
    # Evidently bins by Sturges' rule over the distinct values (not the rows) of both sides
    reference, current = sample.reference_values, sample.current_values
    low, high = min(reference[0], current[0]), max(reference[-1], current[-1])
    edges = sturges_edges(low, high, len(sample.counts.labels), sample.integer)
    widths = np.diff(edges)
    p = histogram_counts(reference, edges) / (reference.size * widths)
    q = histogram_counts(current, edges) / (current.size * widths)
    width = (edges[-1] - edges[0]) / (edges.size - 1)
    return float(np.sum(np.sqrt(p * q)) * width)


class AndersonDarling(DriftMethod):
    name = "anderson"
    title = "Anderson-Darling p-value"
    kind = "p_value"
    default_threshold = 0.1
    column_kinds = frozenset({"numeric"})
    drift_at_threshold = False

    def score(self, sample: ColumnSample) -> Score:
        samples = [sample.reference_values, sample.current_values]
        if sample.pooled_distinct(1) < 2:
            return Score(0.0, 1.0)  # SciPy refuses a single pooled value; nothing differs
        # SciPy warns that p-values are capped to [0.001, 0.25] (the cap is documented).
        # catch_warnings swaps process-wide state: the lock keeps threads from interleaving.
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = _stats().anderson_ksamp(samples, variant="midrank")
            except TypeError:  # SciPy < 1.17 has no ``variant``; midrank is its default
                result = _stats().anderson_ksamp(samples)
        return Score(float(result.statistic), float(result.pvalue))


class CramerVonMises(DriftMethod):
    name = "cramer_von_mises"
    title = "Cramer-von Mises p-value"
    kind = "p_value"
    default_threshold = 0.1
    column_kinds = frozenset({"numeric"})
    drift_at_threshold = True

    def score(self, sample: ColumnSample) -> Score:
        reference, current = sample.reference_values, sample.current_values
        if reference.size < 2 or current.size < 2:
            raise InvalidInput(
                f"cramer_von_mises needs at least 2 values on each side of {sample.name!r}"
            )
        if sample.pooled_distinct(1) < 2:
            # one value on both sides: nothing differs (SciPy's midrank formula would
            # report a huge statistic here; it assumes continuous data)
            return Score(0.0, 1.0)
        result = _stats().cramervonmises_2samp(reference, current)
        return Score(float(result.statistic), float(result.pvalue))


class EnergyDistance(DriftMethod):
    name = "ed"
    title = "Energy distance"
    kind = "distance"
    default_threshold = 0.1
    column_kinds = frozenset({"numeric"})
    drift_at_threshold = False

    def score(self, sample: ColumnSample) -> Score:
        gaps, deltas = _cdf_gaps(sample.reference_values, sample.current_values)
        return Score(math.sqrt(2.0) * math.sqrt(float(np.sum(gaps * gaps * deltas))), None)


def _wasserstein(reference: FloatArray, current: FloatArray) -> float:
    """W1 between two sorted samples: the area between their quantile functions.

    Equal sizes: the mean gap between matched order statistics. Otherwise the quantile
    functions are step functions on the grids i/n1 and j/n2; each step of either grid
    lasts until the next step of either grid, and which step of the other grid is in force
    is integer arithmetic. So the area is a sum over the steps, computed in blocks: no
    merge sort, no binary search, little memory.
    """
    n1, n2 = reference.size, current.size
    if n1 == n2:
        gaps = reference - current
        np.abs(gaps, out=gaps)
        return float(gaps.mean())
    return _step_area(reference, current) + _step_area(current, reference, ties_first=False)


def _step_area(own: FloatArray, other: FloatArray, *, ties_first: bool = True) -> float:
    """The part of the area between two quantile functions on the steps of ``own``.

    A step i of ``own`` starts at i/n; the step of ``other`` in force is floor(i*m/n).
    It ends at the next step of ``own``, (i+1)/n, or at the next step of ``other``,
    whichever comes first; on a tie between the grids the reference's step comes first,
    so the current's next step is at ceil(i*m/n)/m after a reference step and at
    (floor(i*m/n)+1)/m after a current step.
    """
    n, m = own.size, other.size
    total = 0.0
    for start in range(0, n, _BLOCK):
        steps = np.arange(start, min(start + _BLOCK, n), dtype=np.int64)
        scaled = steps * m
        in_force = scaled // n
        following = -(-scaled // n) if ties_first else in_force + 1
        ends = np.minimum((steps + 1) / n, following / m)
        ends -= steps / n
        gaps = own[start : start + steps.size] - other[in_force]
        np.abs(gaps, out=gaps)
        total += float((gaps * ends).sum())
    return total


def _cdf_gaps(reference: FloatArray, current: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The difference of the two empirical CDFs between consecutive pooled values, and the
    widths of those intervals (the pieces of SciPy's ``_cdf_distance``)."""
    pooled = np.concatenate((reference, current))
    pooled.sort(kind="stable")  # two sorted runs: the stable sort merges them in O(n)
    points = pooled[:-1]
    gaps = np.searchsorted(reference, points, side="right") / reference.size
    gaps -= np.searchsorted(current, points, side="right") / current.size
    return gaps, np.diff(pooled)


def _first_label(labels: Any) -> int:
    """Index of the smallest label (Evidently sorts the values and singles out the first)."""
    if isinstance(labels, np.ndarray):
        return 0  # numeric counts come sorted
    items = list(labels)
    try:
        order = sorted(range(len(items)), key=lambda i: items[i])
    except TypeError:
        order = sorted(range(len(items)), key=lambda i: str(items[i]))
    return order[0]


_ALL: tuple[DriftMethod, ...] = (
    KolmogorovSmirnov(),
    ChiSquare(),
    ProportionsZ(),
    Wasserstein(),
    JensenShannon(),
    PopulationStability(),
    KullbackLeibler(),
    Hellinger(),
    AndersonDarling(),
    CramerVonMises(),
    EnergyDistance(),
)

#: Every built-in method by name (read-only).
DRIFT_METHODS: Mapping[str, DriftMethod] = MappingProxyType({m.name: m for m in _ALL})

#: Other names accepted by ``drift_method``.
_ALIASES = {"energy_distance": "ed", "kolmogorov_smirnov": "ks", "chi_square": "chisquare"}


def drift_method(name: str | DriftMethod) -> DriftMethod:
    """The method called ``name`` (an instance passes through); a typo says what exists."""
    if isinstance(name, DriftMethod):
        return name
    if not isinstance(name, str):
        raise InvalidInput(
            f"a drift method is a name or a DriftMethod, not a {type(name).__name__}"
        )
    key = _ALIASES.get(name.lower(), name.lower())
    if key in DRIFT_METHODS:
        return DRIFT_METHODS[key]
    close = difflib.get_close_matches(key, [*DRIFT_METHODS, *_ALIASES], n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise InvalidInput(
        f"there is no drift method {name!r}; {hint}the methods are: {', '.join(DRIFT_METHODS)}"
    )


def check_drift_method(method: DriftMethod) -> None:
    """Check that ``method`` keeps the contract (like scikit-learn's ``check_estimator``):
    its attributes are valid, and on identical data of each kind it fits it returns finite
    numbers, p-values within [0, 1], and no drift at its default threshold. Raises
    ``AssertionError`` naming the broken rule."""
    _require(isinstance(method.name, str) and bool(method.name), "name must be a non-empty string")
    _require(method.kind in ("p_value", "distance"), f"{method.name}: kind is {method.kind!r}")
    _require(
        bool(method.column_kinds) and method.column_kinds <= {"numeric", "categorical"},
        f"{method.name}: column_kinds must be a non-empty subset of numeric, categorical",
    )
    method.check_threshold(method.default_threshold)
    generator = np.random.default_rng(0)
    for kind in sorted(method.column_kinds):
        values: Any = (
            generator.normal(size=400)
            if kind == "numeric"
            else generator.choice(["a", "b", "c"], size=400).tolist()
        )
        sample = ColumnSample.from_values(values, values, kind=kind)
        score = method.score(sample)
        _require(math.isfinite(score.statistic), f"{method.name}: statistic is not finite")
        if method.kind == "p_value":
            _require(
                score.p_value is not None and 0 <= score.p_value <= 1,
                f"{method.name}: p-value {score.p_value} is outside [0, 1]",
            )
        else:
            _require(score.p_value is None, f"{method.name}: a distance has no p-value")
        _require(
            not method.drifted(score, method.default_threshold),
            f"{method.name}: identical {kind} data drifted",
        )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _stats() -> Any:
    """scipy.stats, imported on first use: it takes most of a second to import."""
    from scipy import stats  # type: ignore[import-untyped,unused-ignore]

    return stats
