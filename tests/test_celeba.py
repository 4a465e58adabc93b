"""The CelebA-layout reader against a hand-written fake tree, in every layout and broken case."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from fel.data import ATTRIBUTES, CelebA, CelebAFormatError, check_attribute
from fel.data.celeba import decode_aligned, read_attributes
from tests import fake_celeba as fake

LAYOUTS = ["official", "torchvision", "kaggle", "zip"]


@pytest.fixture(params=LAYOUTS)
def tree(request, tmp_path):
    return fake.make_tree(tmp_path / request.param, request.param)


@pytest.fixture
def official(tmp_path):
    return fake.make_tree(tmp_path / "official")


def test_attribute_names_are_celebas_forty():
    assert len(ATTRIBUTES) == 40 == len(set(ATTRIBUTES))
    assert ATTRIBUTES[31] == "Smiling" and ATTRIBUTES[20] == "Male" and ATTRIBUTES[-1] == "Young"


@pytest.mark.parametrize("cache", [True, False])
def test_every_layout_reads_the_same_labels_and_pixels(tree, cache, tmp_path):
    ds = CelebA(tree, split="all", size=32, cache=tmp_path / "cache" if cache else False)
    assert ds.filenames == fake.FILES
    assert ds.attr_names == list(ATTRIBUTES)
    assert ds.labels.dtype == torch.int64 and ds.labels.shape == (5, 40)
    expected = torch.tensor([[int(v > 0) for v in fake.label_row(i)] for i in range(5)])
    assert torch.equal(ds.labels, expected)
    img, y = ds[2]
    assert img.dtype == torch.float32 and img.shape == (3, 32, 32)
    assert img.min() >= 0 and img.max() <= 1
    assert y.dtype == torch.float32 and torch.equal(y, expected[2].float())
    # The centre of image 3 is its flat colour; the white square sits at the crop's top-left.
    assert torch.allclose(img[:, 16, 16] * 255, torch.tensor(fake.COLOURS[2]).float(), atol=6)
    assert (img[:, 2, 2] > 0.95).all()


def test_splits_follow_the_partition_file(official):
    sizes = {
        s: len(CelebA(official, split=s, size=16, cache=False))
        for s in ("train", "valid", "test", "all")
    }
    assert sizes == {"train": 3, "valid": 1, "test": 1, "all": 5}
    assert CelebA(official, split="test", size=16, cache=False).filenames == ["000005.jpg"]


def test_missing_partition_file_warns_and_splits_80_10_10(tmp_path):
    root = fake.make_tree(tmp_path / "t")
    (root / "list_eval_partition.txt").unlink()
    with pytest.warns(UserWarning, match="no list_eval_partition"):
        parts = [
            CelebA(root, split=s, size=16, cache=False).filenames
            for s in ("train", "valid", "test")
        ]
    assert [len(p) for p in parts] == [4, 0, 1]  # thresholds round(0.8 * 5), round(0.9 * 5)
    assert sorted(sum(parts, [])) == fake.FILES
    with pytest.warns(UserWarning):
        again = CelebA(root, split="train", size=16, cache=False).filenames
    assert again == parts[0]  # same seed, same split


def test_attrs_selects_columns_in_the_order_asked(official):
    ds = CelebA(official, split="all", size=16, attrs=["Male", "smiling"], cache=False)
    assert ds.attr_names == ["Male", "Smiling"]
    assert ds.labels[:, 0].tolist() == [int(v > 0) for v in fake.MALE]
    assert ds.labels[:, 1].tolist() == [int(v > 0) for v in fake.SMILING]


def test_misspelt_attribute_lists_close_names(official):
    with pytest.raises(KeyError, match="Smiling"):
        CelebA(official, attrs=["Smilling"], cache=False)
    with pytest.raises(KeyError, match="Narrow_Eyes"):
        check_attribute("narrow_eye")


@pytest.mark.parametrize("size", [128, 64, 32, 16])
def test_decode_matches_torchvision_center_crop_and_resize(size):
    """Reduced-scale JPEG decoding (1/2, 1/4, 1/8) stays close to the full-resolution pipeline."""
    rng = np.random.default_rng(0)
    smooth = rng.random((28, 23, 3))
    img = Image.fromarray((smooth * 255).astype(np.uint8)).resize((178, 218), Image.BICUBIC)
    import io

    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    ours = decode_aligned(buf.getvalue(), size).astype(np.float64)
    reference = TF.resize(TF.center_crop(Image.open(buf), [148, 148]), [size, size], antialias=True)
    diff = np.abs(ours - np.asarray(reference, np.float64))
    # 1/8-scale DCT decoding (used for 16 px) keeps less detail than a full decode; the others
    # must agree closely (a misplaced crop box at 1/4 or 1/8 scale gave 8/255 and 19/255).
    assert diff.mean() < (8.0 if size == 16 else 3.0), diff.mean()


def test_cache_is_reused_and_keyed_by_size(official, tmp_path):
    cache = tmp_path / "cache"
    a = CelebA(official, split="all", size=16, cache=cache)
    files = sorted(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npy"
    b = CelebA(official, split="all", size=16, cache=cache)
    assert np.array_equal(a.images, b.images) and sorted(cache.iterdir()) == files
    relative = Path(os.path.relpath(official))  # the same folder named another way
    CelebA(relative, split="all", size=16, cache=cache)
    assert sorted(cache.iterdir()) == files
    CelebA(official, split="all", size=24, cache=cache)
    assert len(list(cache.iterdir())) == 2
    (official / "img_align_celeba" / "000001.jpg").write_bytes(fake.jpeg_bytes(4))  # image changed
    c = CelebA(official, split="all", size=16, cache=cache)
    assert len(list(cache.iterdir())) == 3
    assert np.array_equal(c.images[0], c.images[4])


def test_multiprocess_first_pass_equals_single_process(tmp_path):
    root = fake.make_tree(tmp_path / "t")
    one = CelebA(root, split="all", size=16, cache=tmp_path / "c1", workers=1).images
    two = CelebA(root, split="all", size=16, cache=tmp_path / "c2", workers=2)
    # chunk of 256 > 5 images: force several jobs through the pool by decoding directly
    from fel.data.celeba import decode_all

    target = tmp_path / "c3" / "x.npy"
    decode_all(two.layout, two.filenames, 16, 148, target, workers=2, chunk=2, progress=False)
    assert np.array_equal(one, np.load(target)) and np.array_equal(one, two.images)


def test_transform_is_applied(official):
    ds = CelebA(official, split="all", size=16, cache=False, transform=TF.hflip)
    plain = CelebA(official, split="all", size=16, cache=False)
    assert torch.equal(ds[0][0], plain[0][0].flip(-1))


# ----------------------------------------------------------------------------- broken input


def test_missing_root_says_how_to_get_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="fel data synth"):
        CelebA(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="list_attr_celeba"):
        CelebA(tmp_path / "empty")


def test_missing_image_folder(official):
    import shutil

    shutil.rmtree(official / "img_align_celeba")
    with pytest.raises(FileNotFoundError, match="no images"):
        CelebA(official)


def test_listed_image_missing(official):
    (official / "img_align_celeba" / "000002.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="000002.jpg"):
        CelebA(official, split="all", cache=False)


def _edit_attr(root, fn):
    path = root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    fn(lines)
    path.write_text("\n".join(lines) + "\n")


def test_header_count_mismatch(official):
    _edit_attr(official, lambda lines: lines.__setitem__(0, "6"))
    with pytest.raises(CelebAFormatError, match=r"line 1: says 6 images but the file lists 5"):
        CelebA(official, cache=False)


def test_header_count_not_a_number(official):
    _edit_attr(official, lambda lines: lines.__setitem__(0, "five"))
    with pytest.raises(CelebAFormatError, match="line 1"):
        CelebA(official, cache=False)


def test_row_with_wrong_number_of_values(official):
    _edit_attr(official, lambda lines: lines.__setitem__(4, lines[4].rsplit(" ", 1)[0]))
    with pytest.raises(CelebAFormatError, match=r"list_attr_celeba.txt line 5: .* found 39 values"):
        CelebA(official, cache=False)


def test_value_other_than_minus_one_or_one(official):
    _edit_attr(official, lambda lines: lines.__setitem__(3, lines[3].replace(" -1", " 0", 1)))
    with pytest.raises(CelebAFormatError, match=r"line 4: value '0' for 5_o_Clock_Shadow"):
        CelebA(official, cache=False)


def test_bad_partition_row(official):
    (official / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 7\n")
    with pytest.raises(CelebAFormatError, match="line 2"):
        CelebA(official, cache=False)


def test_partition_missing_a_file(official):
    (official / "list_eval_partition.txt").write_text(
        fake.partition_txt().replace("000003.jpg 0\n", "")
    )
    with pytest.raises(CelebAFormatError, match="000003.jpg"):
        CelebA(official, cache=False)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_jpeg_is_named_and_leaves_no_cache(official, tmp_path, damage):
    path = official / "img_align_celeba" / "000004.jpg"
    data = path.read_bytes()
    path.write_bytes(b"not a jpeg at all" if damage == "garbage" else data[: len(data) // 3])
    cache = tmp_path / "cache"
    with pytest.raises(CelebAFormatError, match="000004.jpg"):
        CelebA(official, split="all", size=16, cache=cache)
    assert not cache.exists() or list(cache.iterdir()) == []
    with pytest.raises(CelebAFormatError, match="000004.jpg"):
        CelebA(official, split="valid", size=16, cache=False)[0]


def test_bad_arguments(official):
    with pytest.raises(ValueError, match="split"):
        CelebA(official, split="training")
    with pytest.raises(ValueError, match="size"):
        CelebA(official, size=0)


def test_strict_parse_of_official_format(official):
    names, files, values = read_attributes(official / "list_attr_celeba.txt")
    assert names == list(ATTRIBUTES) and files == fake.FILES
    assert values.dtype == np.int8 and set(np.unique(values)) <= {-1, 1}


def test_pickling_does_not_copy_the_cache(official, tmp_path):
    """Spawned DataLoader workers get the dataset by pickle: the cache must travel as a path."""
    import pickle

    ds = CelebA(official, split="all", size=64, cache=tmp_path / "cache")
    blob = pickle.dumps(ds)
    assert len(blob) < ds.images.nbytes  # 5 images of 64x64x3 = 61 kB of pixels
    again = pickle.loads(blob)
    assert torch.equal(again[3][0], ds[3][0]) and isinstance(again.images, np.memmap)
