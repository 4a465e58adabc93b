"""A small hand-written CelebA tree, in every accepted layout, for the reader's tests.

Five images; each is a flat colour with a white square at a known place, so a test can check
the crop. Rows use CelebA's irregular spacing; labels are written out by hand below. The framed
variant paints each 148x148 centre crop in one colour and the border around it in another, so
any border that leaks into a reader's output shows as colour error.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from fel.data import ATTRIBUTES

FILES = ["000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg", "000005.jpg"]
COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40), (40, 200, 200)]
PARTITION = [0, 0, 0, 1, 2]
# Smiling (index 31) and Male (index 20) set by hand; every other attribute -1.
SMILING = [1, -1, 1, -1, 1]
MALE = [-1, -1, 1, 1, -1]


def label_row(i: int) -> list[int]:
    row = [-1] * 40
    row[ATTRIBUTES.index("Smiling")] = SMILING[i]
    row[ATTRIBUTES.index("Male")] = MALE[i]
    return row


def jpeg_bytes(i: int) -> bytes:
    img = np.zeros((218, 178, 3), np.uint8)
    img[:] = COLOURS[i]
    img[35:60, 15:40] = 255  # white square at the top-left corner of the 148 crop
    return _jpeg(img)


# (crop colour, border colour) of each framed image
FRAMES = [
    ((200, 40, 40), (40, 200, 200)),
    ((40, 200, 40), (200, 40, 200)),
    ((40, 40, 200), (220, 220, 40)),
    ((200, 200, 40), (30, 30, 30)),
    ((128, 128, 128), (250, 250, 250)),
]


def framed_jpeg_bytes(i: int) -> bytes:
    """Image ``i`` framed: the centred 148x148 crop (rows 35:183, columns 15:163) in
    ``FRAMES[i][0]``, everything outside it in ``FRAMES[i][1]``."""
    img = np.zeros((218, 178, 3), np.uint8)
    img[:] = FRAMES[i][1]
    img[35:183, 15:163] = FRAMES[i][0]
    return _jpeg(img)


def _jpeg(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def attr_txt() -> str:
    lines = [str(len(FILES)), " ".join(ATTRIBUTES) + " "]
    for i, f in enumerate(FILES):
        # CelebA pads with two spaces before positive values: "000001.jpg -1  1  1 -1 ..."
        lines.append(f + "".join(f" {v}" if v < 0 else f"  {v}" for v in label_row(i)))
    return "\n".join(lines) + "\n"


def attr_csv() -> str:
    lines = ["image_id," + ",".join(ATTRIBUTES)]
    lines += [f + "," + ",".join(map(str, label_row(i))) for i, f in enumerate(FILES)]
    return "\n".join(lines) + "\n"


def partition_txt() -> str:
    return "".join(f"{f} {p}\n" for f, p in zip(FILES, PARTITION))


def partition_csv() -> str:
    return "image_id,partition\n" + "".join(f"{f},{p}\n" for f, p in zip(FILES, PARTITION))


def make_tree(
    root: Path, layout: str = "official", image: Callable[[int], bytes] = jpeg_bytes
) -> Path:
    """Write the fake tree at ``root`` in ``layout`` (official, torchvision, kaggle, zip), with
    ``image(i)`` as the bytes of image ``i``."""
    base = root / "celeba" if layout == "torchvision" else root
    base.mkdir(parents=True, exist_ok=True)
    if layout == "kaggle":
        (base / "list_attr_celeba.csv").write_text(attr_csv())
        (base / "list_eval_partition.csv").write_text(partition_csv())
        images = base / "img_align_celeba" / "img_align_celeba"
    else:
        (base / "list_attr_celeba.txt").write_text(attr_txt())
        (base / "list_eval_partition.txt").write_text(partition_txt())
        images = base / "img_align_celeba"
    if layout == "zip":
        with zipfile.ZipFile(base / "img_align_celeba.zip", "w") as zf:
            for i, f in enumerate(FILES):
                zf.writestr(f"img_align_celeba/{f}", image(i))
    else:
        images.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(FILES):
            (images / f).write_bytes(image(i))
    return root


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
