"""Glow (Kingma & Dhariwal 2018): a multi-scale normalizing flow with exact encoding.

An image x is mapped by an invertible network f to latents z, and its density follows from the
change of variables: log p(x) = log p(z) + log |det df/dx|. Every layer below returns its output
and its log-determinant (one number per image) and has an exact ``reverse``.

Architecture (L levels of K steps): at each level, squeeze (2x2 pixels -> 4x channels), K flow
steps (ActNorm -> invertible 1x1 convolution -> affine coupling), then split off half of the
channels as latents whose Gaussian prior is predicted from the other half; the last level's
latents get a learned Gaussian prior. Shapes for a 32x32 image and L = 3: z1 [6, 16, 16],
z2 [12, 8, 8], z3 [48, 4, 4]; concatenated, the code has 3 * 32 * 32 = 3072 numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fel import density


@dataclass
class GlowConfig:
    """Architecture of :class:`Glow` (defaults: the shipped 64 px recipe, sized for a 2-core CPU:
    a 64-channel coupling trains ~3x faster than a 128-channel one there, see the README)."""

    size: int = 64  # image side; must be divisible by 2**levels
    levels: int = 4  # L
    steps: int = 8  # K flow steps per level (0 leaves only the Gaussian priors: a baseline)
    hidden: int = 64  # channels of the coupling networks
    lu: bool = True  # LU-decomposed 1x1 convolutions (else plain, inverted in float64)
    min_scale: float = 0.5  # coupling scales lie in (min_scale, 1); 0 = Glow's sigmoid(h + 2)
    n_bits: int = 5  # colour depth the density is scored at (Glow's CelebA-HQ setting)

    def __post_init__(self) -> None:
        if self.levels < 1 or self.steps < 0 or self.hidden < 1:
            raise ValueError("levels must be >= 1, steps >= 0 and hidden >= 1")
        if self.size % 2**self.levels:
            raise ValueError(f"size {self.size} is not divisible by 2**levels = {2**self.levels}")
        if not 1 <= self.n_bits <= 8:
            raise ValueError(f"n_bits must be between 1 and 8, got {self.n_bits}")
        if not 0 <= self.min_scale < 1:
            raise ValueError(f"min_scale must be in [0, 1), got {self.min_scale}")


def squeeze(x: Tensor) -> Tensor:
    """[B, C, H, W] -> [B, 4C, H/2, W/2]: each 2x2 block of pixels becomes 4 channels."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


def unsqueeze(x: Tensor) -> Tensor:
    """The inverse of :func:`squeeze`: [B, 4C, H, W] -> [B, C, 2H, 2W]."""
    b, c, h, w = x.shape
    x = x.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c // 4, h * 2, w * 2)


def gaussian_log_p(z: Tensor, mean: Tensor, log_sd: Tensor) -> Tensor:
    """Elementwise log N(z; mean, exp(log_sd)^2) in nats."""
    return -0.5 * math.log(2 * math.pi) - log_sd - 0.5 * (z - mean) ** 2 * torch.exp(-2 * log_sd)


def has_float64(device: torch.device) -> bool:
    """Whether ``device`` computes in float64 (Apple's MPS does not)."""
    return device.type != "mps"


def _float64(m: Tensor) -> Tensor:
    """m in float64 for an exact inverse or log-determinant: on its own device when that device
    has float64, else on the CPU (the caller moves the result back)."""
    return m.double() if has_float64(m.device) else m.cpu().double()


def _inverse_conv(y: Tensor, weight: Tensor) -> Tensor:
    """Apply the inverse of the 1x1 convolution weight [C, C] to y [B, C, H, W]."""
    inverse = torch.linalg.inv(_float64(weight)).to(device=y.device, dtype=y.dtype)
    return F.conv2d(y, inverse[:, :, None, None])


class ActNorm(nn.Module):
    """y = (x + loc) * exp(log_scale), per channel. log|det| = H * W * sum(log_scale).

    Data-dependent initialisation: while ``pending`` is set, the next input sets loc and
    log_scale so that the output has zero mean and unit variance per channel.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.pending = False

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.pending:
            with torch.no_grad():
                self.loc.copy_(-x.mean((0, 2, 3), keepdim=True))
                self.log_scale.copy_(-torch.log(x.std((0, 2, 3), keepdim=True) + 1e-6))
            self.pending = False
        logdet = x.shape[2] * x.shape[3] * self.log_scale.sum()
        return (x + self.loc) * torch.exp(self.log_scale), logdet.expand(x.shape[0])

    def reverse(self, y: Tensor) -> Tensor:
        return y * torch.exp(-self.log_scale) - self.loc


class InvConv2d(nn.Module):
    """Invertible 1x1 convolution y = W x with a free matrix W (initialised orthogonal).

    log|det| = H * W * log|det W|; the inverse and the determinant are computed in float64.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(channels, channels))
        self.weight = nn.Parameter(q)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logdet = x.shape[2] * x.shape[3] * torch.linalg.slogdet(_float64(self.weight))[1]
        y = F.conv2d(x, self.weight[:, :, None, None])
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32  # never bf16/fp16
        return y, logdet.to(device=x.device, dtype=dtype).expand(x.shape[0])

    def reverse(self, y: Tensor) -> Tensor:
        return _inverse_conv(y, self.weight)


class InvConv2dLU(nn.Module):
    """Invertible 1x1 convolution with W = P L (U + diag(sign * exp(log_s))) (Glow's LU form).

    P is a fixed permutation, L unit lower-triangular, U strictly upper-triangular, so
    log|det W| = sum(log_s) costs O(C) instead of O(C^3).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(channels, channels))
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("p", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(s.abs()))

    def matrix(self) -> Tensor:
        """The weight W [C, C]."""
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.p @ lower @ upper

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logdet = x.shape[2] * x.shape[3] * self.log_s.sum()
        return F.conv2d(x, self.matrix()[:, :, None, None]), logdet.expand(x.shape[0])

    def reverse(self, y: Tensor) -> Tensor:
        return _inverse_conv(y, self.matrix())


class ZeroConv2d(nn.Module):
    """3x3 convolution initialised to output zeros, with a learned per-channel output scale
    exp(3 * s) (Glow): a coupling or prior starts as the identity or the standard normal."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.scale = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x) * torch.exp(self.scale * 3)


class AffineCoupling(nn.Module):
    """Half the channels (x_b) are scaled and shifted by amounts a network reads off the other
    half (x_a): y_b = (x_b + t(x_a)) * s(x_a). log|det| = sum log s.

    s = m + (1 - m) * sigmoid(h + 2) with m = ``min_scale``. Glow's original (m = 0) lets s reach
    0, so the inverse, which divides by s, can blow up: with it, 108 of 256 face codes moved along
    the Smiling direction decoded to NaN. The floor bounds each coupling's inverse gain by 1/m.
    """

    def __init__(self, channels: int, hidden: int, min_scale: float = 0.5) -> None:
        super().__init__()
        self.min_scale = min_scale
        self.net = nn.Sequential(
            nn.Conv2d(channels // 2, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 1),
            nn.ReLU(inplace=True),
            ZeroConv2d(hidden, channels),
        )

    def _shift_scale(self, x_a: Tensor) -> tuple[Tensor, Tensor]:
        h = self.net(x_a)
        m = self.min_scale
        return h[:, 0::2], m + (1 - m) * torch.sigmoid(h[:, 1::2] + 2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x_a, x_b = x.chunk(2, 1)
        shift, scale = self._shift_scale(x_a)
        y_b = (x_b + shift) * scale
        return torch.cat([x_a, y_b], 1), torch.log(scale).flatten(1).sum(1)

    def reverse(self, y: Tensor) -> Tensor:
        y_a, y_b = y.chunk(2, 1)
        shift, scale = self._shift_scale(y_a)
        return torch.cat([y_a, y_b / scale - shift], 1)


class FlowStep(nn.Module):
    """One step of flow: ActNorm -> invertible 1x1 convolution -> affine coupling."""

    def __init__(self, channels: int, hidden: int, lu: bool = True, min_scale: float = 0.5) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                ActNorm(channels),
                InvConv2dLU(channels) if lu else InvConv2d(channels),
                AffineCoupling(channels, hidden, min_scale),
            ]
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logdet = 0
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def reverse(self, y: Tensor) -> Tensor:
        for layer in reversed(self.layers):
            y = layer.reverse(y)
        return y


class TopPrior(nn.Module):
    """Learned Gaussian (mean, log sd per position) for the last level's latents [C, R, R]."""

    def __init__(self, channels: int, res: int) -> None:
        super().__init__()
        self.params = nn.Parameter(torch.zeros(1, 2 * channels, res, res))

    def forward(self, batch: int) -> tuple[Tensor, Tensor]:
        mean, log_sd = self.params.expand(batch, -1, -1, -1).chunk(2, 1)
        return mean, log_sd


class Glow(nn.Module):
    """Multi-scale Glow with the course's common face: ``encode``, ``decode``, ``sample_latent``.

    Shapes: images [B, 3, S, S] in [0, 1]; codes [B, 3 * S * S] (every level's z, flattened
    and concatenated, finest level first).
    """

    def __init__(self, config: GlowConfig | None = None, **overrides) -> None:
        super().__init__()
        self.config = config or GlowConfig(**overrides)
        c, channels, res = self.config, 3, self.config.size
        self.flows, self.priors, self.z_shapes = nn.ModuleList(), nn.ModuleList(), []
        for level in range(c.levels):
            channels, res = channels * 4, res // 2
            self.flows.append(
                nn.ModuleList(
                    [FlowStep(channels, c.hidden, c.lu, c.min_scale) for _ in range(c.steps)]
                )
            )
            if level < c.levels - 1:  # split: half the channels leave as latents
                channels //= 2
                self.priors.append(ZeroConv2d(channels, 2 * channels))
            else:
                self.priors.append(TopPrior(channels, res))
            self.z_shapes.append((channels, res, res))
        # Set once ActNorm has been initialised from data (saved with the weights).
        self.register_buffer("initialized", torch.tensor(False))

    # ------------------------------------------------------------------ the flow itself
    def flow_forward(self, x: Tensor) -> tuple[list[Tensor], Tensor, Tensor]:
        """x [B, 3, S, S] (centred, in [-0.5, 0.5]) -> (per-level z, log|det| [B], log p(z) [B])."""
        logdet = x.new_zeros(x.shape[0])
        log_pz = x.new_zeros(x.shape[0])
        zs, h = [], x
        for level, (steps, prior) in enumerate(zip(self.flows, self.priors)):
            h = squeeze(h)
            for step in steps:
                h, ld = step(h)
                logdet = logdet + ld
            if level < len(self.flows) - 1:
                h, z = h.chunk(2, 1)
                mean, log_sd = prior(h).chunk(2, 1)
            else:
                z, (mean, log_sd) = h, prior(h.shape[0])
            log_pz = log_pz + gaussian_log_p(z, mean, log_sd).flatten(1).sum(1)
            zs.append(z)
        return zs, logdet, log_pz

    def flow_reverse(self, zs: list[Tensor], temperature: float | None = None,
                     generator: torch.Generator | None = None) -> Tensor:  # fmt: skip
        """Per-level z -> centred image x [B, 3, S, S]; the exact inverse of :meth:`flow_forward`.

        With ``temperature``, latents given as ``None`` are drawn from the prior (its standard
        deviation scaled by the temperature) and written into ``zs``.
        """
        top = len(self.flows) - 1
        if len(zs) != len(self.flows) or zs[top] is None:
            raise ValueError(
                f"give {len(self.flows)} latents, the top one included (sample_latent draws all)"
            )
        if temperature is None and any(z is None for z in zs):
            raise ValueError("latents given as None are drawn from the prior: give a temperature")
        h = None
        for level in range(top, -1, -1):
            prior = self.priors[level]
            if level == top:
                h = self._latent(zs, level, prior(zs[top].shape[0]), temperature, generator)
            else:
                z = self._latent(zs, level, prior(h).chunk(2, 1), temperature, generator)
                h = torch.cat([h, z], 1)
            for step in reversed(self.flows[level]):
                h = step.reverse(h)
            h = unsqueeze(h)
        return h

    def _latent(self, zs, level, mean_log_sd, temperature, generator) -> Tensor:
        if zs[level] is None:
            mean, log_sd = mean_log_sd
            eps = torch.randn(mean.shape, generator=generator).to(mean)
            zs[level] = mean + temperature * torch.exp(log_sd) * eps
        return zs[level]

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Data-dependent ActNorm initialisation from a batch x (centred, [B, 3, S, S])."""
        for m in self.modules():
            if isinstance(m, ActNorm):
                m.pending = True
        self.initialized.fill_(True)
        self.flow_forward(x)

    # ------------------------------------------------------------------ densities
    def dequantize(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Images [B,3,S,S] in [0,1] -> centred, dequantised inputs: reduce to ``n_bits``, add
        uniform noise within each bin, shift to [-0.5, 0.5)."""
        return density.dequantize(x, self.config.n_bits, generator) - 0.5

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) [B] in nats for centred continuous inputs x [B, 3, S, S]."""
        _, logdet, log_pz = self.flow_forward(x)
        return log_pz + logdet

    def bits_per_dim(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Bits per dimension [B] of images x [B,3,S,S] in [0,1], quantised to ``n_bits``:
        (-(log p(z) + logdet) + D log 2^n_bits) / (D ln 2), with uniform dequantisation noise."""
        nll = -self.log_prob(self.dequantize(x, generator))
        return density.bits_per_dim(nll, x[0].numel(), self.config.n_bits)

    def forward(self, x: Tensor) -> Tensor:
        """Training objective: bits/dim [B] of images x [B, 3, S, S] in [0, 1]. The first call
        in training mode on a model whose ActNorm is not yet initialised initialises it from x
        (``encode``, ``log_prob`` and ``bits_per_dim`` never do)."""
        if self.training and not self.initialized:
            self.initialize(self.dequantize(x))
        return self.bits_per_dim(x)

    # ------------------------------------------------------------------ the common face
    def flatten(self, zs: list[Tensor]) -> Tensor:
        """Per-level latents -> one code [B, 3 * S * S]."""
        return torch.cat([z.flatten(1) for z in zs], 1)

    def unflatten(self, z: Tensor) -> list[Tensor]:
        """One code [B, 3 * S * S] -> per-level latents (the shapes in ``z_shapes``)."""
        sizes = [math.prod(s) for s in self.z_shapes]
        if z.dim() != 2 or z.shape[1] != sum(sizes):
            raise ValueError(f"codes must be [B, {sum(sizes)}], got {tuple(z.shape)}")
        return [p.reshape(-1, *s) for p, s in zip(z.split(sizes, 1), self.z_shapes)]

    def encode(self, x: Tensor) -> Tensor:
        """Exact code [B, 3 * S * S] of images x [B, 3, S, S] in [0, 1] (no quantisation, so
        ``decode(encode(x))`` gives x back to float precision)."""
        return self.flatten(self.flow_forward(x - 0.5)[0])

    def decode(self, z: Tensor) -> Tensor:
        """Images [B, 3, S, S] in [0, 1] from codes z [B, 3 * S * S]."""
        return (self.flow_reverse(self.unflatten(z)) + 0.5).clamp(0, 1)

    @torch.no_grad()
    def sample_latent(self, n: int, generator: torch.Generator | None = None,
                      temperature: float = 0.7) -> Tensor:  # fmt: skip
        """n codes [n, 3 * S * S] drawn from the model's prior, level by level (each level's prior
        depends on the coarser ones, so this runs the reverse flow once); ``temperature`` scales
        every prior standard deviation (Glow's T, 0.7 by default: cleaner, less varied faces)."""
        mean, log_sd = self.priors[-1](n)
        eps = torch.randn(mean.shape, generator=generator).to(mean)
        zs: list[Tensor | None] = [None] * (len(self.flows) - 1)
        zs.append(mean + temperature * torch.exp(log_sd) * eps)
        self.flow_reverse(zs, temperature, generator)  # fills the finer levels' latents
        return self.flatten(zs)

    def sample(self, n: int, generator: torch.Generator | None = None,
               temperature: float = 0.7) -> Tensor:  # fmt: skip
        """n images [n, 3, S, S] in [0, 1] at the given temperature."""
        return self.decode(self.sample_latent(n, generator, temperature))

    @property
    def latent_dim(self) -> int:
        return sum(math.prod(s) for s in self.z_shapes)

    def config_dict(self) -> dict:
        return asdict(self.config)
