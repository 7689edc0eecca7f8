"""Curves: how accuracy moves with one setting, from benchmark runs that differ in it alone.

A curve is read from committed or finished `tint benchmark` runs: the same dataset, split,
episodes and every other setting, one value of the setting X each (images per class, the
students' steps, ...). Each method's accuracy at each value is taken over the episodes every
run has finished, with its 95% interval, and its paired difference to the previous value, so
that a point is compared with its neighbour on the same episodes."""

from __future__ import annotations

from pathlib import Path

from tint.errors import TintError
from tint.eval import variance
from tint.io.figures import curve_figure
from tint.io.report import picture, table
from tint.io.storage import read_json, read_json_object

FOLDER = "curves"  # a run's curves, RUN/curves/X-VALUES.json, shown in its report.html
HEADERS = ["method", "value", "accuracy (95% interval)", "minus the previous value"]
MAY_DIFFER = ("out", "episodes", "methods")  # what runs of one curve may differ in besides X


def _lookup(settings: dict, dotted: str):
    value = settings
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            raise TintError(f"run.json has no setting {dotted!r}")
        value = value[key]
    return value


def _without(settings: dict, dotted: str) -> dict:
    """`settings` with X and what a curve's runs may differ in left out."""
    head, _, rest = dotted.partition(".")
    out = {k: v for k, v in settings.items() if k not in MAY_DIFFER and (rest or k != head)}
    if rest:
        out[head] = _without(settings[head], rest)
    return out


def _defined(settings: dict) -> dict:
    """`settings` without the unset (None) ones at any depth: a run made before a setting with
    no default value existed is the same as one made after it."""
    return {
        k: _defined(v) if isinstance(v, dict) else v for k, v in settings.items() if v is not None
    }


def read_curve(runs: list[str | Path], x: str, methods: list[str] | None = None) -> dict:
    """The curve of setting `x` (dotted, as in run.json: "setup.generation.num") over `runs`.

    Returns {"x", "runs", "episodes", "methods", "points": [{"value", "run", "methods": {m:
    {"accuracy", "ci95", "minus_previous"}}}]}, points in increasing value."""
    if len(runs) < 2:
        raise TintError("a curve needs at least 2 runs")
    loaded = []
    for run in runs:
        run = Path(run)
        settings = read_json_object(run / "run.json", "run settings")
        results = read_json_object(run / "results.json", "benchmark results")
        episodes = read_json(run / "episodes.json", "episodes")["episodes"]
        loaded.append((run, settings, results, episodes))
    values = [_lookup(settings, x) for _, settings, _, _ in loaded]
    first = loaded[0]
    for run, settings, _, _ in loaded[1:]:
        if _defined(_without(settings, x)) != _defined(_without(first[1], x)):
            raise TintError(f"{run} and {first[0]} differ in more than {x}: not one curve")
    if len(set(map(repr, values))) != len(values):
        raise TintError(f"two runs have the same {x}")
    done = min(len(results["episodes"]) for _, _, results, _ in loaded)
    drawn = [episodes[:done] for *_, episodes in loaded]
    if any(d != drawn[0] for d in drawn) or done < 2:
        raise TintError("the runs do not share at least 2 finished episodes")
    common = [set(results["episodes"][0]["methods"]) for _, _, results, _ in loaded]
    chosen = methods or [
        m for m in loaded[0][2]["episodes"][0]["methods"] if m in set.intersection(*common)
    ]
    for m in chosen:
        if not all(m in c for c in common):
            raise TintError(f"method {m!r} is not in every run")
    order = sorted(range(len(loaded)), key=lambda i: values[i])
    points, previous = [], None
    for i in order:
        run, _, results, _ = loaded[i]
        counts = {
            m: [
                (e["methods"][m]["correct"], e["methods"][m]["total"])
                for e in results["episodes"][:done]
            ]
            for m in chosen
        }
        point = {"value": values[i], "run": str(run), "methods": {}}
        for m in chosen:
            s = variance.summarize(counts[m])
            entry = {"accuracy": s["accuracy"], "ci95": s["ci95"], "minus_previous": None}
            if previous is not None:
                d = variance.paired_difference(counts[m], previous[m])
                entry["minus_previous"] = {"mean": d["mean"], "ci95": d["ci95"]}
            point["methods"][m] = entry
        points.append(point)
        previous = counts
    return {"x": x, "runs": len(runs), "episodes": done, "methods": chosen, "points": points}


def table_rows(curve: dict) -> list[list[str]]:
    """The curve as rows of text: method, value, accuracy with its interval, and the paired
    difference to the previous value (points)."""
    rows = []
    for m in curve["methods"]:
        for point in curve["points"]:
            p = point["methods"][m]
            lo, hi = p["ci95"]
            step = ""
            if p["minus_previous"] is not None:
                mean, (a, b) = p["minus_previous"]["mean"], p["minus_previous"]["ci95"]
                step = f"{mean * 100:+.1f} [{a * 100:+.1f}, {b * 100:+.1f}]"
            accuracy = f"{p['accuracy']:.1%} [{lo * 100:.1f}, {hi * 100:.1f}]"
            rows.append([f"`{m}`", str(point["value"]), accuracy, step])
    return rows


def section(curve: dict) -> str:
    """The curve for a report: its plot, then its table."""
    rows = [[c.strip("`") for c in r] for r in table_rows(curve)]
    caption = f"accuracy against {curve['x']}, {curve['episodes']} episodes in every run"
    alt = f"{caption}: " + ", ".join(curve["methods"])
    return picture(curve_figure(curve), caption, alt) + table(HEADERS, rows)


def curve_name(curve: dict) -> str:
    """The file a curve has in each of its runs: X and its values, as in
    setup.distill.steps-5-10-20.json, so curves of one setting over other runs stay apart."""
    return "-".join([curve["x"], *(str(p["value"]) for p in curve["points"])]) + ".json"


def run_curves(run: str | Path) -> list[dict]:
    """The curves that `tint curve` added to a benchmark run, by setting."""
    return [read_json(f, "curve") for f in sorted((Path(run) / FOLDER).glob("*.json"))]
