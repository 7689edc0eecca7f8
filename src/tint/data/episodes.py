"""N-way K-shot episodes, each a function of (seed, index) and the dataset's lists alone.

Episode i draws its classes and images from a generator seeded by sha256(f"{seed}/{index}"), so
every method, every resumed run and every machine sees the same episode i, however many episodes
are drawn around it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from tint.data.datasets import FewShotDataset
from tint.errors import TintError
from tint.io import seeds
from tint.io.storage import write_json


@dataclass
class Episode:
    index: int  # the episode's number; with the seed, it fixes everything below
    classes: list[str]  # N class names, in label order
    support: dict[str, list[str]]  # class -> K file ids
    query: dict[str, list[str]]  # class -> Q file ids (or every image left)

    def to_json(self) -> dict:
        return {
            "index": self.index,
            "classes": self.classes,
            "support": self.support,
            "query": self.query,
        }


def sample_episode(
    dataset: FewShotDataset,
    ways: int,
    shots: int,
    queries: int | None,
    seed: int,
    index: int,
    similarity: torch.Tensor | None = None,
) -> Episode:
    """Draw episode `index` of a run.

    Args:
        dataset: the split to draw from.
        ways: classes per episode (N).
        shots: support images per class (K).
        queries: query images per class (Q), or None for every image of the class not in the
            support.
        seed: the run's seed.
        index: the episode's number.
        similarity: for hard episodes, a (C, C) similarity of the split's classes (in
            `dataset.classes` order): the episode is a random anchor class and the ways - 1
            classes most similar to it. None: ways classes drawn uniformly.

    Returns:
        The episode. Every class of the split is checked to hold enough images first, so a
        dataset that cannot serve the run fails before any work, whichever classes are drawn.
    """
    _check_ways(dataset, ways)
    _check_shots_and_queries(shots, queries)
    _check_class_sizes(dataset, shots, queries)
    g = seeds.generator(seed, index)
    names = list(dataset.classes)
    if similarity is None:
        picks = torch.randperm(len(names), generator=g)[:ways].tolist()
    else:
        anchor = int(torch.randint(len(names), (1,), generator=g))
        row = similarity[anchor].clone()
        row[anchor] = float("inf")  # the anchor first, whatever its self-similarity
        picks = row.topk(ways).indices.tolist()
    classes = [names[i] for i in picks]
    support, query = {}, {}
    for name in classes:
        files = dataset.classes[name]
        order = [files[i] for i in torch.randperm(len(files), generator=g).tolist()]
        support[name] = order[:shots]
        query[name] = order[shots:] if queries is None else order[shots : shots + queries]
    return Episode(index, classes, support, query)


def sample_episodes(
    dataset: FewShotDataset,
    ways: int,
    shots: int,
    queries: int | None,
    seed: int,
    count: int,
    similarity: torch.Tensor | None = None,
) -> list[Episode]:
    """Episodes 0 .. count - 1 of a run (see `sample_episode`)."""
    return [
        sample_episode(dataset, ways, shots, queries, seed, i, similarity) for i in range(count)
    ]


def write_episodes(path: str | Path, episodes: list[Episode]) -> None:
    write_json(path, {"episodes": [e.to_json() for e in episodes]})


def _where(dataset: FewShotDataset) -> str:
    return f"the {dataset.split} split of {dataset.spec}"


def _check_ways(dataset: FewShotDataset, ways: int) -> None:
    if ways < 2:
        raise TintError(f"episodes need at least 2 ways, got {ways}")
    if ways > len(dataset.classes):
        raise TintError(
            f"{ways}-way episodes need {ways} classes but {_where(dataset)} "
            f"has {len(dataset.classes)}"
        )


def _check_shots_and_queries(shots: int, queries: int | None) -> None:
    if shots < 1:
        raise TintError(f"episodes need at least 1 shot, got {shots}")
    if queries is not None and queries < 1:
        raise TintError(f"queries must be at least 1 (or all remaining images), got {queries}")


def _check_class_sizes(dataset: FewShotDataset, shots: int, queries: int | None) -> None:
    needed = shots + (1 if queries is None else queries)
    small = {name: len(files) for name, files in dataset.classes.items() if len(files) < needed}
    if not small:
        return
    name = min(small, key=small.get)  # the worst offender
    asked = "at least 1 query" if queries is None else f"{queries} queries"
    where = f"in {_where(dataset)}"
    if len(small) > 1:
        where += f"; {len(small) - 1} other class(es) there are too small as well"
    raise TintError(
        f"class {name!r} has {small[name]} images but {shots} shots + {asked} were asked for "
        f"({where})"
    )
