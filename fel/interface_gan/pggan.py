"""The PGGAN CelebA-HQ generator InterfaceGAN edits, loaded from its published state dict.

InterfaceGAN's PGGAN results use ``pggan_celebahq.pth``: the official TensorFlow ProgressiveGAN
(Karras et al. 2018) converted to a plain PyTorch state dict of 55 entries. fel cannot download
it; :func:`load_pggan` reads it when you have it. The network reads top to bottom:

    z [B, 512] -> rescale to norm sqrt(512) -> [B, 512, 1, 1]
    block 1 (4x4):        layer0 (4x4 conv, padding 3), layer1, output0 (to RGB)
    block b = 2..9:       layer{2b-2} (2x nearest upsampling first), layer{2b-1}, output{b-1}
    image = output8 of the last block: [B, 3, 1024, 1024] in about [-1, 1]

Each layer: pixel norm, (upsampling), conv without bias, times gain / sqrt(fan_in) (the
"equalised learning rate"), plus bias, leaky ReLU 0.2 (to-RGB layers: gain 1, linear).

The published boundaries of the same release (``.npy``, [1, 512]) load with :func:`load_boundary`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

import fel
from fel.checkpoints import load_state
from fel.interface_gan.published import read_state_file, tensor_dict

LATENT = 512
#: Output channels of the blocks at 4, 8, 16, ..., 1024 pixels.
CHANNELS = (512, 512, 512, 512, 256, 128, 64, 32, 16)
RESOLUTION = 4 * 2 ** (len(CHANNELS) - 1)
INTERFACEGAN_URL = "https://github.com/genforce/interfacegan"


class WScale(nn.Module):
    """Equalised learning rate: scale a bias-free conv's output by gain / sqrt(fan_in), add bias."""

    def __init__(self, fan_in: int, channels: int, gain: float) -> None:
        super().__init__()
        self.scale = gain / math.sqrt(fan_in)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.bias.view(1, -1, 1, 1)


class ConvLayer(nn.Module):
    """Pixel norm -> optional 2x nearest upsampling -> conv -> wscale -> optional leaky ReLU 0.2.

    Shapes: [B, cin, H, W] -> [B, cout, H', W'] (H' = 2H with ``upsample``; the 4x4 first layer
    turns 1x1 into 4x4 through its padding of 3).
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 3,
        padding: int = 1,
        upsample: bool = False,
        gain: float = math.sqrt(2.0),
        activate: bool = True,
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.activate = activate
        self.conv = nn.Conv2d(cin, cout, kernel, padding=padding, bias=False)
        nn.init.normal_(self.conv.weight)  # N(0, 1) weights: the scale lives in wscale
        self.wscale = WScale(cin * kernel * kernel, cout, gain)

    def forward(self, x: Tensor) -> Tensor:
        x = x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.wscale(self.conv(x))
        return F.leaky_relu(x, 0.2) if self.activate else x


class PGGANGenerator(nn.Module):
    """ProgressiveGAN generator for 1024x1024 CelebA-HQ, with the course's common face.

    Parameter names match the published state dict (``layer0``..``layer17``, ``output0``..
    ``output8``, each ``.conv.weight`` and ``.wscale.bias``; the buffer ``lod``), so
    ``load_state_dict`` takes the file as it is. ``lod`` (level of detail) > 0 skips the last
    ``ceil(lod)`` blocks and upsamples the last computed image (nearest) to 1024x1024; a
    fractional ``lod`` is not blended, as in InterfaceGAN's port. Freshly built, the weights are
    random (N(0, 1), zero biases); use :func:`load_pggan` for the trained ones.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("lod", torch.zeros(()))
        cin = LATENT
        for b, cout in enumerate(CHANNELS):
            if b == 0:
                first = ConvLayer(cin, cout, kernel=4, padding=3)
            else:
                first = ConvLayer(cin, cout, upsample=True)
            self.add_module(f"layer{2 * b}", first)
            self.add_module(f"layer{2 * b + 1}", ConvLayer(cout, cout))
            self.add_module(
                f"output{b}", ConvLayer(cout, 3, kernel=1, padding=0, gain=1.0, activate=False)
            )
            cin = cout

    @property
    def device(self) -> torch.device:
        return self.lod.device

    def forward(self, z: Tensor) -> Tensor:
        """Raw images [B, 3, 1024, 1024], nominally in [-1, 1], for latents z [B, 512].

        Each z is first rescaled to norm sqrt(512), as InterfaceGAN's ``preprocess`` does.
        """
        if z.dim() != 2 or z.shape[1] != LATENT:
            raise ValueError(f"z must be [B, {LATENT}], got shape {tuple(z.shape)}")
        lod = float(self.lod)
        if not 0 <= lod <= len(CHANNELS) - 1:
            raise ValueError(f"lod must lie in [0, {len(CHANNELS) - 1}], got {lod}")
        blocks = len(CHANNELS) - math.ceil(lod)
        x = z * (math.sqrt(LATENT) / z.norm(dim=1, keepdim=True).clamp_min(1e-12))
        x = x.view(-1, LATENT, 1, 1)
        for b in range(blocks):
            x = getattr(self, f"layer{2 * b + 1}")(getattr(self, f"layer{2 * b}")(x))
        image = getattr(self, f"output{blocks - 1}")(x)
        if blocks < len(CHANNELS):
            image = F.interpolate(image, size=(RESOLUTION, RESOLUTION), mode="nearest")
        return image

    def decode(self, z: Tensor, batch_size: int = 4) -> Tensor:
        """Images [B, 3, 1024, 1024] float in [0, 1] for latents z [B, 512].

        Runs ``batch_size`` latents at a time (a tqdm bar when there is more than one batch) and
        returns the images on the model's device. Gradients flow when enabled by the caller.
        """
        z = torch.as_tensor(z, dtype=torch.float32).to(self.device)
        chunks = z.split(batch_size)
        bar = tqdm(chunks, desc="PGGAN decode", unit="batch", disable=len(chunks) <= 1)
        return torch.cat([((self(c) + 1) / 2).clamp(0, 1) for c in bar])

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n latents [n, 512] from the standard normal (drawn on CPU, so a seed gives the same
        codes on every device), on the model's device."""
        return torch.randn(n, LATENT, generator=generator).to(self.device)

    @staticmethod
    def to_uint8(raw: Tensor) -> Tensor:
        """Raw output [B, 3, H, W] in [-1, 1] -> uint8 [B, 3, H, W]: clip((x + 1) * 127.5 + 0.5,
        0, 255) truncated, i.e. rounded to nearest, as InterfaceGAN's ``postprocess``."""
        return ((raw + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8)


def _not_found(path: Path, where: str) -> FileNotFoundError:
    return FileNotFoundError(f"{path} not found. fel cannot download it: {where} Pass its path.")


def load_pggan(path: str | os.PathLike, device: torch.device | str | None = None) -> PGGANGenerator:
    """The published generator ``pggan_celebahq.pth`` in eval mode on ``device``
    (default ``fel.device()``).

    The file is read with ``torch.load(..., weights_only=True)``; a state dict wrapped as
    ``{"state_dict": ...}``, ``{"generator": ...}`` or fel's ``{"model": ...}`` is unwrapped.

    Raises:
        FileNotFoundError: no file at ``path`` (with where to get it).
        CheckpointError: (a ``ValueError``) the file is not a torch state dict (random bytes,
            truncated), lacks keys (named) or has a tensor of the wrong shape (key, both shapes).
    """
    state = read_state_file(
        path,
        "PyTorch state dict",
        f"InterfaceGAN's README ({INTERFACEGAN_URL}, 'How to Use') asks you to download the "
        "pre-trained ProgressiveGAN CelebA-HQ model yourself and place it in models/pretrain/ "
        "as pggan_celebahq.pth.",
    )
    if isinstance(state, dict):
        for wrapper in ("state_dict", "generator", "model"):
            if isinstance(state.get(wrapper), dict):
                state = state[wrapper]
                break
    state = tensor_dict(
        state, path, "a state dict of tensors (expected the 55 entries of pggan_celebahq.pth)"
    )
    model = PGGANGenerator()
    load_state(model, state, str(path))
    return model.to(device or fel.device()).eval()


def load_boundary(path: str | os.PathLike, dim: int = LATENT) -> Tensor:
    """A published InterfaceGAN boundary (``.npy``, [1, dim] float64, unit norm) as a float32
    unit vector [dim].

    A norm within 1e-3 of 1 is rounding and is renormalised silently; anything further off is
    refused, since the release's signed distances (z . n in [-3, 3]) only mean something for a
    unit normal: a file that is not one is most likely not a boundary (use
    :func:`fel.directions.unit` on purpose if it is a direction you saved yourself).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a ``.npy`` array, not [dim] or [1, dim], not finite, or not unit norm.
    """
    path = Path(path)
    if not path.is_file():
        raise _not_found(
            path,
            f"the published boundaries ship in the boundaries/ folder of {INTERFACEGAN_URL} "
            "(e.g. pggan_celebahq_smile_boundary.npy).",
        )
    hint = f"InterfaceGAN boundaries are .npy files of shape [1, {dim}]"
    try:
        with open(path, "rb") as file:  # closes the archive too if it is a zip
            array = np.load(file, allow_pickle=False)
    except Exception as err:
        raise ValueError(
            f"{path} is not a .npy array ({type(err).__name__}: {err}); {hint}"
        ) from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{path} is a zip archive (.npz or torch file), not a .npy array; {hint}")
    if array.shape not in ((dim,), (1, dim)):
        raise ValueError(f"{path} holds an array of shape {array.shape}; {hint}")
    vector = array.astype(np.float64).reshape(dim)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(vector).all() or abs(norm - 1) > 1e-3:
        raise ValueError(
            f"{path} has norm {norm:.6g}; a boundary is a finite unit normal vector "
            "(use fel.directions.unit if you meant to normalise it)"
        )
    return torch.from_numpy(vector / norm).float()
