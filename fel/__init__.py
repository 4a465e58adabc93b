"""fel: facial expression synthesis with deep generative models.

The library behind the course notebooks: data (CelebA and the offline SynthFaces),
models (VAE, InterfaceGAN, Glow), latent directions, metrics and slider widgets.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

__version__ = "0.1.0"

#: The project root when fel runs from a clone (editable install), else the working directory.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("FEL_DATA_DIR", PROJECT_ROOT / "data"))
CHECKPOINT_DIR = DATA_DIR / "checkpoints"


def device(prefer: str | None = None):
    """The torch device fel computes on: cuda, then mps, then cpu.

    Args:
        prefer: force a device ("cpu", "cuda", "cuda:1", "mps"); the environment variable
            ``FEL_DEVICE`` does the same for a whole session.

    Returns:
        torch.device
    """
    import torch

    choice = prefer or os.environ.get("FEL_DEVICE")
    if choice:
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and every CUDA device) random generators."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


__all__ = ["CHECKPOINT_DIR", "DATA_DIR", "PROJECT_ROOT", "__version__", "device", "seed_everything"]
