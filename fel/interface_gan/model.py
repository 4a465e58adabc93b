"""A small style-based GAN for 64x64 faces, with the Z and W spaces InterfaceGAN edits.

The generator follows StyleGAN2 (Karras et al. 2020) at a size a 2-core CPU can train:

    z [B, z_dim] ~ N(0, I) -> pixel norm -> mapping MLP -> w [B, w_dim]       (Z -> W)
    learned constant [C, 4, 4] -> modulated 3x3 convs, one w for every layer,
    2x bilinear upsampling per level, a to-RGB layer per level summed into the image (the
    "skip" generator) -> image [B, 3, S, S] in about [-1, 1]

No per-pixel noise is injected, so an image is a deterministic function of its code. The
discriminator is a plain stack of equalised-lr convolutions (LeakyReLU, average-pool
downsampling, no normalisation) with a minibatch standard-deviation feature at 4x4.

Codes in each space: **Z** codes are the Gaussian inputs (``sample_latent``, ``decode``);
**W** codes are the mapping network's outputs (``mapping``, ``decode_w``, ``encode``). Truncation
``w_avg + psi (w - w_avg)`` is applied inside ``decode`` / ``decode_w``, after any edit.

:class:`GAN` holds both networks and an exponential moving average of the generator, so that
``fel.training.train`` trains it with its single optimiser; see ``GAN.forward`` for how each
network gets only its own gradient. An optional coverage term (``imle_weight``,
:meth:`GAN.coverage_loss`) pulls, for every real face, the nearest of a pool of fakes towards it:
a rare mode that the discriminator has noticed but the generator never draws (glasses, in
SynthFaces) then gets a gradient towards it. An optional eye critic (``eye_weight``,
:func:`eye_patches`) is a second discriminator that sees only the eyes, where a narrowed eye
differs from an open one by a pixel or two.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fel.interface_gan.augment import augment, parse_policy
from fel.interface_gan.inversion import invert
from fel.metrics import EYE_CENTRES

#: Gain of LeakyReLU(0.2) that keeps activations at unit variance (StyleGAN's sqrt(2)).
LRELU_GAIN = math.sqrt(2.0)
#: Activations are kept channels-last: oneDNN's CPU convolutions with the few channels of the
#: high-resolution layers run 2-5x faster in that layout (an 8 -> 8 3x3 conv at 64x64, batch 32,
#: forward and backward on one core: 50 -> 23 ms), and GPUs prefer it too.
CHANNELS_LAST = torch.channels_last


@dataclass
class GANConfig:
    """Architecture and objective of :class:`GAN` (defaults: the CPU recipe).

    Channel tuples list one width per resolution 4, 8, ..., size (the discriminator reads its
    tuple from ``size`` down to 4).
    """

    size: int = 64
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 4
    mapping_lr_mul: float = 0.01  # StyleGAN's slower learning rate of the mapping network
    # Narrow at high resolution: a training step at batch 32 took 0.55 s on one core of a
    # 2-core AMD EPYC; with D as wide as G at 32 and 64 pixels, 0.70 s.
    g_channels: tuple[int, ...] = (128, 128, 64, 32, 16)
    d_channels: tuple[int, ...] = (128, 128, 64, 16, 8)
    mbstd_group: int = 4  # minibatch standard deviation over groups of this many images
    r1_gamma: float = 0.05  # R1 penalty weight (gamma / 2) E|grad_x D(x)|^2 on reals
    r1_every: int = 4  # lazy R1: every k-th step, scaled by k
    ema_decay: float = 0.999  # generator_ema's decay per step (ramped up over the first steps)
    w_avg_beta: float = 0.995  # decay of the running mean of W used by truncation
    # DiffAugment transforms of every image D sees, e.g. "color,translation,cutout" ("" = none;
    # fel.interface_gan.augment)
    augment: str = ""
    # Coverage term (IMLE, Li & Malik 2019; Inclusive GAN, Yu et al. 2020): each real face pulls
    # the nearest of imle_pool x B extra fakes towards it, imle_weight x mean squared pixel error
    # (0 = off). A mode D has noticed but G never draws gets a gradient towards it this way.
    imle_weight: float = 0.0
    imle_pool: int = 4
    imle_every: int = 4  # lazy, as R1: every k-th step, scaled by k
    # Reals weighted by B softmax(imle_focus D(real)): D's logit estimates log p_data / p_G, so
    # the faces G covers least pull hardest (0: IMLE's equal weights).
    imle_focus: float = 0.0
    # Eye critic: a second discriminator on both eyes' patches (eye_patches), as GFP-GAN's
    # facial-component discriminators (Wang et al. 2021). The face critic barely represents
    # narrow eyes, a one-pixel detail at 64 px; this one spends all its width there. Its losses,
    # built like the face critic's, are scaled by eye_weight (0 = off, no critic).
    eye_weight: float = 0.0
    eye_channels: tuple[int, ...] = (128, 64, 32)  # its widths at 4, 8, ..., size / 4
    # Feature matching (Salimans et al. 2016) of whole distributions: G's loss gains match_weight
    # x the sliced Wasserstein distance (sliced_wasserstein) between the fakes' and the reals'
    # features in each critic's last hidden layer, standardised by the reals'. A critic can
    # represent a mode without its logit rewarding it (the eye critic reads narrow eyes at ROC
    # AUC 0.99 and scores them no higher than open ones); matching the features' distribution
    # asks G for the mode at its share of the data. 0 = off.
    match_weight: float = 0.0

    def __post_init__(self) -> None:
        self.g_channels, self.d_channels = tuple(self.g_channels), tuple(self.d_channels)
        self.eye_channels = tuple(self.eye_channels)
        levels = int(math.log2(self.size)) - 1 if self.size >= 4 else 0
        if self.size < 4 or 4 * 2 ** (levels - 1) != self.size:
            raise ValueError(f"size must be a power of two >= 4, got {self.size}")
        for name in ("g_channels", "d_channels"):
            if len(getattr(self, name)) != levels:
                raise ValueError(
                    f"{name} needs one width per resolution 4..{self.size} ({levels}), "
                    f"got {getattr(self, name)}"
                )
        if self.r1_every < 1 or not 0 <= self.ema_decay < 1 or not 0 <= self.w_avg_beta < 1:
            raise ValueError("r1_every must be >= 1, ema_decay and w_avg_beta in [0, 1)")
        if self.imle_weight < 0 or self.imle_pool < 1 or self.imle_every < 1 or self.imle_focus < 0:
            raise ValueError(
                "imle_weight and imle_focus must be >= 0, imle_pool and imle_every >= 1"
            )
        if self.eye_weight < 0 or self.match_weight < 0:
            raise ValueError(
                f"eye_weight and match_weight must be >= 0, got {self.eye_weight}, "
                f"{self.match_weight}"
            )
        if self.eye_weight > 0 and (self.size < 32 or len(self.eye_channels) != levels - 2):
            raise ValueError(
                f"the eye critic needs size >= 32 and one width per resolution 4..{self.size // 4} "
                f"of its patches ({levels - 2}), got size {self.size}, "
                f"eye_channels {self.eye_channels}"
            )
        parse_policy(self.augment)


def _config(config: GANConfig | None, overrides: dict) -> GANConfig:
    """``config`` (default: GANConfig()) with the fields in ``overrides`` replaced."""
    return replace(config, **overrides) if config else GANConfig(**overrides)


# ----------------------------------------------------------------------------- layers


def lrelu(x: Tensor) -> Tensor:
    """LeakyReLU(0.2) scaled by sqrt(2)."""
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: weights drawn with standard deviation 1/lr_mul
    and scaled at run time by lr_mul / sqrt(fan_in), so Adam's steps change every layer's output
    alike (and the mapping network's lr_mul times slower). [B, cin] -> [B, cout]."""

    def __init__(
        self, cin: int, cout: int, lr_mul: float = 1.0, bias_init: float = 0.0, act: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), bias_init / lr_mul))
        self.scale, self.lr_mul, self.act = lr_mul / math.sqrt(cin), lr_mul, act

    def forward(self, x: Tensor) -> Tensor:
        x = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return lrelu(x) if self.act else x


class EqualConv2d(nn.Module):
    """Convolution (stride 1, same padding) with equalised learning rate, then LeakyReLU.
    [B, cin, H, W] -> [B, cout, H, W]."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = 1 / math.sqrt(cin * kernel * kernel)

    def forward(self, x: Tensor) -> Tensor:
        pad = self.weight.shape[-1] // 2
        return lrelu(F.conv2d(x, self.weight * self.scale, self.bias, padding=pad))


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution: w -> per-channel style s; conv with weights s * weight,
    each output channel divided by its weights' norm (demodulation) so its variance is kept.

    Computed as ``d * conv(s * x, weight)`` (scaling the activations instead of the weights is
    the same sum, and one batched convolution is much faster on a CPU than grouped ones).
    Shapes: x [B, cin, H, W], w [B, w_dim] -> [B, cout, H', W'] (H' = 2H with ``upsample``).
    """

    def __init__(self, cin: int, cout: int, kernel: int, w_dim: int, demodulate: bool = True,
                 upsample: bool = False, act: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)  # styles start at 1
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = 1 / math.sqrt(cin * kernel * kernel)
        self.demodulate, self.upsample, self.act = demodulate, upsample, act

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        s = self.affine(w)  # [B, cin]
        weight = self.weight * self.scale
        x = x * s[:, :, None, None]
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
        if self.demodulate:  # 1 / |s * weight| per output channel: [B, cout]
            d = torch.rsqrt(s.square() @ weight.square().sum((2, 3)).T + 1e-8)
            x = x * d[:, :, None, None]
        x = x + self.bias[None, :, None, None]
        return lrelu(x) if self.act else x


def _upsample(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


# ----------------------------------------------------------------------------- generator


class Generator(nn.Module):
    """Style-based generator with the course's common face, in Z (the default) and W.

    Shapes: Z codes [B, z_dim]; W codes [B, w_dim]; images [B, 3, S, S] in [0, 1].

    Args:
        config: the architecture (only ``size``, ``z_dim``, ``w_dim``, ``mapping_*`` and
            ``g_channels`` matter here).
        truncation: psi used by :meth:`decode` and :meth:`decode_w` when they are not given one
            (1 = no truncation; 0.7 gives cleaner, less varied faces).
    """

    def __init__(self, config: GANConfig | None = None, truncation: float = 1.0,
                 **overrides) -> None:  # fmt: skip
        super().__init__()
        self.config = c = _config(config, overrides)
        self.truncation = truncation
        self.mapping_layers = nn.Sequential(
            *[
                EqualLinear(c.z_dim if i == 0 else c.w_dim, c.w_dim, c.mapping_lr_mul, act=True)
                for i in range(c.mapping_layers)
            ]
        )
        ch = c.g_channels
        self.const = nn.Parameter(torch.randn(1, ch[0], 4, 4))
        self.convs = nn.ModuleList([ModulatedConv2d(ch[0], ch[0], 3, c.w_dim)])
        self.to_rgb = nn.ModuleList(
            [ModulatedConv2d(ch[0], 3, 1, c.w_dim, demodulate=False, act=False)]
        )
        for cin, cout in zip(ch[:-1], ch[1:]):
            self.convs.append(ModulatedConv2d(cin, cout, 3, c.w_dim, upsample=True))
            self.convs.append(ModulatedConv2d(cout, cout, 3, c.w_dim))
            self.to_rgb.append(ModulatedConv2d(cout, 3, 1, c.w_dim, demodulate=False, act=False))
        # Running mean of W over training (the centre truncation pulls towards).
        self.register_buffer("w_avg", torch.zeros(c.w_dim))

    @property
    def device(self) -> torch.device:
        return self.w_avg.device

    def mapping(self, z: Tensor) -> Tensor:
        """Z codes [B, z_dim] -> W codes [B, w_dim] (no truncation)."""
        if z.dim() != 2 or z.shape[1] != self.config.z_dim:
            raise ValueError(f"Z codes must be [B, {self.config.z_dim}], got {tuple(z.shape)}")
        z = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)  # pixel norm
        return self.mapping_layers(z)

    def synthesis(self, w: Tensor) -> Tensor:
        """W codes [B, w_dim] -> raw images [B, 3, S, S] in about [-1, 1] (no truncation)."""
        if w.dim() != 2 or w.shape[1] != self.config.w_dim:
            raise ValueError(f"W codes must be [B, {self.config.w_dim}], got {tuple(w.shape)}")
        x = self.const.expand(w.shape[0], -1, -1, -1).contiguous(memory_format=CHANNELS_LAST)
        x = self.convs[0](x, w)
        rgb = self.to_rgb[0](x, w)
        for k, to_rgb in enumerate(self.to_rgb[1:]):
            x = self.convs[2 * k + 2](self.convs[2 * k + 1](x, w), w)
            rgb = _upsample(rgb) + to_rgb(x, w)
        return rgb

    def truncate(self, w: Tensor, psi: float | None = None) -> Tensor:
        """``w_avg + psi * (w - w_avg)`` for W codes [B, w_dim] (default psi: ``truncation``)."""
        psi = self.truncation if psi is None else psi
        return w if psi == 1 else self.w_avg.lerp(w, psi)

    def decode_w(self, w: Tensor, psi: float | None = None) -> Tensor:
        """Images [B, 3, S, S] in [0, 1] from W codes [B, w_dim], truncated by ``psi`` (default
        ``truncation``) just before synthesis, so an edit w + alpha n is made before truncation."""
        return ((self.synthesis(self.truncate(w.to(self.device), psi)) + 1) / 2).clamp(0, 1)

    def decode(self, z: Tensor, psi: float | None = None) -> Tensor:
        """Images [B, 3, S, S] in [0, 1] from Z codes [B, z_dim] (mapped to W, then as
        :meth:`decode_w`)."""
        return self.decode_w(self.mapping(z.to(self.device)), psi)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n Z codes [n, z_dim] from N(0, I), drawn on the CPU (so a seed gives the same codes on
        every device) and moved to the model's device."""
        return torch.randn(n, self.config.z_dim, generator=generator).to(self.device)

    def encode(self, x: Tensor, steps: int = 300, lr: float = 0.05,
               classifier: nn.Module | None = None, feature_weight: float = 1.0,
               progress: bool = True) -> Tensor:  # fmt: skip
        """Invert images into **W** (not Z): optimise one W code per image so that
        ``decode_w(w)`` reproduces it.

        Each code starts at ``w_avg`` and takes ``steps`` Adam steps (learning rate ``lr``) on
        the per-image mean squared pixel error of ``decode_w(w)`` (with the current
        ``truncation``, so ``decode_w`` inverts the result whatever psi is set) plus, with a
        ``classifier`` (an :class:`fel.classifier.AttributeClassifier`), ``feature_weight`` times
        the squared error of its penultimate features. Only the codes are optimised; the
        generator's weights get no gradients. Works inside ``torch.no_grad()`` too.

        Args:
            x: images [B, 3, S, S] in [0, 1].

        Returns:
            W codes [B, w_dim] (detached), to be decoded with :meth:`decode_w`, not :meth:`decode`.
        """
        x = x.to(self.device, torch.float32)
        if x.dim() != 4 or x.shape[1:] != (3, self.config.size, self.config.size):
            s = self.config.size
            raise ValueError(f"images must be [B, 3, {s}, {s}], got {tuple(x.shape)}")
        start = self.w_avg.expand(x.shape[0], -1)
        return invert(self, self.decode_w, start, x, steps, lr, classifier, feature_weight,
                      progress)  # fmt: skip

    def config_dict(self) -> dict:
        return asdict(self.config)

    def w_space(self) -> WSpace:
        """This generator seen from W: ``encode``, ``decode`` and ``sample_latent`` all in W."""
        return WSpace(self)


class WSpace(nn.Module):
    """A generator's common face with every code a **W** code: ``encode`` (inversion into W),
    ``decode`` (= ``decode_w``, truncation included) and ``sample_latent`` (mapped Gaussian
    draws). :class:`fel.widgets.LatentEditor`, :func:`fel.codes.encode_all` and the direction
    helpers then work in W without mixing the two spaces (``Generator`` itself decodes Z codes
    but encodes into W, so its own ``encode`` and ``decode`` are not inverses).

    Shapes: W codes [B, w_dim]; images [B, 3, S, S] in [0, 1].
    """

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator

    def encode(self, x: Tensor, **inversion) -> Tensor:
        """W codes [B, w_dim] of images x (see :meth:`Generator.encode` for the options)."""
        return self.generator.encode(x, **inversion)

    def decode(self, w: Tensor) -> Tensor:
        """Images [B, 3, S, S] in [0, 1] from W codes [B, w_dim]."""
        return self.generator.decode_w(w)

    @torch.no_grad()
    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n W codes [n, w_dim]: Gaussian Z draws through the mapping network."""
        return self.generator.mapping(self.generator.sample_latent(n, generator))


# ----------------------------------------------------------------------------- discriminator


class Discriminator(nn.Module):
    """Plain convolutional critic: images [B, 3, S, S] in [-1, 1] -> logits [B] (real > 0).

    from-RGB 1x1 conv; per level: 3x3 conv, 2x average pooling, 3x3 conv to the next width;
    at 4x4: minibatch standard deviation (one extra channel), 3x3 conv, two linear layers.
    """

    def __init__(self, config: GANConfig | None = None, **overrides) -> None:
        super().__init__()
        self.config = c = _config(config, overrides)
        ch = c.d_channels[::-1]  # from size down to 4
        self.from_rgb = EqualConv2d(3, ch[0], 1)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualConv2d(cin, cin, 3), EqualConv2d(cin, cout, 3)])
            for cin, cout in zip(ch[:-1], ch[1:])
        )
        self.final_conv = EqualConv2d(ch[-1] + 1, ch[-1], 3)
        self.final_linear = EqualLinear(ch[-1] * 16, ch[-1], act=True)
        self.out = EqualLinear(ch[-1], 1)

    def minibatch_stddev(self, x: Tensor) -> Tensor:
        """Append one channel: the mean standard deviation of features over groups of images
        (strided, as StyleGAN), so the critic sees a batch's variety.
        [B, C, H, W] -> [B, C + 1, H, W]."""
        b, c, h, w = x.shape
        g = min(self.config.mbstd_group, b)
        while b % g:
            g -= 1
        y = x.reshape(g, b // g, c, h, w)
        y = (y.var(0, unbiased=False) + 1e-8).sqrt().mean((1, 2, 3))  # [B / g]
        y = y.repeat(g).reshape(b, 1, 1, 1).expand(b, 1, h, w)
        return torch.cat([x, y], 1)

    def forward(self, x: Tensor, features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Logits [B]; with ``features``, also the last hidden layer [B, C] they are read from."""
        x = self.from_rgb(x.contiguous(memory_format=CHANNELS_LAST))
        for conv, down in self.blocks:
            x = down(F.avg_pool2d(conv(x), 2))
        x = self.final_conv(self.minibatch_stddev(x))
        hidden = self.final_linear(x.flatten(1))
        logits = self.out(hidden).squeeze(1)
        return (logits, hidden) if features else logits


def eye_patches(images: Tensor) -> Tensor:
    """Both eyes of every face as square patches a quarter of the image wide, centred on CelebA's
    mean aligned eyes (:data:`fel.metrics.EYE_CENTRES`), the right eye mirrored so that one critic
    sees both alike. [B, C, S, S] -> [2B, C, S/4, S/4], all left eyes first."""
    size = images.shape[-1]
    side = size // 4
    patches = []
    for (row, col), mirrored in zip(EYE_CENTRES, (False, True)):
        top, left = round(row * size - side / 2), round(col * size - side / 2)
        patch = images[..., top : top + side, left : left + side]
        patches.append(patch.flip(-1) if mirrored else patch)
    return torch.cat(patches)


def sliced_wasserstein(a: Tensor, b: Tensor, directions: Tensor) -> Tensor:
    """Sliced Wasserstein distance (squared, of order 2) between two sets of N points each: the
    mean over ``directions`` of the optimal transport cost between the sets' projections, which in
    one dimension pairs the sorted values (Rabin et al. 2011). a, b: [N, C]; directions: [C, P]
    unit columns. Returns a scalar, the mean over directions and pairs of the squared gap."""
    pa, pb = (a @ directions).sort(0).values, (b @ directions).sort(0).values
    return (pa - pb).square().mean()


def eye_critic_config(config: GANConfig) -> GANConfig:
    """The eye critic's own config: a :class:`Discriminator` of the patches' size and widths."""
    return GANConfig(size=config.size // 4, g_channels=config.eye_channels,
                     d_channels=config.eye_channels, mbstd_group=config.mbstd_group)  # fmt: skip


# ----------------------------------------------------------------------------- training module


class GAN(nn.Module):
    """Generator, discriminator and the generator's moving average, trained as one module.

    ``forward(real)`` returns the summed objective of both networks (see there); after each
    forward, :meth:`track` folds the step into ``w_avg`` and ``generator_ema`` (the weights that
    get shipped). ``generator_ema`` has ``requires_grad`` False, so no optimiser touches it.
    """

    def __init__(self, config: GANConfig | None = None, **overrides) -> None:
        super().__init__()
        self.config = _config(config, overrides)
        self.generator = Generator(self.config)
        self.discriminator = Discriminator(self.config)
        self.eye_discriminator = (Discriminator(eye_critic_config(self.config))
                                  if self.config.eye_weight > 0 else None)  # fmt: skip
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def forward(self, real: Tensor, z: Tensor | None = None) -> dict[str, Tensor]:
        """The objective of one simultaneous update of both networks.

        fake = G(z). D's loss, ``softplus(D(fake.detach())) + softplus(-D(real))`` plus every
        ``r1_every`` steps the lazy R1 penalty ``r1_every * gamma / 2 * |grad_x D(real)|^2``,
        reaches only D's parameters. G's non-saturating loss ``softplus(-D'(fake))`` is taken
        through D' = D with *detached* parameters (``torch.func.functional_call``), so it reaches
        only G's parameters. Their sum, backpropagated once, gives each network exactly the
        gradient of its own loss. With ``config.augment``, D sees every image, real or fake,
        through its own random DiffAugment draw (R1 is taken at the augmented reals, as in ADA),
        and G's loss is backpropagated through the fakes' transform. With ``config.imle_weight``
        G's loss gains, every ``imle_every`` steps, ``imle_every * imle_weight`` times
        :meth:`coverage_loss` on the (unaugmented) reals, each weighted by ``B softmax(imle_focus
        * real_logit)`` (the optimal D's logit is log p_data(x) / p_G(x): the reals G covers
        least weigh most). With ``config.eye_weight``, the eye critic's own three losses, on
        :func:`eye_patches` of the unaugmented reals and fakes, are added, scaled by
        ``eye_weight``, each reaching its own network as above. With ``config.match_weight``, G's
        loss gains ``match_weight`` times :meth:`feature_match` through each critic (the eye
        critic's scaled by ``eye_weight``), taken through the detached critic like G's loss.

        Args:
            real: images [B, 3, S, S] in [0, 1].
            z: Z codes [B, z_dim] for the fakes (default: drawn from the global RNG, this
                process's share of the global batch under torchrun; see :meth:`_draw_z`).

        Returns:
            scalars ``loss`` (the sum of the next six), ``d_loss`` (D's adversarial loss),
            ``r1_loss`` (the penalty term, 0 on steps without it), ``g_loss``, ``imle_loss``
            (the coverage term, 0 on steps without it), ``eye_loss`` (the eye critic's three
            losses, scaled; 0 without it), ``match_loss`` (the feature-matching terms, scaled;
            0 without them), ``real_logit``
            and ``fake_logit`` (batch means); and ``w`` [B, w_dim], the fakes' W codes
            (detached), for :meth:`track`.
        """
        c = self.config
        real = real * 2 - 1
        imle_loss, eye_loss, unaugmented, pool = real.new_zeros(()), real.new_zeros(()), real, None
        if c.imle_weight > 0 and int(self.step) % c.imle_every == 0:
            pool = self._draw_z(real.shape[0] * c.imle_pool, real.device).to(real.dtype)
        z = self._draw_z(real.shape[0], real.device) if z is None else z
        w = self.generator.mapping(z)
        fake = self.generator.synthesis(w)
        with_r1 = c.r1_gamma > 0 and int(self.step) % c.r1_every == 0
        seen = [augment(x, c.augment) for x in (real, fake.detach(), fake)]
        d_loss, r1_loss, g_loss, match_loss, real_logit, fake_logit = self._adversarial(
            self.discriminator, *seen, with_r1
        )
        if pool is not None:
            weights = torch.softmax(c.imle_focus * real_logit.detach(), 0) * real.shape[0]
            term = self.coverage_loss(unaugmented, pool, weights)
            imle_loss = c.imle_every * c.imle_weight * term
        if self.eye_discriminator is not None:
            eyes = [eye_patches(x) for x in (unaugmented, fake.detach(), fake)]
            *adversarial, eye_match, _, _ = self._adversarial(self.eye_discriminator, *eyes,
                                                              with_r1)  # fmt: skip
            eye_loss = c.eye_weight * sum(adversarial)
            match_loss = match_loss + c.eye_weight * eye_match
        total = d_loss + r1_loss + g_loss + imle_loss + eye_loss + match_loss
        return {"loss": total, "d_loss": d_loss, "r1_loss": r1_loss, "g_loss": g_loss,
                "imle_loss": imle_loss, "eye_loss": eye_loss, "match_loss": match_loss,
                "real_logit": real_logit.detach().mean(),
                "fake_logit": fake_logit.detach().mean(), "w": w.detach()}  # fmt: skip

    def _adversarial(self, critic: nn.Module, real: Tensor, fake_for_d: Tensor,
                     fake_for_g: Tensor, with_r1: bool) -> tuple[Tensor, ...]:  # fmt: skip
        """One critic's share of the objective: its loss ``softplus(critic(fake_for_d)) +
        softplus(-critic(real))`` and, ``with_r1``, the lazy R1 penalty at ``real``, which reach
        only its parameters (``fake_for_d`` is detached); and G's non-saturating loss
        ``softplus(-critic'(fake_for_g))`` through critic' = the critic with *detached*
        parameters, which reaches only G's; with ``match_weight``, G's feature-matching term
        through critic' as well.

        Returns:
            scalars d_loss, r1_loss (0 without R1), g_loss and match_loss (``match_weight`` x
            :meth:`feature_match`, 0 without it); logits [B'] of real and of fake_for_d.
        """
        c = self.config
        real = real.detach().requires_grad_(with_r1)
        (real_logit, real_features), fake_logit = critic(real, features=True), critic(fake_for_d)
        d_loss = F.softplus(fake_logit).mean() + F.softplus(-real_logit).mean()
        r1_loss = real_logit.new_zeros(())
        if with_r1:
            (grad,) = torch.autograd.grad(real_logit.sum(), real, create_graph=True)
            r1_loss = c.r1_every * c.r1_gamma / 2 * grad.square().flatten(1).sum(1).mean()
        frozen = {k: v.detach() for k, v in critic.named_parameters()}
        g_logit, fake_features = torch.func.functional_call(
            critic, frozen, (fake_for_g,), {"features": True}
        )
        g_loss = F.softplus(-g_logit).mean()
        match_loss = g_loss.new_zeros(())
        if c.match_weight > 0:
            match_loss = c.match_weight * self.feature_match(fake_features, real_features)
        return d_loss, r1_loss, g_loss, match_loss, real_logit, fake_logit

    @staticmethod
    def feature_match(fake: Tensor, real: Tensor) -> Tensor:
        """The feature-matching term: :func:`sliced_wasserstein` between a critic's features of
        the fakes and of the (detached) reals, both standardised by the reals' mean and standard
        deviation per feature, along as many random directions as there are features (drawn
        from the global RNG). fake, real: [N, C], N >= 2. Returns a scalar that reaches only
        ``fake``."""
        real = real.detach()
        mean, std = real.mean(0), real.std(0) + 1e-3
        directions = F.normalize(torch.randn(real.shape[1], real.shape[1]).to(real), dim=0)
        return sliced_wasserstein((fake - mean) / std, (real - mean) / std, directions)

    def coverage_loss(self, real: Tensor, pool: Tensor, weights: Tensor | None = None) -> Tensor:
        """IMLE's term: for each real image, the mean squared pixel error of the nearest (in
        pixels) of the pool's fakes, averaged over the reals (with ``weights``: their weighted
        mean, sum_i weights_i err_i / B). The search runs without gradients; only the chosen
        fakes are synthesised again with them, so the term reaches G alone.

        Args:
            real: images [B, 3, S, S] in [-1, 1] (the generator's range).
            pool: Z codes [P, z_dim] of the candidate fakes.
            weights: [B] per-real weights (detached), default all 1.
        """
        g = self.generator
        with torch.no_grad():
            fakes = torch.cat([g.synthesis(g.mapping(z)) for z in pool.split(real.shape[0])])
            nearest = torch.cdist(real.flatten(1), fakes.flatten(1)).argmin(1)  # [B]
        matched = g.synthesis(g.mapping(pool[nearest]))
        errors = (matched - real).square().flatten(1).mean(1)
        return errors.mean() if weights is None else (weights * errors).mean()

    def _draw_z(self, batch: int, device: torch.device) -> Tensor:
        """Z codes [batch, z_dim] for this process: under torchrun, rank 0 draws the whole
        global batch and broadcasts it, and every process keeps its own slice, so N processes see
        the fakes of one process at N times the batch (as ``fel.training`` does for reals). Rank 0
        draws from its own stream, which is a plain run's (``fel.training.RANK_SEED_STRIDE``)."""
        import torch.distributed as dist

        rank, world = 0, 1
        if dist.is_available() and dist.is_initialized():
            rank, world = dist.get_rank(), dist.get_world_size()
        z = torch.randn(batch * world, self.config.z_dim).to(device)
        if world > 1:
            dist.broadcast(z, src=0)
        return z[rank * batch : (rank + 1) * batch]

    @torch.no_grad()
    def track(self, w: Tensor) -> None:
        """Bookkeeping after a forward pass: move ``generator.w_avg`` towards the batch's mean W
        (decay ``w_avg_beta``), move ``generator_ema``'s weights towards the generator's (decay
        ``min(ema_decay, (1 + step) / (10 + step))``, so early weights are soon forgotten), copy
        its buffers, and count the step.

        Called before the optimiser step, the average lags the generator by one update.
        """
        c = self.config
        self.generator.w_avg.lerp_(w.mean(0).to(self.generator.w_avg), 1 - c.w_avg_beta)
        step = int(self.step)
        decay = min(c.ema_decay, (1 + step) / (10 + step))
        for ema, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            ema.lerp_(p.detach(), 1 - decay)
        for ema, b in zip(self.generator_ema.buffers(), self.generator.buffers()):
            ema.copy_(b)
        self.step += 1

    def config_dict(self) -> dict:
        return asdict(self.config)
