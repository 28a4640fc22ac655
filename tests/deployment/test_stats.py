"""The A/B-test statistics: references from scipy and by hand, and peeking simulations."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats  # type: ignore[import-untyped]

from mlops.deployment import _stats
from mlops.deployment._stats import (
    TestResult,
    ab_verdict,
    always_valid_p_values,
    required_sample_size_means,
    required_sample_size_proportions,
    sequential_means_test,
    sequential_proportions_test,
    two_proportion_ztest,
    welch_ttest,
    welch_ttest_samples,
)
from mlops.errors import InvalidInput

ALPHA = 0.05


def test_public_names_are_sorted_and_defined() -> None:
    assert _stats.__all__ == sorted(_stats.__all__)
    assert all(hasattr(_stats, name) for name in _stats.__all__)


# -- two-proportion z-test -----------------------------------------------------------------


def test_ztest_matches_a_hand_computed_case() -> None:
    # 200/2000 against 250/2000: pooled p = 0.1125, SE0 = sqrt(.1125·.8875·(2/2000)),
    # z = 0.025 / SE0 = 2.50196, p = 2·Φ(-z) = 0.012351;
    # Wald SE = sqrt(.1·.9/2000 + .125·.875/2000) = 0.0099844, CI = 0.025 ± 1.95996·SE.
    result = two_proportion_ztest(200, 2000, 250, 2000)
    assert result.statistic == pytest.approx(2.5019554, rel=1e-6)
    assert result.p_value == pytest.approx(0.0123509, rel=1e-4)
    assert result.effect == pytest.approx(0.025)
    assert result.ci_low == pytest.approx(0.0054310, rel=1e-4)
    assert result.ci_high == pytest.approx(0.0445690, rel=1e-5)
    assert (result.n_a, result.n_b, result.method) == (2000, 2000, "two-proportion-z")
    assert not result.sequential


@pytest.mark.parametrize(("a", "n_a", "b", "n_b"), [(200, 2000, 250, 2000), (31, 90, 12, 75)])
def test_ztest_equals_pearson_chi_square_on_the_2x2_table(
    a: int, n_a: int, b: int, n_b: int
) -> None:
    chi2, p_value, _, _ = stats.chi2_contingency([[a, n_a - a], [b, n_b - b]], correction=False)
    result = two_proportion_ztest(a, n_a, b, n_b)
    assert result.statistic**2 == pytest.approx(chi2)
    assert result.p_value == pytest.approx(p_value)
    greater = two_proportion_ztest(a, n_a, b, n_b, alternative="greater").p_value
    less = two_proportion_ztest(a, n_a, b, n_b, alternative="less").p_value
    assert greater + less == pytest.approx(1.0)
    assert min(greater, less) == pytest.approx(p_value / 2)


def test_ztest_with_no_spread_sees_no_difference() -> None:
    result = two_proportion_ztest(0, 50, 0, 80)
    assert (result.statistic, result.p_value, result.effect) == (0.0, 1.0, 0.0)


# -- Welch's t-test ------------------------------------------------------------------------


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_welch_on_samples_matches_scipy(alternative: str) -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(10.0, 1.0, 40), rng.normal(10.6, 3.0, 65)
    result = welch_ttest_samples(a, b, alternative=alternative)  # type: ignore[arg-type]
    reference = stats.ttest_ind(b, a, equal_var=False, alternative=alternative)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.effect == pytest.approx(b.mean() - a.mean())
    interval = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high))
    assert (result.n_a, result.n_b, result.method) == (40, 65, "welch-t")


def test_welch_from_summaries_matches_scipy() -> None:
    result = welch_ttest(5.0, 4.0, 30, 6.1, 9.0, 25)
    reference = stats.ttest_ind_from_stats(6.1, 3.0, 25, 5.0, 2.0, 30, equal_var=False)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)


# -- sample sizes --------------------------------------------------------------------------


def test_sample_size_for_proportions_matches_the_textbook_value() -> None:
    # Fleiss' formula without continuity correction (pooled SD under H0, unpooled under
    # H1): 0.10 -> 0.12 at alpha .05 two-sided, power .8 gives 3840.8 -> 3841 per arm.
    # The all-unpooled variant (z_a + z_b)²·(p1q1 + p2q2)/δ² would give 3838.1 -> 3839.
    assert required_sample_size_proportions(0.10, 0.02) == 3841
    assert required_sample_size_proportions(0.10, 0.02, two_sided=False) < 3841
    assert required_sample_size_proportions(0.10, 0.02, power=0.9) > 3841
    assert required_sample_size_proportions(0.12, -0.02) == 3841  # symmetric in p1, p2


def test_sample_size_for_means_matches_the_textbook_value() -> None:
    # 2·(1.95996 + 0.84162)²·1² / 0.5² = 62.8 -> 63 (a t-test needs 64).
    assert required_sample_size_means(1.0, 0.5) == 63
    assert required_sample_size_means(2.0, 1.0) == 63
    assert required_sample_size_means(1.0, -0.5) == 63


def test_sample_size_for_means_reaches_the_power_and_no_more() -> None:
    n = required_sample_size_means(3.0, 0.7, alpha=0.01, power=0.9)
    z_alpha = stats.norm.ppf(1 - 0.01 / 2)

    def power_at(samples: int) -> float:
        return float(stats.norm.cdf(0.7 / (3.0 * math.sqrt(2.0 / samples)) - z_alpha))

    assert power_at(n) >= 0.9 > power_at(n - 1)


# -- mSPRT ---------------------------------------------------------------------------------


def test_msprt_matches_the_mixture_likelihood_ratio_by_hand() -> None:
    # D = 0.3, V = 0.5/100 + 0.5/100 = 0.01, tau² = 0.04:
    # Lambda = sqrt(0.01/0.05)·exp(0.04·0.09 / (2·0.01·0.05)) = sqrt(0.2)·e^3.6.
    lam = math.sqrt(0.2) * math.exp(3.6)
    result = sequential_means_test(1.0, 0.5, 100, 1.3, 0.5, 100, tau_squared=0.04)
    assert result.statistic == pytest.approx(math.log(lam))
    assert result.p_value == pytest.approx(1 / lam)
    assert always_valid_p_values([0.3], [0.01], tau_squared=0.04)[0] == pytest.approx(1 / lam)
    assert result.sequential
    # tau² defaults to MDE².
    assert (
        sequential_means_test(1.0, 0.5, 100, 1.3, 0.5, 100, minimum_detectable_effect=0.2) == result
    )


def test_msprt_confidence_sequence_excludes_zero_exactly_when_p_is_below_five_percent() -> None:
    for effect in np.linspace(0.0, 0.5, 26):
        result = sequential_means_test(0.0, 1.0, 200, float(effect), 1.0, 200, tau_squared=0.01)
        assert (result.ci_low > 0.0) == (result.p_value < ALPHA)
        assert result.ci_low <= effect <= result.ci_high


def test_msprt_p_value_keeps_the_running_minimum() -> None:
    looks = [(30, 300, 52, 300), (55, 600, 80, 600), (90, 900, 92, 900)]
    previous, p_values = 1.0, []
    for counts in looks:
        previous = sequential_proportions_test(
            *counts, minimum_detectable_effect=0.03, previous_p_value=previous
        ).p_value
        p_values.append(previous)
    assert p_values == sorted(p_values, reverse=True)
    fresh = sequential_proportions_test(*looks[-1], minimum_detectable_effect=0.03).p_value
    assert fresh > p_values[-1]  # the last look alone is weaker evidence than the history

    effects = [(a_b - a_a) / n for a_a, n, a_b, _ in looks]
    pooled = [(a_a + a_b) / (2 * n) for a_a, n, a_b, _ in looks]
    variances = [p * (1 - p) * 2 / n for p, (_, n, _, _) in zip(pooled, looks, strict=True)]
    vectorized = always_valid_p_values(effects, variances, tau_squared=0.03**2)
    assert vectorized == pytest.approx(p_values)


def _peeking_experiments(
    rate_a: float, rate_b: float, *, per_look: int, mde: float, seed: int
) -> tuple[float, float, list[str]]:
    """400 experiments of 20 looks each: naive and mSPRT rejection rates, sequential decisions."""
    rng = np.random.default_rng(seed)
    experiments, looks = 400, 20
    successes_a = rng.binomial(per_look, rate_a, (experiments, looks)).cumsum(axis=1)
    successes_b = rng.binomial(per_look, rate_b, (experiments, looks)).cumsum(axis=1)
    naive_rejections = sequential_rejections = 0
    decisions: list[str] = []
    for a_row, b_row in zip(successes_a.tolist(), successes_b.tolist(), strict=True):
        naive_rejected, previous, decision = False, 1.0, "keep_running"
        for look, (a, b) in enumerate(zip(a_row, b_row, strict=True)):
            n = per_look * (look + 1)
            naive_rejected |= two_proportion_ztest(a, n, b, n).p_value < ALPHA
            result = sequential_proportions_test(
                a, n, b, n, minimum_detectable_effect=mde, previous_p_value=previous
            )
            previous = result.p_value
            if decision == "keep_running":  # the first verdict that stops the experiment
                horizon = per_look * looks
                decision = ab_verdict(result, alpha=ALPHA, min_samples_per_arm=horizon).decision
        decisions.append(decision)
        naive_rejections += naive_rejected
        sequential_rejections += previous < ALPHA
    return naive_rejections / experiments, sequential_rejections / experiments, decisions


def test_msprt_keeps_false_positives_at_alpha_under_peeking_where_naive_tests_do_not() -> None:
    naive_rate, sequential_rate, decisions = _peeking_experiments(
        0.10, 0.10, per_look=100, mde=0.02, seed=2017
    )
    assert naive_rate > 2 * ALPHA  # peeking 20 times at a fixed-horizon test: ~25%
    assert sequential_rate <= ALPHA + 0.01
    assert decisions.count("no_difference") >= (1 - ALPHA - 0.01) * len(decisions)


def test_msprt_still_detects_a_real_effect() -> None:
    _, sequential_rate, decisions = _peeking_experiments(
        0.10, 0.13, per_look=250, mde=0.03, seed=11
    )
    assert sequential_rate >= 0.9
    assert decisions.count("winner_b") >= 0.9 * len(decisions)
    assert "winner_a" not in decisions


def test_vectorized_msprt_on_normal_metrics_under_the_null() -> None:
    rng = np.random.default_rng(3)
    experiments, looks, per_look = 400, 20, 50
    a = rng.normal(0.0, 2.0, (experiments, looks, per_look))
    b = rng.normal(0.0, 2.0, (experiments, looks, per_look))
    n = per_look * np.arange(1, looks + 1)
    effects = b.sum(axis=2).cumsum(axis=1) / n - a.sum(axis=2).cumsum(axis=1) / n
    p_values = always_valid_p_values(effects, 2 * 4.0 / n, tau_squared=0.5**2)
    assert (np.diff(p_values, axis=1) <= 0).all()
    assert (p_values[:, -1] < ALPHA).mean() <= ALPHA + 0.01
    naive = 2 * stats.norm.sf(np.abs(effects) / np.sqrt(2 * 4.0 / n))
    assert (naive < ALPHA).any(axis=1).mean() > 2 * ALPHA


# -- verdicts ------------------------------------------------------------------------------


def _result(effect: float, p_value: float, n: int, method: str = "two-proportion-z") -> TestResult:
    return TestResult(1.0, p_value, effect, effect - 0.01, effect + 0.01, n, n, method)


def test_fixed_horizon_verdict_waits_for_the_sample_size() -> None:
    early = ab_verdict(_result(0.02, 1e-6, 999), min_samples_per_arm=1000)
    assert early.decision == "keep_running"
    assert "999 of 1000" in early.reason
    assert ab_verdict(_result(0.02, 1e-6, 1000), min_samples_per_arm=1000).decision == "winner_b"
    assert ab_verdict(_result(0.02, 0.2, 1000), min_samples_per_arm=1000).decision == (
        "no_difference"
    )


def test_verdict_picks_the_winner_by_direction() -> None:
    lower_latency = _result(-3.0, 0.001, 500, "welch-t")
    assert ab_verdict(lower_latency, min_samples_per_arm=500).decision == "winner_a"
    verdict = ab_verdict(lower_latency, min_samples_per_arm=500, higher_is_better=False)
    assert verdict.decision == "winner_b"
    assert verdict.result is lower_latency
    assert "arm B is better" in verdict.reason


@pytest.mark.parametrize(
    ("effect", "p_value", "n", "alpha", "decision"),
    [
        (0.03, 0.01, 400, 0.05, "winner_b"),  # evidence stops a sequential test early
        (-0.03, 0.01, 400, 0.05, "winner_a"),
        (0.03, 0.2, 400, 0.05, "keep_running"),
        (0.03, 0.04, 400, 0.01, "keep_running"),
        (0.0, 0.2, 5000, 0.05, "no_difference"),  # the budget is spent
    ],
)
def test_sequential_verdict_stops_on_evidence_or_at_the_budget(
    effect: float, p_value: float, n: int, alpha: float, decision: str
) -> None:
    for method in ("msprt-proportions", "msprt-means"):
        result = _result(effect, p_value, n, method)
        verdict = ab_verdict(result, alpha=alpha, min_samples_per_arm=5000)
        assert verdict.decision == decision, verdict.reason


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: two_proportion_ztest(0, 0, 1, 10), "n_a must be at least 1"),
        (lambda: two_proportion_ztest(1, 10, 1, -5), "n_b must be at least 1"),
        (lambda: two_proportion_ztest(11, 10, 1, 10), "successes_a"),
        (lambda: two_proportion_ztest(-1, 10, 1, 10), "successes_a"),
        (lambda: two_proportion_ztest(1, 10, 1, True), "integer"),
        (lambda: two_proportion_ztest(1, 10, 1, 10, alternative="bigger"), "alternative"),  # type: ignore[arg-type]
        (lambda: welch_ttest(0.0, -1.0, 10, 0.0, 1.0, 10), "var_a"),
        (lambda: welch_ttest(0.0, 1.0, 1, 0.0, 1.0, 10), "n_a"),
        (lambda: welch_ttest(0.0, 0.0, 10, 1.0, 0.0, 10), "both 0"),
        (lambda: welch_ttest(float("nan"), 1.0, 10, 0.0, 1.0, 10), "mean_a"),
        (lambda: welch_ttest_samples([1.0, float("nan")], [1.0, 2.0]), "finite"),
        (lambda: welch_ttest_samples([1.0], [1.0, 2.0]), "2 or more"),
        (lambda: required_sample_size_proportions(0.1, 0.02, alpha=0.0), "alpha"),
        (lambda: required_sample_size_proportions(0.1, 0.02, alpha=1.0), "alpha"),
        (lambda: required_sample_size_proportions(0.1, 0.02, power=1.2), "power"),
        (lambda: required_sample_size_proportions(0.1, 0.0), "non-zero"),
        (lambda: required_sample_size_proportions(0.95, 0.1), "within"),
        (lambda: required_sample_size_means(0.0, 0.1), "std"),
        (lambda: sequential_proportions_test(1, 10, 2, 10), "exactly one"),
        (
            lambda: sequential_proportions_test(
                1, 10, 2, 10, minimum_detectable_effect=0.1, tau_squared=0.01
            ),
            "exactly one",
        ),
        (lambda: sequential_means_test(0, 1, 10, 0, 1, 10, tau_squared=-1.0), "tau_squared"),
        (
            lambda: sequential_means_test(
                0, 1, 10, 0, 1, 10, tau_squared=1.0, previous_p_value=1.5
            ),
            "previous_p_value",
        ),
        (lambda: always_valid_p_values([0.1], [-0.1], tau_squared=1.0), "negative"),
        (lambda: ab_verdict(_result(0.1, 0.01, 10), alpha=1.5, min_samples_per_arm=5), "alpha"),
        (lambda: ab_verdict(_result(0.1, 0.01, 10), min_samples_per_arm=0), "min_samples"),
    ],
)
def test_bad_arguments_raise_invalid_input(call: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        call()  # type: ignore[operator]


def test_results_are_frozen() -> None:
    result = two_proportion_ztest(1, 10, 2, 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.p_value = 0.0  # type: ignore[misc]
    verdict = ab_verdict(result, min_samples_per_arm=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.decision = "winner_a"  # type: ignore[misc]
