"""Hypothesis tests, sample sizes and verdicts for A/B tests and canary analysis.

Arm A is the control (or stable model), arm B the challenger (or canary); ``effect`` is B
minus A, intervals are 95%. Fixed-horizon tests are read once, at their planned sample size;
sequential (mSPRT) tests give always-valid p-values that may be read at every look.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special  # type: ignore[import-untyped]

from mlops.errors import InvalidInput

__all__ = [
    "Alternative",
    "Decision",
    "TestResult",
    "Verdict",
    "ab_verdict",
    "always_valid_p_values",
    "required_sample_size_means",
    "required_sample_size_proportions",
    "sequential_means_test",
    "sequential_proportions_test",
    "two_proportion_ztest",
    "welch_ttest",
    "welch_ttest_samples",
]

Alternative = Literal["two-sided", "greater", "less"]
Decision = Literal["winner_a", "winner_b", "no_difference", "keep_running"]

_CONFIDENCE: Final = 0.95
_Z_CONFIDENCE: Final = float(special.ndtri(0.5 + _CONFIDENCE / 2))
_SEQUENTIAL_METHODS: Final = frozenset({"msprt-proportions", "msprt-means"})


@dataclass(frozen=True, slots=True)
class TestResult:
    """One comparison of arm B against arm A; ``effect`` and the 95% CI are for B minus A.

    ``method`` is "two-proportion-z", "welch-t", "msprt-proportions" or "msprt-means".
    For the msprt methods ``statistic`` is the log mixture likelihood ratio, ``p_value``
    is always valid and the CI is the always-valid confidence sequence at this look.
    """

    __test__ = False  # not a pytest test class, despite its name

    statistic: float
    p_value: float
    effect: float
    ci_low: float
    ci_high: float
    n_a: int
    n_b: int
    method: str

    @property
    def sequential(self) -> bool:
        """Whether ``p_value`` stays valid when read at every look (mSPRT)."""
        return self.method in _SEQUENTIAL_METHODS


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with an experiment, why, and the result the decision rests on."""

    decision: Decision
    reason: str
    result: TestResult


def _count(name: str, value: int, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidInput(f"{name} must be an integer count, got {value!r}")
    if value < minimum:
        raise InvalidInput(f"{name} must be at least {minimum}, got {value}")
    return int(value)


_RULES: Final[dict[str, tuple[str, Callable[[float], bool]]]] = {
    "finite": ("a finite number", lambda x: True),
    "unit": ("strictly between 0 and 1", lambda x: 0.0 < x < 1.0),
    "probability": ("between 0 and 1", lambda x: 0.0 <= x <= 1.0),
    "variance": ("a variance, finite and not negative", lambda x: x >= 0.0),
    "positive": ("positive", lambda x: x > 0.0),
    "nonzero": ("non-zero", lambda x: x != 0.0),
}


def _number(name: str, value: float, rule: str = "finite") -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number, got {value!r}") from None
    description, holds = _RULES[rule]
    if not (math.isfinite(number) and holds(number)):
        raise InvalidInput(f"{name} must be {description}, got {value!r}")
    return number


def _proportions(
    successes_a: int, n_a: int, successes_b: int, n_b: int
) -> tuple[int, int, float, float, float]:
    """Validate counts; return n_a, n_b, effect, pooled (null) variance, Wald variance."""
    n_a, n_b = _count("n_a", n_a), _count("n_b", n_b)
    for arm, successes, n in (("a", successes_a, n_a), ("b", successes_b, n_b)):
        if _count(f"successes_{arm}", successes, minimum=0) > n:
            raise InvalidInput(f"successes_{arm} ({successes}) exceeds its trials n_{arm} ({n})")
    rate_a, rate_b = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    null_variance = pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b)
    wald_variance = rate_a * (1.0 - rate_a) / n_a + rate_b * (1.0 - rate_b) / n_b
    return n_a, n_b, rate_b - rate_a, null_variance, wald_variance


def _means(
    mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int
) -> tuple[int, int, float, float, float]:
    """Validate summaries; return n_a, n_b, effect, var_a / n_a, var_b / n_b."""
    n_a, n_b = _count("n_a", n_a, minimum=2), _count("n_b", n_b, minimum=2)
    effect = _number("mean_b", mean_b) - _number("mean_a", mean_a)
    var_a, var_b = _number("var_a", var_a, "variance"), _number("var_b", var_b, "variance")
    return n_a, n_b, effect, var_a / n_a, var_b / n_b


def _p_value(cdf: Callable[[float], float], statistic: float, alternative: str) -> float:
    if alternative not in get_args(Alternative):
        raise InvalidInput(f"alternative is 'two-sided', 'greater' or 'less', not {alternative!r}")
    if alternative == "two-sided":
        return float(2.0 * cdf(-abs(statistic)))
    return float(cdf(-statistic if alternative == "greater" else statistic))


def two_proportion_ztest(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    *,
    alternative: Alternative = "two-sided",
) -> TestResult:
    """Pooled two-proportion z-test of p_b - p_a ("greater": p_b > p_a), Wald 95% CI.

    When every trial succeeded, or every trial failed, nothing separates the arms: z = 0.
    """
    n_a, n_b, effect, v_null, v_wald = _proportions(successes_a, n_a, successes_b, n_b)
    z = effect / math.sqrt(v_null) if v_null > 0.0 else 0.0
    half_width = _Z_CONFIDENCE * math.sqrt(v_wald)
    p_value = _p_value(special.ndtr, z, alternative)
    low, high = effect - half_width, effect + half_width
    return TestResult(z, p_value, effect, low, high, n_a, n_b, "two-proportion-z")


def welch_ttest(
    mean_a: float,
    var_a: float,
    n_a: int,
    mean_b: float,
    var_b: float,
    n_b: int,
    *,
    alternative: Alternative = "two-sided",
) -> TestResult:
    """Welch's t-test of mean_b - mean_a from summaries (sample variances, ddof=1).

    Welch-Satterthwaite degrees of freedom; the 95% CI is two-sided, from the t distribution.
    """
    n_a, n_b, effect, sq_se_a, sq_se_b = _means(mean_a, var_a, n_a, mean_b, var_b, n_b)
    se = math.sqrt(sq_se_a + sq_se_b)
    if se == 0.0:
        raise InvalidInput("var_a and var_b are both 0; Welch's t-test needs spread in an arm")
    df = (sq_se_a + sq_se_b) ** 2 / (sq_se_a**2 / (n_a - 1) + sq_se_b**2 / (n_b - 1))
    t = effect / se
    p_value = _p_value(lambda x: special.stdtr(df, x), t, alternative)
    half_width = float(special.stdtrit(df, 0.5 + _CONFIDENCE / 2)) * se
    low, high = effect - half_width, effect + half_width
    return TestResult(t, p_value, effect, low, high, n_a, n_b, "welch-t")


def _summary(name: str, values: ArrayLike) -> tuple[float, float, int]:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a sequence of numbers") from None
    if array.ndim != 1 or array.size < 2 or not np.isfinite(array).all():
        raise InvalidInput(f"{name} must be a 1-D sample of 2 or more finite values (drop NaNs)")
    return float(array.mean()), float(array.var(ddof=1)), array.size


def welch_ttest_samples(
    a: ArrayLike, b: ArrayLike, *, alternative: Alternative = "two-sided"
) -> TestResult:
    """Welch's t-test of mean(b) - mean(a) from the raw samples."""
    return welch_ttest(*_summary("a", a), *_summary("b", b), alternative=alternative)


def _z_quantiles(alpha: float, power: float, two_sided: bool) -> tuple[float, float]:
    alpha, power = _number("alpha", alpha, "unit"), _number("power", power, "unit")
    z_alpha = float(special.ndtri(1.0 - alpha / 2.0 if two_sided else 1.0 - alpha))
    return z_alpha, float(special.ndtri(power))


def _ceil(n: float) -> int:
    return max(1, math.ceil(n - 1e-9))  # floating-point noise: 100.0000000001 needs 100


def required_sample_size_proportions(
    baseline_rate: float,
    minimum_detectable_effect: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
) -> int:
    """Samples per arm for the pooled z-test to detect an absolute change of a rate.

    n = (z_a·sqrt(2·p̄·(1-p̄)) + z_b·sqrt(p1·(1-p1) + p2·(1-p2)))² / (p2-p1)², with
    p2 = p1 + MDE and p̄ = (p1+p2)/2 (Fleiss, without continuity correction).
    """
    p1 = _number("baseline_rate", baseline_rate, "unit")
    mde = _number("minimum_detectable_effect", minimum_detectable_effect, "nonzero")
    p2 = p1 + mde
    if not 0.0 < p2 < 1.0:
        raise InvalidInput(
            f"minimum_detectable_effect is an absolute change and must keep the rate within "
            f"(0, 1); {p1} + {mde} = {p2}"
        )
    z_alpha, z_beta = _z_quantiles(alpha, power, two_sided)
    p_bar = (p1 + p2) / 2.0
    null_sd = math.sqrt(2.0 * p_bar * (1.0 - p_bar))
    alternative_sd = math.sqrt(p1 * (1.0 - p1) + p2 * (1.0 - p2))
    return _ceil((z_alpha * null_sd + z_beta * alternative_sd) ** 2 / mde**2)


def required_sample_size_means(
    std: float,
    minimum_detectable_effect: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
) -> int:
    """Samples per arm to detect a change of a mean: n = 2·(z_a + z_b)²·σ² / MDE².

    Normal approximation; a t-test needs one or two samples more when n is small.
    """
    sigma = _number("std", std, "positive")
    mde = _number("minimum_detectable_effect", minimum_detectable_effect, "nonzero")
    z_alpha, z_beta = _z_quantiles(alpha, power, two_sided)
    return _ceil(2.0 * ((z_alpha + z_beta) * sigma / mde) ** 2)


# Mixture SPRT (Johari, Koomen, Pekelis & Walsh 2017, "Peeking at A/B tests"). At a look,
# D is the estimated difference B - A, V its variance, theta0 the null difference. Mixing
# the likelihood ratio of N(theta, V) to N(theta0, V) over theta ~ N(theta0, tau²) gives
#     Lambda = sqrt(V / (V + tau²)) · exp(tau² · (D - theta0)² / (2 · V · (V + tau²)))
# (n samples of variance sigma² per arm: V = 2·sigma²/n, the paper's formula). Lambda is a
# non-negative martingale under the null; by Ville's inequality P(sup Lambda >= 1/alpha)
# <= alpha, so the always-valid p-value
#     p_n = min(p_{n-1}, 1 / Lambda_n),   p_0 = 1
# may be compared with alpha at every look. Inverting Lambda >= 1/alpha in theta0 gives the
# confidence sequence D ± sqrt(V·(V + tau²)/tau² · (2·log(1/alpha) + log((V + tau²)/V))).
# tau² defaults to MDE²: a prior whose standard deviation is the effect worth detecting.


def _log_mixture_ratio(
    d: NDArray[np.float64], v: NDArray[np.float64], tau2: float
) -> NDArray[np.float64]:
    informative = v > 0.0
    v = np.where(informative, v, 1.0)
    log_ratio = 0.5 * np.log(v / (v + tau2)) + tau2 * d**2 / (2.0 * v * (v + tau2))
    return np.where(informative, log_ratio, 0.0)  # no variance, no evidence either way


def _tau_squared(minimum_detectable_effect: float | None, tau_squared: float | None) -> float:
    if (minimum_detectable_effect is None) == (tau_squared is None):
        raise InvalidInput("pass exactly one of minimum_detectable_effect or tau_squared")
    if tau_squared is not None:
        return _number("tau_squared", tau_squared, "positive")
    return _number("minimum_detectable_effect", minimum_detectable_effect or 0.0, "nonzero") ** 2


def always_valid_p_values(
    effects: ArrayLike, variances: ArrayLike, *, tau_squared: float, null_effect: float = 0.0
) -> NDArray[np.float64]:
    """mSPRT always-valid p-values over successive looks along the last axis.

    ``effects`` and ``variances`` hold the estimated difference and its variance at each
    look; the result is the running minimum, so it never increases from look to look.
    """
    tau2 = _tau_squared(None, tau_squared)
    difference = np.asarray(effects, dtype=np.float64) - _number("null_effect", null_effect)
    variance = np.asarray(variances, dtype=np.float64)
    if not (np.isfinite(difference).all() and np.isfinite(variance).all()) or (variance < 0).any():
        raise InvalidInput("effects and variances must be finite, and variances not negative")
    p_values = np.exp(np.minimum(-_log_mixture_ratio(difference, variance, tau2), 0.0))
    return p_values if p_values.ndim == 0 else np.minimum.accumulate(p_values, axis=-1)


def _sequential(
    counts: tuple[int, int], effect: float, variances: tuple[float, float], tau2: float,
    previous_p_value: float, method: str,
) -> TestResult:  # fmt: skip
    """Build an mSPRT result from the test (null) variance and the interval variance."""
    previous = _number("previous_p_value", previous_p_value, "probability")
    test_variance, v = variances
    log_ratio = float(_log_mixture_ratio(np.array(effect), np.array(test_variance), tau2))
    p_value = min(previous, math.exp(min(-log_ratio, 0.0)))
    half_width = 0.0
    if v > 0.0:
        widening = 2.0 * math.log(1.0 / (1.0 - _CONFIDENCE)) + math.log((v + tau2) / v)
        half_width = math.sqrt(v * (v + tau2) / tau2 * widening)
    low, high = effect - half_width, effect + half_width
    return TestResult(log_ratio, p_value, effect, low, high, *counts, method)


def sequential_proportions_test(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    *,
    minimum_detectable_effect: float | None = None,
    tau_squared: float | None = None,
    previous_p_value: float = 1.0,
) -> TestResult:
    """mSPRT on p_b - p_a from cumulative counts; pass the previous look's ``p_value``.

    Give exactly one of the MDE or tau_squared. The p-value uses the pooled (null)
    variance like the z-test; the confidence sequence the unpooled one, like the Wald CI.
    """
    n_a, n_b, effect, v_null, v_wald = _proportions(successes_a, n_a, successes_b, n_b)
    tau2 = _tau_squared(minimum_detectable_effect, tau_squared)
    variances = (v_null, v_wald)
    return _sequential((n_a, n_b), effect, variances, tau2, previous_p_value, "msprt-proportions")


def sequential_means_test(
    mean_a: float,
    var_a: float,
    n_a: int,
    mean_b: float,
    var_b: float,
    n_b: int,
    *,
    minimum_detectable_effect: float | None = None,
    tau_squared: float | None = None,
    previous_p_value: float = 1.0,
) -> TestResult:
    """mSPRT on mean_b - mean_a from cumulative summaries; V = var_a/n_a + var_b/n_b.

    Give exactly one of the MDE or tau_squared; pass the previous look's ``p_value``.
    """
    n_a, n_b, effect, sq_se_a, sq_se_b = _means(mean_a, var_a, n_a, mean_b, var_b, n_b)
    tau2 = _tau_squared(minimum_detectable_effect, tau_squared)
    variances = (sq_se_a + sq_se_b,) * 2
    return _sequential((n_a, n_b), effect, variances, tau2, previous_p_value, "msprt-means")


def ab_verdict(
    result: TestResult,
    *,
    alpha: float = 0.05,
    min_samples_per_arm: int,
    higher_is_better: bool = True,
) -> Verdict:
    """Decide an experiment: a winner, no difference, or keep collecting data.

    A fixed-horizon result is read only once both arms hold ``min_samples_per_arm`` (earlier
    is peeking). A sequential result names a winner as soon as its always-valid p-value
    drops below alpha, and ``min_samples_per_arm`` is the budget, then "no_difference".
    """
    alpha = _number("alpha", alpha, "unit")
    horizon = _count("min_samples_per_arm", min_samples_per_arm)
    smallest = min(result.n_a, result.n_b)
    progress = f"{result.method}, {smallest} of {horizon} samples in the smaller arm"
    evidence = f"p = {result.p_value:.4g} {{}} alpha = {alpha:g} ({progress})"
    if not result.sequential and smallest < horizon:
        reason = f"{progress}; a fixed-horizon test is read only once, at its sample size"
        return Verdict("keep_running", reason, result)
    if result.p_value < alpha and result.effect != 0.0:
        b_wins = (result.effect > 0.0) == higher_is_better
        reason = (
            f"arm {'B' if b_wins else 'A'} is better ({'higher' if higher_is_better else 'lower'}"
            f" is better): effect {result.effect:+.6g}, 95% CI [{result.ci_low:.6g}, "
            f"{result.ci_high:.6g}], " + evidence.format("<")
        )
        return Verdict("winner_b" if b_wins else "winner_a", reason, result)
    if smallest >= horizon:
        return Verdict("no_difference", "no difference: " + evidence.format(">="), result)
    return Verdict("keep_running", "not yet: " + evidence.format(">="), result)
