"""Directions in latent space: attribute vectors, their quality, orthogonalisation, interpolation.

Plain functions over tensors (numpy arrays are accepted too), with no hidden state. Shapes:
codes [N, D], labels [N] in {0, 1}, directions [D].
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _as_tensor(x, dtype=torch.float32) -> Tensor:
    return (x.detach() if torch.is_tensor(x) else torch.as_tensor(np.asarray(x))).to(dtype)


def _check(codes: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    codes, labels = _as_tensor(codes), _as_tensor(labels).flatten()
    if codes.dim() != 2:
        raise ValueError(f"codes must be [N, D], got shape {tuple(codes.shape)}")
    if labels.shape[0] != codes.shape[0]:
        raise ValueError(f"{codes.shape[0]} codes but {labels.shape[0]} labels")
    if not torch.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0 or 1")
    if labels.min() == labels.max():
        raise ValueError(
            "labels hold a single class: a direction needs examples with and without the attribute"
        )
    return codes, labels.bool()


def unit(v: Tensor) -> Tensor:
    """``v`` scaled to unit length (along the last dimension)."""
    v = _as_tensor(v)
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def mean_difference(codes, labels) -> Tensor:
    """Attribute vector: mean code of faces with the attribute minus mean code of those without.

    Returns:
        direction [D] (not normalised: its length is the average distance between the groups).
    """
    codes, labels = _check(codes, labels)
    return codes[labels].mean(0) - codes[~labels].mean(0)


def balanced_mean_difference(codes, labels, confounder) -> Tensor:
    """Mean difference computed within each value of a correlated attribute, then averaged.

    If smiling faces are more often female, the plain difference also points towards "female".
    Comparing smiling and non-smiling faces *of the same gender* and averaging the two
    differences (weighted by group size) cancels that part.

    Args:
        codes: [N, D]; labels: [N] in {0, 1}; confounder: [N] in {0, 1} (e.g. Male).
    """
    codes, labels = _check(codes, labels)
    confounder = _as_tensor(confounder).flatten().bool()
    parts, weights = [], []
    for value in (False, True):
        group = confounder == value
        pos, neg = group & labels, group & ~labels
        if pos.any() and neg.any():
            parts.append(codes[pos].mean(0) - codes[neg].mean(0))
            weights.append(float(group.sum()))
    if not parts:
        raise ValueError("no confounder group has both classes of the attribute")
    w = torch.tensor(weights, device=parts[0].device) / sum(weights)
    return (torch.stack(parts) * w[:, None]).sum(0)


def projection_auc(direction, codes, labels) -> float:
    """ROC AUC of ``codes @ direction`` as a score for the attribute (held-out codes, please).

    1.0: the direction separates the classes perfectly; 0.5: it knows nothing about them.
    """
    from sklearn.metrics import roc_auc_score

    codes, labels = _check(codes, labels)
    scores = codes @ unit(direction)
    return float(roc_auc_score(labels.cpu().numpy(), scores.cpu().numpy()))


def orthogonalize(direction, others) -> Tensor:
    """Remove from ``direction`` its component in the span of ``others`` (Gram-Schmidt).

    Moving along the result leaves the projections onto every direction in ``others`` unchanged:
    "smile, but keep the mouth closed" is ``orthogonalize(smile, [mouth_open])``.

    Returns:
        the orthogonalised direction [D], at its remaining length (not re-normalised).
    """
    d = _as_tensor(direction).clone()
    basis: list[Tensor] = []
    for o in others:
        o = _as_tensor(o).clone()
        size = o.norm()
        for b in basis:
            o -= (o @ b) * b
        if (
            o.norm() > 1e-4 * size
        ):  # skip vectors already in the span (their residue is rounding noise)
            basis.append(o / o.norm())
    for b in basis:
        d -= (d @ b) * b
    return d


def lerp(a, b, t: float) -> Tensor:
    """Straight-line interpolation (1 - t) a + t b."""
    a, b = _as_tensor(a), _as_tensor(b)
    return a + (b - a) * t


def slerp(a, b, t: float) -> Tensor:
    """Spherical interpolation along the great circle from ``a`` to ``b`` (rows, last dim).

    For Gaussian latents, lerp's midpoints have smaller norms than typical samples; slerp keeps
    them on the shell where the prior's mass lies. Falls back to lerp for (anti)parallel vectors.
    """
    a, b = _as_tensor(a), _as_tensor(b)
    cos = (unit(a) * unit(b)).sum(-1, keepdim=True).clamp(-1, 1)
    omega = torch.arccos(cos)
    so = torch.sin(omega)
    safe = so.abs() > 1e-6
    w_a = torch.where(
        safe,
        torch.sin((1 - t) * omega) / so.where(safe, torch.ones_like(so)),
        torch.full_like(so, 1 - t),
    )
    w_b = torch.where(
        safe, torch.sin(t * omega) / so.where(safe, torch.ones_like(so)), torch.full_like(so, t)
    )
    return w_a * a + w_b * b
