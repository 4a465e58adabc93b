"""Which data a checkpoint was trained on: a fingerprint that survives a change of layout.

A CelebA copy is identified by what its attribute file says: the attribute names, the image file
names in order and the binary label matrix. Those are the same in the official, torchvision,
Kaggle and zip layouts (the reader parses ``.txt`` and ``.csv`` alike), so one data set has one
fingerprint however it is stored, and a single changed label gives another. Images themselves are
not hashed: reading 202,599 JPEGs to check a checkpoint would take minutes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from fel.data.celeba import find_layout, read_attributes

#: The file only a SynthFaces render has; its presence names the data set "SynthFaces".
SYNTHFACES_META = "synthfaces.json"


def data_fingerprint(root: str | os.PathLike) -> dict:
    """``{"fingerprint": 16 hex digits, "dataset": "SynthFaces" | "CelebA", "images": N,
    "attributes": K}`` (plus ``"seed"`` for SynthFaces) of the CelebA-layout copy at ``root``.

    Cached per attribute file (path, size and modification time), so repeated checks are free.

    Raises:
        FileNotFoundError: ``root`` is not a CelebA-layout folder (what is missing).
    """
    layout = find_layout(root)
    stat = layout.attr_file.stat()
    return dict(_fingerprint(str(layout.attr_file.resolve()), stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=16)
def _fingerprint(attr_file: str, size: int, mtime: int) -> tuple:
    names, files, values = read_attributes(attr_file)
    digest = hashlib.sha256()
    digest.update("\n".join(names).encode() + b"\0")
    digest.update("\n".join(files).encode() + b"\0")
    digest.update(np.packbits(values > 0).tobytes())
    info = {"fingerprint": digest.hexdigest()[:16], "dataset": "CelebA", "images": len(files),
            "attributes": len(names)}  # fmt: skip
    meta = Path(attr_file).parent / SYNTHFACES_META
    if meta.is_file():
        info["dataset"] = "SynthFaces"
        info["seed"] = json.loads(meta.read_text()).get("seed")
    return tuple(info.items())


def describe(info: dict) -> str:
    """One line for messages: "SynthFaces (seed 0, 30,000 images, fingerprint 1a2b...)"."""
    seed = f"seed {info['seed']}, " if info.get("seed") is not None else ""
    return f"{info['dataset']} ({seed}{info['images']:,} images, fingerprint {info['fingerprint']})"


def data_in_use() -> Path | None:
    """The data the notebooks work on: ``$FEL_CELEBA_ROOT`` when set, else the SynthFaces render
    in ``data/synthfaces`` once it exists (None before: nothing to compare with yet)."""
    import fel

    real = os.environ.get("FEL_CELEBA_ROOT")
    if real:
        return Path(real).expanduser()
    default = fel.DATA_DIR / "synthfaces"
    return default if (default / "list_attr_celeba.txt").is_file() else None
