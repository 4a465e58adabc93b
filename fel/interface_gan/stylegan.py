"""StyleGAN (Karras et al. 2019) from InterfaceGAN's converted files (``stylegan_ffhq.pth``,
``stylegan_celebahq.pth``), with the course's common face.

A file is a bare state dict; the resolution R is read off the number of ``output*`` ToRGBs. With
B = log2(R) - 1 blocks and 2B layers:

    z [B, 512] -> rescaled to norm sqrt(512) (InterfaceGAN's preprocessing) -> pixel norm
      -> 8 x (equalised linear: gain sqrt 2, lr 0.01 on weight and bias; leaky ReLU 0.2) -> w
    W+ [B, 2B, 512]: w repeated; truncation psi 0.7 on the first 8 layers only
    layer 0: the constant [1, 512, 4, 4]; layer 1: 3x3 conv         (block 1, 4 px)
    block b >= 2: layer 2b-2 up-samples (nearest + conv below 128 px, a fused transposed conv
      from 128 px) and blurs ([1, 2, 1]^2 / 16), layer 2b-1 is a 3x3 conv
    every layer ends in the epilogue: + noise x strength[c], + bias, leaky ReLU 0.2, instance
      norm, style: x (s[:C] + 1) + s[C:] with s = dense(w_l)
    image = ToRGB of the last block (1x1 conv + bias), nominally in [-1, 1]

The file lacks the per-layer truncation coefficients (``truncation.truncation``); fel rebuilds
them from InterfaceGAN's settings, and stores the file's ``truncation.w_avg`` as ``w_avg``.
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
from fel.interface_gan.published import (
    StyleGenerator,
    check_constant,
    read_state_file,
    tensor_dict,
)

INTERFACEGAN_URL = "https://github.com/genforce/interfacegan"
WHAT = "InterfaceGAN StyleGAN state dict (stylegan_ffhq.pth / stylegan_celebahq.pth)"
#: InterfaceGAN's StyleGAN settings: psi 0.7 on the first 8 layers.
TRUNCATION_PSI, TRUNCATION_LAYERS = 0.7, 8
#: Up-sampling layers are fused (a transposed conv) from this output resolution on.
FUSED_FROM = 128


def channels(resolution: int) -> int:
    """Feature maps at a resolution: 512 up to 32 px, then 16384 / r."""
    return min(512, 16384 // resolution)


def blur_kernel(c: int) -> Tensor:
    """The depthwise [1, 2, 1]^2 / 16 kernel [c, 1, 3, 3] (sums to 1)."""
    k = torch.tensor([1.0, 2.0, 1.0])
    return (k[:, None] * k[None, :] / 16).expand(c, 1, 3, 3).clone()


class WScale(nn.Module):
    """Holds a layer's bias (the file's ``wscale.bias``)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(c))


class Dense(nn.Module):
    """``linear.weight`` [cout, cin] times gain / sqrt(cin) * lr, plus ``wscale.bias`` * lr."""

    def __init__(self, cin: int, cout: int, gain: float, lr: float) -> None:
        super().__init__()
        self.linear = nn.Linear(cin, cout, bias=False)
        nn.init.normal_(self.linear.weight)
        self.wscale = WScale(cout)
        self.scale, self.lr = gain / math.sqrt(cin) * lr, lr

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.linear.weight * self.scale, self.wscale.bias * self.lr)


class Mapping(nn.Module):
    def __init__(self, dim: int, layers: int = 8) -> None:
        super().__init__()
        for i in range(layers):
            self.add_module(f"dense{i}", Dense(dim, dim, math.sqrt(2), 0.01))

    def forward(self, z: Tensor) -> Tensor:
        x = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)
        for dense in self.children():
            x = F.leaky_relu(dense(x), 0.2)
        return x


class NoiseApplier(nn.Module):
    def __init__(self, c: int, resolution: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(c))  # one strength per channel
        self.register_buffer("noise", torch.randn(1, 1, resolution, resolution))


class StyleMod(nn.Module):
    def __init__(self, c: int, w_dim: int) -> None:
        super().__init__()
        self.dense = Dense(w_dim, 2 * c, gain=1.0, lr=1.0)


class Epilogue(nn.Module):
    """+ noise x strength[c], + bias, leaky ReLU 0.2, instance norm (eps 1e-8), then the style
    ``x (s[:, :C] + 1) + s[:, C:]`` with s [B, 2C] = dense(w). Shapes: [B, C, r, r] kept."""

    def __init__(self, c: int, resolution: int, w_dim: int) -> None:
        super().__init__()
        self.apply_noise = NoiseApplier(c, resolution)
        self.bias = nn.Parameter(torch.zeros(c))
        self.style_mod = StyleMod(c, w_dim)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        x = x + self.apply_noise.noise * self.apply_noise.weight[None, :, None, None]
        x = F.leaky_relu(x + self.bias[None, :, None, None], 0.2)
        x = x - x.mean((2, 3), keepdim=True)
        x = x * torch.rsqrt(x.square().mean((2, 3), keepdim=True) + 1e-8)
        scale, shift = self.style_mod.dense(w)[:, :, None, None].chunk(2, dim=1)
        return x * (scale + 1) + shift


class ConstLayer(nn.Module):
    def __init__(self, c: int, w_dim: int) -> None:
        super().__init__()
        self.first_layer = nn.Parameter(torch.ones(1, c, 4, 4))
        self.epilogue = Epilogue(c, 4, w_dim)

    def forward(self, batch: int, w: Tensor) -> Tensor:
        return self.epilogue(self.first_layer.expand(batch, -1, -1, -1), w)


class ConvLayer(nn.Module):
    """3x3 conv (padding 1, no bias) times sqrt 2 / sqrt(cin 9), then the epilogue; an up layer
    first up-samples x2 and blurs after the conv. Fused up layers keep the file's TF layout
    [3, 3, cin, cout] under ``weight`` and run as one stride-2 transposed conv with the 4x4
    kernel made of the 3x3 one's four one-pixel shifts (the same as nearest up-sampling and a
    3x3 conv with the flipped kernel)."""

    def __init__(self, cin: int, cout: int, resolution: int, w_dim: int, up: bool) -> None:
        super().__init__()
        self.up, self.fused = up, up and resolution >= FUSED_FROM
        if self.fused:
            self.weight = nn.Parameter(torch.randn(3, 3, cin, cout))
        else:
            self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            nn.init.normal_(self.conv.weight)
        if up:
            self.blur = nn.Module()
            self.blur.register_buffer("kernel", blur_kernel(cout))
        self.scale = math.sqrt(2) / math.sqrt(cin * 9)
        self.epilogue = Epilogue(cout, resolution, w_dim)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        if self.fused:
            k = F.pad(self.weight.permute(2, 3, 0, 1) * self.scale, (1, 1, 1, 1))  # [in, out, 5, 5]
            k = k[..., 1:, 1:] + k[..., :-1, 1:] + k[..., 1:, :-1] + k[..., :-1, :-1]
            x = F.conv_transpose2d(x, k, stride=2, padding=1)
        else:
            if self.up:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = F.conv2d(x, self.conv.weight * self.scale, padding=1)
        if self.up:
            x = F.conv2d(x, self.blur.kernel, padding=1, groups=x.shape[1])
        return self.epilogue(x, w)


class ToRGB(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, 3, 1, bias=False)
        nn.init.normal_(self.conv.weight)
        self.bias = nn.Parameter(torch.zeros(3))
        self.scale = 1 / math.sqrt(cin)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.conv.weight * self.scale) + self.bias[None, :, None, None]


class Synthesis(nn.Module):
    def __init__(self, resolution: int, w_dim: int) -> None:
        super().__init__()
        self.blocks = int(math.log2(resolution)) - 1
        self.lod = nn.Parameter(torch.zeros(()))
        self.layer0 = ConstLayer(512, w_dim)
        self.layer1 = ConvLayer(512, 512, 4, w_dim, up=False)
        self.output0 = ToRGB(512)
        cin = 512
        for b in range(2, self.blocks + 1):
            r = 2 ** (b + 1)
            cout = channels(r)
            self.add_module(f"layer{2 * b - 2}", ConvLayer(cin, cout, r, w_dim, up=True))
            self.add_module(f"layer{2 * b - 1}", ConvLayer(cout, cout, r, w_dim, up=False))
            self.add_module(f"output{b - 1}", ToRGB(cout))
            cin = cout

    def forward(self, wp: Tensor) -> Tensor:
        """W+ [B, 2B, 512] -> raw images [B, 3, R, R]; with lod = k > 0 the last ceil(k) blocks
        are skipped and the last computed image is up-sampled (nearest), as InterfaceGAN."""
        lod = float(self.lod.detach())
        if not 0 <= lod < self.blocks:
            raise ValueError(f"lod must lie in [0, {self.blocks}), got {lod}")
        blocks = self.blocks - math.ceil(lod)
        x = self.layer1(self.layer0(wp.shape[0], wp[:, 0]), wp[:, 1])
        for b in range(2, blocks + 1):
            x = getattr(self, f"layer{2 * b - 2}")(x, wp[:, 2 * b - 2])
            x = getattr(self, f"layer{2 * b - 1}")(x, wp[:, 2 * b - 1])
        image = getattr(self, f"output{blocks - 1}")(x)
        if blocks < self.blocks:
            image = F.interpolate(image, scale_factor=2 ** (self.blocks - blocks), mode="nearest")
        return image


class StyleGANGenerator(StyleGenerator):
    """InterfaceGAN's StyleGAN generator, with the file's state-dict names (the truncation
    centre ``truncation.w_avg`` is fel's ``w_avg``) and the course's common face.

    Noise is the stored fixed noise (InterfaceGAN's ``randomize_noise=False``). Freshly built,
    the weights are random; :func:`load_stylegan` loads a file.

    Args:
        resolution: output size R (a power of 2, >= 8; the published files are 1024).
        truncation: default psi of :meth:`decode` and :meth:`decode_w`, on the first
            ``truncation_layers`` layers (InterfaceGAN: 0.7 and 8).
    """

    def __init__(self, resolution: int = 1024, truncation: float = TRUNCATION_PSI,
                 truncation_layers: int = TRUNCATION_LAYERS) -> None:  # fmt: skip
        super().__init__()
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError(f"resolution must be a power of 2 >= 8, got {resolution}")
        self.resolution, self.z_dim, self.w_dim = resolution, 512, 512
        self.truncation, self.truncation_layers = truncation, truncation_layers
        self.mapping_net = Mapping(512)
        self.synthesis_net = Synthesis(resolution, 512)
        self.n_latent = 2 * self.synthesis_net.blocks
        self.register_buffer("w_avg", torch.zeros(512))

    def preprocess(self, z: Tensor) -> Tensor:
        """InterfaceGAN rescales every Z code to norm sqrt(512); its Z boundaries live there."""
        return z * (math.sqrt(self.z_dim) / z.norm(dim=1, keepdim=True).clamp_min(1e-12))

    def mapping(self, z: Tensor) -> Tensor:
        """Z codes [B, 512] (preprocessed here) -> W codes [B, 512], before truncation."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"Z codes must be [B, {self.z_dim}], got {tuple(z.shape)}")
        return self.mapping_net(self.preprocess(z.to(self.device, torch.float32)))

    def truncation_coefficients(self, psi: float) -> Tensor:
        """[n_latent]: psi on the first ``truncation_layers`` layers, 1 on the rest."""
        c = torch.ones(self.n_latent)
        c[: self.truncation_layers] = float(psi)
        return c

    def synthesis(self, wp: Tensor) -> Tensor:
        """W+ codes [B, 2B, 512] -> raw images [B, 3, R, R] (nominally [-1, 1])."""
        return self.synthesis_net(wp)


def file_key(key: str) -> str:
    """fel's state-dict name -> the file's (``mapping_net.`` -> ``mapping.``, ...)."""
    if key == "w_avg":
        return "truncation.w_avg"
    return re.sub(r"^(mapping|synthesis)_net\.", r"\1.", key)


def published_state(model: StyleGANGenerator) -> dict[str, Tensor]:
    """``model``'s weights under the file's keys: what :func:`load_stylegan` reads back."""
    return {file_key(k): v for k, v in model.state_dict().items()}


def load_stylegan(path: str | os.PathLike, device: torch.device | str | None = None,
                  truncation: float = TRUNCATION_PSI) -> StyleGANGenerator:  # fmt: skip
    """InterfaceGAN's ``stylegan_ffhq.pth`` or ``stylegan_celebahq.pth`` (any resolution the file
    has) in eval mode on ``device`` (default ``fel.device()``).

    ``truncation.truncation`` (which InterfaceGAN's converter deletes) is rebuilt from psi
    ``truncation`` on the first 8 layers; if the file has it, it is checked against that. The
    blur kernels are checked against the constant.

    Raises:
        FileNotFoundError: no file (with where it comes from).
        CheckpointError: (a ``ValueError``) not a torch state dict, missing or unexpected keys
            (named), a tensor of the wrong shape (key and both shapes), or a wrong constant.
    """
    state = read_state_file(
        path, WHAT,
        f"InterfaceGAN's README ({INTERFACEGAN_URL}, 'How to Use') links the converted StyleGAN "
        "FFHQ and CelebA-HQ models, to be placed in models/pretrain/ as stylegan_ffhq.pth or "
        "stylegan_celebahq.pth.",
    )  # fmt: skip
    state = dict(tensor_dict(state, path, f"an {WHAT}"))
    outputs = [k for k in state if re.fullmatch(r"synthesis\.output\d+\.conv\.weight", k)]
    if not outputs:
        raise CheckpointError(
            f"{path} does not look like a StyleGAN generator: no 'synthesis.output*.conv.weight' keys"
        )
    model = StyleGANGenerator(2 ** (len(outputs) + 1), truncation)
    stored = state.pop("truncation.truncation", None)
    if stored is not None:
        expected = model.truncation_coefficients(TRUNCATION_PSI).view(1, -1, 1)
        check_constant(stored, "truncation.truncation", expected, path)
    for key in state:
        if key.endswith("blur.kernel"):
            check_constant(state[key], key, blur_kernel(state[key].shape[0]), path)
    load_state(model, state, str(path), file_key)
    return model.to(device or fel.device()).eval()
