"""How base pools scale (`tint speed --pool N`): the teacher's embedding throughput, and the
nearest-neighbour search of `BasePool.ranked` over N embeddings, exhaustive against faiss: index
build time, memory, query time and how many of the exhaustive neighbours faiss finds.

The N embeddings are the teacher's embeddings of glyph renderings, repeated with a little noise
to reach N (what a large pool of images of a few thousand kinds looks like to the teacher),
normalised; the queries are other renderings' embeddings."""

from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F

from tint.data import glyphs
from tint.io.timing import images_per_second
from tint.models.teachers import load_backbone
from tint.sources.base_pool import exhaustive_search, hnsw_index, hnsw_search


def resident_mb() -> float:
    """This process's resident memory now, in MB (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@torch.no_grad()
def measure_pool(size: int, teacher_dir, queries: int = 25, k: int = 40) -> dict:
    """The figures of `tint speed --pool SIZE` (see the module doc)."""
    backbone = load_backbone(teacher_dir)
    base = glyphs.split("base")
    renderings = torch.cat([glyphs.benchmark_instances(g, 2) for g in base])  # (2 x 733, ...)
    throughput = images_per_second(backbone.embed, renderings[:256], min_seconds=1.0)
    seen = F.normalize(backbone.embed(renderings[::2]), dim=1)
    asked = F.normalize(backbone.embed(renderings[1::2][:queries]), dim=1)
    g = torch.Generator().manual_seed(0)
    repeats = -(-size // len(seen))
    pool = seen.repeat(repeats, 1)[:size]
    pool = F.normalize(pool + 0.05 * torch.randn(pool.shape, generator=g), dim=1)
    before = resident_mb()
    start = time.perf_counter()
    exact = exhaustive_search(pool, asked, k)
    exhaustive_s = time.perf_counter() - start
    start = time.perf_counter()
    index = hnsw_index(pool)
    build_s = time.perf_counter() - start
    index_mb = resident_mb() - before
    start = time.perf_counter()
    found = hnsw_search(index, asked, k)
    faiss_s = time.perf_counter() - start
    recall = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(exact, found)) / (
        queries * k
    )
    return {
        "pool": size,
        "dim": pool.shape[1],
        "queries": queries,
        "k": k,
        "embedding_images_per_s": round(throughput),
        "embeddings_mb": round(pool.numel() * 4 / 2**20, 1),
        "exhaustive_query_s": round(exhaustive_s, 4),
        "faiss_build_s": round(build_s, 3),
        "faiss_index_mb": round(index_mb, 1),
        "faiss_query_s": round(faiss_s, 4),
        "faiss_recall": round(recall, 4),
    }
