"""Local edits: keep a direction out of the pixels it should leave alone.

An attribute direction found from labels (an InterfaceGAN boundary, a mean difference) moves
whatever the model's codes tie to the attribute: in fel's small GAN the smile boundary also
darkens the hair and reshapes the head. LowRankGAN (Zhu et al., "Low-Rank Subspaces in GANs",
NeurIPS 2021) removes that part from the model itself, with no labels for the hair:

* the Jacobian ``J = d x_keep / d z`` [P, D] of the pixels to keep (here: outside the inner face)
  says how every latent direction moves them, and its Gram matrix ``J^T J`` [D, D], averaged
  over faces, is low-rank: a few directions move almost all of the hair, skin and background;
* the edit ``d`` is projected onto the null space of its top ``r`` eigenvectors ``V_r``:
  ``d' = d - V_r V_r^T d``. To first order, moving along ``d'`` leaves those pixels where they are,
  and what remains of ``d`` changes the rest: the mouth, the eyes.

``r`` trades locality for strength: a larger rank keeps more of the outside still and also takes
more of the edit away (measured for the shipped GAN in notebook 04 and ``python -m fel bench
edits``).
"""

from __future__ import annotations

import torch
from torch import Tensor
from tqdm.auto import tqdm

from fel.codes import model_device
from fel.metrics import INNER_FACE, region_mask


def outside_mask(size: int, box: tuple[float, float, float, float] = INNER_FACE) -> Tensor:
    """Bool mask [size, size], True outside ``box`` (fractions, as :func:`fel.metrics.region_mask`):
    the pixels an expression edit should leave alone (hair, forehead, ears, background)."""
    return ~region_mask(size, box)


def pixel_gram(model, codes: Tensor, keep: Tensor, progress: bool = True) -> Tensor:
    """Mean over ``codes`` of ``J^T J``, with ``J`` = the Jacobian of ``model.decode`` at one code,
    restricted to the pixels in ``keep`` (all colour channels).

    Exact Jacobians, by forward-mode autograd (``torch.func.jacfwd``: D forward passes in one
    batch per code). ``v^T G v`` is the mean squared speed at which the kept pixels move along a
    unit direction ``v``.

    Args:
        model: has ``decode(codes [B, D]) -> images [B, 3, H, W]``, differentiable (a VAE, Glow,
            a GAN's ``w_space()``).
        codes: [N, D] codes to average over (a few dozen suffice: the Gram is low-rank).
        keep: bool [H, W], True at the pixels whose change counts.

    Returns:
        the Gram matrix [D, D], float64 on the CPU, symmetric positive semi-definite.
    """
    from torch.func import jacfwd

    if codes.dim() != 2 or len(codes) == 0:
        raise ValueError(f"codes must be [N, D] with N >= 1, got shape {tuple(codes.shape)}")
    device = model_device(model)
    dim = codes.shape[1]
    gram = torch.zeros(dim, dim, dtype=torch.float64)
    for code in tqdm(codes, desc="pixel Jacobians", unit="code", disable=not progress):
        jac = jacfwd(lambda z: model.decode(z[None])[0])(code.to(device).float())  # [3, H, W, D]
        if jac.shape[1:3] != keep.shape:
            raise ValueError(
                f"the mask is {tuple(keep.shape)} but the model draws {tuple(jac.shape[1:3])} images"
            )
        rows = jac[:, keep.to(jac.device)].reshape(-1, dim).detach().double().cpu()  # [P, D]
        gram += rows.T @ rows
    return gram / len(codes)


def null_space_projection(direction: Tensor, gram: Tensor, rank: int) -> Tensor:
    """``direction`` minus its part in the top ``rank`` eigenvectors of ``gram``: the edit, kept
    out of the ``rank`` latent directions that move the kept pixels most.

    Args:
        direction: [D].
        gram: [D, D] from :func:`pixel_gram`.
        rank: how many of its leading eigenvectors to leave, 0 <= rank < D (0: unchanged).

    Returns:
        the projected direction [D], float32 on ``direction``'s device, at its remaining length.

    Raises:
        ValueError: shapes disagree, the rank is out of range, or nothing of the direction is left.
    """
    d = direction.detach().flatten().double().cpu()
    dim = d.shape[0]
    if gram.shape != (dim, dim):
        raise ValueError(
            f"gram is {tuple(gram.shape)}; a {dim}-dimensional direction needs {dim}x{dim}"
        )
    if not 0 <= rank < dim:
        raise ValueError(f"rank must be in [0, {dim}), got {rank}")
    _, vectors = torch.linalg.eigh(gram.double().cpu())  # ascending eigenvalues
    top = vectors[:, dim - rank :]
    kept = d - top @ (top.T @ d)
    if kept.norm() <= 1e-6 * d.norm():
        raise ValueError(
            f"the direction lies in the top {rank} eigenvectors: nothing of it is left; use a "
            "smaller rank"
        )
    return kept.to(direction.device, torch.float32)


def energy(gram: Tensor, rank: int) -> float:
    """Share of the kept pixels' total movement (trace of ``gram``) that its top ``rank``
    eigenvectors carry: how much of the outside a rank-``rank`` projection holds still."""
    values = torch.linalg.eigvalsh(gram.double().cpu()).flip(0).clamp_min(0)
    return float(values[:rank].sum() / values.sum())
