"""A pre-activation ResNet for small images (He et al. 2016, "Identity mappings"), plain torch.
`save_pretrained(dir)` / `from_pretrained(dir)` are exact inverses (safetensors + config.json)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tint.config import from_dict
from tint.errors import TintError
from tint.io.storage import load_weights, read_json_object, write_json, write_safetensors


@dataclass
class ResNetConfig:
    widths: tuple[int, ...] = (64, 128, 256)  # channels per stage; each after the first halves
    blocks: tuple[int, ...] = (2, 2, 2)  # residual blocks per stage
    num_classes: int = 0  # 0: features only
    classes: list[str] = field(default_factory=list)  # names of the logits, in order
    input_size: tuple[int, int] = (32, 32)  # (H, W) the network expects
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)  # input = (RGB/255 - mean) / std
    std: tuple[float, ...] = (0.5, 0.5, 0.5)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.skip = (
            nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None
        )

    def forward(self, x):
        h = F.relu(self.bn1(x))
        shortcut = self.skip(h) if self.skip is not None else x
        h = self.conv1(h)
        return shortcut + self.conv2(F.relu(self.bn2(h)))


class ResNet(nn.Module):
    def __init__(self, config: ResNetConfig):
        super().__init__()
        self.config = config
        self.stem = nn.Conv2d(3, config.widths[0], 3, 1, 1, bias=False)
        layers, cin = [], config.widths[0]
        for i, (width, count) in enumerate(zip(config.widths, config.blocks)):
            for j in range(count):
                layers.append(_Block(cin, width, 2 if i > 0 and j == 0 else 1))
                cin = width
        self.blocks = nn.Sequential(*layers)
        self.norm = nn.BatchNorm2d(cin)
        self.head = nn.Linear(cin, config.num_classes) if config.num_classes else None
        self.register_buffer("mean", torch.tensor(config.mean).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(config.std).reshape(1, 3, 1, 1))

    @property
    def feature_dim(self) -> int:
        return self.config.widths[-1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, feature_dim) pooled features."""
        h = self.blocks(self.stem((x - self.mean) / self.std))
        return F.relu(self.norm(h)).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        write_safetensors(directory / "model.safetensors", self.state_dict())
        write_json(directory / "config.json", {"kind": "resnet", **asdict(self.config)})

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> ResNet:
        directory = Path(directory)
        if not (directory / "config.json").is_file():
            raise TintError(f"{directory}: not a tint ResNet (missing config.json)")
        meta = read_json_object(directory / "config.json", "tint ResNet config")
        if meta.pop("kind", None) != "resnet":
            raise TintError(f"{directory}: config.json does not describe a tint ResNet")
        config = from_dict(ResNetConfig, meta, str(directory / "config.json"))
        if not 1 <= len(config.widths) == len(config.blocks):
            raise TintError(
                f"{directory / 'config.json'}: needs as many widths as blocks, 1 or more"
            )
        model = cls(config)
        load_weights(model, directory / "model.safetensors")
        return model.eval()
