"""Keeping the generated images a teacher criterion prefers: a generated source makes
`select_factor` times the images it is asked for and keeps, per class, those that rank first.

    confident   the highest teacher probability of the class the image was made for (fidelity)
    uncertain   the highest entropy of the teacher's softmax (what is near a boundary)
    spread      the most varied: greedy farthest points in the teacher's features, from the most
                confident image (the controlled test of the variety explanation, docs/RESULTS.md)"""

from __future__ import annotations

import torch

from tint.data.images import as_float

CRITERIA = ("confident", "uncertain", "spread")


@torch.no_grad()
def select(
    teacher, images: torch.Tensor, classes: torch.Tensor, keep: int, criterion: str
) -> torch.Tensor:
    """Indices of the `keep` images per class that `criterion` prefers, class by class in order.

    Args:
        teacher: the task's teacher (logits and backbone features).
        images: (M, 3, H, W) uint8 or float, the candidates.
        classes: (M,) the class index each was made for.
    """
    features = teacher.backbone.features(as_float(images))
    probabilities = teacher.head(features).softmax(1)
    chosen = []
    for c in classes.unique(sorted=True).tolist():
        own = (classes == c).nonzero().flatten()
        p = probabilities[own]
        if criterion == "confident":
            order = p[:, c].argsort(descending=True)[:keep]
        elif criterion == "uncertain":
            entropy = -(p * p.clamp_min(1e-12).log()).sum(1)
            order = entropy.argsort(descending=True)[:keep]
        else:
            order = _farthest(features[own], int(p[:, c].argmax()), keep)
        chosen.append(own[order])
    return torch.cat(chosen)


def _farthest(features: torch.Tensor, first: int, keep: int) -> torch.Tensor:
    """Greedy farthest-point selection under cosine distance, from index `first`."""
    picked = [first]
    nearest = 1 - features @ features[first]  # (M,) distance to the nearest picked
    while len(picked) < min(keep, len(features)):
        i = int(nearest.argmax())
        picked.append(i)
        nearest = torch.minimum(nearest, 1 - features @ features[i])
    return torch.tensor(picked)
