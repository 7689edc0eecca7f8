"""`tint plan`: how many episodes and queries reach an interval half-width at least cost."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tint.commands import Command, Options
from tint.config import setting


@dataclass
class PlanSettings:
    results: str | None = setting(
        None,
        "a results.json or results.csv, the folder holding it, or any JSON or CSV file of "
        "per-episode {correct, total} counts per method",
        positional=True,
    )
    half_width: float | None = setting(
        None, "target 95% half-width, in accuracy (0.02 is two points)", above=0, maximum=0.5
    )
    ways: int | None = setting(None, "classes per episode (default: as the pilot says)", minimum=1)
    max_queries: int | None = setting(
        None,
        "the most queries per class a class can give (default: from the pilot's dataset)",
        minimum=1,
    )
    cost_episode: float | None = setting(
        None, "seconds per episode (default: the pilot's)", above=0
    )
    cost_query: float | None = setting(
        None, "seconds per query image (default: the pilot's, or 0)", minimum=0
    )
    method: str | None = setting(
        None,
        "plan for this method, or for the paired difference 'A - B' of two (default: the most "
        "demanding method)",
    )


def run(settings: PlanSettings, options: Options) -> None:
    from tint.eval.plan import plan_from_results

    plan = plan_from_results(
        settings.results,
        settings.half_width,
        settings.cost_episode,
        settings.cost_query,
        settings.method,
        settings.ways,
        settings.max_queries,
    )
    if options.json:
        print(json.dumps(plan, indent=2))
        return
    print(
        f"{plan['episodes']} episodes x {plan['queries']} queries per class reach a 95% "
        f"half-width of {plan['half_width']:.4f} for {plan['method']} "
        f"(cost {plan['cost']:.0f} s)"
    )
    for method, p in plan["methods"].items():
        spread = (
            f"sd of the per-episode difference {p['difference_var'] ** 0.5:.3f}"
            if "difference_var" in p
            else f"between-episode sd {p['between_episode_var'] ** 0.5:.3f}"
        )
        print(f"  {method:<10} {p['episodes']:>5} episodes x {p['queries']:>4} queries  {spread}")


COMMAND = Command(
    name="plan",
    help="how many episodes and queries reach an interval half-width at least cost",
    description="From a pilot run's per-episode counts, estimate the between-episode variance "
    "and the query term of each method and recommend the number of episodes and of queries "
    "per class that reach --half-width at least cost (cost = episodes x (cost per episode + "
    "queries x ways x cost per query)). Costs default to the pilot's measured seconds.",
    settings=PlanSettings,
    base=PlanSettings,
    run=run,
    options=("json",),
    required=("results", "half_width"),
)
