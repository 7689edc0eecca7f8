"""The tiny students: conv4, resnet12 and resnet18 in plain torch, and their files.

A student's ONNX export takes normalised input, (RGB/255 - mean) / std, NCHW float32 at
`input_size`; in torch, `Student(images)` takes RGB in [0, 1] of any size and does the resizing
and normalising itself, then runs the very same network.

    DIR/student.safetensors   the weights
    DIR/student.json          arch, width, classes (in output order), input_size, mean, std

`save_pretrained(dir)` and `Student.from_pretrained(dir)` are exact inverses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tint.config import from_dict, setting
from tint.data.images import to_tensor
from tint.data.tasks import as_image
from tint.errors import TintError
from tint.io.storage import (
    load_weights,
    read_json_object,
    read_safetensors,
    write_json,
    write_safetensors,
)

WEIGHTS, CONFIG = "student.safetensors", "student.json"


@dataclass
class StudentConfig:
    arch: str = "conv4"  # one of ARCHITECTURES
    width: float = 1.0  # channel multiplier (resnet12 and resnet18; conv4 too)
    classes: list[str] = field(default_factory=list)  # names of the outputs, in order
    input_size: tuple[int, int] = (32, 32)  # (H, W)
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)


def _channels(widths: tuple[int, ...], multiplier: float) -> list[int]:
    return [max(8, round(w * multiplier)) for w in widths]


class Conv4(nn.Module):
    """Four conv-BN-ReLU-maxpool blocks of 64 channels (Vinyals et al. 2016; Snell et al. 2017),
    globally average-pooled so any input size works."""

    def __init__(self, width: float):
        super().__init__()
        layers, cin = [], 3
        for cout in _channels((64, 64, 64, 64), width):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
            layers.append(nn.MaxPool2d(2))
            cin = cout
        self.body = nn.Sequential(*layers)
        self.dim = cin

    def forward(self, x):
        return self.body(x).mean((2, 3))


class _Res12Block(nn.Module):
    """Three 3x3 conv-BN layers with leaky ReLU, a 1x1 shortcut, then 2x max-pooling
    (Lee et al. 2019, MetaOptNet)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.convs = nn.ModuleList(
            [nn.Conv2d(c, cout, 3, padding=1, bias=False) for c in (cin, cout, cout)]
        )
        self.norms = nn.ModuleList([nn.BatchNorm2d(cout) for _ in range(3)])
        self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = norm(conv(h))
            if i < 2:
                h = F.leaky_relu(h, 0.1)
        return F.max_pool2d(F.leaky_relu(h + self.skip(x), 0.1), 2)


class ResNet12(nn.Module):
    """ResNet-12 with channels 64-160-320-640 times `width`."""

    def __init__(self, width: float):
        super().__init__()
        blocks, cin = [], 3
        for cout in _channels((64, 160, 320, 640), width):
            blocks.append(_Res12Block(cin, cout))
            cin = cout
        self.body = nn.Sequential(*blocks)
        self.dim = cin

    def forward(self, x):
        return self.body(x).mean((2, 3))


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.skip(x))


class ResNet18(nn.Module):
    """ResNet-18 (He et al. 2016) with channels 64-128-256-512 times `width`. Inputs under 96 px
    get a 3x3 stride-1 stem without max-pooling, as usual for small images."""

    def __init__(self, width: float, input_size: tuple[int, int]):
        super().__init__()
        widths = _channels((64, 128, 256, 512), width)
        if min(input_size) < 96:
            self.stem = nn.Sequential(
                nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(3, widths[0], 7, 2, 3, bias=False),
                nn.BatchNorm2d(widths[0]),
                nn.ReLU(),
                nn.MaxPool2d(3, 2, 1),
            )
        blocks, cin = [], widths[0]
        for i, cout in enumerate(widths):
            blocks += [_BasicBlock(cin, cout, 1 if i == 0 else 2), _BasicBlock(cout, cout, 1)]
            cin = cout
        self.body = nn.Sequential(*blocks)
        self.dim = cin

    def forward(self, x):
        return self.body(self.stem(x)).mean((2, 3))


ARCHITECTURES = ("conv4", "resnet12", "resnet18")


@dataclass
class StudentChoice:
    """Which student to train, before its classes are known."""

    arch: str = setting("conv4", "the network", choices=ARCHITECTURES)
    width: float = setting(1.0, "its channel multiplier", above=0)
    input_size: tuple[int, int] | None = setting(
        None, "its input, N or HxW (default: the glyph teacher's, else 84)", minimum=1
    )

    def config(self, classes: list[str], teacher_kind: str, teacher_size) -> StudentConfig:
        """The student's network config for `classes`, behind a teacher of `teacher_kind`
        that sees images at `teacher_size`."""
        size = self.input_size or (teacher_size if teacher_kind == "glyph" else (84, 84))
        return StudentConfig(self.arch, self.width, list(classes), tuple(size))


def check_arch(name: str) -> None:
    if name not in ARCHITECTURES:
        raise TintError(f"unknown student {name!r} (choose from {', '.join(ARCHITECTURES)})")


class Student(nn.Module):
    """A backbone and a linear head over `config.classes`."""

    def __init__(self, config: StudentConfig):
        super().__init__()
        check_arch(config.arch)
        if not config.width > 0:
            raise TintError(f"student width must be positive, got {config.width}")
        self.config = config
        if config.arch == "conv4":
            self.backbone = Conv4(config.width)
        elif config.arch == "resnet12":
            self.backbone = ResNet12(config.width)
        else:
            self.backbone = ResNet18(config.width, config.input_size)
        self.head = nn.Linear(self.backbone.dim, len(config.classes))
        self.register_buffer("mean", torch.tensor(config.mean).reshape(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(config.std).reshape(1, 3, 1, 1), False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1], any size -> (B, classes) logits."""
        # Channels-last convolutions run faster on CPUs (oneDNN); the numbers are the same.
        return self.network(self.normalize(images).contiguous(memory_format=torch.channels_last))

    def network(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised input at `input_size` -> logits: what the ONNX file holds."""
        return self.head(self.backbone(x))

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1], any size -> the network's input."""
        if tuple(images.shape[-2:]) != tuple(self.config.input_size):
            images = F.interpolate(
                images, size=self.config.input_size, mode="bilinear", antialias=True
            )
        return (images - self.mean) / self.std

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def classes(self) -> list[str]:
        """The class names, in the order of the outputs."""
        return list(self.config.classes)

    @torch.no_grad()
    def probabilities(self, images) -> torch.Tensor:
        """(N, classes) softmax probabilities for a list of images: PIL images, or (H, W, 3)
        uint8 arrays, of any size."""
        size = tuple(self.config.input_size)
        x = torch.stack([to_tensor(as_image(image), size) for image in images])
        self.eval()
        return torch.cat([self(chunk).softmax(1) for chunk in x.split(256)])

    def predict(self, images) -> list[str]:
        """The class name of each image (see `probabilities`)."""
        return [self.classes[i] for i in self.probabilities(images).argmax(1).tolist()]

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        write_safetensors(directory / WEIGHTS, self.state_dict())
        write_json(directory / CONFIG, asdict(self.config))

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Student:
        directory = Path(directory)
        config = read_config(directory)
        student = cls(config)
        load_weights(student, directory / WEIGHTS)
        return student.eval()

    def init_from(self, directory: str | Path) -> None:
        """Take the backbone of a (base-pretrained) student saved in `directory`; the head stays
        as initialised, since its classes are other ones."""
        directory = Path(directory)
        other = check_pretrained(directory, self.config.arch, self.config.width)
        weights = read_safetensors(directory / WEIGHTS)
        backbone = {
            k[len("backbone.") :]: v for k, v in weights.items() if k.startswith("backbone.")
        }
        try:
            self.backbone.load_state_dict(backbone)
        except RuntimeError:
            raise TintError(f"{directory / WEIGHTS}: weights do not fit a {other.arch}") from None


def load_student(directory: str | Path) -> Student:
    """The student saved in `directory` (student.safetensors and student.json), ready to
    `predict`."""
    return Student.from_pretrained(directory)


def check_pretrained(directory: str | Path, arch: str, width: float) -> StudentConfig:
    """The config of the student saved in `directory`; raises unless it is an `arch` of
    `width` whose weights load, so that a new student of those can start from its backbone."""
    directory = Path(directory)
    other = read_config(directory)
    if (other.arch, other.width) != (arch, width):
        raise TintError(
            f"{directory}: holds a {other.arch} of width {other.width}, "
            f"not a {arch} of width {width}"
        )
    load_weights(Student(other), directory / WEIGHTS)
    return other


def read_config(directory: Path) -> StudentConfig:
    path = directory / CONFIG
    if not path.is_file() or not (directory / WEIGHTS).is_file():
        raise TintError(f"{directory}: not a tint student (needs {CONFIG} and {WEIGHTS})")
    return from_dict(StudentConfig, read_json_object(path, "tint student config"), str(path))


class _Network(nn.Module):
    """The student without its resizing and normalising: the part ONNX users run."""

    def __init__(self, student: Student):
        super().__init__()
        self.student = student

    def forward(self, x):
        return self.student.network(x)


def export_onnx(student: Student, path: str | Path) -> None:
    """Write the student as ONNX: input "input" (B, 3, H, W) normalised float32, output
    "logits" (B, classes); the batch size is free."""
    import warnings

    from tint.io.storage import atomic_path

    network = _Network(student.eval())
    example = torch.zeros(1, 3, *student.config.input_size)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # The TorchScript exporter: no extra dependency, and exact for these plain networks.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            network,
            (example,),
            str(tmp),
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
        )


def onnx_difference(path: str | Path, student: Student, inputs: torch.Tensor) -> float:
    """The largest absolute difference between the logits of onnxruntime running the exported
    file and of the torch student, on the same normalised inputs."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(["logits"], {"input": inputs.numpy().astype("float32")})
    with torch.no_grad():
        torch_logits = student.eval().network(inputs)
    return float((torch.from_numpy(onnx_logits) - torch_logits).abs().max())
