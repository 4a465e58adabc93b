"""SynthFaces: procedural faces written in CelebA's exact file layout, with ground truth.

Every image is a pure function of one row of continuous *factors* (identity, expression, pose,
lighting, accessories), so the dataset is reproducible byte for byte, and the same face can be
rendered again with one factor changed: :func:`counterfactual`. Labels are thresholds of the
factors (:func:`labels_from_factors`), with optional label noise, written to
``list_attr_celeba.txt`` exactly as CelebA writes its own.

Coordinates: the renderer draws in a face frame (u right, v down, in pixels of the 178x218 aligned
image) whose origin is the midpoint between the eyes, at CelebA's mean aligned position.
"""

from __future__ import annotations

import colorsys
import json
import multiprocessing
import os
import shutil
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from tqdm.auto import tqdm

from fel.data.attributes import ATTRIBUTES, check_attribute
from fel.data.celeba import CROP, crop_resize

GENERATOR_VERSION = "1.2"
WIDTH, HEIGHT = 178, 218  # CelebA's aligned image size
EYE_MID = (88.5, 111.5)  # CelebA's mean aligned eye midpoint (x, y)
EYE_HALF_DISTANCE = 19.5  # half the mean aligned inter-ocular distance

# ----------------------------------------------------------------------------- factors

#: Columns of ``list_factors_synthfaces.txt``: name -> meaning. All are floats.
FACTORS: dict[str, str] = {
    "identity": "identity number (1-based), as in identity_CelebA.txt",
    "male": "masculinity in [0,1]: jaw, brows, hair; Male = male > 0.5",
    "age": "apparent age in [0,1]: wrinkles, grey hair; Young = age < 0.5",
    "skin_tone": "skin lightness in [0,1], deep brown to very pale; Pale_Skin = skin_tone > 0.9",
    "skin_warmth": "skin hue in [-1,1], olive/yellow to pink",
    "face_width": "face half-width scale, about 0.9-1.1",
    "face_length": "face half-height scale, about 0.93-1.07",
    "eye_size": "eye width scale, about 0.85-1.15",
    "iris_hue": "iris colour in [0,1]: dark brown, brown, hazel, green, blue",
    "nose_size": "nose width and length in [0,1]; Big_Nose = nose_size > 0.5",
    "lip_fullness": "lip thickness in [0,1]; Big_Lips = lip_fullness > 0.5",
    "brow_arch": "eyebrow arch height in [0,1]; Arched_Eyebrows = brow_arch > 0.5",
    "brow_thickness": "eyebrow thickness in [0,1]; Bushy_Eyebrows = brow_thickness > 0.5",
    "ear_size": "ear size scale, about 0.85-1.15",
    "hair_color": "0 black, 1 brown, 2 blond, 3 grey, 4 auburn, 5 dark brown (not a CelebA label)",
    "hair_shade": "lightness jitter of the hair colour in [-1,1]",
    "hair_length": "hair length in [0,1]: 0 cropped, 1 below the shoulders",
    "hair_volume": "hair volume around the head in [0,1]",
    "waviness": "hair waviness in [0,1]; Wavy_Hair = waviness > 0.65, Straight_Hair < 0.2",
    "bangs": "fringe over the forehead in [0,1]; Bangs = bangs > 0.5",
    "hair_parting": "side of the parting in [-1,1]",
    "recession": "hairline recession in [0,1]; Receding_Hairline > 0.55, Bald > 0.85",
    "stubble": "stubble density in [0,1]; 5_o_Clock_Shadow = stubble > 0.5",
    "beard": "full beard density in [0,1] (No_Beard needs every facial-hair factor <= 0.5)",
    "mustache": "mustache density in [0,1]; Mustache = mustache > 0.5",
    "goatee": "chin-beard density in [0,1]; Goatee = goatee > 0.5",
    "sideburns": "sideburn length in [0,1]; Sideburns = sideburns > 0.5",
    "smile": "smile in [0,1]: mouth-corner lift and widening; Smiling = smile > 0.5",
    "mouth_open": "mouth opening in [0,1]; Mouth_Slightly_Open = mouth_open > 0.5",
    "eye_open": "eye opening in [0,1]; Narrow_Eyes = eye_open < 0.5",
    "brow_raise": "eyebrow raise in [0,1] (no CelebA label)",
    "gaze": "horizontal gaze in [-1,1]",
    "yaw": "head turn in [-1,1] (about +-20 degrees)",
    "pitch": "head nod in [-1,1] (about +-10 degrees)",
    "roll": "residual in-plane tilt in [-1,1] (about +-4 degrees; alignment levels the eyes)",
    "light_azimuth": "light direction around the face in [-1,1], left to right",
    "light_strength": "directional light strength in [0,1]",
    "brightness": "exposure in [-1,1]",
    "background_hue": "background hue in [0,1]",
    "background_light": "background lightness in [0,1]",
    "clothes_hue": "clothes hue in [0,1]",
    "eyeglasses": "glasses in [0,1]; Eyeglasses = eyeglasses > 0.5",
    "sunglasses": "1 when the glasses are dark lenses, else 0",
    "hat": "hat in [0,1]; Wearing_Hat = hat > 0.5",
    "hat_hue": "hat colour hue in [0,1]",
    "lipstick": "lipstick intensity in [0,1]; Wearing_Lipstick = lipstick > 0.5",
    "makeup": "eye make-up intensity in [0,1]; Heavy_Makeup = makeup > 0.5",
    "blush": "cheek colour in [0,1]; Rosy_Cheeks = blush > 0.5",
    "earrings": "earrings in [0,1]; Wearing_Earrings = earrings > 0.5",
    "blur": "camera blur in [0,1]; Blurry = blur > 0.5",
    "noise_seed": "seed of the image's fine texture (hair strands, skin, sensor noise)",
}
FACTOR_NAMES = tuple(FACTORS)
FACTOR_DTYPE = np.dtype([(name, np.float64) for name in FACTOR_NAMES])

#: CelebA attributes SynthFaces does not draw: written as -1 for every image.
NOT_DRAWN = (
    "Attractive", "Bags_Under_Eyes", "Chubby", "Double_Chin", "High_Cheekbones",
    "Oval_Face", "Pointy_Nose", "Wearing_Necklace", "Wearing_Necktie",
)  # fmt: skip


@dataclass(frozen=True)
class SynthConfig:
    """Knobs of the factor distribution. Couplings are 1 for CelebA-like, 0 for independent.

    Every coupling mixes a conditional rate with the marginal one, so the attribute frequencies
    stay the same whatever the coupling; only the correlations change.
    """

    images_per_identity: float = 20.0
    label_noise: float = 0.01
    smile_mouth_coupling: float = 1.0  # Smiling with Mouth_Slightly_Open
    gender_coupling: float = 1.0  # Male with beards and glasses, against lipstick and make-up
    age_coupling: float = 1.0  # Young against Gray_Hair and baldness
    jpeg_quality: int = 90


def _rate(male: np.ndarray, p_male: float, p_female: float, p_all: float, c: float) -> np.ndarray:
    """Per-image probability, mixing the gendered rate with the marginal ``p_all`` by coupling c."""
    return c * np.where(male > 0.5, p_male, p_female) + (1 - c) * p_all


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _away_from(x: np.ndarray, threshold: float = 0.5, gap: float = 0.08) -> np.ndarray:
    """Squeeze [0, t) into [0, t - gap) and [t, 1] into [t + gap, 1]: no face sits right at a
    label's threshold, where even a careful annotator could not tell (labels stay unchanged)."""
    low = x * (threshold - gap) / threshold
    high = threshold + gap + (x - threshold) * (1 - threshold - gap) / (1 - threshold)
    return np.where(x < threshold, low, high)


def sample_factors(n: int, seed: int = 0, config: SynthConfig = SynthConfig()) -> np.ndarray:
    """Draw the factors of ``n`` images: about ``images_per_identity`` images per identity.

    Args:
        n: number of images.
        seed: the whole dataset is a function of this seed (and the config).
        config: distribution knobs.

    Returns:
        structured array [n] with dtype FACTOR_DTYPE (fields: FACTOR_NAMES), values rounded to
        4 decimals so that the text file round-trips exactly.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    f = np.zeros(n, dtype=FACTOR_DTYPE)

    # Identities: Poisson-sized groups, shuffled through the file as in CelebA.
    counts = rng.poisson(max(config.images_per_identity - 1, 0), size=n) + 1
    n_ids = int(np.searchsorted(np.cumsum(counts), n) + 1)
    ident = np.repeat(np.arange(1, n_ids + 1), counts[:n_ids])[:n]
    rng.shuffle(ident)
    m = n_ids
    cg, ca = config.gender_coupling, config.age_coupling

    # --- identity factors (drawn per identity, then broadcast to its images)
    male_bin = rng.random(m) < 0.42
    male = np.clip(np.where(male_bin, 0.76, 0.24) + rng.normal(0, 0.08, m), 0, 1)
    age = rng.random(m) ** 2.65  # P(age < 0.5) = 0.77
    age = _away_from(age)
    old = age > 0.6
    gray = rng.random(m) < ca * np.where(old, 0.04 / 0.216, 0.0) + (1 - ca) * 0.04
    hair_color = rng.choice([0, 1, 2, 4, 5], size=m, p=[0.275, 0.205, 0.155, 0.09, 0.275])
    hair_color = np.where(gray, 3, hair_color)
    recession_mean = np.where(male_bin, 0.15 + 0.65 * (ca * age + (1 - ca) * 0.28), 0.08)
    recession = np.clip(rng.normal(recession_mean, np.where(male_bin, 0.24, 0.12)), 0, 1)
    long_hair = np.where(male_bin, rng.beta(1.5, 7, m), rng.beta(3, 2, m))
    facial = rng.random(m) < _rate(male, 1.0, 0.0, 0.42, cg)  # who may have facial hair
    stubble = np.where(
        facial & (rng.random(m) < 0.29), rng.uniform(0.55, 1, m), rng.uniform(0, 0.3, m) * male_bin
    )
    goatee = np.where(facial & (rng.random(m) < 0.16), rng.uniform(0.55, 1, m), 0.0)
    mustache = np.where(
        facial & (rng.random(m) < np.where(goatee > 0.5, 0.25, 0.03)), rng.uniform(0.55, 1, m), 0.0
    )
    beard = np.where(facial & (rng.random(m) < 0.07), rng.uniform(0.55, 1, m), 0.0)
    mustache = np.where(beard > 0.5, np.maximum(mustache, rng.uniform(0.55, 1, m)), mustache)
    sideburns = np.where(
        facial & ((beard > 0.5) | (rng.random(m) < 0.08)),
        rng.uniform(0.55, 1, m),
        rng.uniform(0, 0.3, m) * male_bin,
    )
    bangs_p = _rate(male, 0.08, 0.2, 0.15, cg) / 0.98
    bangs = np.where(
        (rng.random(m) < bangs_p) & (recession < 0.55),
        rng.uniform(0.55, 1, m),
        rng.uniform(0, 0.4, m),
    )
    arch_p = _rate(male, 0.09, 0.40, 0.27, cg)
    brow_arch = np.where(rng.random(m) < arch_p, rng.uniform(0.6, 1, m), rng.uniform(0, 0.4, m))
    bushy_p = _rate(male, 0.29, 0.06, 0.155, cg)
    brow_thickness = np.where(
        rng.random(m) < bushy_p, rng.uniform(0.6, 1, m), rng.uniform(0, 0.4, m)
    )
    nose_p = _rate(male, 0.35, 0.15, 0.235, cg)
    nose_size = np.where(rng.random(m) < nose_p, rng.uniform(0.6, 1, m), rng.uniform(0, 0.4, m))
    lips_p = _rate(male, 0.18, 0.28, 0.24, cg)
    lip_fullness = np.where(rng.random(m) < lips_p, rng.uniform(0.6, 1, m), rng.uniform(0, 0.4, m))
    wav = rng.random(m)
    wavy_p = _rate(male, 0.15, 0.44, 0.32, cg)
    straight = rng.random(m) < 0.31  # of the rest: Straight_Hair about 21% overall
    waviness = np.where(
        wav < wavy_p,
        rng.uniform(0.72, 1, m),
        np.where(straight, rng.uniform(0, 0.12, m), rng.uniform(0.3, 0.55, m)),
    )
    pale = rng.random(m) < 0.043
    skin_tone = np.where(pale, rng.uniform(0.94, 1, m), rng.beta(4, 2.2, m) * 0.84)
    glasses_p = _rate(male, 0.14, 0.045, 0.085, cg)
    wears_glasses = rng.random(m) < glasses_p
    lipstick_p = _rate(male, 0.01, 0.80, 0.47, cg)
    lipstick_person = rng.random(m) < np.clip(lipstick_p / 0.9, 0, 1)
    makeup_person = lipstick_person & (rng.random(m) < 0.4 / 0.5)
    earring_person = rng.random(m) < _rate(male, 0.01, 0.31, 0.19, cg) / 0.9

    per_id = {
        "male": male, "age": age, "skin_tone": skin_tone,
        "skin_warmth": rng.uniform(-1, 1, m), "face_width": rng.normal(1, 0.04, m) - 0.03 * (1 - male),
        "face_length": rng.normal(1, 0.025, m), "eye_size": rng.normal(1, 0.05, m),
        "iris_hue": rng.random(m) ** 1.6, "nose_size": nose_size, "lip_fullness": lip_fullness,
        "brow_arch": brow_arch, "brow_thickness": brow_thickness, "ear_size": rng.normal(1, 0.05, m),
        "hair_color": hair_color, "hair_shade": rng.uniform(-1, 1, m), "hair_length": long_hair,
        "hair_volume": rng.random(m), "waviness": waviness, "bangs": bangs,
        "hair_parting": rng.uniform(-1, 1, m), "recession": recession, "stubble": stubble,
        "beard": beard, "mustache": mustache, "goatee": goatee, "sideburns": sideburns,
    }  # fmt: skip
    idx = ident - 1
    f["identity"] = ident
    for name, values in per_id.items():
        f[name] = values[idx]

    # --- per-image factors
    smile_drive = rng.normal(-0.05, 1.0, n) + rng.normal(0, 0.6, m)[idx]
    smile_score = smile_drive / np.sqrt(1.36)
    f["smile"] = _away_from(_sigmoid(2.0 * smile_score))
    k = config.smile_mouth_coupling * 0.75
    mouth_score = k * smile_score + np.sqrt(1 - k**2) * rng.normal(0, 1, n) - 0.05
    f["mouth_open"] = _away_from(_sigmoid(2.0 * mouth_score))
    eye_score = 1.2 - 0.25 * smile_score + rng.normal(0, 1.0, n)
    f["eye_open"] = _away_from(_sigmoid(1.8 * eye_score))
    f["brow_raise"] = _sigmoid(rng.normal(0, 1.2, n))
    f["gaze"] = np.clip(rng.normal(0, 0.35, n), -1, 1)
    f["yaw"] = np.clip(rng.normal(0, 0.35, n), -1, 1)
    f["pitch"] = np.clip(rng.normal(0, 0.3, n), -1, 1)
    f["roll"] = np.clip(rng.normal(0, 0.3, n), -1, 1)
    f["light_azimuth"] = rng.uniform(-1, 1, n)
    f["light_strength"] = rng.uniform(0.1, 0.8, n)
    f["brightness"] = np.clip(rng.normal(0, 0.35, n), -1, 1)
    f["background_hue"] = rng.random(n)
    f["background_light"] = rng.beta(2, 2, n)
    f["clothes_hue"] = rng.random(n)
    glasses_on = wears_glasses[idx] & (rng.random(n) < 0.76)
    f["eyeglasses"] = np.where(glasses_on, rng.uniform(0.6, 1, n), 0.0)
    f["sunglasses"] = (glasses_on & (rng.random(n) < 0.2)).astype(np.float64)
    hat_on = rng.random(n) < 0.048
    f["hat"] = np.where(hat_on, rng.uniform(0.6, 1, n), 0.0)
    f["hat_hue"] = rng.random(n)
    f["lipstick"] = np.where(
        lipstick_person[idx] & (rng.random(n) < 0.9),
        rng.uniform(0.55, 1, n),
        rng.uniform(0, 0.25, n) * (1 - male_bin[idx]),
    )
    f["makeup"] = np.where(
        makeup_person[idx] & (rng.random(n) < 0.95),
        rng.uniform(0.55, 1, n),
        rng.uniform(0, 0.4, n) * (f["lipstick"] > 0.5),
    )
    blush_p = np.where(f["makeup"] > 0.5, 0.13, 0.015)
    f["blush"] = np.where(rng.random(n) < blush_p, rng.uniform(0.55, 1, n), rng.uniform(0, 0.35, n))
    f["earrings"] = np.where(
        earring_person[idx] & (rng.random(n) < 0.9), rng.uniform(0.6, 1, n), 0.0
    )
    blurry = rng.random(n) < 0.05
    f["blur"] = np.where(blurry, rng.uniform(0.55, 1, n), rng.uniform(0, 0.3, n) ** 2)
    f["noise_seed"] = rng.integers(0, 2**24, n)
    for name in FACTOR_NAMES:
        f[name] = np.round(f[name], 4)
    return f


def labels_from_factors(factors: np.ndarray) -> np.ndarray:
    """The factor-to-label rule: CelebA's 40 labels, as int8 [n, 40] in {-1, 1}.

    Attributes in NOT_DRAWN are -1 everywhere. No label noise here: see :func:`noisy_labels`.
    """
    f = np.atleast_1d(factors)
    bald = f["recession"] > 0.85
    hair_visible = ~bald
    rules = {
        "5_o_Clock_Shadow": f["stubble"] > 0.5,
        "Arched_Eyebrows": f["brow_arch"] > 0.5,
        "Bald": bald,
        "Bangs": (f["bangs"] > 0.5) & hair_visible & (f["hat"] <= 0.5),
        "Big_Lips": f["lip_fullness"] > 0.5,
        "Big_Nose": f["nose_size"] > 0.5,
        "Black_Hair": (f["hair_color"] == 0) & hair_visible,
        "Blond_Hair": (f["hair_color"] == 2) & hair_visible,
        "Blurry": f["blur"] > 0.5,
        "Brown_Hair": (f["hair_color"] == 1) & hair_visible,
        "Bushy_Eyebrows": f["brow_thickness"] > 0.5,
        "Eyeglasses": f["eyeglasses"] > 0.5,
        "Goatee": f["goatee"] > 0.5,
        "Gray_Hair": (f["hair_color"] == 3) & hair_visible,
        "Heavy_Makeup": f["makeup"] > 0.5,
        "Male": f["male"] > 0.5,
        "Mouth_Slightly_Open": f["mouth_open"] > 0.5,
        "Mustache": f["mustache"] > 0.5,
        "Narrow_Eyes": f["eye_open"] < 0.5,
        "No_Beard": ~(
            (f["stubble"] > 0.5) | (f["beard"] > 0.5) | (f["mustache"] > 0.5) | (f["goatee"] > 0.5)
        ),
        "Pale_Skin": f["skin_tone"] > 0.9,
        "Receding_Hairline": (f["recession"] > 0.55) & ~bald,
        "Rosy_Cheeks": f["blush"] > 0.5,
        "Sideburns": f["sideburns"] > 0.5,
        "Smiling": f["smile"] > 0.5,
        "Straight_Hair": (f["waviness"] < 0.2) & hair_visible,
        "Wavy_Hair": (f["waviness"] > 0.65) & hair_visible,
        "Wearing_Earrings": f["earrings"] > 0.5,
        "Wearing_Hat": f["hat"] > 0.5,
        "Wearing_Lipstick": f["lipstick"] > 0.5,
        "Young": f["age"] < 0.5,
    }
    labels = -np.ones((len(f), len(ATTRIBUTES)), dtype=np.int8)
    for name, positive in rules.items():
        labels[:, ATTRIBUTES.index(name)] = np.where(positive, 1, -1)
    return labels


DRAWN = tuple(a for a in ATTRIBUTES if a not in NOT_DRAWN)


def noisy_labels(labels: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Mislabel a fraction ``rate`` of each drawn attribute's positives, and as many negatives.

    Flipping both classes in equal numbers keeps every attribute's frequency; flipping a fixed
    share of *all* labels instead would swamp rare attributes (1% of the 98% non-bald faces is half
    as many as the bald ones). Undrawn attributes stay -1.
    """
    rng = np.random.default_rng([seed, 1])
    out = labels.copy()
    for a in DRAWN:
        j = ATTRIBUTES.index(a)
        pos, neg = np.flatnonzero(labels[:, j] > 0), np.flatnonzero(labels[:, j] < 0)
        k = min(int(round(rate * len(pos))), len(neg))
        out[rng.choice(pos, k, replace=False), j] = -1
        out[rng.choice(neg, k, replace=False), j] = 1
    return out.astype(np.int8)


def counterfactual(factors: np.ndarray, **changes: float) -> np.ndarray:
    """The same face(s) with some factors set to new values: same identity, pose and texture.

    >>> wider = counterfactual(faces[3], smile=0.95)   # then render(wider)

    Raises KeyError (listing close names) for an unknown factor.
    """
    out = np.array(factors, dtype=FACTOR_DTYPE, copy=True)
    for name, value in changes.items():
        out[check_attribute(name, FACTOR_NAMES)] = value
    return out


# ----------------------------------------------------------------------------- rendering

# ----------------------------------------------------------------------------- rendering


def _fill(d: np.ndarray, soft: float = 1.0) -> np.ndarray:
    """Coverage of a shape from its signed distance in pixels (negative inside), anti-aliased."""
    return np.clip(0.5 - d / soft, 0.0, 1.0)


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


SKIN_TONES = np.array(  # skin_tone 0 -> 1
    [[0.27, 0.16, 0.10], [0.45, 0.29, 0.19], [0.64, 0.44, 0.31], [0.80, 0.60, 0.46],
     [0.91, 0.74, 0.62], [0.95, 0.82, 0.73], [0.97, 0.87, 0.80]],
    dtype=np.float32,
)  # fmt: skip
HAIR_COLOURS = np.array(
    [
        [0.07, 0.06, 0.06],  # black
        [0.38, 0.24, 0.13],  # brown
        [0.86, 0.72, 0.46],  # blond
        [0.70, 0.70, 0.70],  # grey
        [0.55, 0.23, 0.11],  # auburn
        [0.20, 0.13, 0.08],  # dark brown
    ],
    dtype=np.float32,
)
IRIS_COLOURS = np.array(
    [
        [0.18, 0.10, 0.05],
        [0.35, 0.20, 0.08],
        [0.45, 0.38, 0.16],
        [0.30, 0.45, 0.25],
        [0.30, 0.45, 0.65],
    ],
    dtype=np.float32,
)
# One fixed tile of Gaussian noise; each image reads windows of it at offsets given by its seed,
# so texture depends only on `noise_seed`, never on which drawing branches ran.
_NOISE = np.random.default_rng(20261125).standard_normal((512, 512)).astype(np.float32)
_GRIDS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


class _Canvas:
    """A float RGB image with the face frame's (u, v) coordinates of every pixel."""

    def __init__(self, width: int, height: int, f: Mapping[str, float]):
        self.s = width / WIDTH  # pixels per face-frame unit
        self.w, self.h = width, height
        roll = np.deg2rad(4.0 * f["roll"])
        self.cos, self.sin = float(np.cos(roll)), float(np.sin(roll))
        self.ox = EYE_MID[0] * self.s
        self.oy = (EYE_MID[1] + 3.0 * f["pitch"]) * self.s
        if (width, height) not in _GRIDS:
            ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
            _GRIDS[width, height] = xs, ys
        xs, ys = _GRIDS[width, height]
        xs, ys = (xs - self.ox) / self.s, (ys - self.oy) / self.s
        self.u = xs * self.cos + ys * self.sin
        self.v = ys * self.cos - xs * self.sin
        self.img = np.empty((height, width, 3), np.float32)
        seed = int(f["noise_seed"])
        self.rand = np.random.default_rng(seed).random(8)  # per-image scalars, fixed order
        self.noise_at = (seed % 251, (seed // 251) % 251)

    def box(self, cu: float, cv: float, ru: float, rv: float) -> tuple[slice, slice]:
        """Pixel slices covering the face-frame rectangle centre (cu, cv), half-sizes (ru, rv)."""
        x = self.ox + self.s * (cu * self.cos - cv * self.sin)
        y = self.oy + self.s * (cu * self.sin + cv * self.cos)
        slack = max(ru, rv) * abs(self.sin) + 2  # the tilt
        x0 = int(max(0, x - self.s * (ru + slack)))
        x1 = int(min(self.w, x + self.s * (ru + slack) + 1))
        y0 = int(max(0, y - self.s * (rv + slack)))
        y1 = int(min(self.h, y + self.s * (rv + slack) + 1))
        return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))

    def uv(self, box):
        return self.u[box], self.v[box]

    def noise(self, box, channel: int = 0) -> np.ndarray:
        """Standard normal noise over ``box``, the same for the same pixel and seed."""
        oy, ox = self.noise_at[0] + 7 * channel, self.noise_at[1] + 13 * channel
        return _NOISE[oy + box[0].start : oy + box[0].stop, ox + box[1].start : ox + box[1].stop]

    def paint(self, box, alpha: np.ndarray, colour) -> None:
        if alpha.size == 0:
            return
        region = self.img[box]
        region += alpha[..., None] * (np.asarray(colour, np.float32) - region)


def _ellipse_d(u, v, cu, cv, a, b, s):
    """Approximate signed distance (pixels) to an ellipse."""
    k = np.sqrt(((u - cu) / a) ** 2 + ((v - cv) / b) ** 2)
    return (k - 1.0) * (min(a, b) * s)


def _skin_colour(f) -> np.ndarray:
    t = f["skin_tone"] * (len(SKIN_TONES) - 1)
    i = min(int(t), len(SKIN_TONES) - 2)
    skin = SKIN_TONES[i] + (SKIN_TONES[i + 1] - SKIN_TONES[i]) * (t - i)
    warmth = f["skin_warmth"] * np.array([0.02, -0.01, -0.04], np.float32)
    return np.clip(skin + warmth, 0, 1).astype(np.float32)


def render(factors, size: tuple[int, int] = (WIDTH, HEIGHT)) -> np.ndarray:
    """Draw one face.

    Args:
        factors: one row of :func:`sample_factors` (a structured scalar or a name -> value map).
        size: (width, height) of the output; the face scales with the width.

    Returns:
        uint8 array [height, width, 3].
    """
    f = {name: float(factors[name]) for name in FACTOR_NAMES}
    width, height = size
    c = _Canvas(width, height, f)
    s = c.s
    male = f["male"]
    yaw = f["yaw"] * 9.0  # horizontal shift of the nose tip, in pixels
    light = np.array([0.8 * f["light_azimuth"], -0.45, 0.6], np.float32)
    light /= np.linalg.norm(light)
    ls = f["light_strength"]
    skin = _skin_colour(f)
    hair = np.clip(HAIR_COLOURS[int(f["hair_color"])] * (1 + 0.15 * f["hair_shade"]), 0, 1)
    bald = f["recession"] > 0.85

    # 1. Background: a vertical gradient.
    bg = _hsv(f["background_hue"], 0.2 + 0.35 * c.rand[0], 0.15 + 0.8 * f["background_light"])
    grad = (1.05 - 0.25 * (np.arange(height, dtype=np.float32) / height))[:, None, None]
    c.img[:] = bg * grad

    # Face geometry (face frame, pixels at 178 width).
    fw = 43.0 * f["face_width"] * (1 + 0.05 * (male - 0.5))
    fh = 60.0 * f["face_length"]
    fcv = 14.0  # face centre below the eye line
    fcu = -0.45 * yaw
    jaw = 0.34 - 0.2 * male  # taper of the lower face; men's jaws are squarer

    def face_d(u, v):
        dv = (v - fcv) / fh
        taper = 1.0 - jaw * np.clip(dv, 0, 1) ** 2
        k = np.sqrt(((u - fcu) / (fw * taper)) ** 2 + dv**2)
        return (k - 1.0) * (fw * s)

    head_cu, head_cv = fcu * 0.8, fcv - 14
    head_a, head_b = fw * 1.03, fh * 0.98
    vol = 1.0 + 0.10 * f["hair_volume"] + 0.06 * f["waviness"]

    # 2. Clothes, then long hair behind the head falling over the shoulders.
    b = c.box(0, 125, 110, 30)
    u, v = c.uv(b)
    clothes = _hsv(f["clothes_hue"], 0.5, 0.2 + 0.55 * c.rand[1])
    c.paint(b, _fill((shoulder_top_at(u, fw) - v) * s, 1.5), clothes)
    length = f["hair_length"]
    if not bald and length > 0.2 and f["hat"] <= 0.5:
        top, bottom = head_cv - head_b * vol, 25 + 110 * length
        mid, half_h = (top + bottom) / 2, (bottom - top) / 2
        half_w = head_a * vol * (1.05 + 0.25 * length)
        b = c.box(head_cu, mid, half_w + 5, half_h + 3)
        u, v = c.uv(b)
        wave = f["waviness"] * 3.0 * np.sin(v * 0.25 + 1.7 * c.rand[2])
        k = np.abs((u - head_cu) / (half_w + wave)) ** 2.2 + np.abs((v - mid) / half_h) ** 3
        d = (k ** (1 / 3) - 1) * (half_w * s)
        c.paint(b, _fill(d, 1.5), _hair_texture(c, b, hair * 0.78, u, v, f))

    # 3. Neck (with the chin's shadow) and ears.
    b = c.box(fcu * 0.5, 95, fw * 0.8, 35)
    u, v = c.uv(b)
    neck_w = fw * (0.56 + 0.1 * male)
    neck_d = np.maximum((np.abs(u - fcu * 0.5) - neck_w) * s, (fcv + 20 - v) * s)
    neck_d = np.maximum(neck_d, (v - shoulder_top_at(u, fw)) * s + 4)
    shade = 1.0 - 0.35 * np.exp(-(((v - fcv - fh * 0.8) / 9) ** 2))
    c.paint(b, _fill(neck_d), skin[None, None, :] * (0.82 * shade)[..., None])
    for side in (-1, 1):
        eu = fcu + side * (fw * 0.98 + 2.0) - 0.3 * yaw
        a, bb = 5.5 * f["ear_size"], 11.5 * f["ear_size"]
        b = c.box(eu, 14, a + 2, bb + 2)
        u, v = c.uv(b)
        c.paint(
            b,
            _fill(_ellipse_d(u, v, eu, 14, a, bb, s)),
            skin * (0.88 - 0.06 * side * f["light_azimuth"]),
        )
        c.paint(
            b,
            _fill(_ellipse_d(u, v, eu + side * 0.8, 14, a * 0.45, bb * 0.6, s), 2.0) * 0.3,
            skin * 0.55,
        )

    # 4. Head and face, shaded as an ellipsoid lit from `light`.
    b = c.box(
        fcu, (head_cv - head_b + fcv + fh) / 2, fw * 1.06, (fcv + fh - head_cv + head_b) / 2 + 2
    )
    u, v = c.uv(b)
    d = np.minimum(face_d(u, v), _ellipse_d(u, v, head_cu, head_cv, head_a, head_b, s))
    nu, nv = (u - fcu) / fw, (v - fcv) / (fh * 1.2)
    nz = np.sqrt(np.clip(1 - nu**2 - nv**2, 0.02, 1))
    diffuse = np.clip(nu * light[0] + nv * light[1] + nz * light[2], 0, 1)
    shade = (1 - 0.5 * ls) + 0.5 * ls * diffuse + 0.04 + 0.012 * c.noise(b)
    shade *= 1 - 0.14 * np.clip((np.abs(nu) - 0.62) / 0.38, 0, 1)  # darker at the rim
    c.paint(b, _fill(d), skin[None, None, :] * shade[..., None])

    _facial_hair(c, f, hair, fcu, fw, fh, fcv, face_d, yaw)

    # 5. Cheeks: blush (make-up or rosy cheeks) and the highlight a smile lifts.
    smile = f["smile"]
    for side in (-1, 1):
        cu, cv = fcu + side * fw * 0.55 + 0.2 * yaw, 22 - 3 * smile
        b = c.box(cu, cv, 12, 10)
        u, v = c.uv(b)
        blush = 0.5 * f["blush"] + 0.1 * f["makeup"] + 0.06 * (1 - male)
        a = _smooth(1 - ((u - cu) / 11) ** 2 - ((v - cv) / 8) ** 2) * blush
        c.paint(b, a, np.array([0.86, 0.33, 0.36]))
        a = _smooth(1 - ((u - cu + side * 2) / 8) ** 2 - ((v - cv + 3) / 5) ** 2) * (
            0.05 + 0.12 * smile
        )
        c.paint(b, a, np.minimum(skin * 1.3, 1))

    # 6. Eyes, brows, nose, mouth, lines of age.
    squint = 0.22 * max(smile - 0.5, 0)  # a real smile narrows the eyes a little
    for side in (-1, 1):
        cu = side * EYE_HALF_DISTANCE + 0.25 * yaw
        _eye(c, f, side, cu, max(f["eye_open"] - squint, 0.0), skin)
        _brow(c, f, side, cu, hair)
    _nose(c, f, yaw, skin, light)
    _mouth(c, f, yaw, skin)
    _wrinkles(c, f, skin)

    # 7. Front hair or bald scalp, hat, glasses, earrings.
    if not bald:
        _front_hair(c, f, hair, head_cu, head_cv, head_a * vol, head_b * vol, fcu, fw)
    elif f["hat"] <= 0.5:
        b = c.box(head_cu, head_cv - head_b * 0.6, head_a, head_b * 0.45)
        u, v = c.uv(b)
        shine = _smooth(
            1 - ((u - head_cu + 10 * light[0]) / 16) ** 2 - ((v - head_cv + 42) / 8) ** 2
        )
        c.paint(b, shine * 0.22, np.ones(3))
    if f["hat"] > 0.5:
        _hat(c, f, head_cu, head_cv, head_a * max(vol, 1.06), head_b * max(vol, 1.06))
    if f["eyeglasses"] > 0.5:
        _glasses(c, f, yaw, fcu, fw)
    if f["earrings"] > 0.5:
        for side in (-1, 1):
            eu = fcu + side * (fw * 0.98 + 3.0) - 0.3 * yaw
            b = c.box(eu, 27, 4, 4)
            u, v = c.uv(b)
            c.paint(b, _fill(_ellipse_d(u, v, eu, 27, 1.9, 1.9, s)), np.array([0.95, 0.8, 0.35]))

    # 8. Camera: exposure, sensor noise, blur.
    full = (slice(0, height), slice(0, width))
    img = c.img * (1 + 0.18 * f["brightness"]) + (0.006 * c.noise(full, 1))[..., None]
    out = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    if f["blur"] > 0.05:
        out = out.filter(ImageFilter.GaussianBlur(radius=3.2 * f["blur"] * s))
    return np.asarray(out)


def shoulder_top_at(u: np.ndarray, fw: float) -> np.ndarray:
    """Height (v) of the top of the clothes at horizontal position u."""
    return 90 + 0.004 * u**2 - 12 * np.exp(-((u / (fw * 0.75)) ** 2))


def _hair_texture(c: _Canvas, box, colour, u, v, f) -> np.ndarray:
    """Hair colour with strands (a sinusoid along the hair, wavy when the hair is) and a sheen."""
    phase = u * 0.9 + (0.6 + 4.0 * f["waviness"]) * np.sin(v * 0.25) + 6.28 * c.rand[3]
    tone = 0.9 + 0.1 * np.sin(phase) + 0.03 * c.noise(box, 2)
    tone *= 1 + 0.22 * np.exp(-(((v + 40) / 9) ** 2))
    return np.asarray(colour, np.float32)[None, None, :] * tone[..., None]


def _facial_hair(c: _Canvas, f, hair, fcu, fw, fh, fcv, face_d, yaw) -> None:
    if max(f["stubble"], f["beard"], f["goatee"], f["mustache"], f["sideburns"]) <= 0.05:
        return
    grey = f["hair_color"] == 3
    beard_col = (
        np.array([0.55, 0.55, 0.55], np.float32) if grey else np.asarray(hair, np.float32) * 0.8
    )
    b = c.box(fcu, fcv + fh * 0.45, fw + 2, fh * 0.6)
    u, v = c.uv(b)
    inside = _fill(face_d(u, v), 1.5)
    mouth_v = 41.0
    top = 22 + 9 * (1 - ((u - fcu) / fw) ** 2)  # from the cheeks to under the nose
    region = _smooth((v - top) / 6) * inside
    grain = np.clip(0.8 + 0.25 * c.noise(b, 3), 0, 1)
    if f["stubble"] > 0.05:
        c.paint(
            b, region * grain * 0.42 * f["stubble"], np.array([0.13, 0.12, 0.13]) + beard_col * 0.4
        )
    if f["beard"] > 0.05:
        lips = _smooth(1 - ((u - 0.55 * yaw) / 17) ** 2 - ((v - mouth_v - 1) / 7) ** 2)
        c.paint(b, region * (1 - lips) * f["beard"] * 0.95 * grain, beard_col)
    if f["goatee"] > 0.05:
        a = _smooth(1.3 - ((u - 0.55 * yaw) / 10) ** 2 - ((v - mouth_v - 13) / 9) ** 2)
        c.paint(b, a * inside * f["goatee"] * 0.95 * grain, beard_col)
    if f["mustache"] > 0.05:
        band = _smooth(1.6 * (1 - ((u - 0.55 * yaw) / 17) ** 2 - ((v - mouth_v + 6.5) / 3.8) ** 2))
        c.paint(b, band * f["mustache"] * 0.95 * grain, beard_col)
    if f["sideburns"] > 0.05:
        for side in (-1, 1):
            cu = fcu + side * fw * 0.9
            a = (
                _smooth(1.2 - ((u - cu) / 6.5) ** 2 - ((v - 10) / (12 + 20 * f["sideburns"])) ** 2)
                * inside
            )
            c.paint(b, a * min(1.0, 1.2 * f["sideburns"]), beard_col)


def _eye(c: _Canvas, f, side: int, cu: float, openness: float, skin) -> None:
    s = c.s
    a = 8.2 * f["eye_size"] * (1 - 0.1 * side * f["yaw"])
    h_up = 0.8 + 4.6 * openness
    h_lo = 1.2 + 1.6 * openness
    b = c.box(cu, -4, a + 6, 12)
    u, v = c.uv(b)
    x = (u - cu) / a
    t = np.clip(1 - x**2, 0, 1)
    lift = 0.8 * side * x  # the outer corner sits a little higher
    v_up = -h_up * t**0.8 - lift
    v_lo = h_lo * t - lift * 0.5
    d = np.maximum(np.maximum(v_up - v, v - v_lo) * s, (np.abs(x) - 1) * (a * s))
    eye = _fill(d)
    socket = _smooth(1 - x**2 * 0.8 - ((v + 3.5) / 5.5) ** 2)
    c.paint(b, socket * 0.2, skin * 0.6)
    if f["makeup"] > 0.05:
        lid = _smooth(1 - x**2 * 0.9 - ((v + 4.5) / 4) ** 2) * f["makeup"] * 0.55
        c.paint(b, lid, np.array([0.35, 0.22, 0.32]))
    c.paint(b, eye, np.array([0.93, 0.91, 0.88]))
    iris_u = cu + 2.2 * f["gaze"] + 0.8 * f["yaw"]
    r = 3.5 * f["eye_size"]
    c.paint(
        b,
        eye * _fill(_ellipse_d(u, v, iris_u, 0.3, r, r, s)),
        IRIS_COLOURS[min(int(f["iris_hue"] * 5), 4)],
    )
    c.paint(
        b, eye * _fill(_ellipse_d(u, v, iris_u, 0.3, 1.5, 1.5, s)), np.array([0.03, 0.03, 0.03])
    )
    c.paint(b, eye * _fill(_ellipse_d(u, v, iris_u + 1.0, -0.9, 0.7, 0.7, s)) * 0.9, np.ones(3))
    liner = 0.9 + 0.9 * f["makeup"] + 0.3 * (1 - f["male"])  # lashes, thicker with eyeliner
    lash = _fill((np.abs(v - v_up + 0.3) - liner / 2) * s) * _fill((np.abs(x) - 1.08) * (a * s))
    c.paint(b, lash * 0.9, np.array([0.08, 0.06, 0.06]))
    crease = _fill((np.abs(v - (v_up - 2.5 - 1.2 * openness)) - 0.4) * s, 1.5) * t * 0.35
    c.paint(b, crease, skin * 0.55)
    c.paint(b, _fill((np.abs(v - v_lo - 0.3) - 0.35) * s, 1.2) * t * 0.4, skin * 0.6)


def _brow(c: _Canvas, f, side: int, cu: float, hair) -> None:
    s = c.s
    length = 11.0
    cv = -10.0 - 4.0 * f["brow_raise"] - 0.5 * f["eye_open"]
    arch = 0.8 + 4.5 * f["brow_arch"]
    thick = 1.6 + 2.4 * f["brow_thickness"] + 0.7 * f["male"]
    b = c.box(cu + side, cv - 2, length + 3, arch + thick + 3)
    u, v = c.uv(b)
    x = side * (u - cu - side) / length  # -1 inner end, +1 outer end
    peak = 0.35
    curve = cv - arch * np.clip(1 - ((x - peak) / (1.35 - peak * np.sign(x - peak))) ** 2, 0, 1)
    curve = curve + 1.2 * np.clip(x, 0, 1) ** 2  # the tail drops
    t = thick * (1.0 - 0.45 * np.clip((x + 1) / 2, 0, 1))
    d = np.maximum(np.abs(v - curve) - t / 2, (np.abs(x) - 1) * length) * s
    col = np.asarray(hair, np.float32) * (0.75 if f["hair_color"] not in (2, 3) else 0.6)
    c.paint(b, _fill(d, 1.3) * 0.9, col)


def _nose(c: _Canvas, f, yaw: float, skin, light) -> None:
    s = c.s
    size = f["nose_size"]
    w = 5.0 + 3.0 * size
    tip_v = 22.0 + 2.5 * size
    cu = yaw
    b = c.box(cu, 12, w + 5, 14)
    u, v = c.uv(b)
    side = -1 if light[0] > 0 else 1  # the bridge's shadow falls away from the light
    bridge = (
        _smooth(1 - ((u - cu - side * (2.5 + 0.5 * w)) / 2.2) ** 2)
        * _smooth((v - 2) / 8)
        * _smooth((tip_v - v) / 4)
    )
    c.paint(b, bridge * 0.22, skin * 0.6)
    for sd in (-1, 1):
        wing = _fill(
            (np.abs(np.hypot((u - cu - sd * w) / 2.6, (v - tip_v + 0.5) / 2.4) - 1) - 0.18)
            * (2.6 * s),
            1.4,
        )
        c.paint(b, wing * 0.3 * (v > tip_v - 2.8), skin * 0.55)
        nostril = _fill(
            _ellipse_d(u, v, cu + sd * w * 0.48, tip_v + 1.2, 1.9 + 0.6 * size, 1.1, s), 1.2
        )
        c.paint(b, nostril * 0.8, skin * 0.3)
    under = _smooth(1 - ((u - cu) / (w + 1)) ** 2 - ((v - tip_v - 3) / 1.6) ** 2)
    c.paint(b, under * 0.3, skin * 0.55)
    tip = _smooth(1 - ((u - cu + 1) / (w * 0.5)) ** 2 - ((v - tip_v + 2.5) / 2.5) ** 2)
    c.paint(b, tip * 0.22, np.minimum(skin * 1.25, 1))


def _mouth(c: _Canvas, f, yaw: float, skin) -> None:
    s = c.s
    smile, opening, full = f["smile"], f["mouth_open"], f["lip_fullness"]
    cu = 0.55 * yaw
    hw = 15.0 * (1 + 0.25 * smile)  # half-width: wider when smiling
    mid_v = 41.0 + 2.0 * smile + 1.0 * opening
    corner_v = 41.0 - 9.0 * (smile - 0.3)  # corners rise with the smile, droop without
    gap = 8.5 * opening**1.3 + 4.0 * max(smile - 0.4, 0)
    t_up = 2.3 + 2.2 * full - 0.3 * f["male"]
    t_lo = 3.0 + 2.8 * full - 0.4 * f["male"]
    b = c.box(cu, mid_v + 2, hw + 4, 14)
    u, v = c.uv(b)
    x = (u - cu) / hw
    w2 = np.clip(1 - x**2, 0, 1)
    line = mid_v + (corner_v - mid_v) * x**2
    open_up = line - 0.3 * gap * w2**0.7
    open_lo = line + 0.7 * gap * w2**0.7
    bow = 1 - 0.3 * np.exp(-((x / 0.18) ** 2))  # cupid's bow
    top = open_up - t_up * w2**0.6 * bow
    bottom = open_lo + t_lo * w2**0.6
    outside_x = (np.abs(x) - 1) * (hw * s)
    lips_d = np.maximum(np.maximum(top - v, v - bottom) * s, outside_x)
    natural = skin * np.array([0.92, 0.66, 0.64]) + np.array([0.06, 0.0, 0.0]) * (
        1 - 0.6 * f["male"]
    )
    lip_col = natural + (np.array([0.72, 0.07, 0.17]) - natural) * (0.9 * f["lipstick"])
    for sd in (-1, 1):  # smile lines from the nose wings to the mouth corners
        fold = np.abs(u - (cu + sd * (hw + 2.5 - 1.5 * (corner_v - v) / 10))) - 0.6
        a = _fill(fold * s, 1.6) * _smooth((v - 24) / 5) * _smooth((corner_v + 4 - v) / 4)
        c.paint(b, a * (0.08 + 0.4 * smile), skin * 0.55)
    c.paint(b, _fill(lips_d), lip_col)
    sheen = _smooth(1 - (x / 0.55) ** 2 - ((v - (open_lo + bottom) / 2 + 0.5) / 1.3) ** 2)
    c.paint(b, sheen * 0.22, np.ones(3))
    shadow = _smooth(1 - (x / 0.6) ** 2 - ((v - bottom - 2.5) / 2) ** 2) * _fill(
        (bottom + 0.5 - v) * s
    )
    c.paint(b, shadow * 0.25, skin * 0.5)
    inner = _fill(np.maximum(np.maximum(open_up - v, v - open_lo) * s, outside_x + 1.5 * s))
    c.paint(b, inner, np.array([0.28, 0.07, 0.08]))
    teeth = (
        inner * _fill((v - (open_up + 0.55 * gap + 0.6)) * s) * _fill((np.abs(x) - 0.78) * (hw * s))
    )
    c.paint(b, teeth, np.array([0.94, 0.92, 0.86]))
    seam = _fill((np.abs(v - line) - 0.45) * s) * _fill(outside_x) * (1 - min(gap / 1.5, 1))
    c.paint(b, seam * 0.8, lip_col * 0.45)


def _wrinkles(c: _Canvas, f, skin) -> None:
    """Lines of age: forehead lines (under no fringe) and lines under the eyes, from age 0.4 on."""
    amount = 0.55 * float(_smooth(np.array((f["age"] - 0.4) / 0.4)))
    if amount <= 0.01:
        return
    s = c.s
    if f["bangs"] <= 0.5:
        b = c.box(0, -27, 26, 8)
        u, v = c.uv(b)
        for k, dv in enumerate((-24.0, -29.0)):
            a = _fill((np.abs(v - dv - 0.004 * u**2) - 0.4) * s, 1.5) * _smooth(
                1 - (u / (22 - 4 * k)) ** 2
            )
            c.paint(b, a * amount, skin * 0.6)
    for side in (-1, 1):
        cu = side * EYE_HALF_DISTANCE + 0.25 * f["yaw"] * 9.0
        b = c.box(cu, 6, 10, 4)
        u, v = c.uv(b)
        line = 5.5 + 0.03 * (u - cu) ** 2
        a = _fill((np.abs(v - line) - 0.35) * s, 1.4) * _smooth(1 - ((u - cu) / 7) ** 2)
        c.paint(b, a * amount, skin * 0.55)


def _front_hair(c: _Canvas, f, hair, hcu, hcv, ha, hb, fcu, fw) -> None:
    s = c.s
    rec, bangs, parting = f["recession"], f["bangs"], f["hair_parting"]
    hairline = -30.0 - 20.0 * max(rec - 0.25, 0) / 0.6
    b = c.box(hcu, hcv - hb * 0.2, ha * 1.05 + 2, hb * 0.85)
    u, v = c.uv(b)
    x = (u - hcu) / ha
    temples = 6.0 * rec * np.exp(-(((np.abs(x) - 0.55) / 0.22) ** 2))  # an M-shaped recession
    edge = hairline - temples + 3.0 * parting * x + 4.0 * np.abs(x) ** 3
    if bangs > 0.5:
        jag = 1.2 * np.sin(u * 0.9 + 2 * parting) + f["waviness"] * 1.5 * np.sin(u * 0.35)
        fringe = -10.0 - 3 * parting * x + jag
        edge = np.where(np.abs(x) < 0.9, np.maximum(edge, fringe), edge)
    side_bottom = 4 + 60 * f["hair_length"]  # hair beside the face, down to its length
    sides = (np.abs(u - fcu) > fw * (0.93 - 0.1 * f["hair_length"])) & (v < side_bottom)
    d = np.maximum(
        _ellipse_d(u, v, hcu, hcv, ha * 1.02, hb, s), np.where(sides, -1.0, (v - edge) * s)
    )
    c.paint(b, _fill(d, 1.2), _hair_texture(c, b, hair, u, v, f))
    d_head = _ellipse_d(u, v, hcu, hcv, ha * 0.98, hb * 0.98, s)
    shadow = _fill((v - edge - 2.5) * s, 3.0) * (1 - _fill(d)) * _fill(d_head)
    c.paint(b, shadow * 0.2, np.zeros(3))
    if f["hair_length"] > 0.3:  # locks falling over the sides of the face
        b = c.box(fcu, 20, fw + 6, 40)
        u, v = c.uv(b)
        wave = f["waviness"] * 1.5 * np.sin(v * 0.3)
        inner = fw * (0.86 - 0.06 * f["hair_length"]) + wave
        d = np.maximum((inner - np.abs(u - fcu)) * s, (v - side_bottom) * s)
        d = np.maximum(d, (-25 - v) * s)
        c.paint(b, _fill(d, 1.2), _hair_texture(c, b, hair, u, v, f))


def _hat(c: _Canvas, f, hcu, hcv, ha, hb) -> None:
    s = c.s
    col = _hsv(f["hat_hue"], 0.55, 0.35 + 0.4 * ((f["hat_hue"] * 7) % 1))
    brim_v = -24.0
    b = c.box(hcu, hcv - hb * 0.45, ha * 1.15, hb * 0.65)
    u, v = c.uv(b)
    d = np.maximum(_ellipse_d(u, v, hcu, hcv - 3, ha * 1.1, hb * 1.02, s), (v - brim_v) * s)
    fold = 0.85 + 0.15 * np.sin(u * 0.35)
    c.paint(b, _fill(d), col[None, None, :] * fold[..., None])
    band = np.maximum(np.abs(v - brim_v + 3) - 3.2, np.abs(u - hcu) - ha * 1.12) * s
    c.paint(b, _fill(band), col * 0.7)


def _glasses(c: _Canvas, f, yaw: float, fcu: float, fw: float) -> None:
    s = c.s
    frame = np.array([0.08, 0.07, 0.07])
    for side in (-1, 1):
        cu, cv = side * EYE_HALF_DISTANCE + 0.3 * yaw, 1.0
        hx, hy, r = 11.5, 7.5, 3.5
        b = c.box(cu + side * 4, cv, hx + 12, hy + 3)
        u, v = c.uv(b)
        qx, qy = np.abs(u - cu) - (hx - r), np.abs(v - cv) - (hy - r)
        box_d = (
            np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - r
        ) * s
        if f["sunglasses"] > 0.5:
            c.paint(b, _fill(box_d) * 0.88, np.array([0.05, 0.05, 0.07]))
        else:
            c.paint(b, _fill(box_d) * 0.08, np.array([0.8, 0.85, 0.95]))
        c.paint(b, _fill(np.abs(box_d) - 0.8 * s), frame)
        arm = (
            np.maximum(np.abs(v - cv + 3) - 0.8, side * (cu + side * hx - u)) * s
        )  # towards the ear
        arm = np.maximum(arm, side * (u - fcu - side * fw) * s)
        c.paint(b, _fill(arm) * 0.9, frame)
    b = c.box(0.3 * yaw, -1, 9, 3)
    u, v = c.uv(b)
    bridge = (
        np.maximum(np.abs(v + 1.5 - 0.02 * (u - 0.3 * yaw) ** 2) - 0.8, np.abs(u - 0.3 * yaw) - 8.5)
        * s
    )
    c.paint(b, _fill(bridge), frame)


def landmarks(factors) -> np.ndarray:
    """CelebA's five aligned landmarks of a face: left eye, right eye, nose, left/right mouth corner.

    Returns:
        int array [5, 2] of (x, y) pixels in the 178x218 image.
    """
    f = {
        name: float(factors[name])
        for name in ("yaw", "roll", "pitch", "smile", "mouth_open", "nose_size")
    }
    yaw = f["yaw"] * 9.0
    hw = 15.0 * (1 + 0.25 * f["smile"])
    corner_v = 41.0 - 9.0 * (f["smile"] - 0.3)
    pts = np.array(
        [
            [-EYE_HALF_DISTANCE + 0.25 * yaw, 0.3],
            [EYE_HALF_DISTANCE + 0.25 * yaw, 0.3],
            [yaw, 22.0 + 2.5 * f["nose_size"]],
            [0.55 * yaw - hw, corner_v],
            [0.55 * yaw + hw, corner_v],
        ]
    )
    roll = np.deg2rad(4.0 * f["roll"])
    cos, sin = np.cos(roll), np.sin(roll)
    x = EYE_MID[0] + pts[:, 0] * cos - pts[:, 1] * sin
    y = EYE_MID[1] + 3.0 * f["pitch"] + pts[:, 0] * sin + pts[:, 1] * cos
    return np.rint(np.stack([x, y], 1)).astype(np.int64)


def render_aligned(factors, size: int = 64, crop: int = CROP) -> np.ndarray:
    """Render a face and preprocess it as the reader does (centred crop, resize), without JPEG.

    Returns:
        uint8 array [size, size, 3]; batch several with ``np.stack``.
    """
    return crop_resize(Image.fromarray(render(factors)), size, crop)


# ----------------------------------------------------------------------------- writing the dataset

LANDMARK_NAMES = (
    "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y "
    "leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
)


def partition(identity: np.ndarray, seed: int) -> np.ndarray:
    """CelebA-style split by identity: about 80% train (0), 10% valid (1), 10% test (2).

    Identities never cross splits, as in CelebA, so test faces are of unseen people.
    """
    ids = np.unique(identity)
    order = np.random.default_rng([seed, 2]).permutation(len(ids))
    split_of = np.digitize(np.arange(len(ids)), [round(0.8 * len(ids)), round(0.9 * len(ids))])
    lookup = dict(zip(ids[order].astype(np.int64).tolist(), split_of.tolist()))
    return np.array([lookup[int(i)] for i in identity], dtype=np.int64)


def _render_chunk(job: tuple) -> int:
    """Worker: render and write the JPEGs of one chunk of rows."""
    rows, names, folder, quality = job
    for row, name in zip(rows, names):
        Image.fromarray(render(row)).save(Path(folder) / name, format="JPEG", quality=quality)
    return len(names)


def _table(path: Path, header: list[str], names: list[str], rows: list[str]) -> None:
    """Write a CelebA-style list file: count, column names, then one line per image."""
    with open(path, "w") as fh:
        fh.write("\n".join([str(len(names)), " ".join(header) + " "]) + "\n")
        fh.writelines(f"{n} {r}\n" for n, r in zip(names, rows))


def write_synthfaces(
    out: str | os.PathLike,
    n: int = 30000,
    seed: int = 0,
    workers: int | None = None,
    config: SynthConfig = SynthConfig(),
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Write a SynthFaces dataset in CelebA's layout at ``out`` (skipped if already complete).

    The folder appears only when complete: everything is written to a temporary sibling first.
    The output is byte-identical for the same ``n``, ``seed`` and ``config`` whatever ``workers``.

    Returns:
        the dataset folder.
    """
    out = Path(out)
    params = {
        "generator_version": GENERATOR_VERSION,
        "n": n,
        "seed": seed,
        "config": asdict(config),
    }
    meta_path = out / "synthfaces.json"
    if meta_path.exists() and not force:
        existing = json.loads(meta_path.read_text())
        if {k: existing.get(k) for k in params} == params:
            return out
        raise FileExistsError(
            f"{out} holds a different SynthFaces set ({ {k: existing.get(k) for k in ('n', 'seed')} }); "
            "pass force=True (--force) to replace it, or choose another folder"
        )
    if out.exists() and not force and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a SynthFaces folder; choose another --out")

    factors = sample_factors(n, seed, config)
    labels = noisy_labels(labels_from_factors(factors), config.label_noise, seed)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "img_align_celeba").mkdir(parents=True)
    try:
        _table(tmp / "list_attr_celeba.txt", list(ATTRIBUTES), names,
               ["".join(f" {v:2d}" for v in row)[1:] for row in labels])  # fmt: skip
        with open(tmp / "list_eval_partition.txt", "w") as fh:
            fh.writelines(f"{a} {p}\n" for a, p in zip(names, partition(factors["identity"], seed)))
        with open(tmp / "identity_CelebA.txt", "w") as fh:
            fh.writelines(f"{a} {int(i)}\n" for a, i in zip(names, factors["identity"]))
        _table(tmp / "list_landmarks_align_celeba.txt", LANDMARK_NAMES.split(), names,
               [" ".join(f"{v:5d}" for v in landmarks(r).ravel()) for r in factors])  # fmt: skip
        _table(tmp / "list_factors_synthfaces.txt", list(FACTOR_NAMES), names,
               [" ".join(f"{r[k]:.4f}" for k in FACTOR_NAMES) for r in factors])  # fmt: skip

        chunk = 200
        jobs = [
            (
                factors[s : s + chunk],
                names[s : s + chunk],
                tmp / "img_align_celeba",
                config.jpeg_quality,
            )
            for s in range(0, n, chunk)
        ]
        workers = workers or min(os.cpu_count() or 1, 8)
        with tqdm(total=n, desc="rendering SynthFaces", unit="img", disable=not progress) as bar:
            if workers <= 1 or len(jobs) == 1:
                for job in jobs:
                    bar.update(_render_chunk(job))
            else:
                method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
                with ProcessPoolExecutor(
                    workers, mp_context=multiprocessing.get_context(method)
                ) as pool:
                    for done in pool.map(_render_chunk, jobs):
                        bar.update(done)
        meta = {
            **params,
            "attributes_drawn": list(DRAWN),
            "attributes_not_drawn (always -1)": list(NOT_DRAWN),
            "factors": FACTORS,
            "image_size": [WIDTH, HEIGHT],
        }
        (tmp / "synthfaces.json").write_text(json.dumps(meta, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def read_factors(root: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Read ``list_factors_synthfaces.txt``: (file names, structured factors [N])."""
    path = Path(root) / "list_factors_synthfaces.txt"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {root} is not a SynthFaces folder")
    lines = path.read_text().splitlines()
    header = lines[1].split()
    rows = [ln.split() for ln in lines[2:] if ln.strip()]
    names = [r[0] for r in rows]
    values = np.array([r[1:] for r in rows], dtype=np.float64)
    out = np.zeros(len(rows), dtype=FACTOR_DTYPE)
    for j, name in enumerate(header):
        if name in FACTOR_NAMES:
            out[name] = values[:, j]
    return names, out


def default_root(n: int = 30000, seed: int = 0) -> Path:
    """The dataset the notebooks use: ``$FEL_CELEBA_ROOT`` (a real CelebA copy) when set, else
    SynthFaces in ``data/synthfaces``, rendered on first use (``n`` images, ``seed``).
    """
    import fel

    real = os.environ.get("FEL_CELEBA_ROOT")
    if real:
        return Path(real).expanduser()
    return write_synthfaces(fel.DATA_DIR / "synthfaces", n=n, seed=seed)
