"""Accuracy over episodes with its interval, paired differences between methods, and how many
episodes and queries to run for a target interval.

Episode i has a true accuracy a_i, drawn from the distribution of episodes with mean mu and
variance sigma_a^2; each of its Q queries is then right with probability a_i. By the law of total
variance the mean observed accuracy over P episodes has

    Var = sigma_a^2 / P + E[a (1 - a)] / (P Q)                                        (1)

the first term from which episodes were drawn, the second from which queries. `summarize`
estimates both terms from a run (a pilot); `plan` picks the cheapest (P, Q) for a target
half-width. Q counts the queries of one episode over all its classes (N-way with q per class:
Q = N q)."""

from __future__ import annotations

import functools
import math
from statistics import NormalDist

from tint.errors import TintError


def summarize(counts: list[tuple[int, int]]) -> dict:
    """Mean accuracy over episodes with a 95% Student-t interval, and the two terms of (1).

    Args:
        counts: (correct, total) queries of each episode; at least 2 episodes of 2 queries.

    Returns:
        accuracy: the mean of the per-episode accuracies a_i = c_i / n_i.
        ci95, half_width: accuracy -+ t * sqrt(S^2 / P), cut to [0, 1]; S^2 is the sample
            variance of the a_i, which estimates sigma_a^2 + E[a (1 - a) / n] without bias, so
            the interval counts both sources of variance in (1).
        between_episode_var: sigma_a^2, as S^2 - mean(a_i (1 - a_i) / (n_i - 1)), clipped at 0.
        query_var: E[a (1 - a)], as mean(a_i (1 - a_i) n_i / (n_i - 1)).
        episodes: P. queries: the mean n_i.
    """
    accuracies, totals = _accuracies(counts)
    for i, n in enumerate(totals):
        if n < 2:
            raise TintError(f"episode {i} has {n} query; splitting the variance needs 2 or more")
    mean, sample_var, half = _t_interval(accuracies)
    # E[â(1 - â)] = a(1 - a)(1 - 1/n) for â the mean of n Bernoulli(a): undo the shrinkage.
    binomial = [a * (1 - a) / (n - 1) for a, n in zip(accuracies, totals)]  # unbiased a(1-a)/n
    return {
        "accuracy": mean,
        "ci95": [max(0.0, mean - half), min(1.0, mean + half)],  # an accuracy is in [0, 1]
        "half_width": half,
        "episodes": len(accuracies),
        "queries": sum(totals) / len(totals),
        "between_episode_var": max(0.0, sample_var - sum(binomial) / len(binomial)),
        "query_var": sum(b * n for b, n in zip(binomial, totals)) / len(totals),
    }


def paired_difference(counts_a: list[tuple[int, int]], counts_b: list[tuple[int, int]]) -> dict:
    """Accuracy of method A minus method B on the same episodes, with a 95% t interval on the
    per-episode differences d_i = a_i - b_i. Pairing removes the between-episode variance the
    two share (a hard episode is hard for both), so the interval is narrower than one built from
    the two methods' own intervals.

    Returns:
        mean: the mean d_i. ci95, half_width: its interval. variance: the sample variance of
        the d_i. episodes: P.
    """
    a, totals_a = _accuracies(counts_a)
    b, totals_b = _accuracies(counts_b)
    if len(a) != len(b):
        raise TintError(f"paired episodes differ in number: {len(a)} and {len(b)}")
    for i, (n_a, n_b) in enumerate(zip(totals_a, totals_b)):
        if n_a != n_b:
            raise TintError(f"episode {i} has {n_a} queries for one method, {n_b} for the other")
    mean, sample_var, half = _t_interval([x - y for x, y in zip(a, b)])
    return {
        "mean": mean,
        "ci95": [mean - half, mean + half],
        "half_width": half,
        "variance": sample_var,
        "episodes": len(a),
    }


def predicted_half_width(
    between_episode_var: float,
    query_var: float,
    episodes: int,
    queries: int,
    confidence: float = 0.95,
) -> float:
    """z * sqrt(Var) with Var from (1): the half-width P episodes of Q queries should reach."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return z * math.sqrt((between_episode_var + query_var / queries) / episodes)


def plan(
    between_episode_var: float,
    query_var: float,
    half_width: float,
    cost_episode: float = 1.0,
    cost_query: float = 0.0,
    max_queries: int | None = None,
    confidence: float = 0.95,
) -> dict:
    """The cheapest run whose interval reaches a half-width.

    Minimises P (c_e + Q c_q) subject to z * sqrt(sigma^2 / P + q / (P Q)) <= H, with sigma^2 =
    between_episode_var and q = query_var from a pilot's `summarize`. Over real numbers the best
    Q is Q* = sqrt(q c_e / (sigma^2 c_q)); over integers the search is exact: for each P from the
    fewest episodes that can reach H it takes the fewest queries that do, and stops once P c_e
    plus the least query cost any run can have (c_q q z^2 / H^2) exceeds the best found.

    Where Q* is not finite: with cost_query = 0 (the default: scoring a query costs next to
    nothing beside building an episode's student) the plan is the fewest episodes that can reach
    H, with the fewest queries that then suffice, which may be very many unless max_queries caps
    them. With sigma^2 = 0 episodes differ only through their queries, so the plan is few
    episodes with many queries each. At least 2 episodes are planned: an interval needs a
    sample variance.

    Args:
        between_episode_var, query_var: sigma^2 and q of (1).
        half_width: the target H, in accuracy (0.01 is one percentage point).
        cost_episode, cost_query: c_e and c_q, in any one unit.
        max_queries: the most queries an episode can have, e.g. N * (images per class - shots).
        confidence: of the interval.

    Returns:
        episodes, queries: P and Q. half_width: the half-width they reach (<= H). cost: P (c_e
        + Q c_q). between_episode_var, query_var, confidence: as given.
    """
    sigma2, q = between_episode_var, query_var
    if not half_width > 0:
        raise TintError(f"the target half-width must be positive, got {half_width}")
    if sigma2 < 0 or q < 0:
        raise TintError(f"variances cannot be negative, got {sigma2} and {q}")
    if not cost_episode > 0 or cost_query < 0:
        raise TintError(
            f"costs must be positive per episode and non-negative per query, "
            f"got {cost_episode} and {cost_query}"
        )
    if max_queries is not None and max_queries < 1:
        raise TintError(f"max_queries must be at least 1, got {max_queries}")
    if not 0 < confidence < 1:
        raise TintError(f"confidence must be between 0 and 1, got {confidence}")
    k = (NormalDist().inv_cdf(0.5 + confidence / 2) / half_width) ** 2  # P per unit variance
    rounding = 1 - 1e-12  # so that k * v landing a hair above an integer does not round up

    def fewest_queries(episodes: int) -> int | None:
        room = episodes / k - sigma2  # the variance of one episode the query term may take
        if q == 0:
            return 1 if room >= -1e-15 else None
        if room <= 0:
            return None
        return max(1, math.ceil(q / room * rounding))

    episodes = max(2, math.ceil(k * (sigma2 + q / (max_queries or math.inf)) * rounding))
    best = None  # (cost, P, Q)
    while True:
        queries = fewest_queries(episodes)
        if queries is not None and (max_queries is None or queries <= max_queries):
            cost = episodes * (cost_episode + queries * cost_query)
            if best is None or cost < best[0]:
                best = (cost, episodes, queries)
            if queries == 1:
                break  # more episodes can only cost more
        if best is not None and (episodes + 1) * cost_episode + cost_query * q * k >= best[0]:
            break
        episodes += 1
    cost, episodes, queries = best
    return {
        "episodes": episodes,
        "queries": queries,
        "half_width": predicted_half_width(sigma2, q, episodes, queries, confidence),
        "cost": cost,
        "between_episode_var": sigma2,
        "query_var": q,
        "confidence": confidence,
    }


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with df degrees of freedom (bisection on its CDF)."""
    if not 0 < p < 1 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        lo, hi = hi, 2 * hi
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_cdf(mid, df) < p else (lo, mid)
        if hi - lo <= 1e-12 * hi:
            break
    return (lo + hi) / 2


def _t_cdf(t: float, df: float) -> float:
    """P(T <= t) for t >= 0: 1 - I_x(df/2, 1/2) / 2 with x = df / (df + t^2)."""
    return 1 - 0.5 * _incomplete_beta(df / 2, 0.5, df / (df + t * t))


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (Numerical
    Recipes, 3rd ed., section 6.4), on the side of x where the fraction converges fast."""
    if x <= 0 or x >= 1:
        return 0.0 if x <= 0 else 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_fraction(b, a, 1 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), evaluated by the modified Lentz method."""
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),  # even step
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),  # odd step
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= c * d
        if abs(c * d - 1) < 1e-15:
            break
    return h


def _accuracies(counts: list[tuple[int, int]]) -> tuple[list[float], list[int]]:
    if len(counts) < 2:
        raise TintError(f"an interval needs at least 2 episodes, got {len(counts)}")
    for i, (correct, total) in enumerate(counts):
        if total < 1 or not 0 <= correct <= total:
            raise TintError(f"episode {i}: {correct} correct out of {total} queries is impossible")
    return [c / n for c, n in counts], [n for _, n in counts]


def mean_interval(values: list[float]) -> dict:
    """{"mean", "ci95"}: the mean of per-episode values with its 95% Student-t interval."""
    if len(values) < 2:
        raise TintError(f"an interval needs at least 2 episodes, got {len(values)}")
    mean, _, half = _t_interval(values)
    return {"mean": mean, "ci95": [mean - half, mean + half]}


def _t_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, sample variance, half-width of the 95% Student-t interval of the mean)."""
    P = len(values)
    mean = sum(values) / P
    sample_var = sum((v - mean) ** 2 for v in values) / (P - 1)
    return mean, sample_var, t_quantile(0.975, P - 1) * math.sqrt(sample_var / P)
