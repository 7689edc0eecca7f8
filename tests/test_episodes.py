"""Episodes: a function of (seed, index) alone, disjoint supports and queries, checks up front."""

from __future__ import annotations

import json

import pytest
import torch

from tint.data.datasets import FewShotDataset
from tint.data.episodes import (
    sample_episode,
    sample_episodes,
    write_episodes,
)
from tint.errors import TintError


def _dataset(sizes: dict[str, int]) -> FewShotDataset:
    classes = {name: [f"{name}_{i}.png" for i in range(n)] for name, n in sizes.items()}
    return FewShotDataset("folder", "novel", classes, "folder:/data", read=lambda c, f: None)


TEN = _dataset({f"n{c:03d}": 25 for c in range(10)})


def test_episode_seven_is_the_same_however_many_episodes_are_drawn():
    eight = sample_episodes(TEN, ways=5, shots=1, queries=15, seed=3, count=8)
    twenty = sample_episodes(TEN, ways=5, shots=1, queries=15, seed=3, count=20)
    alone = sample_episode(TEN, ways=5, shots=1, queries=15, seed=3, index=7)
    assert eight[7] == twenty[7] == alone
    assert eight == twenty[:8]


def test_episodes_depend_on_the_index_and_the_seed():
    episodes = sample_episodes(TEN, ways=5, shots=5, queries=5, seed=0, count=20)
    assert len({repr(e.support) for e in episodes}) == 20
    other_seed = sample_episodes(TEN, ways=5, shots=5, queries=5, seed=1, count=20)
    assert all(a.support != b.support for a, b in zip(episodes, other_seed))


def test_an_episode_has_n_distinct_classes_k_shots_and_q_disjoint_queries():
    for e in sample_episodes(TEN, ways=5, shots=5, queries=15, seed=0, count=10):
        assert len(set(e.classes)) == 5 and set(e.classes) <= set(TEN.classes)
        assert list(e.support) == e.classes == list(e.query)  # label order
        for c in e.classes:
            assert len(e.support[c]) == 5 and len(e.query[c]) == 15
            assert not set(e.support[c]) & set(e.query[c])
            assert set(e.support[c]) | set(e.query[c]) <= set(TEN.classes[c])


def test_every_class_is_drawn_over_many_episodes():
    drawn = {c for e in sample_episodes(TEN, 2, 1, 1, seed=0, count=60) for c in e.classes}
    assert drawn == set(TEN.classes)


def test_no_query_count_takes_every_image_left():
    uneven = _dataset({"a": 6, "b": 9, "c": 4})
    e = sample_episode(uneven, ways=3, shots=3, queries=None, seed=0, index=0)
    for c in e.classes:
        assert sorted(e.support[c] + e.query[c]) == sorted(uneven.classes[c])
        assert len(e.support[c]) == 3


def test_episodes_json_holds_every_episode_as_drawn(tmp_path):
    episodes = sample_episodes(TEN, ways=5, shots=2, queries=None, seed=9, count=4)
    write_episodes(tmp_path / "episodes.json", episodes)
    saved = json.loads((tmp_path / "episodes.json").read_text())["episodes"]
    assert [e["index"] for e in saved] == [0, 1, 2, 3]
    for e, drawn in zip(saved, episodes):
        assert e["classes"] == drawn.classes
        assert e["support"] == drawn.support and e["query"] == drawn.query


def test_more_ways_than_classes_is_refused_with_the_numbers():
    three = _dataset({"a": 20, "b": 20, "c": 20})
    with pytest.raises(
        TintError, match="5-way episodes need 5 classes but the novel split of folder:/data has 3"
    ):
        sample_episode(three, ways=5, shots=1, queries=5, seed=0, index=0)


@pytest.mark.parametrize(
    "ways, shots, queries, message",
    [
        (1, 1, 5, "at least 2 ways, got 1"),
        (5, 0, 5, "at least 1 shot, got 0"),
        (5, 1, 0, "queries must be at least 1 .*got 0"),
    ],
)
def test_impossible_episode_shapes_are_refused(ways, shots, queries, message):
    with pytest.raises(TintError, match=message):
        sample_episode(TEN, ways, shots, queries, seed=0, index=0)


def test_a_small_class_fails_up_front_even_if_no_episode_would_draw_it():
    data = _dataset({**{f"n{c:03d}": 30 for c in range(12)}, "n013": 7, "n014": 12})
    with pytest.raises(
        TintError,
        match=r"class 'n013' has 7 images but 5 shots \+ 15 queries were asked for "
        r"\(in the novel split of folder:/data; 1 other class\(es\) there are too small",
    ):
        sample_episode(data, ways=2, shots=5, queries=15, seed=0, index=0)


def test_all_remaining_queries_need_one_image_beyond_the_shots():
    data = _dataset({"a": 6, "b": 5})
    with pytest.raises(
        TintError, match=r"class 'b' has 5 images but 5 shots \+ at least 1 query were asked for"
    ):
        sample_episode(data, ways=2, shots=5, queries=None, seed=0, index=0)
    assert sample_episode(data, ways=2, shots=4, queries=None, seed=0, index=0).query


def test_hard_episodes_are_an_anchor_and_its_most_similar_classes():
    # Two clusters of five classes: n000-n004 alike, n005-n009 alike, the clusters unlike.
    cluster = [0] * 5 + [1] * 5
    similarity = torch.tensor([[1.0 if a == b else -1.0 for b in cluster] for a in cluster])
    similarity += 0.01 * torch.arange(10.0)  # ties broken, the diagonal left the largest
    episodes = sample_episodes(TEN, 5, 1, 5, seed=0, count=12, similarity=similarity)
    clusters_seen = set()
    for episode in episodes:
        members = {cluster[int(name[1:])] for name in episode.classes}
        assert len(members) == 1, episode.classes
        clusters_seen |= members
    assert clusters_seen == {0, 1}
    again = sample_episode(TEN, 5, 1, 5, seed=0, index=4, similarity=similarity)
    assert again == episodes[4]
