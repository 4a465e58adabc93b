"""Glow: exact inverses, log-determinants against autograd Jacobians, bits/dim, sampling,
checkpoints and the shipped model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal

import fel
from fel.directions import mean_difference
from fel.flow import Glow, GlowConfig, export, load, load_pretrained
from fel.flow.model import (
    ActNorm,
    AffineCoupling,
    FlowStep,
    InvConv2d,
    InvConv2dLU,
    squeeze,
    unsqueeze,
)
from fel.flow.recipe import evaluate, loss_fn, train_glow
from tests.ddp import run_ranks

SHIPPED = fel.CHECKPOINT_DIR / "glow.pt"


def _perturb(module: torch.nn.Module, scale: float = 0.3, seed: int = 0) -> torch.nn.Module:
    """Move every parameter off its initial value (zero-initialised layers are the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


LAYERS = {
    "actnorm": lambda: ActNorm(4),
    "invconv": lambda: InvConv2d(4),
    "invconv_lu": lambda: InvConv2dLU(4),
    "coupling": lambda: AffineCoupling(4, 8),
    "coupling_unbounded": lambda: AffineCoupling(4, 8, min_scale=0.0),
    "step": lambda: FlowStep(4, 8),
    "step_plain": lambda: FlowStep(4, 8, lu=False),
}


@pytest.mark.parametrize("name", LAYERS)
def test_every_layer_inverts_in_float32(name):
    torch.manual_seed(0)
    layer = _perturb(LAYERS[name]()).eval()
    x = torch.randn(5, 4, 6, 6)
    y, logdet = layer(x)
    assert y.shape == x.shape and logdet.shape == (5,)
    assert torch.allclose(layer.reverse(y), x, atol=1e-5)
    assert not torch.allclose(y, x, atol=1e-2)  # the perturbed layer does something


@pytest.mark.parametrize("name", LAYERS)
def test_every_layer_logdet_equals_the_autograd_jacobian(name):
    torch.manual_seed(1)
    layer = _perturb(LAYERS[name]()).double().eval()
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    _, logdet = layer(x)
    jac = torch.autograd.functional.jacobian(
        lambda v: layer(v.view_as(x))[0].flatten(), x.flatten()
    )
    assert logdet.item() == pytest.approx(torch.linalg.slogdet(jac)[1].item(), abs=1e-9)


def test_coupling_scales_respect_their_floor():
    torch.manual_seed(7)
    layer = _perturb(AffineCoupling(4, 8, min_scale=0.25), scale=5.0)  # wild scale logits
    x_a = torch.randn(8, 2, 5, 5) * 10
    _, scale = layer._shift_scale(x_a)
    assert scale.min() >= 0.25 and scale.max() <= 1
    assert scale.min() < 0.26  # the floor is reached, not just respected by luck
    with pytest.raises(ValueError, match="min_scale"):
        GlowConfig(min_scale=1.0)


def test_squeeze_is_a_permutation_and_unsqueeze_undoes_it():
    x = torch.arange(2 * 3 * 4 * 4.0).view(2, 3, 4, 4)
    y = squeeze(x)
    assert y.shape == (2, 12, 2, 2)
    assert torch.equal(y.flatten().sort().values, x.flatten().sort().values)
    assert torch.equal(unsqueeze(y), x)
    # output channel 4c + k at (i, j) holds input channel c at (2i + k // 2, 2j + k % 2)
    assert torch.equal(y[0, 0:4, 1, 0], x[0, 0, 2:4, 0:2].flatten())


@pytest.mark.parametrize("lu", [True, False])
def test_whole_model_logdet_equals_the_autograd_jacobian(lu):
    torch.manual_seed(2)
    model = Glow(size=8, levels=2, steps=2, hidden=8, lu=lu).double()
    model.initialize(torch.rand(16, 3, 8, 8, dtype=torch.float64) - 0.5)
    _perturb(model, 0.1).eval()
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64) - 0.5
    zs, logdet, _ = model.flow_forward(x)

    def code(v):
        return model.flatten(model.flow_forward(v.view_as(x))[0]).flatten()

    jac = torch.autograd.functional.jacobian(code, x.flatten())
    assert jac.shape == (192, 192)
    assert logdet.item() == pytest.approx(torch.linalg.slogdet(jac)[1].item(), abs=1e-8)


def test_model_encode_decode_round_trip_at_float32_precision():
    torch.manual_seed(3)
    model = Glow(size=32, levels=3, steps=2, hidden=16)
    model.initialize(torch.rand(32, 3, 32, 32) - 0.5)
    _perturb(model, 0.05).eval()
    x = torch.rand(4, 3, 32, 32)
    z = model.encode(x)
    assert z.shape == (4, 3 * 32 * 32) == (4, model.latent_dim)
    assert [tuple(s) for s in model.z_shapes] == [(6, 16, 16), (12, 8, 8), (48, 4, 4)]
    assert (model.decode(z) - x).abs().max() < 1e-5
    assert torch.equal(model.flatten(model.unflatten(z)), z)


def test_log_prob_of_a_flow_without_steps_is_the_gaussian_prior():
    model = Glow(size=8, levels=2, steps=0).eval()  # zero-initialised priors: N(0, I)
    x = torch.randn(3, 3, 8, 8)
    expected = Normal(0.0, 1.0).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(model.log_prob(x), expected, atol=1e-4)


@pytest.mark.parametrize("n_bits", [3, 5, 8])
def test_bits_per_dim_of_uniform_noise_under_a_standard_normal(n_bits):
    # Uniform colours dequantised -> uniform on [-1/2, 1/2]^D. Under N(0, I) the expected
    # negative log density per dimension is 0.5 log(2 pi) + 1/24 nats; the n_bits grid adds
    # n_bits bits per dimension. A test of the dequantisation term for every depth.
    model = Glow(size=16, levels=2, steps=0, n_bits=n_bits).eval()
    g = torch.Generator().manual_seed(n_bits)
    x = torch.randint(0, 256, (64, 3, 16, 16), generator=g).float() / 255
    bpd = model.bits_per_dim(x, g).mean().item()
    assert bpd == pytest.approx(
        n_bits + (0.5 * math.log(2 * math.pi) + 1 / 24) / math.log(2), abs=0.01
    )


def test_fresh_model_on_uniform_noise_scores_in_the_expected_range():
    # The data's own entropy is n_bits per dimension, so no model beats it; a freshly initialised
    # Glow (ActNorm fitted to the data, couplings near the identity) is close above it.
    torch.manual_seed(4)
    model = Glow(size=16, levels=2, steps=2, hidden=16)
    x = torch.rand(128, 3, 16, 16)
    bpd = model(x).mean().item()  # training mode: ActNorm initialises on this batch
    assert bool(model.initialized)
    assert 5.0 < bpd < 5.5  # without the initialisation this model scores 6.5


def test_dequantize_keeps_every_value_inside_its_bin():
    for n_bits in (1, 5, 8):
        model = Glow(size=8, levels=1, steps=0, n_bits=n_bits)
        x = torch.randint(0, 256, (4, 3, 8, 8)).float() / 255
        bins = 2**n_bits
        k = (x * 255).round() // 2 ** (8 - n_bits)
        y = (model.dequantize(x) + 0.5) * bins
        assert torch.all((y >= k) & (y < k + 1))


def test_actnorm_data_initialisation_standardises_its_input():
    layer = ActNorm(3)
    layer.pending = True
    x = torch.randn(64, 3, 5, 5) * torch.tensor([1.0, 4.0, 0.2]).view(1, 3, 1, 1) + 7
    y, _ = layer(x)
    assert torch.allclose(y.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(y.std((0, 2, 3)), torch.ones(3), atol=1e-3)
    y2, _ = layer(x)  # initialised once only
    assert torch.equal(y, y2)


def test_sampling_is_seeded_and_temperature_shrinks_the_spread():
    torch.manual_seed(5)
    model = Glow(size=16, levels=2, steps=1, hidden=8).eval()
    draw = lambda t, s: model.sample_latent(2000, torch.Generator().manual_seed(s), t)  # noqa: E731
    assert torch.equal(draw(0.7, 1), draw(0.7, 1))
    assert not torch.equal(draw(0.7, 1), draw(0.7, 2))
    # fresh (zero-initialised) priors are N(0, I) whatever they are fed
    assert draw(1.0, 1).std().item() == pytest.approx(1.0, abs=0.05)
    assert draw(0.5, 1).std().item() == pytest.approx(0.5, abs=0.03)
    images = model.sample(3, generator=torch.Generator().manual_seed(0), temperature=0.7)
    assert images.shape == (3, 3, 16, 16) and images.min() >= 0 and images.max() <= 1


def test_sampling_uses_each_split_prior_as_the_forward_pass_computes_it():
    # With non-zero priors, a level's latent must be drawn from the Gaussian predicted from the
    # *kept* half at that level. Re-encode the sample and standardise every level with the
    # forward pass's priors: what is left must be the temperature-scaled standard normal.
    torch.manual_seed(8)
    model = Glow(size=16, levels=3, steps=1, hidden=8).double()
    model.initialize(torch.rand(32, 3, 16, 16, dtype=torch.float64) - 0.5)
    _perturb(model, 0.05).eval()
    g = torch.Generator().manual_seed(0)
    z = model.sample_latent(4000, g, temperature=0.6)
    x = model.flow_reverse(model.unflatten(z))
    zs, h, means = model.unflatten(z), x, []
    for level, (steps, prior) in enumerate(zip(model.flows, model.priors)):
        h = squeeze(h)
        for step in steps:
            h, _ = step(h)
        if level < len(model.flows) - 1:
            h, z_level = h.chunk(2, 1)
            mean, log_sd = prior(h).chunk(2, 1)
        else:
            z_level, (mean, log_sd) = h, prior(h.shape[0])
        assert torch.allclose(z_level, zs[level], atol=1e-9)  # the round trip is exact
        eps = (z_level - mean) / log_sd.exp()
        assert eps.std().item() == pytest.approx(0.6, abs=0.01)
        assert abs(eps.mean().item()) < 0.01
        means.append(mean.abs().max().item())
    assert max(means) > 0.2  # the priors really are not the standard normal


def test_encode_and_log_prob_never_initialise_actnorm():
    model = Glow(size=8, levels=1, steps=1, hidden=4)  # training mode, not initialised
    model.encode(torch.rand(2, 3, 8, 8))
    model.log_prob(torch.rand(2, 3, 8, 8) - 0.5)
    assert not bool(model.initialized)


def test_flow_reverse_needs_the_top_latent_and_a_temperature_for_missing_ones():
    model = Glow(size=8, levels=2, steps=1, hidden=4).eval()
    with pytest.raises(ValueError, match="top"):
        model.flow_reverse([None, None], 0.7)
    top = torch.zeros(1, *model.z_shapes[-1])
    with pytest.raises(ValueError, match="temperature"):
        model.flow_reverse([None, top])


def test_bad_inputs_are_refused_clearly():
    with pytest.raises(ValueError, match="divisible"):
        GlowConfig(size=20, levels=3)
    with pytest.raises(ValueError, match="n_bits"):
        GlowConfig(n_bits=9)
    with pytest.raises(ValueError, match=r"\[B, 768\]"):
        Glow(size=16, levels=2, steps=0).decode(torch.zeros(1, 100))


def test_loss_is_the_mean_bits_per_dim_and_gradients_flow():
    torch.manual_seed(6)
    model = Glow(size=8, levels=2, steps=1, hidden=8)
    loss, logs = loss_fn(model, (torch.rand(8, 3, 8, 8), torch.zeros(8, 40)))
    loss.backward()
    assert logs["bpd"] == pytest.approx(loss.item())
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_train_export_load_round_trip(tmp_path):
    from fel.data.synthfaces import write_synthfaces
    from fel.training import TrainConfig

    root = write_synthfaces(tmp_path / "sf", n=300, seed=1, workers=2, progress=False)
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-3, warmup_steps=2, amp=False)
    config = GlowConfig(size=16, levels=2, steps=1, hidden=16)
    result = train_glow(root, tmp_path / "run", cfg, config, max_steps=6)
    assert (tmp_path / "run" / "samples_final.png").exists()
    history = [h["loss"] for h in result["meta"]["history"] if "loss" in h]
    assert history and all(np.isfinite(history))
    assert 0 < result["meta"]["test"]["bits_per_dim"] < 8
    model = load(export(result, tmp_path / "glow.pt"), device="cpu")
    assert bool(model.initialized)  # resuming or loading never re-initialises ActNorm
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert (model.decode(model.encode(x)) - x).abs().max() < 1e-4  # fp16 weights still invert
    result2 = train_glow(root, tmp_path / "run", cfg, config, resume=True, max_steps=8)
    assert result2["meta"]["step"] == 8
    assert result2["meta"]["train_config"]["amp"] is False  # forced off, whatever was asked
    other = GlowConfig(size=16, levels=2, steps=1, hidden=16, min_scale=0.25)
    with pytest.raises(ValueError, match="min_scale"):
        train_glow(root, tmp_path / "run", cfg, other, resume=True, max_steps=10)


@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped Glow checkpoint yet")
def test_shipped_glow_encodes_exactly_and_scores_unseen_faces():
    from fel.data.synthfaces import render_aligned, sample_factors

    model = load_pretrained(device="cpu")
    size = model.config.size
    faces = sample_factors(64, seed=4242)
    x = torch.from_numpy(np.stack([render_aligned(f, size) for f in faces]))
    x = x.permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        assert (model.decode(model.encode(x)) - x).abs().max() < 1e-4
        bpd = evaluate(model, x)["bits_per_dim"]
        samples = model.sample(16, generator=torch.Generator().manual_seed(0))
    # unseen faces score close to the test split's number recorded at training time
    assert bpd == pytest.approx(model.meta["test"]["bits_per_dim"], abs=0.15)
    assert bpd < 2.5  # far better than a uniform 5-bit model (5 bits/dim)
    assert samples.std(0).mean() > 0.03  # samples differ from each other
    # an attribute edit (the smile vector of these 64 faces, at twice its length) stays finite
    with torch.no_grad():
        z = model.encode(x)
        d = mean_difference(z, torch.from_numpy(faces["smile"] > 0.5))
        assert torch.isfinite(model.decode(z + 2 * d)).all()


def _ddp_glow_worker(rank, root, out):
    from fel.training import TrainConfig, setup_distributed

    d = setup_distributed(torch.device("cpu"))
    torch.manual_seed(0)  # the same initial weights on both ranks, as torchrun runs the same code
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-3, warmup_steps=2, amp=False)
    result = train_glow(
        root, out, cfg, GlowConfig(size=16, levels=2, steps=1, hidden=8), max_steps=4
    )
    state = torch.cat([v.flatten().float() for v in result["model"].values()])
    return state.numpy(), d.world


def test_glow_trains_under_ddp_with_one_set_of_weights(tmp_path):
    """Two gloo processes (torchrun-style): the recipe runs under DDP (ActNorm initialised before
    wrapping, the loss through the wrapper) and both ranks end with the same weights."""
    from fel.data.synthfaces import write_synthfaces

    root = write_synthfaces(tmp_path / "sf", n=120, seed=3, workers=1, progress=False)
    results = run_ranks(_ddp_glow_worker, root, tmp_path / "run")
    assert results[0][1] == results[1][1] == 2
    assert np.array_equal(results[0][0], results[1][0])
    assert (tmp_path / "run" / "last.pt").exists()


@pytest.mark.parametrize("layer", [InvConv2d, InvConv2dLU])
def test_inverse_convolutions_work_on_a_device_without_float64(monkeypatch, layer):
    """Apple's MPS has no float64: the inverse and the log-determinant are then computed on the
    CPU and moved back. Simulated here by declaring the CPU float64-less."""
    import fel.flow.model as model

    torch.manual_seed(0)
    conv = layer(6)
    x = torch.randn(2, 6, 3, 3)
    y, logdet = conv(x)
    asked = []
    monkeypatch.setattr(model, "has_float64", lambda device: asked.append(device.type) or False)
    y_mps, logdet_mps = conv(x)
    back = conv.reverse(y_mps)
    assert asked and back.dtype == x.dtype and logdet_mps.dtype == torch.float32
    assert torch.allclose(back, x, atol=1e-5) and torch.equal(y_mps, y)
    assert torch.allclose(logdet_mps, logdet)
