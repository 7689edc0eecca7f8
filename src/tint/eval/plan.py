"""`tint plan`: how many episodes and queries a benchmark needs, from a pilot's results.

A pilot is any file of per-episode counts, `{"correct": c, "total": n}` per method and episode:

    tint's results.json     {"episodes": [{"methods": {"tint": {"correct", "total", ...}}}], ...}
    rows of methods         {"episodes": [{"tint": {...}, "teacher": {...}}, ...]}, or the list
    episodes per method     {"tint": [{"correct", "total"}, ...], "teacher": [...]}
    CSV                     a header with method, correct and total (tint's results.csv)

What the file does not say is taken from the caller: the number of classes per episode (`ways`),
the most queries per class a class can give (`max_queries`) and the costs."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from tint.data.datasets import open_dataset
from tint.errors import TintError
from tint.eval import variance
from tint.io.storage import read_json

Counts = tuple[int, int]  # (correct, total) queries of one episode


@dataclass
class Pilot:
    path: Path
    counts: dict[str, list[Counts]]  # method -> per-episode counts, methods in file order
    ways: int | None = None  # classes per episode, when the file says
    max_queries: int | None = None  # queries per class a class can give, when the file says
    episode_seconds: list[float] = field(default_factory=list)  # per episode, all methods
    query_seconds: float | None = None  # scoring one query image by every method, if known


def read_pilot(path: str | Path) -> Pilot:
    """The per-episode counts of a results file (see the module doc), with what it says about
    the run; TintError naming the file and the problem when it holds no counts."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise TintError(f"{path}: no such results file")
    if path.suffix.lower() == ".csv":
        rows = _csv_rows(path)
        settings = {}
    else:
        data = read_json(path, "results file (JSON or CSV)")
        rows, settings = _json_rows(path, data)
    pilot = Pilot(path, {})
    timed = []
    for i, row in enumerate(rows):
        for method, entry in row.items():
            pilot.counts.setdefault(method, []).append(_counts(path, i, method, entry))
            timed.append(entry)
    if not pilot.counts:
        raise TintError(f"{path}: holds no per-episode counts ({{'correct', 'total'}})")
    for method, counts in pilot.counts.items():
        if len(counts) < 2:
            raise TintError(f"{path}: a plan needs at least 2 episodes; {method} has {len(counts)}")
    if all("seconds" in row[m] for row in rows for m in row):
        pilot.episode_seconds = [sum(float(r["seconds"]) for r in row.values()) for row in rows]
    if timed and all("query_seconds" in e for e in timed):
        # Scoring a query means scoring it with every method of the episode.
        pilot.query_seconds = sum(e["query_seconds"] / e["total"] for e in timed) / len(rows)
    pilot.ways = settings.get("ways")
    if isinstance(settings.get("dataset"), str) and isinstance(settings.get("shots"), int):
        pilot.max_queries = _max_queries(path, settings)
    return pilot


def _json_rows(path: Path, data) -> tuple[list[dict], dict]:
    settings = {}
    if isinstance(data, dict) and "episodes" in data:
        settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
        data = data["episodes"]
    if isinstance(data, list):
        rows = []
        for i, row in enumerate(data):
            if not isinstance(row, dict):
                raise TintError(f"{path}: episode {i} is not an object of per-method counts")
            row = row.get("methods", row)
            rows.append({m: e for m, e in row.items() if isinstance(e, dict)})
        if rows and not isinstance(settings.get("ways"), int):
            sizes = {len(r["classes"]) for r in data if isinstance(r.get("classes"), list)}
            if len(sizes) == 1:
                settings = {**settings, "ways": sizes.pop()}
        return rows, settings
    if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
        lengths = {len(v) for v in data.values()}
        if len(lengths) != 1:
            raise TintError(f"{path}: methods have different numbers of episodes")
        rows = [{m: episodes[i] for m, episodes in data.items()} for i in range(lengths.pop())]
        return rows, settings
    raise TintError(
        f'{path}: not a results file (expected per-episode counts: {{"episodes": [...]}}, '
        "or lists of counts per method)"
    )


def _csv_rows(path: Path) -> list[dict]:
    try:
        with path.open(newline="") as f:
            table = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise TintError(f"{path}: not a readable CSV file ({e})") from None
    if not table or not {"method", "correct", "total"} <= set(table[0]):
        raise TintError(f"{path}: a CSV pilot needs the columns method, correct and total")
    rows: dict[str, dict] = {}
    for line, record in enumerate(table, start=2):
        episode = record.get("episode") or str(line)
        try:
            entry = {"correct": int(record["correct"]), "total": int(record["total"])}
            if record.get("seconds"):
                entry["seconds"] = float(record["seconds"])
        except (TypeError, ValueError):
            raise TintError(f"{path}: line {line} has counts that are not numbers") from None
        rows.setdefault(episode, {})[record["method"]] = entry
    return list(rows.values())


def _counts(path: Path, episode: int, method: str, entry: dict) -> Counts:
    correct, total = entry.get("correct"), entry.get("total")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (correct, total)):
        raise TintError(
            f"{path}: episode {episode}, {method}: needs whole-number 'correct' and 'total'"
        )
    if not 0 <= correct <= total or total < 2:
        raise TintError(
            f"{path}: episode {episode}, {method}: {correct} correct of {total} queries "
            "(a plan needs 2 or more queries and 0 <= correct <= total)"
        )
    return correct, total


def _max_queries(path: Path, settings: dict) -> int:
    try:
        dataset = open_dataset(settings["dataset"], settings.get("split", "novel"))
    except TintError as e:
        raise TintError(
            f"{path}: cannot open the pilot's dataset to count its images ({e}); pass --max-queries"
        ) from None
    return min(len(ids) for ids in dataset.classes.values()) - settings["shots"]


def plan_from_results(
    path: str | Path,
    half_width: float,
    cost_episode: float | None = None,
    cost_query: float | None = None,
    method: str | None = None,
    ways: int | None = None,
    max_queries: int | None = None,
) -> dict:
    """How many episodes and queries per class reach `half_width` for a method at least cost,
    from a pilot (`read_pilot`). Values the caller gives win over the file's: classes per
    episode, the most queries per class, seconds per episode (every method's work but scoring)
    and per query image. Without `method`, plans for the method that needs most episodes."""
    pilot = read_pilot(path)
    methods = list(pilot.counts)
    for m in method.split(" - ") if method else []:
        if m not in methods:
            raise TintError(f"{pilot.path}: has no method {m!r} (it has {', '.join(methods)})")
    ways = ways or pilot.ways
    if not ways:
        raise TintError(f"{pilot.path}: does not say how many classes an episode has; pass --ways")
    if cost_episode is None:
        if not pilot.episode_seconds:
            raise TintError(f"{pilot.path}: has no timings; pass --cost-episode (seconds)")
        cost_episode = sum(pilot.episode_seconds) / len(pilot.episode_seconds)
    if cost_query is None:
        cost_query = pilot.query_seconds or 0.0
    max_queries = max_queries or pilot.max_queries
    if not max_queries:
        raise TintError(
            f"{pilot.path}: does not say how many images a class has; pass --max-queries "
            "(the most queries per class an episode can have)"
        )
    if method is not None and " - " in method:
        plan = _difference_plan(pilot, method, ways, half_width, cost_episode, cost_query)
        return {
            **plan,
            "method": method,
            "queries_are": "per class, the pilot's",
            "ways": ways,
            "max_queries": max_queries,
            "cost_episode_s": cost_episode,
            "cost_query_s": cost_query,
            "pilot": {
                "episodes": len(pilot.counts[method.split(" - ")[0]]),
                "queries": plan["queries"],
            },
            "methods": {method: plan},
        }
    plans = {}
    for m in [method] if method else methods:
        counts = pilot.counts[m]
        for i, (_, total) in enumerate(counts):
            if total % ways:
                raise TintError(
                    f"{pilot.path}: episode {i} of {m} has {total} queries, not a multiple of "
                    f"{ways} classes; check --ways"
                )
        s = variance.summarize(counts)
        # Q of the variance formula counts every query of an episode: N per query per class.
        plans[m] = variance.plan(
            s["between_episode_var"],
            s["query_var"] / ways,
            half_width,
            cost_episode=cost_episode,
            cost_query=cost_query * ways,
            max_queries=max_queries,
        )
    chosen = max(plans, key=lambda m: (plans[m]["episodes"], plans[m]["queries"]))
    return {
        **plans[chosen],
        "method": chosen,
        "queries_are": "per class",
        "ways": ways,
        "max_queries": max_queries,
        "cost_episode_s": cost_episode,
        "cost_query_s": cost_query,
        "pilot": {
            "episodes": len(pilot.counts[chosen]),
            "queries": sum(n for _, n in pilot.counts[chosen]) / len(pilot.counts[chosen]) / ways,
        },
        "methods": plans,
    }


def _difference_plan(
    pilot: Pilot, pair: str, ways: int, half_width: float, cost_episode: float, cost_query: float
) -> dict:
    """How many episodes reach `half_width` on the paired difference "A - B" of two methods,
    at the pilot's queries per class. The counts do not say how often the two methods are right
    on the same query, so the per-episode difference's variance cannot be split into its two
    terms as a method's can: the plan keeps the pilot's queries and needs z^2 S^2 / H^2
    episodes, S^2 the sample variance of the per-episode differences."""
    a, b = pair.split(" - ")
    try:
        spread = variance.paired_difference(pilot.counts[a], pilot.counts[b])["variance"]
    except TintError as e:
        raise TintError(f"{pilot.path}: {a} and {b}: {e}") from None
    queries = round(sum(n for _, n in pilot.counts[a]) / len(pilot.counts[a]) / ways)
    per_episode = cost_episode + queries * ways * cost_query
    plan = variance.plan(spread, 0.0, half_width, per_episode)
    return {
        "episodes": plan["episodes"],
        "queries": queries,
        "half_width": plan["half_width"],
        "cost": plan["cost"],
        "difference_var": plan["between_episode_var"],
        "confidence": plan["confidence"],
    }
