"""Reader for CelebA-layout folders: real CelebA (any common layout) and SynthFaces.

Accepted layouts for ``root``:

* official: ``img_align_celeba/000001.jpg``, ``list_attr_celeba.txt``, ``list_eval_partition.txt``
* torchvision: the same files under ``root/celeba/``
* Kaggle: ``list_attr_celeba.csv``, ``list_eval_partition.csv``, ``img_align_celeba/img_align_celeba/``
* zipped: ``img_align_celeba.zip`` beside the list files, read in place without extracting

Images get CelebA's usual preprocessing, computed as torchvision's standard pipeline computes it
(full decode, ``CenterCrop(148)``, ``Resize(size, antialias=True)``): a centred 148x148 crop of the
178x218 aligned image, resized with an antialiased bilinear filter. JPEGs are decoded at full
resolution (OpenCV's libjpeg-turbo: PIL's pixels at lower cost), the first pass runs in several
processes, and the result is kept in a uint8 ``.npy`` cache that later epochs and notebooks
memory-map.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from fel.data.attributes import attribute_indices
from fel.locks import one_at_a_time
from fel.processes import map_chunks

SPLITS = {"train": 0, "valid": 1, "test": 2}
CROP = 148
CACHE_FORMAT = 3  # bump when decoding changes, so stale caches are not reused
GET_CELEBA = (
    "Point fel at your own copy of CelebA (https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html: "
    "img_align_celeba.zip, list_attr_celeba.txt, list_eval_partition.txt), or make the offline "
    "default with `python -m fel data synth --out data/synthfaces`."
)


class CelebAFormatError(ValueError):
    """A CelebA list file or image that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Layout:
    """Where one CelebA copy keeps its files."""

    base: Path  # the folder with the list files
    attr_file: Path
    partition_file: Path | None
    images: Path  # a folder of JPEGs, or a zip file
    zip_prefix: str = ""  # folder of the images inside the zip, e.g. "img_align_celeba/"

    @property
    def zipped(self) -> bool:
        return self.images.suffix == ".zip"


def find_layout(root: str | os.PathLike) -> Layout:
    """Work out which CelebA layout ``root`` holds; raise FileNotFoundError saying what is missing."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"CelebA root {str(root)!r} is not a folder. {GET_CELEBA}")
    candidates = [root / "celeba", root] if (root / "celeba").is_dir() else [root]
    for base in candidates:
        attr = _first_existing(base, ["list_attr_celeba.txt", "list_attr_celeba.csv"])
        if attr is None:
            continue
        partition = _first_existing(
            base,
            ["list_eval_partition.txt", "list_eval_partition.csv"]
            if attr.suffix == ".txt"
            else ["list_eval_partition.csv", "list_eval_partition.txt"],
        )
        for folder in (base / "img_align_celeba" / "img_align_celeba", base / "img_align_celeba"):
            if folder.is_dir() and any(f.suffix.lower() == ".jpg" for f in _scan(folder, 20)):
                return Layout(base, attr, partition, folder)
        archive = base / "img_align_celeba.zip"
        if archive.is_file():
            return Layout(base, attr, partition, archive, _zip_prefix(archive))
        raise FileNotFoundError(
            f"{base}: found {attr.name} but no images: expected JPEGs in "
            f"{base / 'img_align_celeba'}/ (or img_align_celeba/img_align_celeba/ as on Kaggle) "
            f"or the archive {base / 'img_align_celeba.zip'}. {GET_CELEBA}"
        )
    raise FileNotFoundError(
        f"{root}: no list_attr_celeba.txt (or .csv) here or in {root / 'celeba'}. {GET_CELEBA}"
    )


def _first_existing(folder: Path, names: Sequence[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _scan(folder: Path, limit: int) -> list[Path]:
    out = []
    with os.scandir(folder) as it:
        for entry in it:
            out.append(Path(entry.path))
            if len(out) >= limit:
                break
    return out


def _zip_prefix(archive: Path) -> str:
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            if name.lower().endswith(".jpg"):
                return name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    raise CelebAFormatError(f"{archive}: the archive holds no .jpg files")


# ----------------------------------------------------------------------------- list files


def read_attributes(path: str | os.PathLike) -> tuple[list[str], list[str], np.ndarray]:
    """Parse ``list_attr_celeba.txt`` (official) or ``list_attr_celeba.csv`` (Kaggle).

    Returns:
        (attribute names, file names, values int8 [N, n_attrs] in {-1, 1})
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    if path.suffix == ".csv":
        if not lines:
            raise CelebAFormatError(f"{path}: the file is empty")
        sep, first_line = ",", 2
        names, body = next(csv.reader(lines[:1]))[1:], [ln for ln in lines[1:] if ln]
    else:
        if len(lines) < 2:
            raise CelebAFormatError(
                f"{path}: expected a count on line 1 and attribute names on line 2"
            )
        try:
            count = int(lines[0].strip())
        except ValueError:
            raise CelebAFormatError(
                f"{path} line 1: expected the number of images, found {lines[0].strip()!r}"
            ) from None
        sep, first_line = None, 3
        names, body = lines[1].split(), lines[2:]
        while body and not body[-1].strip():
            body.pop()
        if count != len(body):
            raise CelebAFormatError(
                f"{path} line 1: says {count} images but the file lists {len(body)}; "
                "the file is truncated or its header is wrong"
            )
    if not names:
        raise CelebAFormatError(f"{path}: no attribute names in the header")
    rows = [ln.split(sep, 1) for ln in body]  # [file name, values text]
    values = _parse_values([r[1] if len(r) > 1 else "" for r in rows], len(names), sep)
    if values is None:
        raise _bad_row(path, body, sep, names, first_line)
    return names, [r[0] for r in rows], values


def _parse_values(texts: list[str], n_values: int, sep: str | None) -> np.ndarray | None:
    """Rows of ``n_values`` values -1 or 1 as int8 [len(texts), n_values]; None if a row is not.

    numpy's C parser does the work: CelebA's 8.1 M values take a fraction of a second.
    """
    if not texts:
        return np.empty((0, n_values), np.int8)
    try:
        values = np.loadtxt(texts, dtype=np.int8, comments=None, delimiter=sep, ndmin=2)
    except ValueError:  # a row with another number of values than the first, or not an integer
        return None
    ok = values.shape == (len(texts), n_values) and np.isin(values, (-1, 1)).all()
    return values if ok else None


def _bad_row(
    path: Path, body: list[str], sep: str | None, names: list[str], first_line: int
) -> CelebAFormatError:
    """The error for the first row of ``body`` that is not a file name and one -1 or 1 per name."""
    for i, line in enumerate(body):
        row = line.split(sep)
        where = f"{path} line {first_line + i}"
        if len(row) != len(names) + 1:
            return CelebAFormatError(
                f"{where}: expected a file name and {len(names)} values, found {len(row) - 1} values"
            )
        for name, v in zip(names, row[1:]):
            if v not in ("1", "-1"):
                return CelebAFormatError(f"{where}: value {v!r} for {name} is not -1 or 1")
    return CelebAFormatError(f"{path}: the attribute rows cannot be parsed")


def read_partition(path: str | os.PathLike) -> dict[str, int]:
    """Parse ``list_eval_partition.txt``/``.csv``: file name -> 0 (train), 1 (valid), 2 (test)."""
    path = Path(path)
    lines = path.read_text().splitlines()
    if path.suffix == ".csv":
        rows, first_line = list(csv.reader(lines))[1:], 2
    else:
        rows, first_line = [ln.split() for ln in lines], 1
    out = {}
    for i, row in enumerate(rows):
        if not row:
            continue
        if len(row) != 2 or row[1] not in ("0", "1", "2"):
            raise CelebAFormatError(
                f"{path} line {first_line + i}: expected '<file> <0|1|2>', found {' '.join(row)!r}"
            )
        out[row[0]] = int(row[1])
    return out


def read_identities(root: str | os.PathLike) -> dict[str, int]:
    """Parse the ``identity_CelebA.txt`` of the CelebA copy (any layout) or SynthFaces at ``root``:
    file name -> person number (1-based). CelebA's three splits hold disjoint people.

    Raises:
        FileNotFoundError: the copy has no identity file (Kaggle's leaves it out), saying where
            to get it.
        CelebAFormatError: a line that is not ``<file> <positive int>``, with its number.
    """
    base = find_layout(root).base
    path = base / "identity_CelebA.txt"
    if not path.is_file():
        raise FileNotFoundError(
            f"{base}: no identity_CelebA.txt. CelebA's identity labels are in the Anno folder of "
            "the official release (https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html) and in "
            "torchvision's download; Kaggle's copy leaves them out. Put the file beside "
            "list_attr_celeba.txt (SynthFaces writes its own)."
        )
    out = {}
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        row = line.split()
        if not row:
            continue
        if len(row) != 2 or not row[1].isdigit() or int(row[1]) < 1:
            raise CelebAFormatError(
                f"{path} line {i}: expected '<file> <person number>', found {line.strip()!r}"
            )
        out[row[0]] = int(row[1])
    return out


def read_landmarks(root: str | os.PathLike) -> dict[str, np.ndarray]:
    """Parse the aligned images' five landmarks of the CelebA copy (any layout) or SynthFaces at
    ``root``: file name -> float [5, 2] (x, y in the 178x218 aligned image: left eye, right eye,
    nose, left and right mouth corner). Reads ``list_landmarks_align_celeba.txt`` (official,
    SynthFaces) or ``.csv`` (Kaggle).

    Raises:
        FileNotFoundError: the copy has no landmark file, saying where to get it.
        CelebAFormatError: a row without a file name and 10 numbers, with its line number.
    """
    base = find_layout(root).base
    path = _first_existing(
        base, ["list_landmarks_align_celeba.txt", "list_landmarks_align_celeba.csv"]
    )
    if path is None:
        raise FileNotFoundError(
            f"{base}: no list_landmarks_align_celeba.txt (or .csv). CelebA's landmarks are in the "
            "Anno folder of the official release (https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html)"
            "; put the file beside list_attr_celeba.txt."
        )
    lines = path.read_text().splitlines()
    csv_file = path.suffix == ".csv"
    start = 1 if csv_file else 2  # a CSV header; or the count and the column names
    out = {}
    for i, line in enumerate(lines[start:], start=start + 1):
        row = line.split(",") if csv_file else line.split()
        if not row or not row[0].strip():
            continue
        try:
            if len(row) != 11:
                raise ValueError
            out[row[0].strip()] = np.array(row[1:], dtype=np.float64).reshape(5, 2)
        except ValueError:
            raise CelebAFormatError(
                f"{path} line {i}: expected a file name and 10 coordinates, found {line.strip()!r}"
            ) from None
    return out


# ----------------------------------------------------------------------------- images

_open_zips: dict[tuple[int, str], zipfile.ZipFile] = {}


def _read_bytes(layout: Layout, filename: str) -> bytes:
    if layout.zipped:
        key = (os.getpid(), str(layout.images))  # one handle per process: forks must not share
        if key not in _open_zips:
            _open_zips[key] = zipfile.ZipFile(layout.images)
        return _open_zips[key].read(layout.zip_prefix + filename)
    with open(os.path.join(layout.images, filename), "rb") as f:  # no pathlib: per image
        return f.read()


def decode_aligned(data: bytes, size: int, crop: int = CROP, name: str = "image") -> np.ndarray:
    """Decode one aligned face: centred ``crop`` square, resized (antialiased) to ``size``.

    Args:
        data: the file's bytes (JPEG, PNG or another format OpenCV reads).
        size: output side in pixels.
        crop: side of the centred square taken from the full image (clipped to the image).
        name: file name used in error messages.

    Returns:
        uint8 array [size, size, 3].
    """
    return _decode(data, size, crop, name).permute(1, 2, 0).numpy()


def _decode(data: bytes, size: int, crop: int, name: str) -> torch.Tensor:
    """:func:`decode_aligned` as a uint8 tensor [3, size, size]."""
    return torch.from_numpy(_resize_bgr([_square_bgr(data, crop, name)], size)[0])


def _square_bgr(data: bytes, crop: int, name: str) -> np.ndarray:
    """The file decoded (OpenCV's BGR order), its centred ``crop`` square: a view [c, c, 3]."""
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION  # as PIL decodes: EXIF not applied
    try:  # libjpeg-turbo, as in PIL (the same pixels), without PIL's per-file overhead
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:  # empty data
        bgr = None
    if bgr is None:
        raise CelebAFormatError(
            f"cannot decode {name}: the file is corrupt, truncated or not an image. Re-extract it "
            "from img_align_celeba.zip, or remove its row from the list files."
        )
    return _centre_square(bgr, crop)


def _resize_bgr(
    squares: Sequence[np.ndarray], size: int, out: np.ndarray | None = None
) -> np.ndarray:
    """BGR squares [c, c, 3] resized as :func:`_resize` resizes RGB ones, into RGB uint8
    [B, 3, size, size] (``out``, e.g. rows of the cache being written, or a new array): the same
    pixels. Squares of one shape go through the filter as one batch, which shares its per-call
    cost, and the channels are swapped in the copy out (the filter treats each channel alike)."""
    out = np.empty((len(squares), 3, size, size), np.uint8) if out is None else out
    start = 0
    for _, group in itertools.groupby(squares, key=lambda square: square.shape):
        group = list(group)
        pixels = torch.from_numpy(np.stack(group)).permute(0, 3, 1, 2)  # channels last: fast path
        resized = F.interpolate(pixels, size=(size, size), mode="bilinear", antialias=True)
        out[start : start + len(group)] = resized.numpy()[:, ::-1]
        start += len(group)
    return out


def _centre_square(pixels: np.ndarray, crop: int) -> np.ndarray:
    """The centred ``crop`` square (clipped to the image) of [H, W, C], as torchvision's
    ``CenterCrop`` places it (offsets rounded as it rounds them): a view."""
    h, w = pixels.shape[:2]
    c = min(crop, w, h)
    top, left = round((h - c) / 2), round((w - c) / 2)
    return pixels[top : top + c, left : left + c]


def _resize(square: np.ndarray, size: int) -> torch.Tensor:
    """Contiguous uint8 [c, c, 3] resized to uint8 [3, size, size] with torch's antialiased
    bilinear filter: PIL's, as torchvision's ``Resize`` uses it, to within one grey level."""
    pixels = torch.from_numpy(square).permute(2, 0, 1)[None]  # channels last: torch's fast path
    return F.interpolate(pixels, size=(size, size), mode="bilinear", antialias=True)[0]


def crop_resize(img: Image.Image, size: int, crop: int = CROP) -> np.ndarray:
    """CelebA's preprocessing of a decoded image: centred ``crop`` square, resized to ``size``.

    Args:
        img: RGB image, e.g. a 178x218 aligned face.
        size: output side in pixels.
        crop: side of the centred square (clipped to the image).

    Returns:
        uint8 array [size, size, 3], exactly as the reader makes it from that image's file.
    """
    square = np.array(_centre_square(np.asarray(img), crop))  # a contiguous, writable copy
    return _resize(square, size).permute(1, 2, 0).numpy()


def _decode_chunk(job: tuple) -> int:
    """Worker: decode ``names`` into rows ``start:start + len(names)`` of the cache being written."""
    layout, names, start, size, crop, target = job
    squares = [_square_bgr(_read_bytes(layout, name), crop, name) for name in names]
    # No flush: the pages are the file's page cache, which the parent reads; the OS writes them.
    _resize_bgr(squares, size, out=np.load(target, mmap_mode="r+")[start : start + len(names)])
    return len(names)


def decode_all(
    layout: Layout,
    filenames: Sequence[str],
    size: int,
    crop: int,
    target: Path,
    workers: int | None = None,
    chunk: int = 256,
    progress: bool = True,
) -> None:
    """Decode every file into a new uint8 ``.npy`` [N, 3, size, size] at ``target``, atomically.

    The array is written to a temporary file beside ``target`` and renamed into place only when
    complete, so an interrupted or failed pass leaves nothing half-written.
    """
    filenames = list(filenames)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(filenames), 3, size, size))
    jobs = [
        (layout, filenames[s : s + chunk], s, size, crop, tmp)
        for s in range(0, len(filenames), chunk)
    ]
    bar = tqdm(total=len(filenames), desc=f"decoding {size}px", unit="img", disable=not progress)
    try:
        for done in map_chunks(_decode_chunk, jobs, workers):
            bar.update(done)
        os.replace(tmp, target)
    finally:
        bar.close()
        tmp.unlink(missing_ok=True)


def iter_batches(images, batch_size: int = 512):
    """Float images [B, 3, S, S] in [0, 1], ``batch_size`` at a time, from uint8 or float images
    [N, 3, S, S] (a tensor, an array or a dataset's memory-mapped cache): nothing is copied whole."""
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        chunk = chunk if torch.is_tensor(chunk) else torch.from_numpy(np.array(chunk))
        yield chunk.float().div(255) if chunk.dtype == torch.uint8 else chunk.float()


# ----------------------------------------------------------------------------- dataset


class CelebA(Dataset):
    """CelebA-layout face dataset: aligned images, cropped and resized, with binary attributes.

    Args:
        root: a CelebA copy in any accepted layout (see the module docstring), or SynthFaces.
        split: "train", "valid", "test" or "all" (from ``list_eval_partition``; without that
            file, a seeded 80/10/10 split with a warning).
        size: side of the returned square images in pixels.
        attrs: attribute names to return (default: all of the file's, in its order).
        cache: True for a uint8 cache beside the data (or in ``$FEL_CACHE_DIR``,
            else ``~/.cache/fel``), a folder to put it in, or False to decode on every access.
            The cache is keyed by the file list and the image folder's (or zip's) metadata, so
            adding, removing or renaming images rebuilds it; an image overwritten in place is
            not noticed (delete the cache, or replace files by writing a new one and renaming).
        crop: side of the centred square cut from the aligned image before resizing.
        transform: optional callable applied to each image tensor.
        workers: processes for the first decoding pass (default: CPU count, at most 8).
        split_seed: seed of the fallback split.

    Items are ``(image float32 [3, size, size] in [0, 1], labels float32 [n_attrs] in {0, 1})``.
    Attributes: ``attr_names``, ``filenames``, ``labels`` (LongTensor [N, n_attrs] in {0, 1}).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        size: int = 64,
        attrs: Sequence[str] | None = None,
        cache: bool | str | os.PathLike = True,
        crop: int = CROP,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        workers: int | None = None,
        split_seed: int = 0,
        progress: bool = True,
    ) -> None:
        if split not in (*SPLITS, "all"):
            raise ValueError(f"split must be one of train, valid, test, all; got {split!r}")
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        self.layout = find_layout(root)
        self.root, self.split, self.size, self.crop = Path(root), split, size, crop
        self.transform = transform
        names, files, values = read_attributes(self.layout.attr_file)
        keep = self._split_mask(files, split, split_seed)
        columns = attribute_indices(attrs, names)
        self.attr_names = [names[j] for j in columns]
        self.filenames = [f for f, k in zip(files, keep) if k]
        self.labels = torch.from_numpy((values[keep][:, columns] > 0).astype(np.int64))
        self._check_images_exist()
        self._array = None
        if cache is not False:
            self._array = self._load_or_build_cache(cache, workers, progress)

    def _split_mask(self, files: list[str], split: str, seed: int) -> np.ndarray:
        n = len(files)
        if self.layout.partition_file is None:
            warnings.warn(
                f"{self.layout.base}: no list_eval_partition file; using a seeded 80/10/10 "
                f"split (seed {seed}) instead of CelebA's official one",
                stacklevel=3,
            )
            rank = np.empty(n, dtype=np.int64)
            rank[np.random.default_rng(seed).permutation(n)] = np.arange(n)
            part = np.digitize(rank, [round(0.8 * n), round(0.9 * n)])
        else:
            table = read_partition(self.layout.partition_file)
            missing = [f for f in files if f not in table]
            if missing:
                raise CelebAFormatError(
                    f"{self.layout.partition_file}: {len(missing)} image(s) of "
                    f"{self.layout.attr_file.name} have no partition, e.g. {missing[0]}"
                )
            part = np.array([table[f] for f in files], dtype=np.int64)
        return np.ones(n, dtype=bool) if split == "all" else part == SPLITS[split]

    def _check_images_exist(self) -> None:
        if self.layout.zipped:
            with zipfile.ZipFile(self.layout.images) as zf:
                prefix = self.layout.zip_prefix
                present = {n[len(prefix) :] for n in zf.namelist() if n.startswith(prefix)}
        else:
            present = set(os.listdir(self.layout.images))
        missing = [f for f in self.filenames if f not in present]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} image(s) listed in {self.layout.attr_file.name} are missing from "
                f"{self.layout.images}, e.g. {', '.join(missing[:3])}. Re-extract "
                "img_align_celeba.zip (or re-run `python -m fel data synth`)."
            )

    def _cache_path(self, cache: bool | str | os.PathLike) -> Path:
        h = hashlib.sha1()
        # resolved: "data/synthfaces" and its absolute path are one dataset, one cache
        h.update(f"{CACHE_FORMAT}|{self.size}|{self.crop}|{self.layout.images.resolve()}".encode())
        # The image set without a stat per image: a folder's inode and time change when an image
        # is added, removed or replaced by a rename, an archive's size and time when it is rewritten.
        st = self.layout.images.stat()
        h.update(f"{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|".encode())
        h.update("\n".join(self.filenames).encode())
        if cache is True:
            folder = os.environ.get("FEL_CACHE_DIR")
            if folder is None:
                folder = self.layout.base / ".fel_cache"
                if not os.access(self.layout.base, os.W_OK):
                    folder = Path.home() / ".cache" / "fel"
        else:
            folder = cache
        return Path(folder) / f"{self.split}-{self.size}px-{h.hexdigest()[:16]}.npy"

    def _load_or_build_cache(self, cache, workers, progress) -> np.ndarray:
        path = self._cache_path(cache)
        if not path.exists():  # one process decodes (torchrun's ranks all get here); others wait
            with one_at_a_time(path.with_name(f".{path.name}.lock"), f"decoding {path.name}"):
                if not path.exists():
                    decode_all(self.layout, self.filenames, self.size, self.crop, path, workers,
                               progress=progress)  # fmt: skip
        return np.load(path, mmap_mode="r")

    @property
    def images(self) -> np.ndarray:
        """All images as uint8 [N, 3, size, size] (memory-mapped cache; decoded now if uncached)."""
        if self._array is None:
            return np.stack([self._decode(i).transpose(2, 0, 1) for i in range(len(self))])
        return self._array

    def __getstate__(self) -> dict:
        """Pickle without the memory-mapped cache (spawned DataLoader workers reopen it), so a
        worker does not receive a copy of the whole split."""
        state = self.__dict__.copy()
        if state["_array"] is not None:
            state["_array"] = str(state["_array"].filename)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if isinstance(self._array, str):
            self._array = np.load(self._array, mmap_mode="r")

    def aligned(self, index: int) -> Image.Image:
        """Image ``index`` as the data holds it: the whole 178x218 aligned RGB image, before the
        crop and resize (read from the folder or zip of any layout)."""
        data = _read_bytes(self.layout, self.filenames[index])
        return Image.open(io.BytesIO(data)).convert("RGB")

    def _decode(self, index: int) -> np.ndarray:
        name = self.filenames[index]
        return decode_aligned(_read_bytes(self.layout, name), self.size, self.crop, name=name)

    def __len__(self) -> int:
        return len(self.filenames)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._array is not None:
            pixels = torch.from_numpy(np.array(self._array[index]))
        else:
            pixels = torch.from_numpy(self._decode(index)).permute(2, 0, 1)
        image = pixels.float().div_(255)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index].float()

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The items at ``indices``, as ``[self[i] for i in indices]``; a DataLoader calls this for
        each batch, so a cached split is read and converted in one step instead of per image."""
        if self._array is None or self.transform is not None:
            return [self[i] for i in indices]
        images = torch.from_numpy(self._array[indices]).float().div_(255)
        return list(zip(images, self.labels[indices].float()))

    def __repr__(self) -> str:
        return (
            f"CelebA(root={str(self.root)!r}, split={self.split!r}, size={self.size}, "
            f"n={len(self)}, attrs={len(self.attr_names)}, cached={self._array is not None})"
        )
