"""Differentiable augmentation of everything the discriminator sees (DiffAugment, Zhao et al. 2020).

A discriminator that memorises its training faces stops telling the generator what the data
holds. DiffAugment shows it only randomly transformed images, real and generated alike, and
backpropagates the generator's loss through the transform, so the generator is still asked for
untransformed faces. DiffAugment applies these three to every image and reports that the generated
faces do not take them on (no shifted, cut or recoloured samples). Each image gets its own draw:

* ``color``: brightness + U(-0.5, 0.5); saturation x U(0, 2) about the pixel's grey;
  contrast x U(0.5, 1.5) about the image mean (images in [-1, 1]);
* ``translation``: an integer shift of up to 1/8 of the size in each axis, zeros shifted in;
* ``cutout``: a square of half the size, centred anywhere in the image, set to zero.

Shapes: images [B, C, H, W] -> [B, C, H, W].
"""

from __future__ import annotations

import torch
from torch import Tensor

#: The transforms, in the order they are applied.
POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"color,translation"`` -> ("color", "translation"); "" -> (). Unknown names are an
    error listing the known ones."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(
            f"unknown augmentation {', '.join(map(repr, unknown))}: choose from {', '.join(POLICIES)}"
        )
    return names


def augment(x: Tensor, policy: str) -> Tensor:
    """``x`` [B, C, H, W] (in [-1, 1]) through each transform ``policy`` names, each image with
    its own random draw from torch's global generator; ``policy`` "" returns ``x`` itself."""
    chosen = parse_policy(policy)
    for name in POLICIES:
        if name in chosen:
            x = TRANSFORMS[name](x)
    return x


def color(x: Tensor) -> Tensor:
    b = x.shape[0]
    x = x + (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    grey = x.mean(1, keepdim=True)
    x = (x - grey) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + grey
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: Tensor) -> Tensor:
    b, _, h, w = x.shape
    reach_y, reach_x = int(h * TRANSLATION_RATIO), int(w * TRANSLATION_RATIO)
    dy = torch.randint(-reach_y, reach_y + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-reach_x, reach_x + 1, (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None] - dy  # source row of each output row
    cols = torch.arange(w, device=x.device)[None, None, :] - dx
    inside = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).unsqueeze(1)
    flat = rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)  # [B, H, W]
    moved = x.flatten(2).gather(2, flat.flatten(1)[:, None, :].expand(-1, x.shape[1], -1))
    return moved.view_as(x) * inside


def cutout(x: Tensor) -> Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO), int(w * CUTOUT_RATIO)
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    hole = (rows >= cy - ch // 2) & (rows < cy - ch // 2 + ch)
    hole = hole & (cols >= cx - cw // 2) & (cols < cx - cw // 2 + cw)
    return x * ~hole.unsqueeze(1)


TRANSFORMS = {"color": color, "translation": translation, "cutout": cutout}
