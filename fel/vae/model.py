"""A convolutional VAE for 64x64 (or 128x128) faces: the standard CelebA recipe.

Encoder: stride-2 conv blocks (BatchNorm, LeakyReLU) down to 2x2 (4x4 at 128), then linear maps to
the posterior mean and log-variance. Decoder: the mirror image with transposed convolutions, ending
in a sigmoid, so decoded images are in [0, 1].

Likelihood: a Gaussian around the decoded image with one learned standard deviation sigma (the
"calibrated" or sigma-VAE decoder, Rybkin et al. 2021), so the ELBO is a real bound on the
log-density of (dequantised) images and converts to bits/dim like Glow's number.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from fel import density


@dataclass
class VAEConfig:
    """Architecture and objective of :class:`VAE`."""

    size: int = 64  # 64 or 128
    latent: int = 128
    width: int = (
        16  # channels of the first block, doubled at every block (32: the usual GPU recipe)
    )
    beta: float = 1.0  # weight of the KL term (1 = the ELBO; >1 = beta-VAE)
    n_bits: int = 5  # bits per colour channel when scoring bits/dim (Glow's CelebA setting)

    def __post_init__(self) -> None:
        if self.size not in (32, 64, 128):
            raise ValueError(f"size must be 32, 64 or 128, got {self.size}")


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 4, 2, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2, inplace=True),
    )


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2, inplace=True),
    )


class VAE(nn.Module):
    """Convolutional VAE with the course's common face: ``encode``, ``decode``, ``sample_latent``.

    Shapes: images [B, 3, S, S] in [0, 1]; latents [B, latent].
    """

    def __init__(self, config: VAEConfig | None = None, **overrides) -> None:
        super().__init__()
        self.config = config or VAEConfig(**overrides)
        c = self.config
        blocks = int(math.log2(c.size)) - 1  # down to 2x2
        chans = [min(c.width * 2**i, 16 * c.width) for i in range(blocks)]
        self.encoder = nn.Sequential(
            *[_down(cin, cout) for cin, cout in zip([3, *chans[:-1]], chans)]
        )
        self.top = chans[-1]
        self.to_stats = nn.Linear(self.top * 4, 2 * c.latent)
        self.from_latent = nn.Linear(c.latent, self.top * 4)
        rev = chans[::-1]
        self.decoder = nn.Sequential(*[_up(cin, cout) for cin, cout in zip(rev[:-1], rev[1:])])
        self.to_image = nn.Sequential(
            nn.ConvTranspose2d(rev[-1], rev[-1], 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(rev[-1], 3, 3, padding=1),
        )
        self.log_sigma = nn.Parameter(torch.tensor(math.log(0.1)))  # decoder noise, learned
        # Sampling distribution N(prior_mean, L L^T): the standard normal until fit_prior() fits
        # a Gaussian to the training codes (ex-post density estimation, Ghosh et al. 2020).
        self.register_buffer("prior_mean", torch.zeros(c.latent))
        self.register_buffer("prior_scale_tril", torch.eye(c.latent))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance [B, latent] of q(z | x) for images x [B, 3, S, S] in [0, 1]."""
        h = self.encoder(x * 2 - 1).flatten(1)
        mu, logvar = self.to_stats(h).chunk(2, dim=1)
        return mu, logvar.clamp(-12, 8)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean [B, latent]: the code the editors move."""
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, S, S] in [0, 1] for latents z [B, latent]."""
        h = self.from_latent(z).view(-1, self.top, 2, 2)
        return torch.sigmoid(self.to_image(self.decoder(h)))

    def sample_latent(
        self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """n codes [n, latent] for decoding: N(0, I) as in training, or the Gaussian fitted to the
        training codes by :meth:`fit_prior`; ``temperature`` < 1 shrinks draws towards the mean."""
        eps = torch.randn(n, self.config.latent, generator=generator)
        eps = eps.to(self.prior_mean.device)
        return self.prior_mean + temperature * eps @ self.prior_scale_tril.T

    @torch.no_grad()
    def fit_prior(self, codes: torch.Tensor) -> None:
        """Fit the sampling Gaussian to posterior means ``codes`` [N, latent] of training faces.

        A VAE's codes do not fill N(0, I) evenly (the "holes" behind its muddy samples); drawing
        from a Gaussian fitted to where the codes really are gives cleaner samples. The ELBO and
        bits/dim are unaffected: they use the N(0, I) prior the model was trained with.
        """
        codes = codes.float().to(self.prior_mean.device)
        cov = torch.cov(codes.T) + 1e-4 * torch.eye(codes.shape[1], device=codes.device)
        self.prior_mean.copy_(codes.mean(0))
        self.prior_scale_tril.copy_(torch.linalg.cholesky(cov))

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Reconstruction and loss terms for images x [B, 3, S, S] in [0, 1].

        The images are reduced to ``n_bits`` and dequantised with uniform noise, and z is drawn
        from q(z | x), so ``bits_per_dim`` is a (single-sample) upper bound in expectation.
        ``generator`` seeds both draws so that a score repeats (see ``fel.vae.recipe.evaluate``).

        Returns a dict with ``recon`` [B,3,S,S]; ``mu``, ``logvar`` [B, latent]; and per-batch means
        ``reconstruction`` (-log p(x|z), nats per image), ``kl`` (nats per image), ``elbo`` (nats
        per image), ``loss`` (reconstruction + beta * kl, per image), ``bits_per_dim``.
        """
        mu, logvar = self.posterior(x)
        eps = (
            torch.randn(mu.shape, generator=generator).to(mu) if generator else torch.randn_like(mu)
        )
        recon = self.decode(mu + eps * (0.5 * logvar).exp())
        x_deq = density.dequantize(x, self.config.n_bits, generator)
        return {
            "recon": recon,
            "mu": mu,
            "logvar": logvar,
            **self.loss_terms(x_deq, recon, mu, logvar),
        }

    def loss_terms(self, x_deq, recon, mu, logvar) -> dict[str, torch.Tensor]:
        """The ELBO's terms for dequantised images ``x_deq`` [B,3,S,S] in [0, 1) (see
        ``fel.density.dequantize``), their decodings ``recon`` and posteriors ``mu``, ``logvar``."""
        c = self.config
        log_sigma = self.log_sigma.clamp(-6, 2)
        nll = (
            0.5 * (((x_deq - recon) / log_sigma.exp()) ** 2)
            + log_sigma
            + 0.5 * math.log(2 * math.pi)
        )
        reconstruction = nll.flatten(1).sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        elbo = -(reconstruction + kl)
        return {
            "reconstruction": reconstruction.mean(),
            "kl": kl.mean(),
            "elbo": elbo.mean(),
            "loss": (reconstruction + c.beta * kl).mean(),
            "bits_per_dim": density.bits_per_dim(-elbo, x_deq[0].numel(), c.n_bits).mean(),
        }

    def config_dict(self) -> dict:
        return asdict(self.config)
