"""Reading images: every common mode becomes 8-bit RGB; bad files are named."""

import numpy as np
import pytest
from PIL import Image

from tint.data.images import find_class_folders, load_rgb
from tint.errors import TintError


def test_grayscale_becomes_rgb_with_the_same_values(tmp_path):
    Image.fromarray(np.full((9, 11), 77, np.uint8), mode="L").save(tmp_path / "g.png")
    img = load_rgb(tmp_path / "g.png")
    assert img.mode == "RGB" and img.size == (11, 9)
    assert (np.asarray(img) == 77).all()


def test_sixteen_bit_is_rescaled_not_clipped(tmp_path):
    a = np.zeros((8, 8), dtype=np.uint16)
    a[0, :3] = [0, 32768, 65535]
    Image.fromarray(a).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    rgb = np.asarray(load_rgb(tmp_path / "deep.png"))
    assert rgb[0, :3, 0].tolist() == [0, 128, 255]


def test_transparent_pixels_become_white(tmp_path):
    a = np.zeros((8, 8, 4), np.uint8)
    a[0, 0] = (255, 0, 0, 255)  # opaque red
    a[1, 1] = (255, 0, 0, 0)  # transparent
    Image.fromarray(a, mode="RGBA").save(tmp_path / "t.png")
    rgb = np.asarray(load_rgb(tmp_path / "t.png"))
    assert rgb[0, 0].tolist() == [255, 0, 0]
    assert rgb[1, 1].tolist() == [255, 255, 255]


def test_corrupt_png_is_named_in_the_error(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(TintError, match="broken.png"):
        load_rgb(tmp_path / "broken.png")


def test_a_flat_folder_is_one_class_named_after_it(tmp_path):
    folder = tmp_path / "zebra"
    folder.mkdir()
    for i in range(2):
        Image.new("RGB", (8, 8)).save(folder / f"{i}.png")
    (folder / ".DS_Store").write_bytes(b"x")
    assert {k: [p.name for p in v] for k, v in find_class_folders(folder).items()} == {
        "zebra": ["0.png", "1.png"]
    }


def test_loose_files_beside_class_folders_are_refused(tmp_path):
    (tmp_path / "cat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "cat" / "0.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "stray.png")
    with pytest.raises(TintError, match="stray.png"):
        find_class_folders(tmp_path)


def test_an_image_too_small_to_learn_from_is_named_with_its_size(tmp_path):
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    with pytest.raises(TintError, match=r"dot.png: 1x1 pixels is too small"):
        load_rgb(tmp_path / "dot.png")


def test_a_huge_image_is_refused_before_it_is_decoded(tmp_path):
    Image.new("1", (10000, 10000)).save(tmp_path / "huge.png")  # 1 bit a pixel: a small file
    with pytest.raises(TintError, match=r"huge.png: 10000x10000 pixels is more than"):
        load_rgb(tmp_path / "huge.png")


def test_a_symlink_loop_in_a_class_folder_is_named(tmp_path):
    (tmp_path / "cat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "cat" / "0.png")
    (tmp_path / "cat" / "1.png").symlink_to(tmp_path / "cat" / "1.png")
    with pytest.raises(TintError, match=r"1.png: a symbolic link that loops"):
        find_class_folders(tmp_path)
