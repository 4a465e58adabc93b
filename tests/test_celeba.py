"""The CelebA-layout reader against a hand-written fake tree, in every layout and broken case."""

from __future__ import annotations

import io
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
    """Full decode, torchvision's crop and PIL's antialiased filter: the standard pipeline's pixels,
    to within rounding (no reduced-scale decoding, which lost detail and moved the crop)."""
    rng = np.random.default_rng(0)
    smooth = rng.random((28, 23, 3))
    img = Image.fromarray((smooth * 255).astype(np.uint8)).resize((178, 218), Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    ours = decode_aligned(buf.getvalue(), size).astype(np.float64)
    reference = TF.resize(TF.center_crop(Image.open(buf), [148, 148]), [size, size], antialias=True)
    diff = np.abs(ours - np.asarray(reference, np.float64))
    assert diff.max() <= 2 and diff.mean() < 0.05, (diff.max(), diff.mean())


@pytest.mark.parametrize("size", [16, 32, 64])
def test_colour_error_of_a_framed_crop_is_torchvisions(tmp_path, size):
    """Each 148x148 crop is one colour and its border another, so the error against the crop's
    colour measures border leaking in (a misplaced or reduced-scale crop) besides JPEG ringing.
    fel's first pass must be within 1/255 of torchvision's pipeline on every image."""
    root = fake.make_tree(tmp_path / "framed", image=fake.framed_jpeg_bytes)
    ds = CelebA(root, split="all", size=size, cache=tmp_path / "cache")
    for i, name in enumerate(ds.filenames):
        crop_colour = np.array(fake.FRAMES[i][0], np.float64)
        ours = np.abs(ds.images[i].transpose(1, 2, 0) - crop_colour).mean()
        full = Image.open(root / "img_align_celeba" / name).convert("RGB")
        standard = TF.resize(TF.center_crop(full, [148, 148]), [size, size], antialias=True)
        theirs = np.abs(np.asarray(standard, np.float64) - crop_colour).mean()
        assert ours <= theirs + 1, (name, ours, theirs)


def _cached(cache: Path) -> list[Path]:
    """The image caches in ``cache`` (beside them: an empty lock file each, see fel.locks)."""
    return sorted(p for p in cache.iterdir() if not p.name.endswith(".lock"))


def test_cache_is_reused_and_keyed_by_size(official, tmp_path):
    cache = tmp_path / "cache"
    a = CelebA(official, split="all", size=16, cache=cache)
    files = _cached(cache)
    assert len(files) == 1 and files[0].suffix == ".npy"
    b = CelebA(official, split="all", size=16, cache=cache)
    assert np.array_equal(a.images, b.images) and _cached(cache) == files
    relative = Path(os.path.relpath(official))  # the same folder named another way
    CelebA(relative, split="all", size=16, cache=cache)
    assert _cached(cache) == files
    CelebA(official, split="all", size=24, cache=cache)
    assert len(_cached(cache)) == 2
    replacement = official / "img_align_celeba" / "new.jpg"  # image 1 replaced, as tools do it:
    replacement.write_bytes(fake.jpeg_bytes(4))  # a new file renamed over the old one
    os.replace(replacement, official / "img_align_celeba" / "000001.jpg")
    c = CelebA(official, split="all", size=16, cache=cache)
    assert len(_cached(cache)) == 3
    assert np.array_equal(c.images[0], c.images[4])
    (official / "img_align_celeba" / "extra.jpg").write_bytes(fake.jpeg_bytes(0))  # set changed
    CelebA(official, split="all", size=16, cache=cache)
    assert len(_cached(cache)) == 4


def test_zipped_cache_follows_the_archive(tmp_path):
    root = fake.make_tree(tmp_path / "z", "zip")
    cache = tmp_path / "cache"
    CelebA(root, split="all", size=16, cache=cache)
    CelebA(root, split="all", size=16, cache=cache)
    assert len(_cached(cache)) == 1
    (root / "img_align_celeba.zip").unlink()
    fake.make_tree(tmp_path / "z", "zip", image=fake.framed_jpeg_bytes)  # a rewritten archive
    framed = CelebA(root, split="all", size=16, cache=cache)
    assert len(_cached(cache)) == 2
    assert np.allclose(framed.images[0][:, 8, 8], fake.FRAMES[0][0], atol=6)


def test_multiprocess_first_pass_equals_single_process(tmp_path):
    root = fake.make_tree(tmp_path / "t")
    one = CelebA(root, split="all", size=16, cache=tmp_path / "c1", workers=1).images
    two = CelebA(root, split="all", size=16, cache=tmp_path / "c2", workers=2)
    # chunk of 256 > 5 images: force several jobs through the pool by decoding directly
    from fel.data.celeba import decode_all

    target = tmp_path / "c3" / "x.npy"
    decode_all(two.layout, two.filenames, 16, 148, target, workers=2, chunk=2, progress=False)
    assert np.array_equal(one, np.load(target)) and np.array_equal(one, two.images)


def _mixed_size_jpeg(i: int) -> bytes:
    """Images of three shapes (CelebA's 178x218, a smaller one and a larger one), in a pattern."""
    height, width = [(218, 178), (140, 120), (250, 200), (218, 178), (218, 178)][i % 5]
    rng = np.random.default_rng(i)
    img = Image.fromarray((rng.random((9, 7, 3)) * 255).astype(np.uint8)).resize((width, height))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


@pytest.mark.parametrize("size", [16, 64])
def test_first_pass_of_mixed_sizes_is_each_files_own_crop_and_resize(tmp_path, size):
    """The first pass resizes the crops of one shape as a batch; with shapes mixed, every row
    must still be what PIL's decode and fel.data.crop_resize make of that file on its own."""
    from fel.data.celeba import crop_resize, decode_all

    root = fake.make_tree(tmp_path / "mixed", image=_mixed_size_jpeg)
    ds = CelebA(root, split="all", size=size, cache=False)
    target = tmp_path / "cache" / "x.npy"
    decode_all(ds.layout, ds.filenames, size, 148, target, workers=1, progress=False)
    for row, name in zip(np.load(target), ds.filenames):
        alone = crop_resize(Image.open(root / "img_align_celeba" / name).convert("RGB"), size)
        assert np.array_equal(row.transpose(1, 2, 0), alone), name


@pytest.mark.parametrize("cache", [True, False])
def test_batches_equal_items(official, tmp_path, cache):
    """``__getitems__`` (what a DataLoader calls per batch) returns exactly ``[ds[i] ...]``."""
    ds = CelebA(official, split="all", size=16, cache=tmp_path / "c" if cache else False)
    indices = [3, 0, 4, 4, 1]
    for (image, label), i in zip(ds.__getitems__(indices), indices, strict=True):
        assert torch.equal(image, ds[i][0]) and torch.equal(label, ds[i][1])
    images, labels = next(iter(torch.utils.data.DataLoader(ds, batch_size=5)))
    assert torch.equal(images, torch.stack([ds[i][0] for i in range(5)]))
    assert torch.equal(labels, ds.labels.float())
    flipped = CelebA(official, split="all", size=16, cache=tmp_path / "c", transform=TF.hflip)
    assert torch.equal(flipped.__getitems__([2])[0][0], ds[2][0].flip(-1))


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
    assert not cache.exists() or [p.suffix for p in cache.iterdir()] in ([], [".lock"])
    with pytest.raises(CelebAFormatError, match="000004.jpg"):
        CelebA(official, split="valid", size=16, cache=False)[0]


def test_bad_arguments(official):
    with pytest.raises(ValueError, match="split"):
        CelebA(official, split="training")
    with pytest.raises(ValueError, match="size"):
        CelebA(official, size=0)


@pytest.mark.parametrize("suffix", [".txt", ".csv"])
def test_attribute_values_parse_at_scale(tmp_path, suffix):
    """A large random table, written in each format's spelling, reads back exactly."""
    values = np.random.default_rng(0).choice(np.array([-1, 1], np.int8), size=(3000, 40))
    files = [f"{i:06d}.jpg" for i in range(1, 3001)]
    path = tmp_path / f"list_attr_celeba{suffix}"
    if suffix == ".txt":
        rows = [
            f + "".join(f" {v}" if v < 0 else f"  {v}" for v in row)
            for f, row in zip(files, values)
        ]
        path.write_text(f"{len(files)}\n{' '.join(ATTRIBUTES)} \n" + "\n".join(rows) + "\n")
    else:
        rows = [f + "," + ",".join(map(str, row)) for f, row in zip(files, values)]
        path.write_text("image_id," + ",".join(ATTRIBUTES) + "\n" + "\n".join(rows) + "\n")
    names, got_files, got = read_attributes(path)
    assert names == list(ATTRIBUTES) and got_files == files and np.array_equal(got, values)


def test_kaggle_csv_errors_name_the_line(tmp_path):
    root = fake.make_tree(tmp_path / "k", "kaggle")
    path = root / "list_attr_celeba.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:2], lines[2].replace(",-1", ",x", 1), *lines[3:]]) + "\n")
    with pytest.raises(CelebAFormatError, match=r"csv line 3: value 'x' for 5_o_Clock_Shadow"):
        read_attributes(path)
    path.write_text("\n".join([*lines[:3], lines[3].rsplit(",", 1)[0], *lines[4:]]) + "\n")
    with pytest.raises(CelebAFormatError, match=r"csv line 4: .* found 39 values"):
        read_attributes(path)


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


# Landmarks written by hand as CelebA's official file and Kaggle's CSV hold them.
MARKS = {
    f: np.arange(10, dtype=np.float64).reshape(5, 2) + 20 * i for i, f in enumerate(fake.FILES)
}


def _with_landmarks(root: Path, layout: str) -> Path:
    rows = {f: " ".join(str(int(v)) for v in m.ravel()) for f, m in MARKS.items()}
    if layout == "kaggle":
        header = "image_id,lefteye_x,lefteye_y,righteye_x,righteye_y,nose_x,nose_y,leftmouth_x,"
        text = header + "leftmouth_y,rightmouth_x,rightmouth_y\n"
        text += "".join(f"{f},{r.replace(' ', ',')}\n" for f, r in rows.items())
        (root / "list_landmarks_align_celeba.csv").write_text(text)
    else:
        base = root / "celeba" if layout == "torchvision" else root
        head = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y "
        text = f"{len(rows)}\n{head}rightmouth_x rightmouth_y\n"
        text += "".join(f"{f}    {r.replace(' ', '   ')}\n" for f, r in rows.items())
        (base / "list_landmarks_align_celeba.txt").write_text(text)
    return root


@pytest.mark.parametrize("layout", ["official", "torchvision", "kaggle", "zip"])
def test_landmarks_and_whole_aligned_images_in_every_layout(tmp_path, layout):
    from fel.data import read_landmarks

    root = _with_landmarks(fake.make_tree(tmp_path / layout, layout), layout)
    marks = read_landmarks(root)
    assert list(marks) == fake.FILES
    assert all(np.array_equal(marks[f], MARKS[f]) and marks[f].shape == (5, 2) for f in fake.FILES)
    faces = CelebA(root, split="all", size=16, cache=False)
    full = faces.aligned(2)
    assert full.size == (178, 218) and full.mode == "RGB"
    expected = Image.open(io.BytesIO(fake.jpeg_bytes(2))).convert("RGB")
    assert np.array_equal(np.asarray(full), np.asarray(expected))


def test_missing_or_broken_landmarks_say_what_and_where(tmp_path):
    from fel.data import read_landmarks

    root = fake.make_tree(tmp_path / "kaggle", "kaggle")
    with pytest.raises(FileNotFoundError, match="list_landmarks_align_celeba"):
        read_landmarks(root)
    root = _with_landmarks(fake.make_tree(tmp_path / "official"), "official")
    path = root / "list_landmarks_align_celeba.txt"
    rows = path.read_text().splitlines()
    rows[3] = "000002.jpg 1 2 3"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(CelebAFormatError, match="line 4"):
        read_landmarks(root)


def test_is_synthfaces_tells_a_render_from_a_photo_copy(tmp_path):
    from fel.data import is_synthfaces
    from fel.data.synthfaces import write_synthfaces

    assert not is_synthfaces(fake.make_tree(tmp_path / "official"))
    assert is_synthfaces(
        write_synthfaces(tmp_path / "synth", n=8, seed=0, workers=1, progress=False)
    )
