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
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from tqdm.auto import tqdm

from fel.data.attributes import ATTRIBUTES, check_attribute
from fel.data.celeba import CROP, crop_resize
from fel.locks import one_at_a_time
from fel.processes import map_chunks

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
#
# The renderer draws a batch of faces at once, so that NumPy's per-call cost is paid once per batch
# rather than once per face. Every per-image number is an array [n] (float64, the precision of the
# Python floats it stands for) and each shape is drawn on one window [n, h, w] that covers every
# face's own box. A face's pixels never depend on the rest of its batch: outside its own box and
# its shape, a face's coverage is exactly 0, which leaves a pixel exactly as it was; and a
# per-image number enters the float32 pixel arithmetic as a float32 column, rounded exactly as
# NumPy rounds a Python float next to a float32 array. So a face renders to the same bytes alone or
# in any batch.


def _fill(d: np.ndarray, soft: float = 1.0) -> np.ndarray:
    """Coverage of a shape from its signed distance in pixels (negative inside), anti-aliased."""
    return np.clip(0.5 - d / soft, 0.0, 1.0)


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def _col(x, dtype=np.float32) -> np.ndarray:
    """Per-image numbers [k] as a column [k, 1, 1] that broadcasts over a window's pixels."""
    return np.asarray(x, dtype).reshape(-1, 1, 1)


def _rows(x) -> np.ndarray:
    """Per-image numbers [n] as float32 [n, 1], to scale per-image colours [n, 3]."""
    return np.asarray(x, np.float32)[:, None]


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


@dataclass
class _Box:
    """One window of pixels, over some images of a batch: the union of those images' boxes.

    sel picks the images (a slice for all of them, else their indices); ys, xs is the window;
    u, v [k, h, w] are the face-frame coordinates of its pixels, float32; inside [k, h, w] is True
    within each image's own box (None where every image's box is the whole window).
    """

    sel: slice | np.ndarray
    ys: slice
    xs: slice
    u: np.ndarray
    v: np.ndarray
    inside: np.ndarray | None

    def col(self, x, dtype=np.float32):
        """A per-image number x [n] of the batch as a column [k, 1, 1] of this box's images.

        float32 where the number meets float32 pixels (it rounds as NumPy rounds a Python float
        there), float64 where it meets float64 ones; a constant stays a Python float.
        """
        if np.ndim(x) == 0:
            return float(x)
        return _col(np.asarray(x)[self.sel], dtype)

    def take(self, x: np.ndarray) -> np.ndarray:
        """Rows of a per-image array [n, ...] for this box's images: [k, ...]."""
        return x[self.sel]

    def where(self, keep: np.ndarray) -> _Box:
        """The box over those of its images where ``keep`` [k] is True."""
        sel = np.arange(self.u.shape[0])[keep] if isinstance(self.sel, slice) else self.sel[keep]
        inside = None if self.inside is None else self.inside[keep]
        return _Box(sel, self.ys, self.xs, self.u[keep], self.v[keep], inside)

    def nonzero(self, alpha: np.ndarray) -> tuple[_Pixels, np.ndarray]:
        """The pixels where coverage ``alpha`` [k, h, w] is nonzero, within each image's own box,
        and their coverage [m]."""
        keep = alpha != 0
        if self.inside is not None:
            keep &= self.inside
        return self.pixels(keep), alpha[keep]

    def pixels(self, keep: np.ndarray) -> _Pixels:
        """The pixels where ``keep`` [k, h, w] is True."""
        i, y, x = np.nonzero(keep)
        image = i if isinstance(self.sel, slice) else self.sel[i]
        return _Pixels(image, y + self.ys.start, x + self.xs.start, self.u[keep], self.v[keep])

    def crop(self, alpha: np.ndarray) -> tuple[_Box, np.ndarray, tuple[slice, slice]]:
        """Cut the box to the rows and columns where coverage ``alpha`` [k, h, w] is nonzero.

        Returns the cut box, its coverage (0 outside each image's own box) and the cut, relative
        to this box's window.
        """
        if self.inside is not None:
            alpha = alpha * self.inside
        rows = np.flatnonzero(alpha.any(axis=(0, 2)))
        cols = np.flatnonzero(alpha.any(axis=(0, 1)))
        if rows.size == 0:
            rows = cols = np.zeros(1, np.int64)[:0]
            cut = (slice(0, 0), slice(0, 0))
        else:
            cut = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        ys = slice(self.ys.start + cut[0].start, self.ys.start + cut[0].stop)
        xs = slice(self.xs.start + cut[1].start, self.xs.start + cut[1].stop)
        box = _Box(self.sel, ys, xs, self.u[:, cut[0], cut[1]], self.v[:, cut[0], cut[1]], None)
        return box, alpha[:, cut[0], cut[1]], cut


@dataclass
class _Pixels:
    """Scattered pixels of a batch: for each [m], its image, row y and column x, and its u, v.

    Drawn with the same expressions as a :class:`_Box`, where the cost of a shape lies in a few
    of its pixels (an outline's anti-aliased rim, a texture under thin coverage).
    """

    image: np.ndarray
    y: np.ndarray
    x: np.ndarray
    u: np.ndarray
    v: np.ndarray

    def col(self, x, dtype=np.float32):
        """A per-image number x [n] of the batch at each pixel [m] (see :meth:`_Box.col`)."""
        if np.ndim(x) == 0:
            return float(x)
        return np.asarray(x)[self.image].astype(dtype)

    def take(self, x: np.ndarray) -> np.ndarray:
        """Rows of a per-image array [n, ...] at each pixel: [m, ...]."""
        return x[self.image]


class _Canvas:
    """A batch of float RGB images [n, 3, height, width] and the face frame of each.

    Channels come before the pixels so that NumPy's inner loops run along image rows.
    """

    def __init__(self, f: dict[str, np.ndarray], width: int, height: int):
        self.n, self.w, self.h = len(f["roll"]), width, height
        self.s = width / WIDTH  # pixels per face-frame unit
        roll = [np.deg2rad(4.0 * r) for r in f["roll"].tolist()]
        self.cos = np.array([float(np.cos(r)) for r in roll])
        self.sin = np.array([float(np.sin(r)) for r in roll])
        self.ox = EYE_MID[0] * self.s
        self.oy = (EYE_MID[1] + 3.0 * f["pitch"]) * self.s
        xs = (np.arange(width, dtype=np.float32) + 0.5 - self.ox) / self.s
        ys = (np.arange(height, dtype=np.float32)[:, None] + 0.5 - _col(self.oy)) / self.s
        cos, sin = _col(self.cos), _col(self.sin)
        self.u = xs * cos + ys * sin  # [n, height, width]
        self.v = ys * cos - xs * sin
        self.img = np.empty((self.n, 3, height, width), np.float32)
        seeds = [int(seed) for seed in f["noise_seed"].tolist()]
        self.rand = np.array([np.random.default_rng(seed).random(8) for seed in seeds])  # [n, 8]
        self.noise_at = np.array([(seed % 251, (seed // 251) % 251) for seed in seeds])

    def box(self, cu, cv, ru, rv, where: np.ndarray | None = None) -> _Box:
        """The window over each image's face-frame rectangle centre (cu, cv), half-sizes (ru, rv).

        Each argument is a number or per-image numbers [n]; ``where`` [n] picks the images.
        """
        sel = slice(None) if where is None else np.flatnonzero(where)
        cu, cv, ru, rv = (np.broadcast_to(np.asarray(a, np.float64), (self.n,))[sel]
                          for a in (cu, cv, ru, rv))  # fmt: skip
        cos, sin, s = self.cos[sel], self.sin[sel], self.s
        x = self.ox + s * (cu * cos - cv * sin)
        y = self.oy[sel] + s * (cu * sin + cv * cos)
        slack = np.maximum(ru, rv) * np.abs(sin) + 2  # the tilt
        x0 = np.maximum(0, x - s * (ru + slack)).astype(np.int64)
        x1 = np.maximum(x0, np.minimum(self.w, x + s * (ru + slack) + 1).astype(np.int64))
        y0 = np.maximum(0, y - s * (rv + slack)).astype(np.int64)
        y1 = np.maximum(y0, np.minimum(self.h, y + s * (rv + slack) + 1).astype(np.int64))
        if x0.size == 0:
            ys = xs = slice(0, 0)
        else:
            ys, xs = slice(y0.min(), y1.max()), slice(x0.min(), x1.max())
        rows, cols = np.arange(ys.start, ys.stop), np.arange(xs.start, xs.stop)
        in_rows = (rows >= y0[:, None]) & (rows < y1[:, None])
        in_cols = (cols >= x0[:, None]) & (cols < x1[:, None])
        inside = None if in_rows.all() and in_cols.all() else in_rows[:, :, None] & in_cols[:, None]
        return _Box(sel, ys, xs, self.u[sel, ys, xs], self.v[sel, ys, xs], inside)

    def full(self) -> _Box:
        """The whole image, for every image."""
        every = slice(None)
        return _Box(every, slice(0, self.h), slice(0, self.w), self.u, self.v, None)

    def noise(self, box: _Box | _Pixels, channel: int = 0) -> np.ndarray:
        """Standard normal noise [k, h, w] over ``box`` (or [m] at pixels), the same for the same
        pixel and seed."""
        if isinstance(box, _Pixels):  # flat indices into the tile: one gather, not two
            oy, ox = (self.noise_at + (7 * channel, 13 * channel)).T
            at = (oy * _NOISE.shape[1] + ox)[box.image] + box.y * _NOISE.shape[1] + box.x
            return _NOISE.ravel().take(at)
        at = self.noise_at[box.sel] + (7 * channel, 13 * channel)
        ys, xs = box.ys, box.xs
        return np.stack(
            [_NOISE[oy + ys.start : oy + ys.stop, ox + xs.start : ox + xs.stop] for oy, ox in at]
        ).reshape(len(at), ys.stop - ys.start, xs.stop - xs.start)

    def paint(self, box: _Box, alpha: np.ndarray, colour) -> None:
        """Blend ``colour`` over the box's pixels with coverage ``alpha`` [k, h, w] in [0, 1].

        colour: one RGB [3], one per image of the batch [n, 3], or one per pixel [k, 3, h, w].
        """
        box, alpha, cut = box.crop(alpha)
        if alpha.size == 0:
            return
        colour = np.asarray(colour)
        if colour.ndim == 1:
            colour = colour[:, None, None]
        elif colour.ndim == 2:
            colour = colour[box.sel, :, None, None]
        else:
            colour = colour[:, :, cut[0], cut[1]]
        colour = colour.astype(np.float32, copy=False)
        at = (box.sel, slice(None), box.ys, box.xs)
        region = self.img[at]  # a view for the whole batch, else a copy to write back
        region += alpha[:, None] * (colour - region)
        if not isinstance(box.sel, slice):
            self.img[at] = region

    def paint_at(self, p: _Pixels, alpha: np.ndarray, colour: np.ndarray) -> None:
        """Blend ``colour`` [3, m] (one RGB per pixel) over pixels with coverage ``alpha`` [m].

        Channels come first, so that NumPy's inner loops run along the pixels."""
        flat, area = self.img.reshape(-1), self.h * self.w
        at = np.arange(0, 3 * area, area)[:, None] + (p.image * (3 * area) + p.y * self.w + p.x)
        region = flat.take(at)  # [3, m]
        region += alpha * (colour.astype(np.float32, copy=False) - region)
        flat[at] = region


def _ellipse_d(b: _Box, cu, cv, a, bb, s: float) -> np.ndarray:
    """Approximate signed distance (pixels) to an ellipse centre (cu, cv), half-axes (a, bb)."""
    k = np.sqrt(((b.u - b.col(cu)) / b.col(a)) ** 2 + ((b.v - b.col(cv)) / b.col(bb)) ** 2)
    return (k - 1.0) * b.col(np.minimum(a, bb) * s)


def _skin_colour(f) -> np.ndarray:
    """Skin RGB [n, 3], float32."""
    t = f["skin_tone"] * (len(SKIN_TONES) - 1)
    i = np.minimum(t.astype(np.int64), len(SKIN_TONES) - 2)
    skin = SKIN_TONES[i] + (SKIN_TONES[i + 1] - SKIN_TONES[i]) * _rows(t - i)
    warmth = _rows(f["skin_warmth"]) * np.array([0.02, -0.01, -0.04], np.float32)
    return np.clip(skin + warmth, 0, 1).astype(np.float32)


def _light(azimuth: float) -> np.ndarray:
    """Unit direction [3] towards the light, float32."""
    light = np.array([0.8 * azimuth, -0.45, 0.6], np.float32)
    light /= np.linalg.norm(light)
    return light


def render(factors, size: tuple[int, int] = (WIDTH, HEIGHT)) -> np.ndarray:
    """Draw one face.

    Args:
        factors: one row of :func:`sample_factors` (a structured scalar or a name -> value map).
        size: (width, height) of the output; the face scales with the width.

    Returns:
        uint8 array [height, width, 3].
    """
    f = {name: np.array([float(factors[name])]) for name in FACTOR_NAMES}
    return np.asarray(_render(f, size)[0])


def _render(f: dict[str, np.ndarray], size: tuple[int, int]) -> list[Image.Image]:
    """Draw a batch of faces, factors f: name -> values [n]; one RGB image each."""
    c = _draw(f, *size)
    # 8. Camera: exposure, sensor noise, blur.
    img = c.img
    img *= _col(1 + 0.18 * f["brightness"])[:, None]
    img += (0.006 * c.noise(c.full(), 1))[:, None]
    np.clip(img, 0, 1, out=img)
    img *= 255
    img += 0.5
    out = []
    # Each channel plane to uint8 and then PIL's merge: a 6x cheaper way to the same bytes than
    # interleaving the channels in NumPy (0.07 against 0.37 ms per 178 x 218 face).
    for planes, blur in zip(img.astype(np.uint8), f["blur"].tolist()):
        image = Image.merge("RGB", [Image.fromarray(plane) for plane in planes])
        if blur > 0.05:
            image = image.filter(ImageFilter.GaussianBlur(radius=3.2 * blur * c.s))
        out.append(image)
    return out


@dataclass
class _Face:
    """Per-image geometry [n] of a batch, in face-frame pixels at 178 width, and its colours."""

    f: dict[str, np.ndarray]
    s: float

    def __post_init__(self):
        f = self.f
        male = f["male"]
        self.yaw = f["yaw"] * 9.0  # horizontal shift of the nose tip, in pixels
        self.fw = 43.0 * f["face_width"] * (1 + 0.05 * (male - 0.5))
        self.fh = 60.0 * f["face_length"]
        self.fcv = 14.0  # face centre below the eye line
        self.fcu = -0.45 * self.yaw
        self.jaw = 0.34 - 0.2 * male  # taper of the lower face; men's jaws are squarer
        self.head_cu, self.head_cv = self.fcu * 0.8, self.fcv - 14
        self.head_a, self.head_b = self.fw * 1.03, self.fh * 0.98
        self.vol = 1.0 + 0.10 * f["hair_volume"] + 0.06 * f["waviness"]
        self.light = np.stack([_light(a) for a in f["light_azimuth"].tolist()])  # [n, 3]
        self.skin = _skin_colour(f)
        hair = HAIR_COLOURS[f["hair_color"].astype(np.int64)]
        self.hair = np.clip(hair * _rows(1 + 0.15 * f["hair_shade"]), 0, 1)
        self.bald = f["recession"] > 0.85

    def face_d(self, b: _Box) -> np.ndarray:
        """Signed distance (pixels) to the outline of the face below the hairline."""
        dv = (b.v - self.fcv) / b.col(self.fh)
        taper = 1.0 - b.col(self.jaw) * np.clip(dv, 0, 1) ** 2
        k = np.sqrt(((b.u - b.col(self.fcu)) / (b.col(self.fw) * taper)) ** 2 + dv**2)
        return (k - 1.0) * b.col(self.fw * self.s)


def _draw(f: dict[str, np.ndarray], width: int, height: int) -> _Canvas:
    """Draw a batch of faces on a canvas, before the camera (exposure, noise, blur)."""
    c = _Canvas(f, width, height)
    g = _Face(f, c.s)
    _background(c, f)
    _clothes(c, f, g)
    _long_hair(c, f, g)
    _neck_and_ears(c, f, g)
    _head(c, f, g)
    _facial_hair(c, f, g)
    _cheeks(c, f, g)
    squint = 0.22 * np.maximum(f["smile"] - 0.5, 0)  # a real smile narrows the eyes a little
    for side in (-1, 1):
        cu = side * EYE_HALF_DISTANCE + 0.25 * g.yaw
        _eye(c, f, side, cu, np.maximum(f["eye_open"] - squint, 0.0), g.skin)
        _brow(c, f, side, cu, g.hair)
    _nose(c, f, g.yaw, g.skin, g.light)
    _mouth(c, f, g.yaw, g.skin)
    _wrinkles(c, f, g.skin)
    _front_hair(c, f, g)
    _bald_scalp(c, f, g)
    _hat(c, f, g)
    _glasses(c, f, g)
    _earrings(c, f, g)
    return c


def _background(c: _Canvas, f) -> None:
    """1. A vertical gradient."""
    bg = np.stack([_hsv(h, 0.2 + 0.35 * r, 0.15 + 0.8 * light)
                   for h, r, light in zip(f["background_hue"].tolist(), c.rand[:, 0],
                                          f["background_light"].tolist())])  # fmt: skip
    grad = (1.05 - 0.25 * (np.arange(c.h, dtype=np.float32) / c.h))[:, None]
    c.img[:] = bg[:, :, None, None] * grad


def _clothes(c: _Canvas, f, g: _Face) -> None:
    """2. Clothes below the shoulders."""
    b = c.box(0, 125, 110, 30)
    clothes = np.stack([_hsv(h, 0.5, 0.2 + 0.55 * r)
                        for h, r in zip(f["clothes_hue"].tolist(), c.rand[:, 1])])  # fmt: skip
    c.paint(b, _fill((_shoulder_top(b, g.fw) - b.v) * c.s, 1.5), clothes)


def _long_hair(c: _Canvas, f, g: _Face) -> None:
    """Long hair behind the head, falling over the shoulders."""
    length = f["hair_length"]
    where = ~g.bald & (length > 0.2) & (f["hat"] <= 0.5)
    if not where.any():
        return
    top, bottom = g.head_cv - g.head_b * g.vol, 25 + 110 * length
    mid, half_h = (top + bottom) / 2, (bottom - top) / 2
    half_w = g.head_a * g.vol * (1.05 + 0.25 * length)
    b = c.box(g.head_cu, mid, half_w + 5, half_h + 3, where=where)
    f64 = np.float64  # the per-image random phase is a NumPy float64: so is all that follows

    def outline(p: _Pixels) -> np.ndarray:
        """Coverage of a wavy superellipse."""
        wave = p.col(f["waviness"] * 3.0, f64) * np.sin(p.v * 0.25 + p.col(1.7 * c.rand[:, 2], f64))
        k = (
            np.abs((p.u - p.col(g.head_cu)) / (p.col(half_w, f64) + wave)) ** 2.2
            + np.abs((p.v - p.col(mid)) / p.col(half_h)) ** 3
        )
        return _fill((k ** (1 / 3) - 1) * p.col(half_w * c.s, f64), 1.5)

    # The outline costs float64 sines and powers, but only its anti-aliased rim needs them: bounds
    # on k that leave the wave out (|wave| <= reach) find the pixels surely inside (coverage 1)
    # or outside (0), with margins far above the bounds' float32 rounding.
    reach = 3.0 * f["waviness"]
    rim = 0.75 * (1 + 1e-6) / (half_w * c.s)  # |d| < 0.75 px in units of k ** (1 / 3)
    x = np.abs(b.u - b.col(g.head_cu))
    y = np.abs((b.v - b.col(mid)) / b.col(half_h))
    with np.errstate(divide="ignore"):
        log_x = np.log(x)
    y3 = y * y * y
    k_low = np.exp(2.2 * (log_x - b.col(np.log(half_w + reach)))) + y3
    k_high = np.exp(2.2 * (log_x - b.col(np.log(half_w - reach)))) + y3
    alpha = (k_high < b.col((1 - rim) ** 3 - 1e-4)).astype(f64)
    edge = (k_low <= b.col((1 + rim) ** 3 + 1e-4)) & (alpha == 0)
    alpha[edge] = outline(b.pixels(edge))
    p, alpha = b.nonzero(alpha)
    c.paint_at(p, alpha, _hair_texture(c, p, g.hair * 0.78, f["waviness"]))


def _neck_and_ears(c: _Canvas, f, g: _Face) -> None:
    """3. Neck (with the chin's shadow) and ears."""
    s, fw = c.s, g.fw
    b = c.box(g.fcu * 0.5, 95, fw * 0.8, 35)
    neck_w = fw * (0.56 + 0.1 * f["male"])
    neck_d = np.maximum(
        (np.abs(b.u - b.col(g.fcu * 0.5)) - b.col(neck_w)) * s, (g.fcv + 20 - b.v) * s
    )
    neck_d = np.maximum(neck_d, (b.v - _shoulder_top(b, fw)) * s + 4)
    shade = 1.0 - 0.35 * np.exp(-(((b.v - g.fcv - b.col(g.fh * 0.8)) / 9) ** 2))
    c.paint(b, _fill(neck_d), b.take(g.skin)[:, :, None, None] * (0.82 * shade)[:, None])
    for side in (-1, 1):
        eu = g.fcu + side * (fw * 0.98 + 2.0) - 0.3 * g.yaw
        a, bb = 5.5 * f["ear_size"], 11.5 * f["ear_size"]
        b = c.box(eu, 14, a + 2, bb + 2)
        c.paint(
            b,
            _fill(_ellipse_d(b, eu, 14, a, bb, s)),
            g.skin * _rows(0.88 - 0.06 * side * f["light_azimuth"]),
        )
        c.paint(
            b,
            _fill(_ellipse_d(b, eu + side * 0.8, 14, a * 0.45, bb * 0.6, s), 2.0) * 0.3,
            g.skin * 0.55,
        )


def _head(c: _Canvas, f, g: _Face) -> None:
    """4. Head and face, shaded as an ellipsoid lit from the light."""
    fcv, fh, ls = g.fcv, g.fh, f["light_strength"]
    b = c.box(
        g.fcu,
        (g.head_cv - g.head_b + fcv + fh) / 2,
        g.fw * 1.06,
        (fcv + fh - g.head_cv + g.head_b) / 2 + 2,
    )
    d = np.minimum(g.face_d(b), _ellipse_d(b, g.head_cu, g.head_cv, g.head_a, g.head_b, c.s))
    b, alpha, _ = b.crop(_fill(d))
    nu, nv = (b.u - b.col(g.fcu)) / b.col(g.fw), (b.v - fcv) / b.col(fh * 1.2)
    nz = np.sqrt(np.clip(1 - nu**2 - nv**2, 0.02, 1))
    lx, ly, lz = (b.col(g.light[:, i]) for i in range(3))
    diffuse = np.clip(nu * lx + nv * ly + nz * lz, 0, 1)
    shade = b.col(1 - 0.5 * ls) + b.col(0.5 * ls) * diffuse + 0.04 + 0.012 * c.noise(b)
    shade *= 1 - 0.14 * np.clip((np.abs(nu) - 0.62) / 0.38, 0, 1)  # darker at the rim
    c.paint(b, alpha, b.take(g.skin)[:, :, None, None] * shade[:, None])


def _cheeks(c: _Canvas, f, g: _Face) -> None:
    """5. Blush (make-up or rosy cheeks) and the highlight a smile lifts."""
    smile = f["smile"]
    for side in (-1, 1):
        cu, cv = g.fcu + side * g.fw * 0.55 + 0.2 * g.yaw, 22 - 3 * smile
        b = c.box(cu, cv, 12, 10)
        blush = 0.5 * f["blush"] + 0.1 * f["makeup"] + 0.06 * (1 - f["male"])
        a = _smooth(1 - ((b.u - b.col(cu)) / 11) ** 2 - ((b.v - b.col(cv)) / 8) ** 2)
        c.paint(b, a * b.col(blush), np.array([0.86, 0.33, 0.36]))
        a = _smooth(1 - ((b.u - b.col(cu) + side * 2) / 8) ** 2 - ((b.v - b.col(cv) + 3) / 5) ** 2)
        c.paint(b, a * b.col(0.05 + 0.12 * smile), np.minimum(g.skin * 1.3, 1))


def _bald_scalp(c: _Canvas, f, g: _Face) -> None:
    """The shine on a bald head (under no hat)."""
    where = g.bald & (f["hat"] <= 0.5)
    if not where.any():
        return
    b = c.box(g.head_cu, g.head_cv - g.head_b * 0.6, g.head_a, g.head_b * 0.45, where=where)
    shine = _smooth(
        1
        - ((b.u - b.col(g.head_cu) + b.col(10 * g.light[:, 0])) / 16) ** 2
        - ((b.v - g.head_cv + 42) / 8) ** 2
    )
    c.paint(b, shine * 0.22, np.ones(3))


def _earrings(c: _Canvas, f, g: _Face) -> None:
    where = f["earrings"] > 0.5
    if not where.any():
        return
    for side in (-1, 1):
        eu = g.fcu + side * (g.fw * 0.98 + 3.0) - 0.3 * g.yaw
        b = c.box(eu, 27, 4, 4, where=where)
        c.paint(b, _fill(_ellipse_d(b, eu, 27, 1.9, 1.9, c.s)), np.array([0.95, 0.8, 0.35]))


def _shoulder_top(b: _Box, fw: np.ndarray) -> np.ndarray:
    """Height (v) of the top of the clothes at each pixel of ``b``."""
    u = b.u
    return 90 + 0.004 * u**2 - 12 * np.exp(-((u / b.col(fw * 0.75)) ** 2))


def _hair_texture(c: _Canvas, p: _Pixels, colour: np.ndarray, waviness: np.ndarray) -> np.ndarray:
    """Hair colour with strands (a sinusoid along the hair, wavy when the hair is) and a sheen.

    Returns float64 [3, m] at the pixels: the per-image random phase is a NumPy float64.
    """
    u, v = p.u, p.v
    phase = (
        u * 0.9
        + p.col(0.6 + 4.0 * waviness) * np.sin(v * 0.25)
        + p.col(6.28 * c.rand[:, 3], np.float64)
    )
    tone = 0.9 + 0.1 * np.sin(phase) + 0.03 * c.noise(p, 2)
    tone *= 1 + 0.22 * np.exp(-(((v + 40) / 9) ** 2))
    return colour.T.take(p.image, axis=1) * tone


def _facial_hair(c: _Canvas, f, g: _Face) -> None:
    """Stubble, beard, goatee, mustache and sideburns, grown over the face."""
    fcu, fw, yaw = g.fcu, g.fw, g.yaw
    kinds = ("stubble", "beard", "goatee", "mustache", "sideburns")
    grown = {k: f[k] > 0.05 for k in kinds}
    anything = np.logical_or.reduce(list(grown.values()))
    if not anything.any():
        return
    grey = (f["hair_color"] == 3)[:, None]
    beard_col = np.where(grey, np.array([0.55, 0.55, 0.55], np.float32), g.hair * 0.8)
    b = c.box(fcu, g.fcv + g.fh * 0.45, fw + 2, g.fh * 0.6, where=anything)
    inside = _fill(g.face_d(b), 1.5)
    mouth_v = 41.0
    top = 22 + 9 * (1 - ((b.u - b.col(fcu)) / b.col(fw)) ** 2)  # from the cheeks to under the nose
    region = _smooth((b.v - top) / 6) * inside
    grain = np.clip(0.8 + 0.25 * c.noise(b, 3), 0, 1)
    for kind in kinds:
        keep = b.take(grown[kind])
        if not keep.any():
            continue
        g, amount = b.where(keep), f[kind]
        u, v, mu = g.u, g.v, g.col(0.55 * yaw)
        if kind == "stubble":
            colour = np.array([0.13, 0.12, 0.13]) + beard_col * 0.4
            c.paint(g, region[keep] * grain[keep] * 0.42 * g.col(amount), colour)
        elif kind == "beard":
            lips = _smooth(1 - ((u - mu) / 17) ** 2 - ((v - mouth_v - 1) / 7) ** 2)
            c.paint(g, region[keep] * (1 - lips) * g.col(amount) * 0.95 * grain[keep], beard_col)
        elif kind == "goatee":
            a = _smooth(1.3 - ((u - mu) / 10) ** 2 - ((v - mouth_v - 13) / 9) ** 2)
            c.paint(g, a * inside[keep] * g.col(amount) * 0.95 * grain[keep], beard_col)
        elif kind == "mustache":
            band = _smooth(1.6 * (1 - ((u - mu) / 17) ** 2 - ((v - mouth_v + 6.5) / 3.8) ** 2))
            c.paint(g, band * g.col(amount) * 0.95 * grain[keep], beard_col)
        else:
            for side in (-1, 1):
                cu = fcu + side * fw * 0.9
                a = (
                    _smooth(
                        1.2
                        - ((u - g.col(cu)) / 6.5) ** 2
                        - ((v - 10) / g.col(12 + 20 * amount)) ** 2
                    )
                    * inside[keep]
                )
                c.paint(g, a * g.col(np.minimum(1.0, 1.2 * amount)), beard_col)


def _eye(c: _Canvas, f, side: int, cu, openness, skin) -> None:
    s = c.s
    a = 8.2 * f["eye_size"] * (1 - 0.1 * side * f["yaw"])
    h_up = 0.8 + 4.6 * openness
    h_lo = 1.2 + 1.6 * openness
    b = c.box(cu, -4, a + 6, 12)
    u, v = b.u, b.v
    x = (u - b.col(cu)) / b.col(a)
    t = np.clip(1 - x**2, 0, 1)
    lift = 0.8 * side * x  # the outer corner sits a little higher
    v_up = b.col(-h_up) * t**0.8 - lift
    v_lo = b.col(h_lo) * t - lift * 0.5
    d = np.maximum(np.maximum(v_up - v, v - v_lo) * s, (np.abs(x) - 1) * b.col(a * s))
    eye = _fill(d)
    socket = _smooth(1 - x**2 * 0.8 - ((v + 3.5) / 5.5) ** 2)
    c.paint(b, socket * 0.2, skin * 0.6)
    makeup = f["makeup"]
    if (makeup > 0.05).any():
        lid = _smooth(1 - x**2 * 0.9 - ((v + 4.5) / 4) ** 2) * b.col(makeup) * 0.55
        c.paint(b, lid * b.col(makeup > 0.05), np.array([0.35, 0.22, 0.32]))
    c.paint(b, eye, np.array([0.93, 0.91, 0.88]))
    iris_u = cu + 2.2 * f["gaze"] + 0.8 * f["yaw"]
    r = 3.5 * f["eye_size"]
    iris = IRIS_COLOURS[np.minimum((f["iris_hue"] * 5).astype(np.int64), 4)]
    c.paint(b, eye * _fill(_ellipse_d(b, iris_u, 0.3, r, r, s)), iris)
    c.paint(b, eye * _fill(_ellipse_d(b, iris_u, 0.3, 1.5, 1.5, s)), np.array([0.03, 0.03, 0.03]))
    c.paint(b, eye * _fill(_ellipse_d(b, iris_u + 1.0, -0.9, 0.7, 0.7, s)) * 0.9, np.ones(3))
    liner = 0.9 + 0.9 * makeup + 0.3 * (1 - f["male"])  # lashes, thicker with eyeliner
    lash = _fill((np.abs(v - v_up + 0.3) - b.col(liner / 2)) * s) * _fill(
        (np.abs(x) - 1.08) * b.col(a * s)
    )
    c.paint(b, lash * 0.9, np.array([0.08, 0.06, 0.06]))
    crease = _fill((np.abs(v - (v_up - 2.5 - b.col(1.2 * openness))) - 0.4) * s, 1.5) * t * 0.35
    c.paint(b, crease, skin * 0.55)
    c.paint(b, _fill((np.abs(v - v_lo - 0.3) - 0.35) * s, 1.2) * t * 0.4, skin * 0.6)


def _brow(c: _Canvas, f, side: int, cu, hair) -> None:
    s = c.s
    length = 11.0
    cv = -10.0 - 4.0 * f["brow_raise"] - 0.5 * f["eye_open"]
    arch = 0.8 + 4.5 * f["brow_arch"]
    thick = 1.6 + 2.4 * f["brow_thickness"] + 0.7 * f["male"]
    b = c.box(cu + side, cv - 2, length + 3, arch + thick + 3)
    x = side * (b.u - b.col(cu) - side) / length  # -1 inner end, +1 outer end
    peak = 0.35
    bend = np.clip(1 - ((x - peak) / (1.35 - peak * np.sign(x - peak))) ** 2, 0, 1)
    curve = b.col(cv) - b.col(arch) * bend
    curve = curve + 1.2 * np.clip(x, 0, 1) ** 2  # the tail drops
    t = b.col(thick) * (1.0 - 0.45 * np.clip((x + 1) / 2, 0, 1))
    d = np.maximum(np.abs(b.v - curve) - t / 2, (np.abs(x) - 1) * length) * s
    col = hair * _rows(np.where(np.isin(f["hair_color"], (2, 3)), 0.6, 0.75))
    c.paint(b, _fill(d, 1.3) * 0.9, col)


def _nose(c: _Canvas, f, yaw, skin, light) -> None:
    s = c.s
    size = f["nose_size"]
    w = 5.0 + 3.0 * size
    tip_v = 22.0 + 2.5 * size
    cu = yaw
    b = c.box(cu, 12, w + 5, 14)
    u, v, bu, tv = b.u, b.v, b.col(cu), b.col(tip_v)
    side = np.where(light[:, 0] > 0, -1, 1)  # the bridge's shadow falls away from the light
    bridge = (
        _smooth(1 - ((u - bu - b.col(side * (2.5 + 0.5 * w))) / 2.2) ** 2)
        * _smooth((v - 2) / 8)
        * _smooth((tv - v) / 4)
    )
    c.paint(b, bridge * 0.22, skin * 0.6)
    for sd in (-1, 1):
        wing = _fill(
            (np.abs(np.hypot((u - bu - b.col(sd * w)) / 2.6, (v - tv + 0.5) / 2.4) - 1) - 0.18)
            * (2.6 * s),
            1.4,
        )
        c.paint(b, wing * 0.3 * (v > b.col(tip_v - 2.8)), skin * 0.55)
        nostril = _fill(
            _ellipse_d(b, cu + sd * w * 0.48, tip_v + 1.2, 1.9 + 0.6 * size, 1.1, s), 1.2
        )
        c.paint(b, nostril * 0.8, skin * 0.3)
    under = _smooth(1 - ((u - bu) / b.col(w + 1)) ** 2 - ((v - tv - 3) / 1.6) ** 2)
    c.paint(b, under * 0.3, skin * 0.55)
    tip = _smooth(1 - ((u - bu + 1) / b.col(w * 0.5)) ** 2 - ((v - tv + 2.5) / 2.5) ** 2)
    c.paint(b, tip * 0.22, np.minimum(skin * 1.25, 1))


def _mouth(c: _Canvas, f, yaw, skin) -> None:
    s = c.s
    smile, opening, full = f["smile"], f["mouth_open"], f["lip_fullness"]
    cu = 0.55 * yaw
    hw = 15.0 * (1 + 0.25 * smile)  # half-width: wider when smiling
    mid_v = 41.0 + 2.0 * smile + 1.0 * opening
    corner_v = 41.0 - 9.0 * (smile - 0.3)  # corners rise with the smile, droop without
    opening_13 = np.array([o**1.3 for o in opening.tolist()])  # Python's pow, as drawn alone
    gap = 8.5 * opening_13 + 4.0 * np.maximum(smile - 0.4, 0)
    t_up = 2.3 + 2.2 * full - 0.3 * f["male"]
    t_lo = 3.0 + 2.8 * full - 0.4 * f["male"]
    b = c.box(cu, mid_v + 2, hw + 4, 14)
    u, v = b.u, b.v
    x = (u - b.col(cu)) / b.col(hw)
    w2 = np.clip(1 - x**2, 0, 1)
    w2_07, w2_06 = w2**0.7, w2**0.6
    line = b.col(mid_v) + b.col(corner_v - mid_v) * x**2
    open_up = line - b.col(0.3 * gap) * w2_07
    open_lo = line + b.col(0.7 * gap) * w2_07
    bow = 1 - 0.3 * np.exp(-((x / 0.18) ** 2))  # cupid's bow
    top = open_up - b.col(t_up) * w2_06 * bow
    bottom = open_lo + b.col(t_lo) * w2_06
    outside_x = (np.abs(x) - 1) * b.col(hw * s)
    lips_d = np.maximum(np.maximum(top - v, v - bottom) * s, outside_x)
    natural = skin * np.array([0.92, 0.66, 0.64]) + np.array([0.06, 0.0, 0.0]) * (
        1 - 0.6 * f["male"][:, None]
    )
    lip_col = natural + (np.array([0.72, 0.07, 0.17]) - natural) * (0.9 * f["lipstick"][:, None])
    for sd in (-1, 1):  # smile lines from the nose wings to the mouth corners
        fold = np.abs(u - (b.col(cu) + sd * (b.col(hw + 2.5) - 1.5 * (b.col(corner_v) - v) / 10)))
        fold = fold - 0.6
        a = _fill(fold * s, 1.6) * _smooth((v - 24) / 5) * _smooth((b.col(corner_v + 4) - v) / 4)
        c.paint(b, a * b.col(0.08 + 0.4 * smile), skin * 0.55)
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
        inner
        * _fill((v - (open_up + b.col(0.55 * gap) + 0.6)) * s)
        * _fill((np.abs(x) - 0.78) * b.col(hw * s))
    )
    c.paint(b, teeth, np.array([0.94, 0.92, 0.86]))
    seam = (
        _fill((np.abs(v - line) - 0.45) * s)
        * _fill(outside_x)
        * b.col(1 - np.minimum(gap / 1.5, 1))
    )
    c.paint(b, seam * 0.8, lip_col * 0.45)


def _wrinkles(c: _Canvas, f, skin) -> None:
    """Lines of age: forehead lines (under no fringe) and lines under the eyes, from age 0.4 on."""
    amount = 0.55 * _smooth((f["age"] - 0.4) / 0.4)
    lined = amount > 0.01
    if not lined.any():
        return
    s = c.s
    forehead = lined & (f["bangs"] <= 0.5)
    if forehead.any():
        b = c.box(0, -27, 26, 8, where=forehead)
        u, v = b.u, b.v
        for k, dv in enumerate((-24.0, -29.0)):
            a = _fill((np.abs(v - dv - 0.004 * u**2) - 0.4) * s, 1.5) * _smooth(
                1 - (u / (22 - 4 * k)) ** 2
            )
            c.paint(b, a * b.col(amount), skin * 0.6)
    for side in (-1, 1):
        cu = side * EYE_HALF_DISTANCE + 0.25 * f["yaw"] * 9.0
        b = c.box(cu, 6, 10, 4, where=lined)
        du = b.u - b.col(cu)
        line = 5.5 + 0.03 * du**2
        a = _fill((np.abs(b.v - line) - 0.35) * s, 1.4) * _smooth(1 - (du / 7) ** 2)
        c.paint(b, a * b.col(amount), skin * 0.55)


def _front_hair(c: _Canvas, f, g: _Face) -> None:
    """7. Hair over the forehead (with its shadow) and locks beside the face, when not bald."""
    where = ~g.bald
    if not where.any():
        return
    s, hair, fcu, fw = c.s, g.hair, g.fcu, g.fw
    hcu, hcv, ha, hb = g.head_cu, g.head_cv, g.head_a * g.vol, g.head_b * g.vol
    rec, bangs, parting = f["recession"], f["bangs"], f["hair_parting"]
    hairline = -30.0 - 20.0 * np.maximum(rec - 0.25, 0) / 0.6
    b = c.box(hcu, hcv - hb * 0.2, ha * 1.05 + 2, hb * 0.85, where=where)
    u, v = b.u, b.v
    x = (u - b.col(hcu)) / b.col(ha)
    temples = b.col(6.0 * rec) * np.exp(
        -(((np.abs(x) - 0.55) / 0.22) ** 2)
    )  # an M-shaped recession
    edge = b.col(hairline) - temples + b.col(3.0 * parting) * x + 4.0 * np.abs(x) ** 3
    fringed = b.take(bangs > 0.5)
    if fringed.any():
        g, xg = b.where(fringed), x[fringed]
        jag = 1.2 * np.sin(g.u * 0.9 + g.col(2 * parting)) + g.col(f["waviness"] * 1.5) * np.sin(
            g.u * 0.35
        )
        fringe = -10.0 - g.col(3 * parting) * xg + jag
        edge[fringed] = np.where(np.abs(xg) < 0.9, np.maximum(edge[fringed], fringe), edge[fringed])
    side_bottom = 4 + 60 * f["hair_length"]  # hair beside the face, down to its length
    sides = (np.abs(u - b.col(fcu)) > b.col(fw * (0.93 - 0.1 * f["hair_length"]))) & (
        v < b.col(side_bottom)
    )
    d = np.maximum(_ellipse_d(b, hcu, hcv, ha * 1.02, hb, s), np.where(sides, -1.0, (v - edge) * s))
    p, alpha = b.nonzero(_fill(d, 1.2))
    c.paint_at(p, alpha, _hair_texture(c, p, hair, f["waviness"]))
    d_head = _ellipse_d(b, hcu, hcv, ha * 0.98, hb * 0.98, s)
    shadow = _fill((v - edge - 2.5) * s, 3.0) * (1 - _fill(d)) * _fill(d_head)
    c.paint(b, shadow * 0.2, np.zeros(3))
    locks = where & (f["hair_length"] > 0.3)  # locks falling over the sides of the face
    if locks.any():
        b = c.box(fcu, 20, fw + 6, 40, where=locks)
        wave = b.col(f["waviness"] * 1.5) * np.sin(b.v * 0.3)
        inner = b.col(fw * (0.86 - 0.06 * f["hair_length"])) + wave
        d = np.maximum((inner - np.abs(b.u - b.col(fcu))) * s, (b.v - b.col(side_bottom)) * s)
        d = np.maximum(d, (-25 - b.v) * s)
        p, alpha = b.nonzero(_fill(d, 1.2))
        c.paint_at(p, alpha, _hair_texture(c, p, hair, f["waviness"]))


def _hat(c: _Canvas, f, g: _Face) -> None:
    where = f["hat"] > 0.5
    if not where.any():
        return
    s, big = c.s, np.maximum(g.vol, 1.06)
    hcu, hcv, ha, hb = g.head_cu, g.head_cv, g.head_a * big, g.head_b * big
    col = np.stack([_hsv(h, 0.55, 0.35 + 0.4 * ((h * 7) % 1)) for h in f["hat_hue"].tolist()])
    brim_v = -24.0
    b = c.box(hcu, hcv - hb * 0.45, ha * 1.15, hb * 0.65, where=where)
    d = np.maximum(_ellipse_d(b, hcu, hcv - 3, ha * 1.1, hb * 1.02, s), (b.v - brim_v) * s)
    fold = 0.85 + 0.15 * np.sin(b.u * 0.35)
    c.paint(b, _fill(d), b.take(col)[:, :, None, None] * fold[:, None])
    band = np.maximum(np.abs(b.v - brim_v + 3) - 3.2, np.abs(b.u - b.col(hcu)) - b.col(ha * 1.12))
    c.paint(b, _fill(band * s), col * 0.7)


def _glasses(c: _Canvas, f, g: _Face) -> None:
    where = f["eyeglasses"] > 0.5
    if not where.any():
        return
    s, yaw, fcu, fw = c.s, g.yaw, g.fcu, g.fw
    frame = np.array([0.08, 0.07, 0.07])
    dark = (f["sunglasses"] > 0.5)[:, None]
    lens = np.where(dark, np.array([0.05, 0.05, 0.07]), np.array([0.8, 0.85, 0.95]))
    tint = np.where(dark[:, 0], 0.88, 0.08)
    for side in (-1, 1):
        cu, cv = side * EYE_HALF_DISTANCE + 0.3 * yaw, 1.0
        hx, hy, r = 11.5, 7.5, 3.5
        b = c.box(cu + side * 4, cv, hx + 12, hy + 3, where=where)
        u, v = b.u, b.v
        qx, qy = np.abs(u - b.col(cu)) - (hx - r), np.abs(v - cv) - (hy - r)
        box_d = (
            np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - r
        ) * s
        c.paint(b, _fill(box_d) * b.col(tint), lens)
        c.paint(b, _fill(np.abs(box_d) - 0.8 * s), frame)
        arm = (
            np.maximum(np.abs(v - cv + 3) - 0.8, side * (b.col(cu + side * hx) - u)) * s
        )  # towards the ear
        arm = np.maximum(arm, side * (u - b.col(fcu) - b.col(side * fw)) * s)
        c.paint(b, _fill(arm) * 0.9, frame)
    b = c.box(0.3 * yaw, -1, 9, 3, where=where)
    du = b.u - b.col(0.3 * yaw)
    bridge = np.maximum(np.abs(b.v + 1.5 - 0.02 * du**2) - 0.8, np.abs(du) - 8.5) * s
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


BATCH = 8  # faces drawn at once: enough to spread NumPy's per-call cost, few enough for the cache


def _render_chunk(job: tuple) -> int:
    """Worker: render and write the JPEGs of one chunk of rows."""
    rows, names, folder, quality = job
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        f = {name: batch[name].astype(np.float64) for name in FACTOR_NAMES}
        for image, name in zip(_render(f, (WIDTH, HEIGHT)), names[start : start + BATCH]):
            image.save(Path(folder) / name, format="JPEG", quality=quality)
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
    Processes that call this at once (torchrun's ranks) render it once: the others wait.
    The output is byte-identical for the same ``n``, ``seed`` and ``config`` whatever ``workers``.

    Returns:
        the dataset folder.
    """
    out = Path(out)
    # torchrun's ranks, or two notebooks, may all find the folder missing: one renders, the
    # others wait and then find it complete.
    with one_at_a_time(out.parent / f".{out.name}.lock", f"rendering SynthFaces into {out}"):
        return _write_synthfaces(out, n, seed, workers, config, force, progress)


def _write_synthfaces(out: Path, n: int, seed: int, workers: int | None, config: SynthConfig,
                      force: bool, progress: bool) -> Path:  # fmt: skip
    """:func:`write_synthfaces`, with its lock held."""
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
        as_row = " ".join(["%2d"] * len(ATTRIBUTES))  # one format per row: the rows are many
        _table(tmp / "list_attr_celeba.txt", list(ATTRIBUTES), names,
               [as_row % row for row in map(tuple, labels.tolist())])  # fmt: skip
        with open(tmp / "list_eval_partition.txt", "w") as fh:
            fh.writelines(f"{a} {p}\n" for a, p in zip(names, partition(factors["identity"], seed)))
        with open(tmp / "identity_CelebA.txt", "w") as fh:
            fh.writelines(f"{a} {int(i)}\n" for a, i in zip(names, factors["identity"]))
        _table(tmp / "list_landmarks_align_celeba.txt", LANDMARK_NAMES.split(), names,
               [" ".join(f"{v:5d}" for v in landmarks(r).ravel()) for r in factors])  # fmt: skip
        as_row = " ".join(["%.4f"] * len(FACTOR_NAMES))
        _table(tmp / "list_factors_synthfaces.txt", list(FACTOR_NAMES), names,
               [as_row % row for row in factors.tolist()])  # fmt: skip

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
        with tqdm(total=n, desc="rendering SynthFaces", unit="img", disable=not progress) as bar:
            for done in map_chunks(_render_chunk, jobs, workers):
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


def is_synthfaces(root: str | os.PathLike) -> bool:
    """Whether ``root`` is a SynthFaces folder, with the factors behind each image (real CelebA
    has none: cells that need factors or counterfactuals check this and say so)."""
    return (Path(root) / "list_factors_synthfaces.txt").is_file()


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
