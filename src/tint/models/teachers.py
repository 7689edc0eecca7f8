"""Teachers: a frozen feature extractor specialised on the supports.

One interface, two kinds of backbone:

- the glyph world's base teacher (a tint ResNet directory, `config.json` of kind "resnet");
- a vision foundation model in transformers format, read from a local directory: DINOv2
  (`model_type` "dinov2") or CLIP vision ("clip" or "clip_vision_model"). Their preprocessing
  (resize, centre crop, normalise) is done here in torch, from the directory's
  `preprocessor_config.json` where there is one.

Specialisation puts a cosine prototype head on the backbone: class c's logit is
scale * cos(f(x), p_c), with p_c the mean embedding of c's supports. Optionally the head alone, or
the head and the backbone's last block, are then fine-tuned on augmented supports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tint.config import setting
from tint.data.augment import AugmentConfig, augment
from tint.errors import TintError
from tint.io.pretrained import loading, model_folder
from tint.io.progress import bar
from tint.io.storage import read_json_object

KINDS = "a tint glyph teacher (config.json of kind 'resnet'), DINOv2 or CLIP vision (transformers)"
FINETUNE = ("none", "head", "last")

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP_NORM = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


class Backbone(nn.Module):
    """Images in, embeddings out: (B, 3, H, W) RGB in [0, 1], any size -> (B, dim)."""

    dim: int
    kind: str
    input_size: tuple[int, int]  # (H, W) it sees images at; augmentation happens there too

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def features(self, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Normalised embeddings of any number of images, `batch` at a time."""
        return F.normalize(torch.cat([self.embed(x) for x in images.split(batch)]), dim=1)

    def last_block(self) -> list[nn.Parameter]:
        """The parameters that `finetune="last"` trains besides the head."""
        raise NotImplementedError


class GlyphBackbone(Backbone):
    """The glyph world's base teacher (tint.models.resnet.ResNet), its pooled features."""

    kind = "glyph"

    def __init__(self, net):
        super().__init__()
        # Channels-last convolutions run about twice as fast on CPUs (oneDNN).
        self.net = net.to(memory_format=torch.channels_last)
        self.dim = net.feature_dim
        self.input_size = tuple(net.config.input_size)

    def embed(self, images):
        if tuple(images.shape[-2:]) != self.input_size:
            images = F.interpolate(images, size=self.input_size, mode="bilinear", antialias=True)
        return self.net.features(images.contiguous(memory_format=torch.channels_last))

    def last_block(self):
        return [*self.net.blocks[-1].parameters(), *self.net.norm.parameters()]


class TransformersBackbone(Backbone):
    """A DINOv2 or CLIP vision transformer: resize the short side, centre-crop, normalise, then
    the CLS embedding (DINOv2: after the final layer norm; CLIP: projected when the model has a
    projection)."""

    def __init__(self, model, kind: str, resize: int, crop: int, mean, std):
        super().__init__()
        self.model, self.kind, self.resize, self.crop = model, kind, resize, crop
        self.input_size = (crop, crop)
        self.register_buffer("mean", torch.tensor(mean).reshape(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(std).reshape(1, 3, 1, 1), False)
        with torch.no_grad():
            self.dim = self.embed(torch.zeros(1, 3, crop, crop)).shape[1]

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        scale = self.resize / min(h, w)
        size = (max(self.crop, round(h * scale)), max(self.crop, round(w * scale)))
        x = F.interpolate(images, size=size, mode="bicubic", antialias=True, align_corners=False)
        top, left = (size[0] - self.crop) // 2, (size[1] - self.crop) // 2
        x = x[..., top : top + self.crop, left : left + self.crop].clamp(0, 1)
        return (x - self.mean) / self.std

    def embed(self, images):
        out = self.model(pixel_values=self.preprocess(images))
        if self.kind == "clip" and getattr(out, "image_embeds", None) is not None:
            return out.image_embeds
        return out.pooler_output

    def last_block(self):
        if self.kind == "dinov2":
            return [*self.model.encoder.layer[-1].parameters(), *self.model.layernorm.parameters()]
        vision = self.model.vision_model
        params = [*vision.encoder.layers[-1].parameters(), *vision.post_layernorm.parameters()]
        projection = getattr(self.model, "visual_projection", None)
        return params + ([*projection.parameters()] if projection is not None else [])


def _preprocessing(path: Path, kind: str, image_size: int) -> tuple[int, int, tuple, tuple]:
    """(resize, crop, mean, std) from preprocessor_config.json, or the model family's usual."""
    mean, std = IMAGENET if kind == "dinov2" else CLIP_NORM
    resize = round(image_size * 256 / 224) if kind == "dinov2" else image_size
    crop = image_size
    file = path / "preprocessor_config.json"
    if file.is_file():
        pre = read_json_object(file, "preprocessor config")
        mean, std = tuple(pre.get("image_mean", mean)), tuple(pre.get("image_std", std))
        size, crop_size = pre.get("size", resize), pre.get("crop_size", crop)
        resize = size.get("shortest_edge", resize) if isinstance(size, dict) else int(size)
        crop = crop_size.get("height", crop) if isinstance(crop_size, dict) else int(crop_size)
    return resize, crop, mean, std


def load_backbone(path: str | Path) -> Backbone:
    """Any supported teacher directory (see KINDS), frozen, in eval mode."""
    from tint.models.resnet import ResNet

    path = model_folder(path, "teacher directory")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise TintError(f"{path}: not a supported teacher (no config.json); expected {KINDS}")
    config = read_json_object(config_file, "model config")
    kind = config.get("kind") or config.get("model_type")
    if kind == "resnet":
        backbone: Backbone = GlyphBackbone(ResNet.from_pretrained(path))
    elif kind in ("dinov2", "clip", "clip_vision_model"):
        with loading(path, "teacher"):
            backbone = _load_transformers(path, kind)
    else:
        raise TintError(f"{path}: not a supported teacher (model type {kind!r}); expected {KINDS}")
    return backbone.eval().requires_grad_(False)


def _load_transformers(path: Path, kind: str) -> Backbone:
    from transformers import AutoConfig, CLIPVisionModelWithProjection, Dinov2Model

    kw = {"local_files_only": True}
    if kind == "dinov2":
        model = Dinov2Model.from_pretrained(path, **kw)
        family = "dinov2"
    else:
        config = AutoConfig.from_pretrained(path, **kw)
        if kind == "clip":  # a whole CLIP model: take its vision half and projection
            vision = config.vision_config
            vision.projection_dim = config.projection_dim
            config = vision
        model = CLIPVisionModelWithProjection.from_pretrained(path, config=config, **kw)
        family = "clip"
    return TransformersBackbone(
        model, family, *_preprocessing(path, family, model.config.image_size)
    )


@dataclass
class TeacherConfig:
    scale: float = setting(10.0, "logits are this times the cosine to each prototype", above=0)
    finetune: str = setting(
        "none",
        "fine-tune on the supports: none, head (the prototypes) or last (and the last block)",
        choices=FINETUNE,
    )
    steps: int = setting(100, "fine-tuning steps, each over every support (augmented)", minimum=1)
    lr: float = setting(
        1e-3, "Adam's learning rate for the head; a tenth for the last block", above=0
    )
    seed: int = setting(0, "seed of the fine-tuning's augmentation")


class Teacher(nn.Module):
    """A backbone with a cosine prototype head over `classes`."""

    def __init__(self, backbone: Backbone, classes: list[str], prototypes: torch.Tensor, scale):
        super().__init__()
        self.backbone, self.classes, self.scale = backbone, list(classes), scale
        self.prototypes = nn.Parameter(prototypes.clone(), requires_grad=False)  # (C, dim)
        self.tuned_backbone = False  # whether fine-tuning changed the backbone's last block

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, C) logits."""
        return self.head(F.normalize(self.backbone.embed(images), dim=1))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, dim) normalised backbone embeddings -> (B, C) logits."""
        return self.scale * features @ F.normalize(self.prototypes, dim=1).T

    @torch.no_grad()
    def logits(self, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
        self.eval()
        return torch.cat([self(x) for x in images.split(batch)])


@torch.no_grad()
def prototypes(backbone: Backbone, supports: list[torch.Tensor], batch: int = 256):
    """(C, dim): the mean normalised embedding of each class's supports (K_c, 3, H, W)."""
    return torch.stack([backbone.features(x, batch).mean(0) for x in supports])


def specialize(
    backbone: Backbone,
    classes: list[str],
    supports: list[torch.Tensor],
    config: TeacherConfig | None = None,
    augmentation: AugmentConfig | None = None,
    *,
    progress: bool = False,
) -> Teacher:
    """A teacher over `classes` from each class's supports (K_c, 3, H, W) in [0, 1]."""
    config = config or TeacherConfig()
    if config.finetune not in FINETUNE:
        raise TintError(f"unknown fine-tuning {config.finetune!r} (choose from {FINETUNE})")
    teacher = Teacher(backbone, classes, prototypes(backbone, supports), config.scale)
    if config.finetune == "none":
        return teacher.eval()
    images = torch.cat(supports)
    labels = torch.arange(len(supports)).repeat_interleave(torch.tensor([len(s) for s in supports]))
    teacher.prototypes.requires_grad_(True)
    groups = [{"params": [teacher.prototypes], "lr": config.lr}]
    if config.finetune == "last":
        block = backbone.last_block()
        for p in block:
            p.requires_grad_(True)
        groups.append({"params": block, "lr": config.lr / 10})
        teacher.tuned_backbone = True
    optimizer = torch.optim.Adam(groups)
    g = torch.Generator().manual_seed(config.seed)
    augmentation = augmentation or AugmentConfig()
    # BatchNorm statistics stay those of the base training: the supports are too few.
    teacher.eval()
    for _ in bar(range(config.steps), "teacher fine-tuning", progress):
        loss = F.cross_entropy(teacher(augment(images, g, augmentation)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    teacher.requires_grad_(False)
    return teacher.eval()
