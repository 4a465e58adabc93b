"""The VAE: shapes, the ELBO against torch.distributions, bits/dim, checkpoints, the shipped model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

import fel
from fel.density import dequantize
from fel.vae import VAE, VAEConfig, export, load, load_pretrained
from fel.vae.recipe import train_vae

SHIPPED = fel.CHECKPOINT_DIR / "vae.pt"


@pytest.mark.parametrize("size", [32, 64, 128])
def test_shapes_and_ranges(size):
    model = VAE(size=size, latent=16, width=8).eval()
    x = torch.rand(3, 3, size, size)
    z = model.encode(x)
    assert z.shape == (3, 16)
    y = model.decode(z)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert torch.equal(model.encode(x), z)  # the posterior mean: deterministic
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(model.sample_latent(4, g1), model.sample_latent(4, g2))


def test_fit_prior_matches_the_codes_and_leaves_the_elbo_alone():
    torch.manual_seed(0)
    model = VAE(size=32, latent=4, width=8).eval()
    x = torch.rand(2, 3, 32, 32)
    x_deq = dequantize(x, 5, torch.Generator().manual_seed(0))

    def elbo():
        mu, logvar = model.posterior(x)
        return model.loss_terms(x_deq, model.decode(mu), mu, logvar)["elbo"]

    before = elbo()
    mix = torch.tensor([[2.0, 0, 0, 0], [1.0, 0.5, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0.1]])
    codes = torch.randn(20000, 4) @ mix.T + torch.tensor([1.0, -2.0, 0.0, 3.0])
    model.fit_prior(codes)
    draws = model.sample_latent(20000, torch.Generator().manual_seed(1))
    assert torch.allclose(draws.mean(0), codes.mean(0), atol=0.05)
    assert torch.allclose(torch.cov(draws.T), torch.cov(codes.T), rtol=0.06, atol=0.04)
    assert torch.allclose(elbo(), before)  # a sampling prior only: the ELBO keeps N(0, I)
    cold = model.sample_latent(20000, torch.Generator().manual_seed(1), temperature=0.5)
    assert torch.allclose(cold.std(0), 0.5 * draws.std(0), rtol=1e-4)


def test_bad_config():
    with pytest.raises(ValueError, match="size"):
        VAEConfig(size=48)


def test_elbo_terms_match_torch_distributions():
    torch.manual_seed(0)
    model = VAE(size=32, latent=8, width=8).eval()
    x = torch.rand(4, 3, 32, 32)
    mu, logvar = model.posterior(x)
    recon = model.decode(mu)
    x_deq = dequantize(x, model.config.n_bits, torch.Generator().manual_seed(0))
    terms = model.loss_terms(x_deq, recon, mu, logvar)
    q = Normal(mu, (0.5 * logvar).exp())
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    assert torch.allclose(terms["kl"], kl_divergence(q, p).sum(1).mean(), rtol=1e-5)
    nll = -Normal(recon, model.log_sigma.exp()).log_prob(x_deq).flatten(1).sum(1).mean()
    assert torch.allclose(terms["reconstruction"], nll, rtol=1e-5)
    d, bins = x[0].numel(), 2**model.config.n_bits
    bpd = (-terms["elbo"] + d * math.log(bins)) / (d * math.log(2))
    assert torch.allclose(terms["bits_per_dim"], bpd, rtol=1e-6)
    assert torch.allclose(terms["elbo"], -(terms["reconstruction"] + terms["kl"]))


def test_eval_scores_uniform_noise_not_bin_centres():
    """The Gaussian NLL is convex in x, so scoring bin centres understates its mean over the bin
    by (1/bins)^2 / 12 / (2 sigma^2) nats per value: the bound needs the noise."""
    torch.manual_seed(0)
    model = VAE(size=32, latent=8, width=8).eval()
    x = (torch.randint(0, 256, (2, 3, 32, 32)) / 255).float()
    with torch.no_grad():
        mu, logvar = model.posterior(x)
        recon = model.decode(mu)
        bins, d = 2**model.config.n_bits, x[0].numel()
        centres = (torch.floor(torch.round(x * 255) / 2 ** (8 - model.config.n_bits)) + 0.5) / bins
        at_centres = model.loss_terms(centres, recon, mu, logvar)["reconstruction"]
        g = torch.Generator().manual_seed(1)
        draws = [
            model.loss_terms(dequantize(x, 5, g), recon, mu, logvar)["reconstruction"]
            for _ in range(200)
        ]
    gap = d / bins**2 / 12 / (2 * model.log_sigma.exp() ** 2)
    assert torch.stack(draws).mean() - at_centres == pytest.approx(gap.item(), rel=0.02)
    one = model(x, torch.Generator().manual_seed(5))["bits_per_dim"]
    assert torch.equal(one, model(x, torch.Generator().manual_seed(5))["bits_per_dim"])


def test_beta_weights_only_the_kl():
    torch.manual_seed(0)
    model = VAE(size=32, latent=8, width=8, beta=4.0).eval()
    x = torch.rand(2, 3, 32, 32)
    mu, logvar = model.posterior(x)
    t = model.loss_terms(dequantize(x, 5), model.decode(mu), mu, logvar)
    assert torch.allclose(t["loss"], t["reconstruction"] + 4.0 * t["kl"])


def test_loss_works_through_a_ddp_style_wrapper():
    from torch import nn

    from fel.vae.recipe import loss_fn

    class Wrapper(nn.Module):  # what DistributedDataParallel looks like to a loss function
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, x):
            return self.module(x)

    model = VAE(size=32, latent=8, width=8)
    loss, logs = loss_fn(Wrapper(model), (torch.rand(2, 3, 32, 32),))
    assert loss.dim() == 0 and logs["sigma"] == pytest.approx(0.1, rel=1e-4)


def test_train_export_load_round_trip(tmp_path):
    from fel.data.synthfaces import write_synthfaces
    from fel.training import TrainConfig

    root = write_synthfaces(tmp_path / "sf", n=300, seed=1, workers=2, progress=False)
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-3, warmup_steps=2, amp=False)
    result = train_vae(
        root, tmp_path / "run", cfg, VAEConfig(size=32, latent=8, width=8), max_steps=6
    )
    assert {"elbo", "bits_per_dim"} <= set(result["meta"]["test"])
    assert (tmp_path / "run" / "recon_final.png").exists() and (
        tmp_path / "run" / "samples_final.png"
    ).exists()
    model = load(export(result, tmp_path / "vae.pt"), device="cpu")
    z = torch.randn(2, 8)
    ref = VAE(VAEConfig(**result["config"]))
    ref.load_state_dict(result["model"])
    assert torch.allclose(model.decode(z), ref.eval().decode(z), atol=1e-2)


@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped VAE checkpoint yet")
def test_shipped_vae_reconstructs_unseen_faces():
    from fel.data.synthfaces import render_aligned, sample_factors

    model = load_pretrained(device="cpu")
    faces = sample_factors(64, seed=4242)
    x = (
        torch.from_numpy(np.stack([render_aligned(f, model.config.size) for f in faces]))
        .permute(0, 3, 1, 2)
        .float()
        / 255
    )
    with torch.no_grad():
        recon = model.decode(model.encode(x))
        samples = model.decode(model.sample_latent(16, torch.Generator().manual_seed(0)))
    assert (recon - x).abs().mean() < 0.06
    # a reconstruction is closer to its own face than to the other faces
    dist = torch.cdist(recon.flatten(1), x.flatten(1))
    assert (dist.argmin(1) == torch.arange(64)).float().mean() > 0.9
    assert samples.std(0).mean() > 0.05  # samples differ from each other
    assert model.meta["test"]["bits_per_dim"] < 5.0  # better than a uniform 5-bit model
