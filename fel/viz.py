"""Pictures: image grids, PNG bytes for widgets, and matplotlib helpers."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid


def to_uint8(images) -> np.ndarray:
    """Images as uint8 [B, H, W, 3] from float [B,3,H,W] in [0,1], uint8 [B,3,H,W] or [B,H,W,3].

    A single image (3 dimensions) becomes a batch of one.
    """
    x = (
        torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
        .detach()
        .cpu()
    )
    if x.dim() == 3:
        x = x[None]
    if x.shape[1] == 3 and x.shape[-1] != 3:
        x = x.permute(0, 2, 3, 1)
    if x.dtype != torch.uint8:
        x = (x.float().clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    return x.numpy()


def grid(images, nrow: int = 8, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile a batch into one uint8 image [H, W, 3], ``nrow`` images per row."""
    x = torch.from_numpy(to_uint8(images)).permute(0, 3, 1, 2)
    return make_grid(x, nrow=nrow, padding=padding, pad_value=pad_value).permute(1, 2, 0).numpy()


def png_bytes(image, scale: int = 1) -> bytes:
    """PNG encoding of one image (any layout :func:`to_uint8` takes), optionally enlarged."""
    pil = Image.fromarray(to_uint8(image)[0])
    if scale != 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def show(images, nrow: int = 8, title: str | None = None, width: float = 10.0, labels=None):
    """Show a grid with matplotlib; ``labels`` (one per image) are written under the grid rows."""
    import matplotlib.pyplot as plt

    tiled = grid(images, nrow=nrow)
    fig, ax = plt.subplots(figsize=(width, width * tiled.shape[0] / tiled.shape[1]))
    ax.imshow(tiled)
    ax.axis("off")
    if title:
        ax.set_title(title)
    if labels is not None:
        n = len(labels)
        cols = min(nrow, n)
        cell = tiled.shape[1] / cols
        for i, text in enumerate(labels):
            r, c = divmod(i, cols)
            ax.text((c + 0.5) * cell, (r + 1) * tiled.shape[0] / ((n + cols - 1) // cols) - 3,
                    text, ha="center", va="bottom", fontsize=8, color="white",
                    bbox=dict(facecolor="black", alpha=0.5, pad=1, lw=0))  # fmt: skip
    plt.tight_layout()
    return fig
