"""InterfaceGAN boundaries of a generator in Z and in W: ``python -m fel boundaries``.

Any generator with the course's common face works: fel's GAN, and the published StyleGAN and
StyleGAN2 (``--generator stylegan|stylegan2 --checkpoint FILE``); the predictor scores each face
resized to its own input size (64 px).

The procedure of Shen et al. (2020):

1. draw N Z codes and map them to W (before truncation: edits are made there);
2. synthesise their faces (truncation psi, InterfaceGAN's StyleGAN setting is 0.7) and score
   every face with the attribute predictor;
3. per attribute and space, fit a linear SVM between the codes of the 2% highest- and the 2%
   lowest-scored faces (:func:`fel.directions.train_boundary`); its unit normal is the boundary;
4. write each normal as the release does, a ``.npy`` array [1, d] of float64 with unit norm
   (readable by :func:`fel.interface_gan.pggan.load_boundary`), and one JSON report.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from fel.data.attributes import check_attribute
from fel.directions import train_boundary
from fel.interface_gan.model import Generator
from fel.interface_gan.published import StyleGenerator
from fel.metrics import Predictor

#: The attributes fel edits with the GAN.
ATTRIBUTES = ("Smiling", "Mouth_Slightly_Open", "Narrow_Eyes", "Male", "Eyeglasses", "Young",
              "Bangs")  # fmt: skip
SPACES = ("z", "w")
REPORT = "report.json"


def boundary_path(out: str | os.PathLike, attribute: str, space: str) -> Path:
    """Where :func:`find_boundaries` writes a boundary: ``out/{space}_{attribute}_boundary.npy``."""
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    return Path(out) / f"{space}_{attribute}_boundary.npy"


@torch.no_grad()
def sample_and_score(generator: Generator | StyleGenerator, predictor: Predictor, n: int = 20_000,
                     psi: float = 0.7, batch_size: int = 500, seed: int = 0,
                     progress: bool = True) -> dict[str, Tensor]:  # fmt: skip
    """Draw ``n`` Z codes (seeded), map them to W, synthesise with truncation ``psi`` and score.

    Returns:
        on the CPU: ``z`` [n, z_dim], ``w`` [n, w_dim] (before truncation) and ``scores``
        [n, len(predictor.attr_names)] (the predictor's probabilities).
    """
    g = torch.Generator().manual_seed(seed)
    parts: dict[str, list[Tensor]] = {"z": [], "w": [], "scores": []}
    starts = range(0, n, batch_size)
    for start in tqdm(starts, desc="sampling and scoring", unit="batch", disable=not progress):
        z = generator.sample_latent(min(batch_size, n - start), generator=g)
        w = generator.mapping(z)
        parts["scores"].append(predictor.predict(generator.decode_w(w, psi)).float().cpu())
        parts["z"].append(z.cpu())
        parts["w"].append(w.cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


def find_boundaries(generator: Generator | StyleGenerator, predictor: Predictor, out: str | os.PathLike,
                    attributes: Sequence[str] = ATTRIBUTES, n: int = 20_000, psi: float = 0.7,
                    chosen_ratio: float = 0.02, split_ratio: float = 0.7, seed: int = 0,
                    batch_size: int = 500, progress: bool = True,
                    source: str = "") -> dict[str, Any]:  # fmt: skip
    """The whole pipeline: sample, score, fit one boundary per attribute in Z and in W, write.

    Args:
        generator: e.g. :func:`fel.interface_gan.load_pretrained`,
            :func:`~fel.interface_gan.load_stylegan` or :func:`~fel.interface_gan.load_stylegan2`.
        predictor: has ``attr_names`` and ``predict(images) -> probabilities [B, n_attrs]``
            (e.g. :func:`fel.classifier.load_pretrained`).
        out: folder for the ``.npy`` files (see :func:`boundary_path`) and ``report.json``.
        attributes: names among ``predictor.attr_names`` (checked before any sampling).
        n, psi, batch_size, seed: as :func:`sample_and_score`.
        chosen_ratio, split_ratio: as :func:`fel.directions.train_boundary`.
        source: where the generator came from, recorded in the report.

    Returns:
        the report written to ``report.json``: the settings, and per attribute the mean score
        and the rate of scores > 0.5 over the n faces, and per space the boundary's file,
        ``val_accuracy``, ``remaining_accuracy``, ``n_train``, ``n_val``, ``n_remaining``,
        ``solver`` and ``converged``; ``seconds``: wall time of ``sample_and_score`` and of
        the boundary fits.
    """
    names = [check_attribute(a, predictor.attr_names) for a in attributes]
    columns = {a: predictor.attr_names.index(a) for a in names}
    start = time.perf_counter()
    data = sample_and_score(generator, predictor, n, psi, batch_size, seed, progress)
    sampled = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "generator": source, "n": n, "truncation": psi, "seed": seed,
        "chosen_ratio": chosen_ratio, "split_ratio": split_ratio, "attributes": {},
    }  # fmt: skip
    for name, column in columns.items():
        scores = data["scores"][:, column]
        entry: dict[str, Any] = {
            "mean_score": float(scores.mean()),
            "positive_rate": float((scores > 0.5).float().mean()),
        }
        for space in SPACES:
            normal, fit = train_boundary(data[space], scores, chosen_ratio, split_ratio, seed)
            path = boundary_path(out, name, space)
            vector = normal.double().numpy().reshape(1, -1)
            np.save(path, vector / np.linalg.norm(vector))
            entry[space] = {"file": path.name, **fit}
        report["attributes"][name] = entry
    report["seconds"] = {"sample_and_score": sampled - start, "fit": time.perf_counter() - sampled}
    (out / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    return report
