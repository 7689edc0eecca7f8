"""Accuracy intervals, paired differences and planning, checked on simulated episodes whose true
between-episode variance is known: a_i ~ Beta(6, 4), correct answers ~ Binomial(Q, a_i)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tint.errors import TintError
from tint.eval.variance import (
    paired_difference,
    plan,
    predicted_half_width,
    summarize,
    t_quantile,
)

ALPHA, BETA = 6, 4
MEAN = ALPHA / (ALPHA + BETA)  # 0.6
SIGMA2 = ALPHA * BETA / ((ALPHA + BETA) ** 2 * (ALPHA + BETA + 1))  # Var(a) = 0.0218
QUERY_VAR = MEAN - (SIGMA2 + MEAN**2)  # E[a (1 - a)] = 0.2182


def _correct(rng, shape, queries):
    """Correct answers of episodes with true accuracies drawn from Beta(ALPHA, BETA)."""
    return rng.binomial(queries, rng.beta(ALPHA, BETA, size=shape))


def _counts(correct, queries):
    return [(int(c), queries) for c in correct]


@pytest.mark.parametrize(
    "p, df, table",
    [
        (0.975, 1, 12.706),
        (0.975, 2, 4.303),
        (0.975, 5, 2.571),
        (0.975, 10, 2.228),
        (0.975, 30, 2.042),
        (0.95, 4, 2.132),
        (0.995, 3, 5.841),
        (0.9995, 1, 636.619),
        (0.025, 10, -2.228),
    ],
)
def test_t_quantile_matches_the_tables(p, df, table):
    assert t_quantile(p, df) == pytest.approx(table, abs=5e-4)


def test_t_quantile_tends_to_the_normal_quantile():
    assert t_quantile(0.975, 10**6) == pytest.approx(1.95996, abs=1e-4)


def test_summary_of_three_episodes_by_hand():
    s = summarize([(8, 10), (6, 10), (7, 10)])
    assert s["accuracy"] == pytest.approx(0.7)
    assert s["half_width"] == pytest.approx(4.3027 * math.sqrt(0.01 / 3), rel=1e-4)
    assert s["ci95"] == pytest.approx([0.7 - s["half_width"], 0.7 + s["half_width"]])
    # a (1 - a) is 0.16, 0.24, 0.21: the binomial noise alone, mean(a (1 - a)) / 9 = 0.0226,
    # is more than S^2 = 0.01, so the between-episode variance is clipped to 0
    assert s["between_episode_var"] == 0
    assert s["query_var"] == pytest.approx((0.16 + 0.24 + 0.21) / 3 * 10 / 9)
    assert (s["episodes"], s["queries"]) == (3, 10)


def test_an_accuracy_interval_stays_within_zero_and_one():
    s = summarize([(15, 15), (15, 15), (12, 15)])
    assert s["ci95"][1] == 1.0 and s["accuracy"] + s["half_width"] > 1
    assert s["ci95"][0] == pytest.approx(s["accuracy"] - s["half_width"])


def test_both_variance_terms_are_recovered_from_many_episodes():
    rng = np.random.default_rng(0)
    s = summarize(_counts(_correct(rng, 20000, 20), 20))
    assert s["between_episode_var"] == pytest.approx(SIGMA2, rel=0.08)
    assert s["query_var"] == pytest.approx(QUERY_VAR, rel=0.02)
    assert s["ci95"][0] < MEAN < s["ci95"][1]


@pytest.mark.parametrize("episodes", [5, 30])
def test_the_interval_covers_the_true_mean_95_percent_of_the_time(episodes):
    rng = np.random.default_rng(1)
    runs = _correct(rng, (2000, episodes), 15)
    covered = [lo <= MEAN <= hi for lo, hi in (summarize(_counts(run, 15))["ci95"] for run in runs)]
    assert 0.93 <= np.mean(covered) <= 0.97


def test_the_plan_reaches_its_half_width_and_nothing_cheaper_does():
    cost_query = 0.02
    p = plan(SIGMA2, QUERY_VAR, half_width=0.02, cost_episode=1.0, cost_query=cost_query)
    P, Q = p["episodes"], p["queries"]
    assert p["half_width"] <= 0.02 and p["cost"] == pytest.approx(P * (1 + Q * cost_query))

    def cost(P, Q):
        return P * (1 + Q * cost_query)

    for other_p in range(2, P + 1):
        for other_q in range(1, 4 * Q):
            if cost(other_p, other_q) < p["cost"]:
                assert predicted_half_width(SIGMA2, QUERY_VAR, other_p, other_q) > 0.02

    rng = np.random.default_rng(2)

    def simulated_half_width(P, Q):
        means = (_correct(rng, (2000, P), Q) / Q).mean(axis=1)
        return 1.96 * means.std()

    assert simulated_half_width(P, Q) <= 0.02 * 1.05
    fewer_episodes, fewer_queries = (int(0.8 * P), Q), (P, Q // 3)
    for cheaper in (fewer_episodes, fewer_queries):
        assert cost(*cheaper) < p["cost"]
        assert simulated_half_width(*cheaper) > 0.02


def test_cheaper_queries_buy_more_queries_per_episode():
    planned = [plan(SIGMA2, QUERY_VAR, 0.02, 1.0, c)["queries"] for c in (0.1, 0.01, 0.001)]
    assert planned[0] < planned[1] < planned[2]
    # near the real-valued optimum Q* = sqrt(q c_e / (sigma^2 c_q))
    assert planned[1] == pytest.approx(math.sqrt(QUERY_VAR / (SIGMA2 * 0.01)), rel=0.25)


def test_free_queries_give_the_fewest_episodes_and_respect_the_cap():
    free = plan(SIGMA2, QUERY_VAR, 0.02)
    assert free["episodes"] == math.ceil(1.959964**2 * SIGMA2 / 0.02**2)
    capped = plan(SIGMA2, QUERY_VAR, 0.02, max_queries=75)
    assert capped["queries"] <= 75 and capped["half_width"] <= 0.02
    assert capped["episodes"] > free["episodes"]


def test_no_between_episode_variance_plans_two_long_episodes():
    p = plan(0.0, QUERY_VAR, 0.02, cost_episode=1.0, cost_query=0.01)
    assert p["episodes"] == 2
    assert p["queries"] == math.ceil(1.959964**2 * QUERY_VAR / (2 * 0.02**2))


@pytest.mark.parametrize("half_width", [0.0, -0.01])
def test_a_non_positive_half_width_is_refused(half_width):
    with pytest.raises(TintError, match="half-width must be positive"):
        plan(SIGMA2, QUERY_VAR, half_width)


def _paired_runs(rng, shape, queries, margin):
    """Method B's per-episode accuracy varies a lot between episodes; A is `margin` better on
    every one, so the two are strongly correlated."""
    b = rng.uniform(0.3, 0.8, size=shape)
    return rng.binomial(queries, b + margin), rng.binomial(queries, b)


def test_paired_difference_finds_the_margin_with_a_narrower_interval():
    rng = np.random.default_rng(3)
    a, b = _paired_runs(rng, 300, 40, margin=0.05)
    d = paired_difference(_counts(a, 40), _counts(b, 40))
    assert d["ci95"][0] < 0.05 < d["ci95"][1] and d["ci95"][0] > 0
    assert d["mean"] == pytest.approx(0.05, abs=0.015) and d["episodes"] == 300
    unpaired = math.hypot(
        summarize(_counts(a, 40))["half_width"], summarize(_counts(b, 40))["half_width"]
    )
    assert d["half_width"] < unpaired / 2


def test_paired_interval_covers_the_margin_95_percent_of_the_time():
    rng = np.random.default_rng(4)
    a, b = _paired_runs(rng, (1000, 20), 20, margin=0.05)
    covered = [
        lo <= 0.05 <= hi
        for lo, hi in (
            paired_difference(_counts(x, 20), _counts(y, 20))["ci95"] for x, y in zip(a, b)
        )
    ]
    assert 0.92 <= np.mean(covered) <= 0.98


def test_paired_counts_must_come_from_the_same_episodes():
    with pytest.raises(TintError, match="differ in number: 3 and 2"):
        paired_difference([(1, 5), (2, 5), (3, 5)], [(1, 5), (2, 5)])
    with pytest.raises(TintError, match="episode 1 has 5 queries for one method, 6"):
        paired_difference([(1, 5), (2, 5)], [(1, 5), (2, 6)])


@pytest.mark.parametrize(
    "counts, message",
    [
        ([(3, 5)], "at least 2 episodes, got 1"),
        ([(3, 5), (6, 5)], "episode 1: 6 correct out of 5 queries is impossible"),
        ([(3, 5), (1, 1)], "episode 1 has 1 query"),
    ],
)
def test_impossible_counts_are_refused(counts, message):
    with pytest.raises(TintError, match=message):
        summarize(counts)
