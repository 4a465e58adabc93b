"""Real photos for the editors: find the face, align it to CelebA's frame, make a model input.

The models learnt faces from CelebA's *aligned* images: 178x218 pixels, eyes level and at fixed
positions. A photo goes through the same frame before it is encoded:

1. :func:`load_photo` reads a path, bytes, a PIL image, an array or a tensor into upright 8-bit
   RGB (EXIF rotation applied; greyscale, CMYK, 16-bit and palette images converted;
   transparency composited on white).
2. :func:`find_face` finds the face with OpenCV's Haar cascades (they ship inside the
   ``opencv-python-headless`` wheel, so this works offline) and the eyes inside it.
3. :func:`align_eyes` applies the similarity transform (rotation, scale, shift) that puts the
   eyes where CelebA's aligned images have them on average, and crops 178x218.
4. :func:`to_model_input` applies the training crop (centred 148 square, resized), so a photo
   reaches the model exactly as a training image did.

:func:`align` is steps 1-3. Haar cascades find upright, roughly frontal faces; searching
turned copies of the photo extends that to heads tilted by up to about :data:`TILT_LIMIT`
degrees, and each eye is moved onto its pupil. ``python -m fel bench faces`` measures this on
real photographs (:mod:`fel.sample_photos`). A face the cascades miss can still be aligned by
giving :func:`align_eyes` the eye positions by hand.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass
from functools import cache
from itertools import product
from typing import Literal

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps

from fel.data.celeba import CROP, crop_resize
from fel.data.synthfaces import EYE_HALF_DISTANCE, EYE_MID, HEIGHT, WIDTH

PhotoLike = (
    str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray | torch.Tensor
)
Box = tuple[float, float, float, float]  # x, y, width, height in pixels
Eyes = tuple[tuple[float, float], tuple[float, float]]  # (x, y) left, (x, y) right

MIN_SIDE = 64  # px: shorter photos are refused
MIN_FACE = 40  # px: smaller faces are not looked for (an eye distance of about 15 px)
DETECT_SIDE = 800  # px: faces are searched in a copy this long at most; crops use the original
EYE_SEARCH_WIDTH = 240  # px: the face box is resized to this width before the eye search
#: Where the eyes sit in the face cascade's box, as (x, y) fractions of its width and height:
#: the fallback when the eye cascade finds no pair. Measured on 91 SynthFaces renders pasted
#: into photos (mean of the true eye positions; standard deviation 0.02).
TYPICAL_EYES = ((0.31, 0.40), (0.69, 0.40))
FACE_CASCADE = "haarcascade_frontalface_alt2.xml"
EYE_CASCADES = ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml")
#: Turns (degrees, anticlockwise) of the photo searched when no upright face has its eyes: the
#: cascades find faces tilted by up to about 15 degrees, so these reach further.
SEARCH_ANGLES = (-15.0, 15.0, -30.0, 30.0)
#: Degrees of head tilt (roll) up to which real photos are aligned, measured by ``bench faces``:
#: both sample photos to +-35 degrees (one of them fails at +40).
TILT_LIMIT = 35
#: The pupil search (:func:`_pupil`): a window this many eye distances wide around each eye
#: the cascade found, and the darkest share of its pixels whose centroid is the eye's centre.
#: Chosen on the two real photographs of :mod:`fel.sample_photos` (``bench faces``).
#: Faces whose eye line is tilted by this many degrees or more are searched again turned level.
LEVEL_TILT = 8.0
PUPIL_WINDOW = 0.3
PUPIL_SHARE = 0.05
PUPIL_CLOSING = 0.06


class PhotoError(ValueError):
    """The photo cannot be read or is unsuitable (too small, no usable face)."""


class FaceNotFound(PhotoError):
    """No face was found in the photo."""


class SeveralFaces(PhotoError):
    """Several faces were found and ``pick="only"`` asked for exactly one."""


class AlignmentWarning(UserWarning):
    """Alignment went ahead on a guess: eyes estimated from the face box, or several faces."""


@dataclass(frozen=True)
class Face:
    """A face found in a photo, in the pixels of the upright photo :func:`load_photo` returns.

    Attributes:
        box: (x, y, width, height) of the face cascade's box.
        left_eye: (x, y) centre of the eye on the image's left (the person's right eye), as in
            CelebA's ``lefteye_x lefteye_y``.
        right_eye: (x, y) centre of the eye on the image's right.
        eyes_detected: True when the eye cascade found both eyes; False when they were placed
            at their typical positions in the box (:data:`TYPICAL_EYES`), which assumes a level,
            frontal face.
        faces_found: how many faces :func:`find_face` counted (this one is the largest).
    """

    box: tuple[int, int, int, int]
    left_eye: tuple[float, float]
    right_eye: tuple[float, float]
    eyes_detected: bool
    faces_found: int


# ----------------------------------------------------------------------------- reading


def load_photo(image: PhotoLike) -> Image.Image:
    """Read a photo into an upright 8-bit RGB PIL image.

    Args:
        image: a file path; the file's bytes (what an upload delivers); a PIL image; a numpy
            array [H, W] or [H, W, C] (C = 1, 3 or 4; RGB(A) order, not OpenCV's BGR) of uint8,
            uint16 or floats in [0, 1]; or a tensor [3, H, W] or [1, 3, H, W] in [0, 1] (fel's
            image convention).

    Returns:
        RGB image, EXIF orientation applied; greyscale, CMYK, palette and 16-bit images
        converted; transparent pixels composited on white.

    Raises:
        PhotoError: unreadable data, an unsupported array layout, or a side under
            :data:`MIN_SIDE` pixels.
        FileNotFoundError: a path that does not exist.
    """
    if isinstance(image, (str, os.PathLike)):
        with open(image, "rb") as fh:
            img = _decode(fh.read(), name=os.fspath(image))
    elif isinstance(image, (bytes, bytearray, memoryview)):
        img = _decode(bytes(image), name="the photo's bytes")
    elif isinstance(image, Image.Image):
        img = image
    elif isinstance(image, torch.Tensor):
        img = _from_tensor(image)
    elif isinstance(image, np.ndarray):
        img = _from_array(image)
    else:
        raise TypeError(
            f"cannot read a photo from {type(image).__name__}: give a path, bytes, a PIL image, "
            "a numpy array [H, W, 3] or a tensor [3, H, W]"
        )
    img = _to_rgb(ImageOps.exif_transpose(img))
    if min(img.size) < MIN_SIDE:
        raise PhotoError(
            f"the photo is {img.width}x{img.height} pixels; it needs at least {MIN_SIDE} on each "
            f"side (and a face at least {MIN_FACE} pixels wide): use a larger photo"
        )
    return img


def _decode(data: bytes, name: str) -> Image.Image:
    """Decode an image file's bytes (fully, so a truncated file fails here)."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Image.DecompressionBombError as err:
        raise PhotoError(f"{name} is too large to open safely ({err}); shrink it first") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise PhotoError(
            f"cannot read {name} as an image ({type(err).__name__}: {err}); "
            "save it as JPEG or PNG and try again"
        ) from None
    return img


def _from_array(a: np.ndarray) -> Image.Image:
    """PIL image from an array [H, W] or [H, W, C] of uint8, uint16 or floats in [0, 1]."""
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise PhotoError(
            f"an array photo must be [H, W] or [H, W, 3 or 4], got shape {list(a.shape)}; "
            "for fel's [3, H, W] layout pass a torch tensor"
        )
    if a.dtype == np.uint8:
        pass
    elif a.dtype == np.uint16:
        a = (a.astype(np.float64) / 257).round().astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        low, high = float(a.min()), float(a.max())
        if not (low >= 0.0 and high <= 1.0):  # NaN fails too
            raise PhotoError(
                f"a float photo must hold values in [0, 1], got [{low:.3g}, {high:.3g}]"
                + ("; divide by 255" if high <= 255 else "")
            )
        a = (a * 255).round().astype(np.uint8)
    else:
        raise PhotoError(f"an array photo must be uint8, uint16 or float, got {a.dtype}")
    return Image.fromarray(np.ascontiguousarray(a))


def _from_tensor(t: torch.Tensor) -> Image.Image:
    """PIL image from a tensor [3, H, W] or [1, 3, H, W] in [0, 1]."""
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise PhotoError(
            f"a tensor photo must be [3, H, W] or [1, 3, H, W], got {list(t.shape)}; "
            "align one photo at a time"
        )
    return _from_array(t.detach().float().cpu().permute(1, 2, 0).numpy())


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB: 16-bit greyscale rescaled, transparency composited on white, others converted."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):  # 16-bit greyscale (older Pillow: I)
        img = Image.fromarray(
            (np.asarray(img, dtype=np.float64) / 257).clip(0, 255).astype(np.uint8)
        )
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    try:
        return img.convert("RGB")
    except ValueError as err:
        raise PhotoError(
            f"cannot convert a {img.mode} image to RGB ({err}); save it as an RGB JPEG or PNG"
        ) from None


# ----------------------------------------------------------------------------- finding


@cache
def _cascade(name: str) -> cv2.CascadeClassifier:
    """One of the Haar cascades that ship with the opencv-python wheels."""
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise RuntimeError(
            f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 moved them out, conda's "
            "build lacks cv2.data): pip install 'opencv-python-headless>=4.8,<5'"
        )
    path = os.path.join(cv2.data.haarcascades, name)
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV could not load {path}: reinstall opencv-python-headless")
    return cascade


def find_face(image: PhotoLike, pick: Literal["largest", "only"] = "largest") -> Face:
    """Find the face and its eyes.

    The face cascade runs on a greyscale copy shrunk to at most :data:`DETECT_SIDE` pixels.
    Boxes lying mostly inside a larger box (a face found twice, or an eye taken for a face)
    are dropped. The eye cascades then run in the upper part of each box, cut from the full
    photo and resized to :data:`EYE_SEARCH_WIDTH` pixels. A box counts as a face when its eyes
    are found; boxes without eyes count only when no box has them (they are often textures the
    cascade mistook for a face).

    Args:
        image: anything :func:`load_photo` reads.
        pick: with several faces, ``"largest"`` takes the largest and warns
            (:class:`AlignmentWarning`); ``"only"`` refuses (:class:`SeveralFaces`).

    Returns:
        The face, in the pixels of ``load_photo(image)``. When the eyes are not found they are
        placed at their typical positions in the box, with an :class:`AlignmentWarning`.

    Raises:
        FaceNotFound: no face at least :data:`MIN_FACE` pixels wide.
        SeveralFaces: several faces and ``pick="only"``.
    """
    if pick not in ("largest", "only"):
        raise ValueError(f"pick must be 'largest' or 'only', got {pick!r}")
    photo = load_photo(image)
    grey = np.asarray(photo.convert("L"))
    boxes = _face_boxes(grey)
    faces = [(box, eyes) for box in boxes if (eyes := _find_eyes(grey, box)) is not None]
    for angle in [] if faces else SEARCH_ANGLES:  # a tilted head: look in turned copies
        faces = _faces_turned(grey, angle)
        if faces:
            break
    if faces:
        faces[0] = _levelled(grey, *faces[0])
    faces = faces or [(box, None) for box in boxes]
    if not faces:
        shrink = min(1.0, DETECT_SIDE / max(grey.shape))
        smallest = max(MIN_FACE, math.ceil(24 / shrink))  # the cascade's window is 20-24 px
        raise FaceNotFound(
            f"no face found in the {photo.width}x{photo.height} photo. The detector needs one "
            f"roughly frontal face at least {smallest} pixels wide, eyes visible and tilted by "
            f"less than about {TILT_LIMIT} degrees: crop or straighten the photo, "
            "or give align_eyes() the eye positions"
        )
    if len(faces) > 1:
        if pick == "only":
            raise SeveralFaces(
                f"found {len(faces)} faces; crop the photo to one, or pass pick='largest'"
            )
        warnings.warn(
            f"found {len(faces)} faces; aligning the largest ({faces[0][0][2]:.0f} px wide)",
            AlignmentWarning,
            stacklevel=2,
        )
    (x, y, w, h), eyes = faces[0]
    if eyes is None:
        warnings.warn(
            "the eyes were not found; placing them where they usually sit in the face box "
            "(this assumes a level, frontal face: check the aligned result)",
            AlignmentWarning,
            stacklevel=2,
        )
    (lx, ly), (rx, ry) = eyes or [(x + fx * w, y + fy * h) for fx, fy in TYPICAL_EYES]
    return Face(
        box=(round(x), round(y), round(w), round(h)),
        left_eye=(lx, ly),
        right_eye=(rx, ry),
        eyes_detected=eyes is not None,
        faces_found=len(faces),
    )


def _face_boxes(grey: np.ndarray) -> list[Box]:
    """Face cascade boxes in ``grey``'s pixels, largest first, nested ones dropped; searched in
    a copy at most :data:`DETECT_SIDE` pixels long."""
    shrink = min(1.0, DETECT_SIDE / max(grey.shape))
    small = cv2.resize(grey, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    min_side = max(1, round(MIN_FACE * shrink))
    found = _cascade(FACE_CASCADE).detectMultiScale(
        cv2.equalizeHist(small), scaleFactor=1.1, minNeighbors=4, minSize=(min_side, min_side)
    )
    return _drop_nested([tuple(float(v) / shrink for v in b) for b in found])


def _faces_turned(grey: np.ndarray, angle: float) -> list[tuple[Box, Eyes]]:
    """Faces with eyes found in ``grey`` turned by ``angle`` degrees, in ``grey``'s pixels."""
    turned, back = _turned(grey, angle)
    found = [(box, eyes) for box in _face_boxes(turned)
             if (eyes := _find_eyes(turned, box)) is not None]  # fmt: skip
    return [_turned_back(box, eyes, back) for box, eyes in found]


def _levelled(grey: np.ndarray, box: Box, eyes: Eyes) -> tuple[Box, Eyes]:
    """A tilted face looked at again, turned level: the cascades find eyes best upright, and
    on a tilted face they can take a glasses frame for an eye. Faces tilted by less than
    :data:`LEVEL_TILT` degrees, or not found again, are returned as they are."""
    (lx, ly), (rx, ry) = eyes
    tilt = math.degrees(math.atan2(ry - ly, rx - lx))
    if abs(tilt) < LEVEL_TILT:
        return box, eyes
    middle = np.array([(lx + rx) / 2, (ly + ry) / 2])
    again = [
        (b, e) for b, e in _faces_turned(grey, tilt)
        if np.abs(np.mean(e, axis=0) - middle).max() < 0.25 * box[2]
    ]  # fmt: skip
    return again[0] if again else (box, eyes)


def _turned(grey: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """``grey`` turned by ``angle`` degrees (anticlockwise on screen) on a canvas that holds all
    of it, and the [2, 3] matrix that takes the turned copy's (x, y) back to ``grey``'s."""
    h, w = grey.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    size = (math.ceil(w * c + h * s), math.ceil(w * s + h * c))
    m[:, 2] += (size[0] - w) / 2, (size[1] - h) / 2
    turned = cv2.warpAffine(grey, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return turned, cv2.invertAffineTransform(m)


def _turned_back(box: Box, eyes, back: np.ndarray):
    """A face found in a turned copy, in the photo's pixels: the box keeps its size around its
    mapped centre; the eyes are mapped exactly."""
    x, y, w, h = box
    cx, cy = back @ (x + w / 2, y + h / 2, 1)
    left, right = (tuple(back @ (ex, ey, 1)) for ex, ey in eyes)
    return (cx - w / 2, cy - h / 2, w, h), (left, right)


def _drop_nested(boxes: list[Box]) -> list[Box]:
    """Boxes (x, y, w, h), largest first, without those lying 60% or more inside a larger one."""
    kept: list[Box] = []
    for x, y, w, h in sorted(boxes, key=lambda b: -b[2] * b[3]):
        inside = [
            max(0.0, min(x + w, kx + kw) - max(x, kx)) * max(0.0, min(y + h, ky + kh) - max(y, ky))
            for kx, ky, kw, kh in kept
        ]
        if all(area < 0.6 * w * h for area in inside):
            kept.append((x, y, w, h))
    return kept


def _find_eyes(grey: np.ndarray, box: Box) -> Eyes | None:
    """Eye centres (left, right) in photo pixels, or None when no plausible pair is found.

    Candidates come from each eye cascade (the second handles glasses better) on the
    contrast-equalised band and on the band as it is (equalising can wash out a shaded eye).
    A pair is plausible with one eye in each half of the box, 25-70% of the box width apart,
    less than 20% apart in height, both between 20% and 60% of the box height. The pair whose
    eyes the most searches agree on wins (a glasses frame or a brow fools one search, rarely
    all four); among those, the pair nearest :data:`TYPICAL_EYES`. Each eye is then moved onto
    its pupil (:func:`_pupil`).
    """
    x, y, w, h = box
    top, bottom = max(0, round(y)), min(grey.shape[0], round(y + 0.65 * h))
    left, right = max(0, round(x)), min(grey.shape[1], round(x + w))
    zoom = EYE_SEARCH_WIDTH / w
    band = cv2.resize(
        grey[top:bottom, left:right],
        (round((right - left) * zoom), round((bottom - top) * zoom)),
        interpolation=cv2.INTER_AREA if zoom < 1 else cv2.INTER_CUBIC,
    )

    def candidates(view: np.ndarray, cascade: str) -> np.ndarray:  # [N, 2] fractions of the box
        found = _cascade(cascade).detectMultiScale(
            view, scaleFactor=1.05, minNeighbors=3,
            minSize=(EYE_SEARCH_WIDTH // 10,) * 2, maxSize=(EYE_SEARCH_WIDTH // 2,) * 2,
        )  # fmt: skip
        return np.array(
            [
                ((left + (ex + ew / 2) / zoom - x) / w, (top + (ey + eh / 2) / zoom - y) / h)
                for ex, ey, ew, eh in found
            ]  # fmt: skip
        ).reshape(-1, 2)

    searches = [candidates(v, c) for v, c in product((cv2.equalizeHist(band), band), EYE_CASCADES)]
    centres = np.concatenate(searches)

    def support(c: np.ndarray) -> int:  # how many searches found an eye within 8% of c
        return sum(bool((np.abs(found - c).max(1) < 0.08).any()) for found in searches)

    typical = np.array(TYPICAL_EYES)
    pairs = [
        (support(a) + support(b) - float(np.abs(np.array([a, b]) - typical).sum()), i, j)
        for i, a in enumerate(centres)
        for j, b in enumerate(centres)
        if a[0] < 0.5 < b[0]
        and 0.25 < b[0] - a[0] < 0.7
        and abs(a[1] - b[1]) < 0.2
        and all(0.2 < v < 0.6 for v in (a[1], b[1]))
    ]
    if not pairs:
        return None
    _, i, j = max(pairs)
    (ax, ay), (bx, by) = centres[i], centres[j]
    left_eye, right_eye = (x + ax * w, y + ay * h), (x + bx * w, y + by * h)
    distance = math.dist(left_eye, right_eye)
    return _pupil(grey, left_eye, distance), _pupil(grey, right_eye, distance)


def _pupil(grey: np.ndarray, eye: tuple[float, float], distance: float) -> tuple[float, float]:
    """The eye centre moved onto the pupil: the centroid of the darkest :data:`PUPIL_SHARE` of
    a blurred window :data:`PUPIL_WINDOW` eye distances wide around the cascade's centre.

    The eye cascade's boxes are centred on the eye only to a few pixels, and their errors
    tilt the eye line by several degrees; the iris and pupil are the darkest blob near that
    centre (the brow and lashes lie mostly outside the window).
    """
    half = max(2, round(PUPIL_WINDOW * distance / 2))
    cx, cy = round(eye[0]), round(eye[1])
    x0, y0 = max(0, cx - half), max(0, cy - half)
    window = grey[y0 : cy + half + 1, x0 : cx + half + 1].astype(np.float32)
    if window.size < 9:
        return eye
    side = round(PUPIL_CLOSING * distance) | 1
    if side >= 3:  # thin dark lines (drawn lids, lashes) go; a small face has none to see
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
        window = cv2.morphologyEx(window, cv2.MORPH_CLOSE, disc)
    window = cv2.GaussianBlur(window, (0, 0), sigmaX=max(0.5, half / 5))
    dark = window <= np.quantile(window, PUPIL_SHARE)
    ys, xs = np.nonzero(dark)
    return float(x0 + xs.mean()), float(y0 + ys.mean())


# ----------------------------------------------------------------------------- aligning


def celeba_eyes() -> tuple[tuple[float, float], tuple[float, float]]:
    """CelebA's mean aligned eye centres (left, right) as (x, y) in the 178x218 image."""
    return (
        (EYE_MID[0] - EYE_HALF_DISTANCE, EYE_MID[1]),
        (EYE_MID[0] + EYE_HALF_DISTANCE, EYE_MID[1]),
    )


def eye_transform(left_eye: tuple[float, float], right_eye: tuple[float, float]) -> np.ndarray:
    """The similarity transform that takes the eyes to CelebA's aligned eye positions.

    With ``d = right_eye - left_eye``: rotate by ``-atan2(d_y, d_x)`` (eyes level), scale by
    ``2 * EYE_HALF_DISTANCE / |d|`` (CelebA's eye distance), move the eye midpoint to
    ``EYE_MID``.

    Returns:
        float64 [2, 3] matrix M: aligned (x, y) = M @ (x, y, 1) of the photo.
    """
    (lx, ly), (rx, ry) = left_eye, right_eye
    dx, dy = rx - lx, ry - ly
    scale = 2 * EYE_HALF_DISTANCE / math.hypot(dx, dy)
    angle = math.atan2(dy, dx)
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    rotate = np.array([[c, s], [-s, c]])  # rotation by -angle, scaled
    shift = np.array(EYE_MID) - rotate @ np.array([(lx + rx) / 2, (ly + ry) / 2])
    return np.hstack([rotate, shift[:, None]])


def align_eyes(
    image: PhotoLike, left_eye: tuple[float, float], right_eye: tuple[float, float]
) -> Image.Image:
    """Crop the 178x218 CelebA-aligned face, given the eye centres in the photo.

    Shrinking first reduces the region that lands in the crop with area averaging, so a large
    photo gives a sharp, alias-free result; the rotation then runs at about 1:1 (bicubic).
    Parts of the crop outside the photo repeat the photo's edge pixels.

    Args:
        image: anything :func:`load_photo` reads.
        left_eye: (x, y) of the eye on the image's left, in the pixels of ``load_photo(image)``.
        right_eye: (x, y) of the eye on the image's right.

    Returns:
        RGB image, 178x218, eyes at :func:`celeba_eyes`.
    """
    photo = np.asarray(load_photo(image))
    height, width = photo.shape[:2]
    for name, (ex, ey) in (("left_eye", left_eye), ("right_eye", right_eye)):
        if not (0 <= ex <= width and 0 <= ey <= height):
            raise PhotoError(f"{name} {(ex, ey)} lies outside the {width}x{height} photo")
    distance = math.hypot(right_eye[0] - left_eye[0], right_eye[1] - left_eye[1])
    if right_eye[0] <= left_eye[0] or distance < 2:
        raise PhotoError(
            f"left_eye {left_eye} must be left of right_eye {right_eye} (image left, as in "
            "CelebA's lefteye_x) and at least 2 pixels from it"
        )
    m = eye_transform(left_eye, right_eye)
    scale = 2 * EYE_HALF_DISTANCE / distance  # aligned pixels per photo pixel
    if scale < 1:
        # The photo region the crop comes from, with a margin for the interpolation kernel.
        inverse = cv2.invertAffineTransform(m)
        corners = np.array([[0, 0, 1], [WIDTH, 0, 1], [0, HEIGHT, 1], [WIDTH, HEIGHT, 1]])
        region = corners @ inverse.T
        (x0, y0), (x1, y1) = region.min(0), region.max(0)
        margin = 3 / scale
        x0, y0 = max(0, math.floor(x0 - margin)), max(0, math.floor(y0 - margin))
        x1, y1 = min(width, math.ceil(x1 + margin)), min(height, math.ceil(y1 + margin))
        size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
        photo = cv2.resize(photo[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
        # Shrunk pixel u is photo pixel x0 + (u + 0.5) / fx - 0.5 (centres at integers), same in y.
        fx, fy = size[0] / (x1 - x0), size[1] / (y1 - y0)
        m = m @ np.array(
            [[1 / fx, 0, x0 + 0.5 / fx - 0.5], [0, 1 / fy, y0 + 0.5 / fy - 0.5], [0, 0, 1]]
        )
    aligned = cv2.warpAffine(
        np.ascontiguousarray(photo), m, (WIDTH, HEIGHT),
        flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    return Image.fromarray(aligned)


def align(image: PhotoLike, pick: Literal["largest", "only"] = "largest") -> Image.Image:
    """A photo's face in CelebA's aligned frame: :func:`find_face`, then :func:`align_eyes`.

    Args:
        image: a path, bytes, PIL image, array or tensor (see :func:`load_photo`).
        pick: with several faces, ``"largest"`` aligns the largest and warns; ``"only"`` refuses.

    Returns:
        RGB image, 178x218, eyes at CelebA's mean aligned positions.

    Raises:
        PhotoError: unreadable or too small a photo; FaceNotFound, SeveralFaces (both
            PhotoErrors) as :func:`find_face` says. Guesses (eyes not found, several faces)
            raise :class:`AlignmentWarning`.
    """
    photo = load_photo(image)
    face = find_face(photo, pick=pick)
    return align_eyes(photo, face.left_eye, face.right_eye)


def to_model_input(aligned: Image.Image, size: int, crop: int = CROP) -> torch.Tensor:
    """The model's view of an aligned face: fel.data's centred ``crop`` square, resized.

    Args:
        aligned: a 178x218 face from :func:`align` (or a CelebA aligned image).
        size: the model's resolution (e.g. ``model.config.size``).
        crop: side of the centred square, as the training data used.

    Returns:
        float32 [1, 3, size, size] in [0, 1], exactly as :class:`fel.data.CelebA` serves images.
    """
    if aligned.size != (WIDTH, HEIGHT):
        raise PhotoError(
            f"expected a {WIDTH}x{HEIGHT} aligned face, got {aligned.width}x{aligned.height}: "
            "pass the photo through fel.faces.align() first"
        )
    pixels = crop_resize(aligned.convert("RGB"), size, crop)
    return torch.from_numpy(pixels).permute(2, 0, 1).float().div(255).unsqueeze(0)
