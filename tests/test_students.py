"""Students: the three architectures, their files, and the ONNX export."""

import pytest
import torch

from tint.errors import TintError
from tint.models.students import (
    ARCHITECTURES,
    Student,
    StudentConfig,
    export_onnx,
    onnx_difference,
)

CLASSES = ["cat", "dog", "owl"]


def _student(arch, width=0.25, size=(32, 32)):
    torch.manual_seed(0)
    return Student(StudentConfig(arch, width, CLASSES, size)).eval()


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_the_onnx_export_gives_the_torch_outputs(tmp_path, arch):
    student = _student(arch)
    with torch.no_grad():  # non-trivial BatchNorm statistics, as after training
        for m in student.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    export_onnx(student, tmp_path / "s.onnx")
    inputs = torch.randn(5, 3, 32, 32)  # another batch size than the export's example
    assert onnx_difference(tmp_path / "s.onnx", student, inputs) < 1e-4
    assert student(inputs).shape == (5, len(CLASSES))


def test_the_standard_sizes_and_width_scales_them():
    sizes = {a: _student(a, width=1.0).num_parameters for a in ARCHITECTURES}
    # Conv-4 ~0.11M, ResNet-12 (64-160-320-640) ~12.4M, ResNet-18 ~11.2M, as in the literature.
    assert 0.1e6 < sizes["conv4"] < 0.15e6
    assert 12e6 < sizes["resnet12"] < 13e6 and 11e6 < sizes["resnet18"] < 11.5e6
    assert _student("resnet12", width=0.5).num_parameters < sizes["resnet12"] / 3


def test_save_then_load_gives_the_same_outputs(tmp_path):
    student = _student("resnet12", size=(40, 24))
    student.save_pretrained(tmp_path)
    loaded = Student.from_pretrained(tmp_path)
    assert loaded.config == student.config
    x = torch.rand(2, 3, 64, 64)  # any size in; both resize to (40, 24)
    torch.testing.assert_close(loaded(x), student(x))


def test_a_student_json_says_how_to_feed_the_network(tmp_path):
    import json

    _student("conv4").save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "student.json").read_text())
    assert meta["classes"] == CLASSES
    assert meta["input_size"] == [32, 32] and len(meta["mean"]) == len(meta["std"]) == 3


def test_init_from_takes_the_backbone_and_leaves_the_head(tmp_path):
    base = Student(StudentConfig("conv4", 0.25, [f"base{i}" for i in range(10)]))
    base.save_pretrained(tmp_path)
    student = _student("conv4")
    head = student.head.weight.clone()
    student.init_from(tmp_path)
    for key, value in base.backbone.state_dict().items():
        torch.testing.assert_close(student.backbone.state_dict()[key], value)
    torch.testing.assert_close(student.head.weight, head)
    with pytest.raises(TintError, match="conv4 of width 0.25, not a resnet12"):
        _student("resnet12").init_from(tmp_path)


def test_an_unknown_student_lists_the_valid_ones():
    with pytest.raises(TintError, match="unknown student 'vgg'.*conv4, resnet12, resnet18"):
        Student(StudentConfig("vgg", classes=CLASSES))
