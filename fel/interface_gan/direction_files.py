"""Directions that other projects publish for StyleGAN-family generators, read and validated.

- InterfaceGAN's boundaries: ``.npy`` [1, 512], unit normals (:func:`fel.interface_gan.load_boundary`).
- e4e / StyleCLIP-style direction tensors: a ``.pt`` holding [512], [1, 512] (a W direction)
  or [1, n_latent, 512] (a W+ direction, one step per layer), added to codes as they are.
- GANSpace's PCA files (``.npz``): ``lat_comp`` [k, 1, 512] (components, unit rows),
  ``lat_mean`` [1, 512] (the mean W) and ``lat_stdev`` [k] (the spread of W along each).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from fel.interface_gan.published import read_state_file

GANSPACE_URL = "https://github.com/harskish/ganspace"


def load_direction(path: str | os.PathLike, dim: int = 512, n_latent: int | None = None) -> Tensor:
    """A direction tensor saved with ``torch.save`` (``weights_only=True``): [dim] for W, or
    [n_latent, dim] for W+ (a leading batch axis of 1 is dropped). Not normalised: published W+
    directions carry their own per-layer strengths.

    Args:
        n_latent: when given, a W+ direction must have this many layers.

    Raises:
        FileNotFoundError, CheckpointError: no file, or not a torch file.
        ValueError: not a tensor, the wrong shape, or not finite.
    """
    value = read_state_file(path, "torch direction file", "save one with torch.save(d, path).")
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))  # {"direction": tensor}
    if not torch.is_tensor(value):
        raise ValueError(f"{path} holds a {type(value).__name__}, not a direction tensor")
    d = value.float()
    if d.dim() >= 2 and d.shape[0] == 1:
        d = d[0]
    layers = f"[{n_latent}, {dim}]" if n_latent else f"[n_latent, {dim}]"
    ok = d.shape == (dim,) or (
        d.dim() == 2 and d.shape[1] == dim and n_latent in (None, d.shape[0])
    )
    if not ok:
        raise ValueError(
            f"{path} holds a tensor of shape {tuple(value.shape)}; a direction is [{dim}] or "
            f"[1, {dim}] (W), or {layers} / [1, ...] (W+)"
        )
    if not torch.isfinite(d).all() or not d.abs().sum():
        raise ValueError(f"{path} is not a finite, non-zero direction")
    return d


def load_ganspace(path: str | os.PathLike, dim: int = 512) -> dict[str, Tensor]:
    """GANSpace components of W from its ``.npz``: ``components`` [k, dim] (unit rows, the
    principal directions), ``mean`` [dim] and ``std`` [k] (so ``mean + c * std[i] *
    components[i]`` is c standard deviations along component i).

    Raises:
        FileNotFoundError: no file (with where GANSpace files come from).
        ValueError: not an ``.npz``, a missing array (named), or inconsistent shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found. GANSpace ({GANSPACE_URL}) writes its components to "
            "cache/components/*.npz. Pass its path."
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as err:
        raise ValueError(f"{path} is not an .npz archive ({type(err).__name__}: {err})") from None
    missing = [k for k in ("lat_comp", "lat_mean", "lat_stdev") if k not in arrays]
    if missing:
        raise ValueError(
            f"{path} lacks {missing}; GANSpace files hold lat_comp, lat_mean and lat_stdev"
        )
    comp = torch.from_numpy(arrays["lat_comp"]).float().reshape(len(arrays["lat_comp"]), -1)
    mean = torch.from_numpy(arrays["lat_mean"]).float().reshape(-1)
    std = torch.from_numpy(arrays["lat_stdev"]).float().reshape(-1)
    if comp.shape[1] != dim or mean.shape != (dim,) or std.shape != (comp.shape[0],):
        raise ValueError(
            f"{path}: lat_comp {arrays['lat_comp'].shape}, lat_mean {arrays['lat_mean'].shape} and "
            f"lat_stdev {arrays['lat_stdev'].shape} do not fit k components of W [{dim}]"
        )
    return {"components": comp / comp.norm(dim=1, keepdim=True), "mean": mean, "std": std}
