"""StyleGAN2 (Karras et al. 2020) from rosinality's ``.pt`` files, the format of the face-editing
world (e4e, pSp, StyleCLIP, GANSpace, SeFa), with the course's common face.

A converted file is ``{"g_ema": state dict, "latent_avg": [512]}``; size, mapping depth, style
width and channel multiplier are read off the shapes. The network, for L = log2(R) - 2 blocks:

    z [B, 512] -> pixel norm -> n_mlp x (equalised linear, lr 0.01, leaky ReLU 0.2, x sqrt 2) -> w
    W+ code [B, n_latent = 2 L + 2, 512]; truncation moves every layer towards the centre
    const [1, 512, 4, 4] -> conv1 (latent 0) -> to_rgb1 (latent 1)
    block j: convs.2j (up, latent 2j+1) -> convs.2j+1 (latent 2j+2) -> to_rgbs.j (latent 2j+3),
             the image so far up-sampled and added (skip architecture)

A styled conv is a modulated, demodulated conv (the up-sampling one a stride-2 transposed conv
followed by a [1, 3, 3, 1] blur), then ``x + weight * noise`` (one scalar per layer, the stored
noise), then bias, leaky ReLU 0.2 and a gain of sqrt 2. ToRGB is a modulated 1x1 conv without
demodulation, plus bias. The raw image is nominally in [-1, 1].
"""

from __future__ import annotations

import math
import os
import re

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import fel
from fel.checkpoints import CheckpointError, load_state
from fel.interface_gan.model import EqualLinear
from fel.interface_gan.published import (
    StyleGenerator,
    check_constant,
    read_state_file,
    tensor_dict,
)

ROSINALITY_URL = "https://github.com/rosinality/stylegan2-pytorch"
WHAT = "rosinality StyleGAN2 checkpoint ({'g_ema': ..., 'latent_avg': ...})"
#: The mean of this many mapped draws is the truncation centre when a file has no latent_avg
#: (the maintainers' ``mean_latent(4096)``).
MEAN_LATENT_DRAWS = 4096


def channels(resolution: int, multiplier: int) -> int:
    """Feature maps at a resolution: 512 up to 32 px, then (16384 / r) * multiplier."""
    return 512 if resolution <= 32 else 16384 // resolution * multiplier


def blur_kernel() -> Tensor:
    """The [1, 3, 3, 1] outer product normalised to sum 1, times 4 (the up-sampling factor^2)."""
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = k[:, None] * k[None, :]
    return k / k.sum() * 4


class PixelNorm(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)


class Kernel(nn.Module):
    """Holds the constant 4x4 filter as the buffer ``kernel`` (the file stores it)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", blur_kernel())

    def depthwise(self, channels_: int) -> Tensor:
        """[channels, 1, 4, 4] for a depthwise conv (the kernel is symmetric, so correlation and
        convolution agree)."""
        return self.kernel.expand(channels_, 1, 4, 4)


class ModulatedConv(nn.Module):
    """Weight [1, cout, cin, k, k] modulated per sample by s = modulation(w) [B, cin], scaled by
    1 / sqrt(cin k^2), demodulated per sample and output channel (styled convs); with ``up``, a
    stride-2 transposed conv (weight read as [cin, cout]) then the blur with padding (1, 1).

    Computed as ``d * conv(s * x, weight)``: the same sums as the per-sample weights, with one
    batched convolution. Shapes: x [B, cin, H, W], w [B, S] -> [B, cout, H', W'] (2H with up).
    """

    def __init__(self, cin: int, cout: int, kernel: int, style_dim: int, demodulate: bool,
                 up: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, cout, cin, kernel, kernel))
        self.modulation = EqualLinear(style_dim, cin, bias_init=1.0)
        self.scale = 1 / math.sqrt(cin * kernel * kernel)
        self.demodulate, self.up = demodulate, up
        if up:
            self.blur = Kernel()

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        s = self.modulation(w)  # [B, cin]
        weight = self.weight[0] * self.scale  # [cout, cin, k, k]
        x = x * s[:, :, None, None]
        if self.up:
            x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
            x = F.conv2d(F.pad(x, (1, 1, 1, 1)), self.blur.depthwise(x.shape[1]), groups=x.shape[1])
        else:
            x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
        if self.demodulate:  # rsqrt of sum over (cin, kh, kw) of (s * weight)^2: [B, cout]
            d = torch.rsqrt(s.square() @ weight.square().sum((2, 3)).T + 1e-8)
            x = x * d[:, :, None, None]
        return x


class NoiseInjection(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, noise: Tensor) -> Tensor:
        return x + self.weight * noise


class FusedLeakyReLU(nn.Module):
    def __init__(self, channels_: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels_))

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * math.sqrt(2)


class StyledConv(nn.Module):
    """Modulated 3x3 conv -> noise -> bias, leaky ReLU, sqrt 2."""

    def __init__(self, cin: int, cout: int, style_dim: int, up: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, cout, 3, style_dim, demodulate=True, up=up)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(cout)

    def forward(self, x: Tensor, w: Tensor, noise: Tensor) -> Tensor:
        return self.activate(self.noise(self.conv(x, w), noise))


class ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB (no demodulation) + bias, plus the up-sampled skip image:
    zero insertion, padding (2, 1), the 4x4 kernel; done as a transposed conv cropped by 1."""

    def __init__(self, cin: int, style_dim: int, up: bool = True) -> None:
        super().__init__()
        if up:
            self.upsample = Kernel()
        self.conv = ModulatedConv(cin, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: Tensor, w: Tensor, skip: Tensor | None = None) -> Tensor:
        rgb = self.conv(x, w) + self.bias
        if skip is not None:
            up = F.conv_transpose2d(skip, self.upsample.depthwise(3), stride=2, groups=3)
            rgb = rgb + up[:, :, 1:-1, 1:-1]
        return rgb


class ConstantInput(nn.Module):
    def __init__(self, channels_: int) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels_, 4, 4))


class StyleGAN2Generator(StyleGenerator):
    """rosinality's ``Generator`` with its state-dict names, and the course's common face.

    Freshly built, the weights are random; :func:`load_stylegan2` loads a file. Noise is the
    stored ``noises.noise_i`` (never redrawn), so a code always gives the same image.

    Args:
        size: output resolution R (a power of 2, >= 8).
        style_dim: width of Z and W (512 in every published model).
        n_mlp: mapping layers (8).
        channel_multiplier: 2 for config-f (FFHQ 1024), 1 for the smaller configs.
        truncation: default psi of :meth:`decode` and :meth:`decode_w` (0.7; 1 = none).
    """

    def __init__(self, size: int = 1024, style_dim: int = 512, n_mlp: int = 8,
                 channel_multiplier: int = 2, truncation: float = 0.7) -> None:  # fmt: skip
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"size must be a power of 2 >= 8, got {size}")
        self.resolution, self.z_dim, self.w_dim = size, style_dim, style_dim
        self.n_mlp, self.channel_multiplier, self.truncation = n_mlp, channel_multiplier, truncation
        blocks = int(math.log2(size)) - 2
        self.n_latent = 2 * blocks + 2
        self.style = nn.Sequential(
            PixelNorm(), *[EqualLinear(style_dim, style_dim, 0.01, act=True) for _ in range(n_mlp)]
        )
        self.input = ConstantInput(512)
        self.conv1 = StyledConv(512, 512, style_dim)
        self.to_rgb1 = ToRGB(512, style_dim, up=False)
        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        cin = 512
        for j in range(blocks):
            cout = channels(2 ** (j + 3), channel_multiplier)
            self.convs.append(StyledConv(cin, cout, style_dim, up=True))
            self.convs.append(StyledConv(cout, cout, style_dim))
            self.to_rgbs.append(ToRGB(cout, style_dim))
            cin = cout
        self.noises = nn.Module()
        for i in range(2 * blocks + 1):
            r = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))
        # The truncation centre: the file's latent_avg, kept beside the state dict, not in it.
        self.register_buffer("w_avg", torch.zeros(style_dim), persistent=False)

    def mapping(self, z: Tensor) -> Tensor:
        """Z codes [B, S] -> W codes [B, S] (no truncation)."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"Z codes must be [B, {self.z_dim}], got {tuple(z.shape)}")
        return self.style(z.to(self.device, torch.float32))

    def truncation_coefficients(self, psi: float) -> Tensor:
        """rosinality truncates every layer: [n_latent] of psi."""
        return torch.full((self.n_latent,), float(psi))

    def synthesis(self, wp: Tensor) -> Tensor:
        """W+ codes [B, n_latent, S] -> raw images [B, 3, R, R] (nominally [-1, 1])."""
        noise = [getattr(self.noises, f"noise_{i}") for i in range(self.n_latent - 1)]
        x = self.input.input.expand(wp.shape[0], -1, -1, -1)
        x = self.conv1(x, wp[:, 0], noise[0])
        rgb = self.to_rgb1(x, wp[:, 1])
        for j, to_rgb in enumerate(self.to_rgbs):
            x = self.convs[2 * j](x, wp[:, 2 * j + 1], noise[2 * j + 1])
            x = self.convs[2 * j + 1](x, wp[:, 2 * j + 2], noise[2 * j + 2])
            rgb = to_rgb(x, wp[:, 2 * j + 3], rgb)
        return rgb

    @torch.no_grad()
    def mean_latent(self, n: int = MEAN_LATENT_DRAWS, seed: int = 0) -> Tensor:
        """The mean W [S] of ``n`` seeded mapped Gaussian draws (on the model's device)."""
        z = torch.randn(n, self.z_dim, generator=torch.Generator().manual_seed(seed))
        return torch.cat([self.mapping(c.to(self.device)) for c in z.split(1024)]).mean(0)

    def config_dict(self) -> dict:
        return {"size": self.resolution, "style_dim": self.w_dim, "n_mlp": self.n_mlp,
                "channel_multiplier": self.channel_multiplier}  # fmt: skip


def published_state(model: StyleGAN2Generator) -> dict:
    """``model`` as a converted file holds it: ``{"g_ema": state dict, "latent_avg": [S]}``
    (what :func:`load_stylegan2` reads back)."""
    return {"g_ema": model.state_dict(), "latent_avg": model.w_avg.detach().clone()}


def infer_config(state: dict[str, Tensor], path: str | os.PathLike = "file") -> dict:
    """Size, style_dim, n_mlp and channel_multiplier of a ``g_ema`` state dict, from its shapes."""
    rgbs = [k for k in state if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)]
    styles = [k for k in state if re.fullmatch(r"style\.\d+\.weight", k)]
    if not rgbs or "style.1.weight" not in state:
        raise CheckpointError(
            f"{path} does not look like a StyleGAN2 generator: no 'to_rgbs.*.conv.weight' or "
            "'style.1.weight' keys"
        )
    size = 2 ** (len(rgbs) + 2)
    multiplier = 2
    if size >= 64 and "convs.6.conv.weight" in state:
        multiplier = max(1, state["convs.6.conv.weight"].shape[1] // 256)
    return {"size": size, "style_dim": state["style.1.weight"].shape[1], "n_mlp": len(styles),
            "channel_multiplier": multiplier}  # fmt: skip


def load_stylegan2(path: str | os.PathLike, device: torch.device | str | None = None,
                   truncation: float = 0.7) -> StyleGAN2Generator:  # fmt: skip
    """A rosinality StyleGAN2 ``.pt`` (``g_ema``) in eval mode on ``device`` (default
    ``fel.device()``), e.g. ``stylegan2-ffhq-config-f.pt``.

    The truncation centre is the file's ``latent_avg`` (converted files), else the mean of 4096
    seeded mapped draws (``train.py`` checkpoints have none). A bare ``g_ema`` state dict loads
    too. The stored blur kernels are checked against the constant.

    Raises:
        FileNotFoundError: no file (with where such files come from).
        CheckpointError: (a ``ValueError``) not a torch file, a ``train.py`` checkpoint with
            ``args`` (the message says how to convert it), missing or unexpected keys (named),
            a tensor of the wrong shape (key and both shapes), or a wrong kernel.
    """
    payload = read_state_file(
        path, WHAT,
        f"convert NVlabs' stylegan2-ffhq-config-f.pkl with convert_weight.py of {ROSINALITY_URL} "
        "(or use a .pt that e4e, pSp or StyleCLIP link to).",
    )  # fmt: skip
    if isinstance(payload, dict) and isinstance(payload.get("g_ema"), dict):
        state, latent_avg = payload["g_ema"], payload.get("latent_avg")
    else:
        state, latent_avg = payload, None
    state = tensor_dict(state, path, f"a {WHAT}")
    model = StyleGAN2Generator(**infer_config(state, path), truncation=truncation)
    for key in state:
        if key.endswith(("blur.kernel", "upsample.kernel")):
            check_constant(state[key], key, blur_kernel(), path)
    load_state(model, state, str(path))
    model = model.to(device or fel.device()).eval()
    if latent_avg is not None:
        if latent_avg.numel() != model.w_dim:
            raise CheckpointError(
                f"{path}: 'latent_avg' has shape {tuple(latent_avg.shape)}; expected [{model.w_dim}]"
            )
        model.w_avg.copy_(latent_avg.reshape(-1))
    else:
        model.w_avg.copy_(model.mean_latent())
    return model
