"""Real photographs that ship inside installed packages, with hand-marked eyes: the offline
fixtures for measuring face alignment (``python -m fel bench faces``, ``tests/test_faces.py``).

- ``grace_hopper``: matplotlib's ``sample_data/grace_hopper.jpg`` (512x600, a studio portrait
  in uniform; the US Navy's, public domain).
- ``astronaut``: scikit-image's ``data/astronaut.png`` (512x512, Eileen Collins; NASA's,
  public domain). scikit-image is a dev dependency.
- :func:`lfw_faces`: scikit-image's ``lfw_subset.npy``, 100 Labeled Faces in the Wild crops
  and 100 crops of their backgrounds, 25x25 grey: a detection rate and a false-alarm rate.

The photos are read where the packages installed them, not copied into the repository.
:func:`transformed` turns and scales a photo with its eyes, so each transform has a known
answer; :func:`alignment_error` scores an alignment against it.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fel.faces import celeba_eyes, eye_transform

Eyes = tuple[tuple[float, float], tuple[float, float]]

#: Eye centres (the pupils), (x, y) in pixels, image-left eye first; marked by hand on
#: 4x enlargements of each eye.
MARKED_EYES: dict[str, Eyes] = {
    "grace_hopper": ((220.5, 190.0), (303.75, 186.25)),
    "astronaut": ((203.1, 101.0), (246.25, 103.1)),
}


def _path(name: str) -> Path:
    if name == "grace_hopper":
        import matplotlib

        return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if name == "astronaut":
        return _skimage_data() / "astronaut.png"
    raise ValueError(f"no sample photo {name!r}; there are {sorted(MARKED_EYES)}")


def _skimage_data() -> Path:
    try:
        import skimage
    except ImportError:
        raise ImportError(
            "the astronaut photo and the LFW faces come with scikit-image: "
            "pip install 'scikit-image>=0.22' (it is in fel's [dev] extra)"
        ) from None
    return Path(skimage.__file__).parent / "data"


def sample_photo(name: str) -> tuple[np.ndarray, Eyes]:
    """A real photograph and its marked eyes.

    Returns:
        uint8 RGB [H, W, 3] and the eye centres ((x, y) left, (x, y) right) in its pixels.
    """
    path = _path(name)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall the package that ships it")
    return np.asarray(Image.open(path).convert("RGB")), MARKED_EYES[name]


def lfw_faces() -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's LFW subset: 100 face crops and 100 background crops from the same
    photos, each uint8 [100, 25, 25] grey (the faces fill their crop)."""
    images = np.load(_skimage_data() / "lfw_subset.npy")
    images = (images * 255).round().astype(np.uint8) if images.dtype != np.uint8 else images
    return images[:100], images[100:]


def transformed(
    photo: np.ndarray, eyes: Eyes, angle: float = 0.0, scale: float = 1.0
) -> tuple[np.ndarray, Eyes]:
    """The photo turned by ``angle`` degrees (anticlockwise on screen) and scaled, on a canvas
    that holds all of it (the border repeats the photo's edge pixels: a mirrored border would add mirrored faces), and
    where its eyes went.

    Returns:
        uint8 [H', W', 3] and the eyes in its pixels.
    """
    h, w = photo.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    size = (math.ceil(w * c + h * s), math.ceil(w * s + h * c))
    m[:, 2] += (size[0] - w) / 2, (size[1] - h) / 2  # the photo's centre to the canvas's
    if angle == 0:  # a plain resize: area averaging when shrinking, as a camera would
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        out = cv2.resize(photo, size, interpolation=interpolation)
        fx, fy = size[0] / w, size[1] / h  # pixel centres at integers: x' = (x + .5) fx - .5
        m = np.array([[fx, 0, (fx - 1) / 2], [0, fy, (fy - 1) / 2]])
    else:
        out = cv2.warpAffine(photo, m, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    moved = tuple(tuple(float(v) for v in m @ (x, y, 1)) for x, y in eyes)
    return out, moved


def alignment_error(found: Eyes, true: Eyes) -> tuple[float, float]:
    """How far an alignment made from ``found`` eyes is from CelebA's frame, judged by where
    it puts the ``true`` eyes.

    Returns:
        (tilt, offset): the true eye line's angle in the aligned image, in degrees (0 is
        level), and the larger distance, in aligned pixels, of a true eye from CelebA's
        position for it (:func:`fel.faces.celeba_eyes`).
    """
    m = eye_transform(*found)
    landed = np.array(true) @ m[:, :2].T + m[:, 2]
    (lx, ly), (rx, ry) = landed
    tilt = math.degrees(math.atan2(ry - ly, rx - lx))
    offset = float(np.linalg.norm(landed - np.array(celeba_eyes()), axis=1).max())
    return tilt, offset
