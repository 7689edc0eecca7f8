"""Few-shot dataset readers: each format's splits, classes and pixels; errors name their file."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from tint.data import glyphs
from tint.data.datasets import open_dataset
from tint.data.images import to_image
from tint.errors import TintError


def _colour(i: int) -> tuple[int, int, int]:
    """A distinct solid colour for each i < 256, far from its neighbours in every channel."""
    return (i * 37 % 256, 255 - i, i * 101 % 256)


def _solid(path, colour, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path, format=fmt, quality=95)


def _pixels(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image).astype(int)


# -- glyphs ---------------------------------------------------------------------------------


def test_glyphs_serve_the_benchmark_instances_of_the_split(monkeypatch):
    fake = [
        glyphs.Glyph(name, "", *glyphs._normalise([[(0, 0), (5, 9)], [(0, 9), (5, 0)]]), ())
        for name in ("zeta-0002", "alpha-0001")
    ]
    monkeypatch.setattr(glyphs, "split", lambda name: fake if name == "val" else [])
    data = open_dataset("glyphs", "val")
    assert data.name == "glyphs" and data.split == "val"
    assert list(data.classes) == ["alpha-0001", "zeta-0002"]
    assert data.classes["zeta-0002"] == [str(i) for i in range(glyphs.settings().instances)]
    expected = to_image(glyphs.benchmark_instances(fake[0])[7])
    assert np.array_equal(np.asarray(data.image("zeta-0002", "7")), np.asarray(expected))


# -- folder ---------------------------------------------------------------------------------


def test_folder_without_split_folders_gives_every_class_to_every_split(tmp_path):
    for c, name in enumerate(("cat", "ant")):
        for i in range(3):
            _solid(tmp_path / name / f"{i}.png", _colour(3 * c + i))
    for split in ("base", "val", "novel"):
        data = open_dataset(f"folder:{tmp_path}", split)
        assert data.classes == {
            "ant": ["0.png", "1.png", "2.png"],
            "cat": ["0.png", "1.png", "2.png"],
        }
    assert (_pixels(data.image("ant", "2.png")) == _colour(5)).all()


def test_folder_train_val_test_folders_are_base_val_novel(tmp_path):
    for split, name in (("train", "a"), ("val", "b"), ("test", "c")):
        _solid(tmp_path / split / name / "x.png", _colour(ord(name)))
    assert list(open_dataset(f"folder:{tmp_path}", "base").classes) == ["a"]
    assert list(open_dataset(f"folder:{tmp_path}", "val").classes) == ["b"]
    novel = open_dataset(f"folder:{tmp_path}", "novel")
    assert list(novel.classes) == ["c"]
    assert (_pixels(novel.image("c", "x.png")) == _colour(ord("c"))).all()


def test_folder_split_folder_that_is_missing_is_named(tmp_path):
    _solid(tmp_path / "base" / "a" / "x.png", _colour(1))
    with pytest.raises(TintError, match=r"no novel split \(novel/ or test/\)"):
        open_dataset(f"folder:{tmp_path}", "novel")


def test_folder_corrupt_image_is_named_when_read(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bad.png").write_bytes(b"not a png")
    data = open_dataset(f"folder:{tmp_path}")
    with pytest.raises(TintError, match="bad.png"):
        data.image("a", "bad.png")


# -- miniImageNet ---------------------------------------------------------------------------


MINI_SPLITS = {"train": ["n01", "n02"], "val": ["n03"], "test": ["n04"]}


def _miniimagenet(root):
    colours = {}
    for split, labels in MINI_SPLITS.items():
        rows = ["filename,label"]
        for label in labels:
            for i in range(3):
                filename = f"{label}{i:08d}.jpg"
                colours[filename] = _colour(len(colours))
                _solid(root / "images" / filename, colours[filename], "JPEG")
                rows.append(f"{filename},{label}")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return colours


def test_miniimagenet_splits_follow_the_csv_files(tmp_path):
    colours = _miniimagenet(tmp_path)
    base = open_dataset(f"miniimagenet:{tmp_path}", "base")
    assert {c: len(f) for c, f in base.classes.items()} == {"n01": 3, "n02": 3}
    novel = open_dataset(f"miniimagenet:{tmp_path}", "novel")
    assert novel.classes == {"n04": ["n0400000000.jpg", "n0400000001.jpg", "n0400000002.jpg"]}
    pixels = _pixels(novel.image("n04", "n0400000001.jpg"))
    assert np.abs(pixels - colours["n0400000001.jpg"]).max() <= 3  # JPEG is lossy


def test_miniimagenet_names_every_missing_file(tmp_path):
    (tmp_path / "train.csv").write_text("filename,label\n")
    with pytest.raises(TintError, match=r"missing images/, test\.csv"):
        open_dataset(f"miniimagenet:{tmp_path}", "novel")


def test_miniimagenet_image_listed_but_absent_is_named(tmp_path):
    _miniimagenet(tmp_path)
    (tmp_path / "images" / "n0300000002.jpg").unlink()
    with pytest.raises(TintError, match=r"val\.csv: lists images missing .*n0300000002\.jpg"):
        open_dataset(f"miniimagenet:{tmp_path}", "val")


def test_miniimagenet_csv_without_its_header_is_refused(tmp_path):
    _miniimagenet(tmp_path)
    (tmp_path / "test.csv").write_text("n0400000000.jpg,n04\n")
    with pytest.raises(TintError, match=r"test\.csv: expected the header filename,label"):
        open_dataset(f"miniimagenet:{tmp_path}", "novel")


# -- CUB-200-2011 ---------------------------------------------------------------------------


@pytest.fixture
def cub(tmp_path):
    """200 classes of one tiny image each, in the folder CUB-200-2011 unpacks to."""
    root = tmp_path / "CUB_200_2011"
    names = [f"{i + 1:03d}.Bird_{i}" for i in range(200)]
    for i, name in enumerate(names):
        _solid(root / "images" / name / f"Bird_{i}_0001.png", _colour(i))
    (root / "classes.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    # Image ids in another order than class ids, as nothing promises they agree.
    order = list(reversed(range(200)))
    (root / "images.txt").write_text(
        "".join(f"{k + 1} {names[i]}/Bird_{i}_0001.png\n" for k, i in enumerate(order))
    )
    (root / "image_class_labels.txt").write_text(
        "".join(f"{k + 1} {i + 1}\n" for k, i in enumerate(order))
    )
    return tmp_path, names


def test_cub_classes_split_100_50_50_by_index_as_chen_et_al(cub):
    parent, names = cub
    splits = {s: list(open_dataset(f"cub:{parent}", s).classes) for s in ("base", "val", "novel")}
    assert splits["base"] == names[0::2]
    assert splits["val"] == names[1::4]
    assert splits["novel"] == names[3::4]
    assert [len(c) for c in splits.values()] == [100, 50, 50]


def test_cub_reads_the_images_of_a_class_from_its_folder(cub):
    parent, names = cub
    data = open_dataset(f"cub:{parent / 'CUB_200_2011'}", "novel")
    assert data.classes[names[7]] == [f"{names[7]}/Bird_7_0001.png"]
    assert (_pixels(data.image(names[7], f"{names[7]}/Bird_7_0001.png")) == _colour(7)).all()


def test_cub_names_every_missing_metadata_file(cub):
    parent, _ = cub
    (parent / "CUB_200_2011" / "images.txt").unlink()
    (parent / "CUB_200_2011" / "image_class_labels.txt").unlink()
    with pytest.raises(TintError, match=r"missing images\.txt, image_class_labels\.txt"):
        open_dataset(f"cub:{parent}", "base")


def test_cub_image_listed_but_absent_is_named(cub):
    parent, names = cub
    (parent / "CUB_200_2011" / "images" / names[3] / "Bird_3_0001.png").unlink()
    with pytest.raises(TintError, match="images.txt: lists images missing .*Bird_3_0001.png"):
        open_dataset(f"cub:{parent}", "novel")


# -- CIFAR-FS -------------------------------------------------------------------------------

LABELS = ["apple", "bear", "cloud", "dolphin", "elephant", "fox"]
CIFAR_SPLITS = {"train": ["apple", "bear"], "val": ["cloud"], "test": ["dolphin", "elephant"]}


def _planar(colour) -> np.ndarray:
    """One CIFAR row: the R plane, then G, then B, each 32 x 32 row-major."""
    return np.concatenate([np.full(1024, c, np.uint8) for c in colour])


def _cifarfs(root, protocol=pickle.DEFAULT_PROTOCOL):
    """Train holds two images of each label, test one; image k of the whole set has colour k."""
    (root / "cifar-100-python").mkdir(parents=True)
    k = 0
    for part, copies in (("train", 2), ("test", 1)):
        labels = [label for _ in range(copies) for label in range(len(LABELS))]
        rows = []
        for _ in labels:
            rows.append(_planar(_colour(k)))
            k += 1
        batch = {b"data": np.stack(rows), b"fine_labels": labels, b"coarse_labels": labels}
        with open(root / "cifar-100-python" / part, "wb") as f:
            pickle.dump(batch, f, protocol=protocol)
    with open(root / "cifar-100-python" / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [n.encode() for n in LABELS]}, f, protocol=protocol)
    (root / "splits" / "bertinetto").mkdir(parents=True)
    for split, names in CIFAR_SPLITS.items():
        (root / "splits" / "bertinetto" / f"{split}.txt").write_text("\n".join(names) + "\n")


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL, 5])
def test_cifarfs_classes_come_from_both_pickles(tmp_path, protocol):
    _cifarfs(tmp_path, protocol)
    base = open_dataset(f"cifarfs:{tmp_path}", "base")
    # bear is label 1: rows 1 and 7 of train, row 1 of test
    assert base.classes == {
        "apple": ["train/0", "train/6", "test/0"],
        "bear": ["train/1", "train/7", "test/1"],
    }
    assert (_pixels(base.image("bear", "train/7")) == _colour(7)).all()
    assert (_pixels(base.image("bear", "test/1")) == _colour(12 + 1)).all()
    assert list(open_dataset(f"cifarfs:{tmp_path}", "novel").classes) == ["dolphin", "elephant"]


def test_cifarfs_planar_rows_decode_with_rows_down_and_columns_across(tmp_path):
    _cifarfs(tmp_path)
    path = tmp_path / "cifar-100-python" / "test"
    batch = pickle.loads(path.read_bytes())
    y, x = np.mgrid[0:32, 0:32]
    batch[b"data"][3] = np.concatenate([(x * 8).ravel(), (y * 8).ravel(), np.full(1024, 77)])
    path.write_bytes(pickle.dumps(batch))
    image = open_dataset(f"cifarfs:{tmp_path}", "novel").image("dolphin", "test/3")
    assert image.size == (32, 32)
    assert image.getpixel((5, 2)) == (40, 16, 77)  # (x, y): red counts columns, green rows


def test_cifarfs_split_naming_an_unknown_class_is_refused(tmp_path):
    _cifarfs(tmp_path)
    (tmp_path / "splits" / "bertinetto" / "val.txt").write_text("cloud\nunicorn\n")
    with pytest.raises(TintError, match=r"val\.txt: class 'unicorn' is not a CIFAR-100"):
        open_dataset(f"cifarfs:{tmp_path}", "val")


def test_cifarfs_names_every_missing_file(tmp_path):
    _cifarfs(tmp_path)
    (tmp_path / "cifar-100-python" / "meta").unlink()
    (tmp_path / "splits" / "bertinetto" / "test.txt").unlink()
    with pytest.raises(
        TintError, match="missing cifar-100-python/meta, splits/bertinetto/test.txt"
    ):
        open_dataset(f"cifarfs:{tmp_path}", "novel")


class _RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifarfs_pickle_calling_a_function_is_refused_without_running_it(tmp_path):
    _cifarfs(tmp_path)
    marker = tmp_path / "ran"
    with open(tmp_path / "cifar-100-python" / "train", "wb") as f:
        pickle.dump({b"data": _RunsACommand(marker), b"fine_labels": []}, f)
    with pytest.raises(TintError, match=r"train: refusing to unpickle \w+\.system"):
        open_dataset(f"cifarfs:{tmp_path}", "base")
    assert not marker.exists()


# -- errors common to every kind ------------------------------------------------------------


def test_unknown_dataset_kind_lists_the_valid_ones():
    with pytest.raises(TintError, match=r"'imagenet:/x'.*glyphs, folder:PATH, .*cifarfs:PATH"):
        open_dataset("imagenet:/x")


def test_unknown_split_is_refused(tmp_path):
    with pytest.raises(TintError, match=r"unknown split 'train' \(choose from base, val, novel\)"):
        open_dataset(f"folder:{tmp_path}", "train")


@pytest.mark.parametrize("kind", ["folder", "miniimagenet", "cub", "cifarfs"])
def test_missing_directory_is_named(tmp_path, kind):
    with pytest.raises(TintError, match=f"{tmp_path / 'nowhere'}: no such directory"):
        open_dataset(f"{kind}:{tmp_path / 'nowhere'}")


def test_asking_for_an_image_not_in_the_split_is_refused(tmp_path):
    _solid(tmp_path / "a" / "x.png", _colour(1))
    with pytest.raises(TintError, match="no image 'y.png' of class 'a'"):
        open_dataset(f"folder:{tmp_path}").image("a", "y.png")
