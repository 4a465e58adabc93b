"""The style-based GAN: layers against their definitions, truncation, inversion, the one-optimiser
training step (each network gets exactly its own gradient, also under DDP), the Fréchet distance
against closed forms, training, export and loading."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

import fel
from fel.classifier import AttributeClassifier
from fel.classifier import load_pretrained as load_classifier
from fel.interface_gan import GAN, Discriminator, GANConfig, Generator, export, load
from fel.interface_gan.model import ModulatedConv2d, eye_patches, sliced_wasserstein
from fel.interface_gan.recipe import TRAIN_COMMAND, evaluate, load_pretrained, loss_fn
from fel.metrics import (
    EYE_CENTRES,
    classifier_features,
    frechet_distance,
    gaussian_frechet_distance,
)
from fel.training import Distributed, TrainConfig, train
from fel.viz import png_bytes
from tests.ddp import run_ranks

SHIPPED = fel.CHECKPOINT_DIR / "gan.pt"
CLASSIFIER = fel.CHECKPOINT_DIR / "classifier.pt"
TINY = GANConfig(size=16, z_dim=16, w_dim=16, mapping_layers=2, g_channels=(32, 16, 8),
                 d_channels=(32, 16, 8), mbstd_group=2, r1_every=2)  # fmt: skip
CPU = Distributed(0, 1, torch.device("cpu"))
# The recipe's optimiser settings, written out (fel.interface_gan.recipe.GAN_OPTIMISATION).
GAN_TRAIN = dict(betas=(0.0, 0.99), schedule="constant", grad_clip=None, amp=False)


def _perturb(module: nn.Module, scale: float = 0.1, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
        for b in module.buffers():
            if b.is_floating_point():
                b.add_(scale * torch.randn(b.shape, generator=g, dtype=b.dtype))
    return module


def test_config_is_checked():
    with pytest.raises(ValueError, match="power of two"):
        GANConfig(size=48)
    with pytest.raises(ValueError, match="g_channels"):
        GANConfig(size=32)  # five default widths for four resolutions
    assert GANConfig(g_channels=[1, 2, 3, 4, 5]).g_channels == (1, 2, 3, 4, 5)


def test_generator_shapes_ranges_and_determinism():
    torch.manual_seed(0)
    g = Generator(TINY).eval()
    z = g.sample_latent(5, torch.Generator().manual_seed(1))
    assert torch.equal(z, g.sample_latent(5, torch.Generator().manual_seed(1)))
    w = g.mapping(z)
    assert z.shape == (5, 16) and w.shape == (5, 16)
    x = g.decode(z)
    assert x.shape == (5, 3, 16, 16) and x.min() >= 0 and x.max() <= 1
    assert torch.equal(g.decode(z), x)  # no noise inputs: decoding is deterministic
    assert torch.equal(g.decode_w(w), x)
    assert x.std(0).mean() > 0.01  # different codes, different faces
    with pytest.raises(ValueError, match=r"Z codes must be \[B, 16\]"):
        g.decode(torch.zeros(2, 8))
    with pytest.raises(ValueError, match=r"W codes must be \[B, 16\]"):
        g.decode_w(torch.zeros(2, 8))


@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("demodulate", [False, True])
def test_modulated_conv_equals_convolution_with_per_sample_weights(upsample, demodulate):
    """StyleGAN2's definition: sample b is convolved with weight * s_b, normalised per output
    channel when demodulating; the layer computes it as d * conv(s * x, weight)."""
    torch.manual_seed(2)
    layer = _perturb(ModulatedConv2d(4, 5, 3, 6, demodulate, upsample), 0.3).double()
    x, w = torch.randn(3, 4, 5, 5, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)
    s = layer.affine(w)
    expected = []
    for b in range(3):
        weight = layer.weight * layer.scale * s[b].view(1, -1, 1, 1)
        if demodulate:
            weight = weight / weight.square().sum((1, 2, 3), keepdim=True).add(1e-8).sqrt()
        xb = x[b : b + 1]
        if upsample:
            xb = F.interpolate(xb, scale_factor=2, mode="bilinear", align_corners=False)
        y = F.conv2d(xb, weight, layer.bias, padding=1)
        expected.append(F.leaky_relu(y, 0.2) * math.sqrt(2))
    assert torch.allclose(layer(x, w), torch.cat(expected), atol=1e-10)


def test_truncation_pulls_w_towards_its_average_after_the_edit():
    torch.manual_seed(3)
    g = _perturb(Generator(TINY)).eval()
    z = g.sample_latent(4, torch.Generator().manual_seed(0))
    w = g.mapping(z)
    centre = g.decode_w(g.w_avg[None])
    assert torch.allclose(g.decode(z, psi=0.0), centre.expand(4, -1, -1, -1), atol=1e-5)
    assert torch.allclose(g.truncate(w, 0.7), g.w_avg + 0.7 * (w - g.w_avg))
    n = torch.randn(16)
    edited = g.decode_w(w + 2 * n, psi=0.7)
    by_hand = ((g.synthesis(g.w_avg + 0.7 * (w + 2 * n - g.w_avg)) + 1) / 2).clamp(0, 1)
    assert torch.allclose(edited, by_hand, atol=1e-6)
    g.truncation = 0.5  # the attribute is the default psi of decode and decode_w
    assert torch.equal(g.decode(z), g.decode(z, psi=0.5))
    assert not torch.allclose(g.decode(z), g.decode(z, psi=1.0))


def test_discriminator_scores_each_image_and_its_batch_statistics():
    torch.manual_seed(4)
    d = Discriminator(TINY)
    for batch in (1, 6, 8):  # 6 is not divisible by the group of 4: groups of 3
        assert d(torch.rand(batch, 3, 16, 16) * 2 - 1).shape == (batch,)
    x = torch.randn(8, 3, 4, 4)
    y = Discriminator(TINY, mbstd_group=4).minibatch_stddev(x)
    assert y.shape == (8, 4, 4, 4)
    groups = x.reshape(4, 2, 3, 4, 4)  # strided groups: images i and i + 2, i + 4, i + 6
    expected = groups.var(0, unbiased=False).add(1e-8).sqrt().mean((1, 2, 3))
    assert torch.allclose(y[:, 3, 0, 0], expected.repeat(4))


def _reference_grads(gan: GAN, real: torch.Tensor, z: torch.Tensor, with_r1: bool,
                     disc: nn.Module | None = None, view=lambda x: x):  # fmt: skip
    """Each network's gradient from its own loss, computed the textbook way: D's loss on a
    detached fake, G's loss through an ordinary D, each differentiated only in its own weights.
    ``disc`` (default: the face critic) sees ``view`` of every image."""
    c = gan.config
    gen, disc = gan.generator, disc or gan.discriminator
    x = view(real * 2 - 1).requires_grad_(with_r1)
    with torch.no_grad():
        fake = view(gen.synthesis(gen.mapping(z)))
    real_logit = disc(x)
    d_loss = F.softplus(disc(fake)).mean() + F.softplus(-real_logit).mean()
    if with_r1:
        (grad,) = torch.autograd.grad(real_logit.sum(), x, create_graph=True)
        d_loss = d_loss + c.r1_every * c.r1_gamma / 2 * grad.square().sum((1, 2, 3)).mean()
    d_grads = torch.autograd.grad(d_loss, list(disc.parameters()))
    g_loss = F.softplus(-disc(view(gen.synthesis(gen.mapping(z))))).mean()
    g_grads = torch.autograd.grad(g_loss, list(gen.parameters()), retain_graph=True)
    g_loss_in_d = torch.autograd.grad(g_loss, list(disc.parameters()))
    return d_grads, g_grads, g_loss_in_d


@pytest.mark.parametrize("step", [0, 1], ids=["with_r1", "without_r1"])
def test_one_backward_gives_each_network_exactly_its_own_gradient(step):
    torch.manual_seed(5)
    gan = _perturb(GAN(TINY, r1_gamma=1.0), 0.05).double()
    gan.step.fill_(step)
    real = torch.rand(6, 3, 16, 16, dtype=torch.float64)
    z = torch.randn(6, 16, dtype=torch.float64)
    out = gan(real, z)
    assert (out["r1_loss"] > 0) == (step == 0)
    assert torch.allclose(out["loss"], out["d_loss"] + out["r1_loss"] + out["g_loss"])
    out["loss"].backward()
    d_ref, g_ref, g_loss_in_d = _reference_grads(gan, real, z, with_r1=step == 0)
    for p, ref in zip(gan.discriminator.parameters(), d_ref):
        assert torch.allclose(p.grad, ref, rtol=1e-9, atol=1e-12)
    for p, ref in zip(gan.generator.parameters(), g_ref):
        assert torch.allclose(p.grad, ref, rtol=1e-9, atol=1e-12)
    # the test has teeth: without the detached copy, G's loss would move D's weights too
    assert max(g.abs().max() for g in g_loss_in_d) > 1e-4
    assert all(p.grad is None for p in gan.generator_ema.parameters())


def test_track_updates_the_averages_and_counts_steps():
    torch.manual_seed(6)
    gan = GAN(TINY)
    _perturb(gan.generator, 0.5)
    before = [p.clone() for p in gan.generator_ema.parameters()]
    w_avg = gan.generator.w_avg.clone()
    w = torch.randn(8, 16) + 3
    gan.track(w)
    decay = min(TINY.ema_decay, 1 / 10)  # ramped up: step 0 keeps a tenth of the old average
    for old, ema, p in zip(before, gan.generator_ema.parameters(), gan.generator.parameters()):
        assert torch.allclose(ema, decay * old + (1 - decay) * p, atol=1e-4)
    beta = TINY.w_avg_beta
    assert torch.allclose(gan.generator.w_avg, beta * w_avg + (1 - beta) * w.mean(0))
    assert torch.equal(gan.generator_ema.w_avg, gan.generator.w_avg)
    assert int(gan.step) == 1


def test_loss_fn_works_through_a_ddp_style_wrapper():
    class Wrapper(nn.Module):  # what DistributedDataParallel looks like to a loss function
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, *args):
            return self.module(*args)

    gan = GAN(TINY)
    loss, logs = loss_fn(Wrapper(gan), (torch.rand(4, 3, 16, 16), torch.zeros(4, 40)))
    assert loss.dim() == 0 and set(logs) == {
        "d_loss",
        "r1_loss",
        "g_loss",
        "imle_loss",
        "eye_loss",
        "match_loss",
        "real_logit",
        "fake_logit",
    }
    assert int(gan.step) == 1 and gan.generator.w_avg.abs().sum() > 0


def test_eye_patches_are_centred_on_celeba_eyes_and_mirror_the_right_one():
    from fel.data.celeba import CROP

    images = torch.zeros(2, 3, 64, 64)
    images[0, :, 33, 23] = 1.0  # the left eye's centre at 64 px
    images[0, :, 33, 40] = 2.0  # the right eye's
    images[1, :, 33, 41] = 3.0  # one pixel further out from the right eye's centre
    patches = eye_patches(images)
    assert patches.shape == (4, 3, 16, 16)  # left eyes of both faces, then right eyes
    assert patches[0, 0, 8, 8] == 1 and patches[0].sum() == 3
    assert patches[2, 0, 8, 7] == 2 and patches[2].sum() == 6  # mirrored: column 8 -> 7
    assert patches[3, 0, 8, 6] == 3  # further out is further left once mirrored
    # CelebA's mean aligned eyes (x 69 and 108, y 111 of 178 x 218) lie within a pixel of the
    # patch centres, in the loader's centred crop
    left, top = (178 - CROP) / 2, (218 - CROP) / 2
    for (row, col), x in zip(EYE_CENTRES, (69, 108)):
        assert abs((111 - top) / CROP - row) * 64 < 1 and abs((x - left) / CROP - col) * 64 < 1


EYES = GANConfig(size=32, z_dim=16, w_dim=16, mapping_layers=2, g_channels=(32, 16, 8, 8),
                 d_channels=(32, 16, 8, 8), mbstd_group=2, r1_every=2, r1_gamma=1.0,
                 eye_weight=0.5, eye_channels=(16, 8))  # fmt: skip


@pytest.mark.parametrize("step", [0, 1], ids=["with_r1", "without_r1"])
def test_eye_critic_gets_its_own_gradient_and_adds_its_pull_to_g(step):
    torch.manual_seed(11)
    gan = _perturb(GAN(EYES), 0.05).double()
    gan.step.fill_(step)
    real = torch.rand(4, 3, 32, 32, dtype=torch.float64)
    z = torch.randn(4, 16, dtype=torch.float64)
    out = gan(real, z)
    assert out["eye_loss"] > 0
    torch.testing.assert_close(out["loss"], out["d_loss"] + out["r1_loss"] + out["g_loss"]
                               + out["eye_loss"])  # fmt: skip
    out["loss"].backward()
    d_ref, g_face, _ = _reference_grads(gan, real, z, with_r1=step == 0)
    eye_ref, g_eye, _ = _reference_grads(gan, real, z, step == 0, gan.eye_discriminator,
                                         eye_patches)  # fmt: skip
    for p, ref in zip(gan.discriminator.parameters(), d_ref):
        torch.testing.assert_close(p.grad, ref)
    for p, ref in zip(gan.eye_discriminator.parameters(), eye_ref):
        torch.testing.assert_close(p.grad, 0.5 * ref)
    for p, face, eye in zip(gan.generator.parameters(), g_face, g_eye):
        torch.testing.assert_close(p.grad, face + 0.5 * eye)
    assert max(g.abs().max() for g in g_eye) > 1e-4  # the critic's pull on G is not nil
    assert GAN(TINY).eye_discriminator is None  # off by default: no critic, no weights
    for bad in ({"eye_weight": -1.0}, {"eye_weight": 1.0, "eye_channels": (8, 8)}):
        with pytest.raises(ValueError, match="eye"):
            GANConfig(**bad)
    with pytest.raises(ValueError, match="size >= 32"):
        GANConfig(**{**TINY.__dict__, "eye_weight": 1.0})


def _optimal_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The optimal transport plan between two equal-size sets of 1-D points with squared cost,
    from a general assignment solver (no sorting assumed): b's index for each of a's points."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment((a[:, None] - b[None, :]) ** 2)
    return cols[np.argsort(rows)]


def test_sliced_wasserstein_is_the_mean_optimal_transport_cost_of_the_projections():
    torch.manual_seed(12)
    a, b = torch.randn(9, 5, dtype=torch.float64), torch.randn(9, 5, dtype=torch.float64) + 1
    directions = F.normalize(torch.randn(5, 7, dtype=torch.float64), dim=0)
    costs = []
    for d in directions.T:
        pa, pb = (a @ d).numpy(), (b @ d).numpy()
        costs.append(np.mean((pa - pb[_optimal_pairs(pa, pb)]) ** 2))
    assert sliced_wasserstein(a, b, directions).item() == pytest.approx(np.mean(costs), rel=1e-12)
    assert sliced_wasserstein(a, a[torch.randperm(9)], directions) == 0  # order does not matter
    assert sliced_wasserstein(a, a + 1, directions) > 0


@pytest.mark.parametrize("step", [0, 1], ids=["with_r1", "without_r1"])
def test_feature_matching_pulls_only_g_towards_the_reals_features(step):
    """G's gradient gains match_weight x the gradient of the sliced distance between the critics'
    features of fakes and reals (the eye critic's scaled by eye_weight), computed here through
    ordinary critics with the transport plans of a general assignment solver; the critics'
    gradients do not change."""
    config = GANConfig(**{**EYES.__dict__, "match_weight": 2.0})
    torch.manual_seed(13)
    gan = _perturb(GAN(config), 0.05).double()
    gan.step.fill_(step)
    real = torch.rand(6, 3, 32, 32, dtype=torch.float64)
    z = torch.randn(6, 16, dtype=torch.float64)
    torch.manual_seed(14)  # the random directions: the face critic's, then the eye critic's
    out = gan(real, z)
    assert out["match_loss"] > 0
    torch.testing.assert_close(out["loss"], sum(out[k] for k in (
        "d_loss", "r1_loss", "g_loss", "eye_loss", "match_loss")))  # fmt: skip
    out["loss"].backward()
    d_ref, g_face, _ = _reference_grads(gan, real, z, with_r1=step == 0)
    eye_ref, g_eye, _ = _reference_grads(gan, real, z, step == 0, gan.eye_discriminator,
                                         eye_patches)  # fmt: skip
    torch.manual_seed(14)
    gen = gan.generator
    match = 0.0
    for critic, view, weight in ((gan.discriminator, lambda x: x, 1.0),
                                 (gan.eye_discriminator, eye_patches, 0.5)):  # fmt: skip
        with torch.no_grad():
            real_f = critic(view(real * 2 - 1), features=True)[1]
        fake_f = critic(view(gen.synthesis(gen.mapping(z))), features=True)[1]
        directions = torch.randn(real_f.shape[1], real_f.shape[1]).double()
        directions = directions / directions.norm(dim=0)
        mean, std = real_f.mean(0), real_f.std(0) + 1e-3
        pf, pr = ((fake_f - mean) / std) @ directions, ((real_f - mean) / std) @ directions
        gaps = [pf[:, k] - pr[_optimal_pairs(pf[:, k].detach().numpy(), pr[:, k].numpy()), k]
                for k in range(pf.shape[1])]  # fmt: skip
        match = match + weight * 2.0 * torch.stack(gaps).square().mean()
    g_match = torch.autograd.grad(match, list(gen.parameters()))
    torch.testing.assert_close(out["match_loss"], match.detach())
    for p, ref in zip(gan.discriminator.parameters(), d_ref):
        torch.testing.assert_close(p.grad, ref)
    for p, ref in zip(gan.eye_discriminator.parameters(), eye_ref):
        torch.testing.assert_close(p.grad, 0.5 * ref)
    for p, face, eye, m in zip(gen.parameters(), g_face, g_eye, g_match):
        torch.testing.assert_close(p.grad, face + 0.5 * eye + m)
    assert max(g.abs().max() for g in g_match) > 1e-4  # the pull on G is not nil
    with pytest.raises(ValueError, match="match_weight"):
        GANConfig(match_weight=-1.0)


def test_fine_tuning_adds_or_leaves_behind_the_eye_critic(tmp_path):
    from fel.checkpoints import load_checkpoint
    from fel.interface_gan.recipe import start_from

    torch.manual_seed(12)
    data = TensorDataset(torch.rand(16, 3, 32, 32), torch.zeros(16, 40))
    seen = {"dataset": "SynthFaces", "seed": 0, "images": 16, "fingerprint": "aaaa"}
    cfg = TrainConfig(epochs=1, batch_size=4, lr=2e-3, warmup_steps=1, **GAN_TRAIN)
    plain = GANConfig(**{**EYES.__dict__, "eye_weight": 0.0})
    train(GAN(plain), loss_fn, data, cfg, tmp_path / "plain", plain.__dict__, {"data": seen},
          dist_=CPU, max_steps=2)  # fmt: skip
    run = load_checkpoint(tmp_path / "plain" / "last.pt")["model"]
    tuned = GAN(EYES)
    fresh = {k: v.clone() for k, v in tuned.eye_discriminator.state_dict().items()}
    start_from(tuned, tmp_path / "plain" / "last.pt", dict(seen))
    for key, value in run.items():
        torch.testing.assert_close(tuned.state_dict()[key], value, msg=key)
    for key, value in tuned.eye_discriminator.state_dict().items():
        torch.testing.assert_close(value, fresh[key], msg=key)  # the new critic starts fresh
    train(GAN(EYES), loss_fn, data, cfg, tmp_path / "eyes", EYES.__dict__, {"data": seen},
          dist_=CPU, max_steps=2)  # fmt: skip
    back = GAN(plain)
    start_from(back, tmp_path / "eyes" / "last.pt", dict(seen))  # its critic is left behind
    for key, value in back.state_dict().items():
        expected = load_checkpoint(tmp_path / "eyes" / "last.pt")["model"][key]
        torch.testing.assert_close(value, expected, msg=key)


@pytest.mark.parametrize("step", [0, 1], ids=["with_imle", "lazy_step_without"])
def test_coverage_term_pulls_each_real_towards_its_nearest_fake_and_reaches_only_g(step):
    torch.manual_seed(8)
    gan = _perturb(GAN(TINY, imle_weight=0.7, imle_pool=3, imle_every=2), 0.05).double()
    gan.step.fill_(step)
    real = torch.rand(4, 3, 16, 16, dtype=torch.float64)
    pool = torch.randn(12, 16, dtype=torch.float64)
    # the oracle: every real against every candidate, one pair at a time
    gen = gan.generator
    with torch.no_grad():
        fakes = [gen.synthesis(gen.mapping(pool[j : j + 1]))[0] for j in range(12)]
    x = real * 2 - 1
    nearest = [min(range(12), key=lambda j: float((fakes[j] - x[i]).square().sum()))
               for i in range(4)]  # fmt: skip
    assert len(set(nearest)) > 1  # the reals pick different fakes: a search with teeth
    expected = sum((gen.synthesis(gen.mapping(pool[j : j + 1]))[0] - x[i]).square().mean()
                   for i, j in enumerate(nearest)) / 4  # fmt: skip
    g_ref = torch.autograd.grad(expected, list(gen.parameters()))
    term = gan.coverage_loss(x, pool)
    torch.testing.assert_close(term, expected)
    term.backward()
    for p, ref in zip(gen.parameters(), g_ref):
        torch.testing.assert_close(p.grad, ref)
    assert all(p.grad is None for p in gan.discriminator.parameters())
    weights = torch.tensor([0.5, 2.0, 1.0, 0.5], dtype=torch.float64)
    errors = [(gen.synthesis(gen.mapping(pool[j : j + 1]))[0] - x[i]).square().mean()
              for i, j in enumerate(nearest)]  # fmt: skip
    torch.testing.assert_close(gan.coverage_loss(x, pool, weights),
                               sum(w * e for w, e in zip(weights, errors)) / 4)  # fmt: skip
    # in the objective: every imle_every-th step, scaled by imle_every, each real weighted by
    # B softmax(imle_focus D(real))
    gan.config.imle_focus = 1.5
    gan.zero_grad(set_to_none=True)
    z = torch.randn(4, 16, dtype=torch.float64)
    torch.manual_seed(10)
    out = gan(real, z)
    assert (out["imle_loss"] > 0) == (step == 0)
    torch.testing.assert_close(
        out["loss"], out["d_loss"] + out["r1_loss"] + out["g_loss"] + out["imle_loss"]
    )
    if step == 0:
        torch.manual_seed(10)
        drawn = torch.randn(12, 16).double()  # the pool forward drew
        focus = torch.softmax(1.5 * gan.discriminator(x).detach(), 0) * 4
        assert focus.max() / focus.min() > 1.01  # unequal weights: the check has teeth
        expected = 2 * 0.7 * gan.coverage_loss(x, drawn, focus)
        torch.testing.assert_close(out["imle_loss"], expected)
    with pytest.raises(ValueError, match="imle_pool"):
        GANConfig(imle_pool=0)


def test_fine_tuning_starts_from_a_run_of_the_same_data_only(tmp_path):
    from fel.checkpoints import DataMismatchError, load_checkpoint
    from fel.interface_gan.recipe import start_from

    torch.manual_seed(9)
    data = TensorDataset(torch.rand(32, 3, 16, 16), torch.zeros(32, 40))
    seen = {"dataset": "SynthFaces", "seed": 0, "images": 32, "fingerprint": "aaaa"}
    cfg = TrainConfig(epochs=1, batch_size=8, lr=2e-3, warmup_steps=1, **GAN_TRAIN)
    train(GAN(TINY), loss_fn, data, cfg, tmp_path / "a", TINY.__dict__, {"data": seen},
          dist_=CPU, max_steps=3)  # fmt: skip
    last = tmp_path / "a" / "last.pt"
    tuned = GAN(TINY, imle_weight=1.0)  # the objective may change, the architecture not
    record = start_from(tuned, last, dict(seen))
    assert record["path"] == str(last) and record["step"] == 3
    for key, value in load_checkpoint(last)["model"].items():
        torch.testing.assert_close(tuned.state_dict()[key], value, msg=key)
    assert int(tuned.step) == 3  # the average goes on at its own decay
    other = {**seen, "dataset": "CelebA", "fingerprint": "bbbb"}
    with pytest.raises(DataMismatchError, match=r"last\.pt was trained on SynthFaces.*CelebA"):
        start_from(GAN(TINY), last, other)
    # an exported generator (its average alone): G and the average start from it, D afresh
    run = load_checkpoint(last)["model"]
    exported = tmp_path / "gan.pt"
    export({"model": run, "config": TINY.__dict__, "meta": {"data": seen, "step": 3}}, exported)
    torch.manual_seed(1)
    tuned = GAN(TINY)
    own = {k: v.clone() for k, v in tuned.state_dict().items()}
    record = start_from(tuned, exported, dict(seen))
    assert record["critics"] == "fresh" and record["step"] == 3
    for key, value in tuned.state_dict().items():
        net, _, name = key.partition(".")
        if net in ("generator", "generator_ema"):  # both from the average, to fp16's precision
            torch.testing.assert_close(value, run[f"generator_ema.{name}"], atol=2e-3, rtol=2e-3)
        else:  # the critics and the step counter: the new model's own
            torch.testing.assert_close(value, own[key], msg=key)
    assert not torch.equal(tuned.state_dict()["discriminator.out.weight"],
                           run["discriminator.out.weight"])  # fmt: skip
    with pytest.raises(DataMismatchError, match="CelebA"):
        start_from(GAN(TINY), exported, other)
    wider = GANConfig(**{**TINY.__dict__, "g_channels": (32, 32, 8)})
    with pytest.raises(Exception, match="shape"):
        start_from(GAN(wider), last, seen)


def test_a_few_training_steps_change_both_networks(tmp_path):
    torch.manual_seed(7)
    data = TensorDataset(torch.rand(64, 3, 16, 16), torch.zeros(64, 40))
    gan = GAN(TINY)
    before = {k: v.clone() for k, v in gan.state_dict().items()}
    cfg = TrainConfig(epochs=1, batch_size=8, lr=2e-3, warmup_steps=1, **GAN_TRAIN)
    result = train(gan, loss_fn, data, cfg, tmp_path, gan.config_dict(), dist_=CPU, max_steps=5)
    after = result["model"]
    for prefix in ("generator.", "discriminator.", "generator_ema."):
        changed = [
            k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])
        ]
        assert len(changed) > 0.9 * sum(k.startswith(prefix) for k in before), prefix
    assert int(after["step"]) == 5
    history = [h for h in result["meta"]["history"] if "loss" in h]
    assert history and all(np.isfinite(h["loss"]) and h["r1_loss"] >= 0 for h in history)


# ----------------------------------------------------------------------------- DDP


DDP_CONFIG = GANConfig(size=8, z_dim=8, w_dim=8, mapping_layers=1, g_channels=(8, 4),
                       d_channels=(8, 4), mbstd_group=1, r1_every=2)  # fmt: skip
DDP_TRAIN = TrainConfig(epochs=1, batch_size=8, lr=1e-2, warmup_steps=1, **GAN_TRAIN)


def _ddp_data() -> TensorDataset:
    return TensorDataset(torch.rand(32, 3, 8, 8, generator=torch.Generator().manual_seed(0)))


def _ddp_worker(rank, out):
    from fel.training import setup_distributed

    d = setup_distributed(torch.device("cpu"))
    torch.manual_seed(1)
    gan = GAN(DDP_CONFIG)
    result = train(gan, loss_fn, _ddp_data(), DDP_TRAIN, out, {}, dist_=d, max_steps=4)
    return {k: v.numpy() for k, v in result["model"].items()}


def test_two_processes_train_like_one_on_the_global_batch(tmp_path):
    """torchrun-style DDP on gloo: gradients of both networks all-reduced (R1 steps included),
    the same fakes as one process, identical weights on both processes. (Minibatch-stddev groups
    of 1 make every image's loss independent of the others, so the runs can be compared.)"""
    states = run_ranks(_ddp_worker, tmp_path / "ddp")
    torch.manual_seed(1)
    one = train(GAN(DDP_CONFIG), loss_fn, _ddp_data(), DDP_TRAIN, tmp_path / "one", {},
                dist_=CPU, max_steps=4)["model"]  # fmt: skip
    for key, value in one.items():
        if key.endswith("w_avg"):  # follows each process's share of the fakes
            continue
        assert np.array_equal(states[0][key], states[1][key]), key
        assert torch.allclose(torch.from_numpy(states[0][key]).float(), value.float(), atol=1e-5), (
            key
        )


# ----------------------------------------------------------------------------- Fréchet distance


def test_frechet_distance_of_gaussians_matches_closed_forms():
    g = torch.Generator().manual_seed(8)
    # commuting covariances (same eigenvectors): |dmu|^2 + sum (sqrt(a) - sqrt(b))^2
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=torch.float64))
    a, b = torch.rand(5, generator=g).double() + 0.1, torch.rand(5, generator=g).double() * 3
    mu1, mu2 = torch.randn(5, generator=g).double(), torch.randn(5, generator=g).double()
    fd = gaussian_frechet_distance(mu1, q @ torch.diag(a) @ q.T, mu2, q @ torch.diag(b) @ q.T)
    closed = (mu1 - mu2).square().sum() + (a.sqrt() - b.sqrt()).square().sum()
    assert fd == pytest.approx(closed.item(), rel=1e-9)
    # any 2x2 covariances: tr sqrt(S1 S2) = sqrt(tr(S1 S2) + 2 sqrt(det(S1 S2)))
    s1 = torch.tensor([[2.0, 0.7], [0.7, 1.0]], dtype=torch.float64)
    s2 = torch.tensor([[0.5, -0.3], [-0.3, 1.5]], dtype=torch.float64)
    m = s1 @ s2
    cross = math.sqrt(torch.trace(m) + 2 * math.sqrt(torch.det(m)))
    expected = 1.0 + torch.trace(s1 + s2).item() - 2 * cross
    assert gaussian_frechet_distance([1.0, 0], s1, [0.0, 0], s2) == pytest.approx(
        expected, rel=1e-9
    )
    assert gaussian_frechet_distance([0.0, 0], s1, [0.0, 0], s1) == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError, match="covariances"):
        gaussian_frechet_distance([0.0], s1, [0.0], s2)


def test_frechet_distance_of_samples_converges_to_the_gaussians_one():
    g = torch.Generator().manual_seed(9)
    cov1 = torch.tensor([[1.0, 0.5, 0], [0.5, 1.0, 0], [0, 0, 0.3]], dtype=torch.float64)
    cov2 = torch.diag(torch.tensor([2.0, 0.5, 1.0], dtype=torch.float64))
    mu1, mu2 = torch.zeros(3, dtype=torch.float64), torch.tensor([1.0, 0, -1], dtype=torch.float64)
    x = torch.randn(200_000, 3, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov1).T
    y = torch.randn(200_000, 3, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov2).T
    exact = gaussian_frechet_distance(mu1, cov1, mu2, cov2)
    assert frechet_distance(x + mu1, y + mu2) == pytest.approx(exact, rel=0.02)
    assert frechet_distance(x[:100_000], x[100_000:]) < 1e-3
    assert frechet_distance(
        np.arange(10.0)[:, None], np.arange(10.0)[:, None] + 2
    ) == pytest.approx(4)
    with pytest.raises(ValueError, match="two feature sets"):
        frechet_distance(torch.zeros(5, 3), torch.zeros(5, 4))


def test_classifier_features_are_what_the_attribute_head_reads():
    torch.manual_seed(10)
    clf = AttributeClassifier(width=4).eval()
    x = torch.rand(3, 3, 64, 64, requires_grad=True)
    f = classifier_features(clf, x)
    assert f.shape == (3, 32)
    assert torch.allclose(clf.attributes(f), clf(x)[0], atol=1e-6)
    f.sum().backward()  # differentiable, for inversion with a feature loss
    assert x.grad.abs().sum() > 0
    assert classifier_features(clf, torch.rand(2, 3, 16, 16)).shape == (2, 32)  # resized
    assert not clf.attributes._forward_pre_hooks  # the hook is removed


@pytest.mark.skipif(not CLASSIFIER.exists(), reason="no shipped classifier")
def test_evaluate_compares_samples_with_real_faces():
    torch.manual_seed(11)
    g = _perturb(Generator(TINY), 0.05).eval()
    clf = load_classifier(device="cpu")  # its features have a meaningful scale
    with torch.no_grad():
        own = g.decode(g.sample_latent(200, torch.Generator().manual_seed(5)))  # g's own faces
    same = evaluate(g, own, clf, n=100)
    assert same["n"] == 100 and same["fd"] >= 0 and same["fd_real"] >= 0
    grey = torch.full((200, 3, 16, 16), 0.5) + 0.01 * torch.rand(200, 3, 16, 16)
    other = evaluate(g, grey, clf, n=1000)  # n is capped at half the real faces
    assert other["n"] == 100
    assert other["fd"] > 10 * same["fd"]  # far from faces it does not make, close to its own
    with pytest.raises(ValueError, match="at least 4"):
        evaluate(g, own[:3], clf)


# ----------------------------------------------------------------------------- inversion


def test_encode_inverts_into_w_without_touching_the_weights():
    torch.manual_seed(12)
    g = _perturb(Generator(TINY), 0.05).eval()
    w_true = g.mapping(g.sample_latent(3, torch.Generator().manual_seed(2)))
    x = g.decode_w(w_true).detach()
    start = (g.decode_w(g.w_avg.expand(3, -1)) - x).square().mean()
    with torch.no_grad():  # as fel.codes.encode_all calls it
        w = g.encode(x, steps=150, lr=0.05, progress=False)
    assert w.shape == (3, 16) and not w.requires_grad
    assert (g.decode_w(w) - x).square().mean() < 0.05 * start
    assert all(p.grad is None for p in g.parameters())
    g.truncation = 0.6  # decode_w inverts encode whatever psi is set
    w = g.encode(x, steps=150, lr=0.05, progress=False)
    assert (g.decode_w(w) - x).square().mean() < 0.1 * start
    clf = AttributeClassifier(width=4, size=16).eval()
    assert g.encode(x, steps=2, classifier=clf, progress=False).shape == (3, 16)
    with pytest.raises(ValueError, match=r"\[B, 3, 16, 16\]"):
        g.encode(torch.rand(1, 3, 8, 8))


def test_w_space_view_keeps_every_code_in_w_and_drives_the_editor():
    from fel.codes import encode_all
    from fel.widgets import LatentEditor

    torch.manual_seed(13)
    g = _perturb(Generator(TINY), 0.05).eval()
    view = g.w_space()
    w = view.sample_latent(2, torch.Generator().manual_seed(0))
    assert w.shape == (2, 16) and not w.requires_grad
    assert torch.equal(w, g.mapping(g.sample_latent(2, torch.Generator().manual_seed(0))))
    x = view.decode(w).detach()
    assert torch.equal(x, g.decode_w(w))
    codes = encode_all(view, x, batch_size=2)  # W codes, decodable by the same view
    start = (view.decode(g.w_avg.expand(2, -1)) - x).square().mean()
    assert (view.decode(codes) - x).square().mean() < 0.2 * start
    editor = LatentEditor(view, w[0], {"n": torch.randn(16)}, scale=1)
    before = editor.image.value
    editor.set(n=2.0)
    assert editor.image.value != before


# ----------------------------------------------------------------------------- recipe and CLI


@pytest.mark.skipif(not CLASSIFIER.exists(), reason="no shipped classifier")
def test_train_export_load_round_trip_through_the_cli(tmp_path, capsys):
    from fel.__main__ import main
    from fel.checkpoints import load_checkpoint
    from fel.data.synthfaces import write_synthfaces

    root = write_synthfaces(tmp_path / "sf", n=300, seed=1, workers=1, progress=False)
    args = ["train", "gan", "--root", str(root), "--out", str(tmp_path / "run"), "--size", "16",
            "--z-dim", "16", "--w-dim", "16", "--mapping-layers", "2", "--g-channels", "32,16,8",
            "--d-channels", "32,16,8", "--batch-size", "8", "--epochs", "1", "--max-steps", "4",
            "--warmup", "1", "--augment", "translation,cutout", "--mapping-lr-mul", "0.1",
            "--export", str(tmp_path / "gan.pt")]  # fmt: skip
    assert main(args) == 0
    assert "Fréchet distance" in capsys.readouterr().out
    assert (tmp_path / "run" / "samples_final.png").exists()
    shipped = load_checkpoint(tmp_path / "gan.pt")
    assert all(not k.startswith(("generator", "discriminator")) for k in shipped["model"])
    assert all(v.dtype == torch.float16 for v in shipped["model"].values() if v.is_floating_point())
    test = shipped["meta"]["test"]
    assert test["n"] > 0 and np.isfinite(test["fd"]) and np.isfinite(test["fd_real"])
    assert shipped["meta"]["train_config"]["betas"] == (0.0, 0.99)
    assert shipped["config"]["augment"] == "translation,cutout"
    assert shipped["config"]["mapping_lr_mul"] == 0.1
    model = load(tmp_path / "gan.pt", device="cpu")
    from_run = load(tmp_path / "run" / "last.pt", device="cpu")  # a run's whole GAN state
    z = model.sample_latent(2, torch.Generator().manual_seed(0))
    assert model.decode(z).shape == (2, 3, 16, 16)
    assert torch.allclose(model.decode(z), from_run.decode(z), atol=2e-2)  # fp16 vs fp32
    run_state = load_checkpoint(tmp_path / "run" / "last.pt")["model"]
    raw = load(tmp_path / "run" / "last.pt", device="cpu", raw=True)  # the trained G itself
    for key, value in raw.state_dict().items():
        torch.testing.assert_close(value, run_state[f"generator.{key}"], msg=key)
    assert not torch.allclose(raw.decode(z), from_run.decode(z))  # 4 steps moved G off its average
    with pytest.raises(ValueError, match=r"gan\.pt holds one generator.*last\.pt"):
        load(tmp_path / "gan.pt", raw=True)  # an exported file has only the average
    assert main(["bench", "coverage", "--root", str(root), "--n", "40", "--raw", "--why",
                 str(tmp_path / "run" / "last.pt")]) == 0  # fmt: skip
    table = capsys.readouterr().out
    assert "last.pt (step 4)" in table and "last.pt, raw G (step 4)" in table
    assert "Eyeglasses (D gap / drawable)" in table and "share of 12 faces" in table
    assert "(seed 0) against 40 test faces" in table and "D's mean logit on test faces" in table
    assert "FD >= 15.8" in table  # 4 steps of training are far from the goal, and it says so
    # choosing among copies: other faces and other codes than the ones the choice is reported on
    assert main(["bench", "coverage", "--root", str(root), "--n", "40", "--split", "valid",
                 "--seed", "1", "--edits", str(tmp_path / "run" / "last.pt")]) == 0  # fmt: skip
    chosen_on = capsys.readouterr().out
    assert "(seed 1) against 40 valid faces" in chosen_on
    # can InterfaceGAN still edit it? The shipped generator smiles and opens its mouth along its
    # boundaries in W (+0.84 and +0.91 at 2 sigma, measured), and draws no narrow eyes to edit
    edits = chosen_on.split("editable in W?")[1]
    shipped_row = next(line for line in edits.splitlines() if "gan.pt" in line)
    assert shipped_row.rstrip(" |").endswith("| Narrow_Eyes")
    smile, narrow = (float(cell.split("/")[0]) for cell in shipped_row.split("|")[2:4])
    assert smile > 0.5 and abs(narrow) < 0.1
    assert "last.pt (step 4)" in edits  # the tiny run's row too

    def run_row(text):  # the run's row of the first table: its FD and rates
        return next(line for line in text.splitlines() if "last.pt (step 4) " in line)

    assert run_row(chosen_on) != run_row(table)  # measured on other faces and codes
    from fel.bench import bench_coverage

    with pytest.raises(ValueError, match="learnt from the training split"):
        bench_coverage(root=root, split="train")
    assert main(["bench", "coverage", "--root", str(root), "--why", str(tmp_path / "gan.pt")]) != 0
    assert "gan.pt holds a generator alone" in capsys.readouterr().err  # refused before measuring
    # fine-tuning that run with the coverage term: its weights to start from, recorded
    tune = ["train", "gan", "--root", str(root), "--out", str(tmp_path / "tuned"), "--size", "16",
            "--z-dim", "16", "--w-dim", "16", "--mapping-layers", "2", "--g-channels", "32,16,8",
            "--d-channels", "32,16,8", "--batch-size", "8", "--epochs", "1", "--max-steps", "2",
            "--warmup", "1", "--init", str(tmp_path / "run" / "last.pt"), "--imle-weight", "2",
            "--imle-every", "1"]  # fmt: skip
    assert main(tune) == 0
    tuned = load_checkpoint(tmp_path / "tuned" / "last.pt")
    assert tuned["meta"]["init"]["path"] == str(tmp_path / "run" / "last.pt")
    assert tuned["meta"]["init"]["step"] == 4 and int(tuned["model"]["step"]) == 4 + 2
    assert tuned["meta"]["init"]["train_config"]["batch_size"] == 8
    assert tuned["meta"]["init"]["init"] is None  # the run it started from was trained from scratch
    first, tuned_path = str(tmp_path / "run" / "last.pt"), str(tmp_path / "tuned" / "last.pt")
    chain = [tuned_path if a == first else a for a in tune]
    chain[chain.index("--out") + 1] = str(tmp_path / "t2")
    chain[chain.index("--max-steps") + 1] = "1"
    assert main(chain) == 0  # a fine-tune of the fine-tune records both stages
    lineage = load_checkpoint(tmp_path / "t2" / "last.pt")["meta"]["init"]
    assert (lineage["path"], lineage["step"]) == (tuned_path, 2)  # the run's own steps
    assert (lineage["init"]["path"], lineage["init"]["step"]) == (first, 4)
    capsys.readouterr()
    again = export({"model": load_checkpoint(tmp_path / "run" / "last.pt")["model"],
                    "config": shipped["config"], "meta": {}}, tmp_path / "again.pt")  # fmt: skip
    assert set(load_checkpoint(again)["model"]) == set(shipped["model"])
    # the same recipe from Python, with a plain TrainConfig: the same model, step for step
    from fel.interface_gan import train_gan

    config = GANConfig(size=16, z_dim=16, w_dim=16, mapping_layers=2, g_channels=(32, 16, 8),
                       d_channels=(32, 16, 8), augment="translation,cutout",
                       mapping_lr_mul=0.1)  # fmt: skip
    plain = TrainConfig(epochs=1, batch_size=8, lr=2e-3, warmup_steps=1)  # Adam's own betas
    result = train_gan(root, tmp_path / "python", plain, config, max_steps=4)
    assert result["meta"]["train_config"] == shipped["meta"]["train_config"]
    cli = load_checkpoint(tmp_path / "run" / "last.pt")["model"]
    for key, value in load_checkpoint(tmp_path / "python" / "last.pt")["model"].items():
        torch.testing.assert_close(value, cli[key], msg=key)


def test_eye_critic_trains_through_the_cli(tmp_path, capsys):
    from fel.__main__ import main
    from fel.checkpoints import load_checkpoint
    from fel.data.synthfaces import write_synthfaces

    root = write_synthfaces(tmp_path / "sf", n=300, seed=1, workers=1, progress=False)
    args = ["train", "gan", "--root", str(root), "--out", str(tmp_path / "run"), "--size", "32",
            "--z-dim", "16", "--w-dim", "16", "--mapping-layers", "2", "--g-channels",
            "32,16,8,8", "--d-channels", "32,16,8,8", "--batch-size", "8", "--epochs", "1",
            "--max-steps", "2", "--warmup", "1", "--eye-weight", "0.5", "--eye-channels",
            "16,8", "--match-weight", "2"]  # fmt: skip
    assert main(args) == 0
    run = load_checkpoint(tmp_path / "run" / "last.pt")
    assert run["config"]["eye_weight"] == 0.5 and tuple(run["config"]["eye_channels"]) == (16, 8)
    assert run["config"]["match_weight"] == 2.0
    matched = [h["match_loss"] for h in run["meta"]["history"] if "match_loss" in h]
    assert matched and all(v > 0 for v in matched)
    assert any(k.startswith("eye_discriminator.") for k in run["model"])
    logged = [h["eye_loss"] for h in run["meta"]["history"] if "eye_loss" in h]
    assert logged and all(v > 0 for v in logged)
    capsys.readouterr()
    assert main(["bench", "coverage", "--root", str(root), "--n", "40", "--why",
                 str(tmp_path / "run" / "last.pt")]) == 0  # fmt: skip
    assert "Narrow_Eyes (D gap / eye gap / drawable)" in capsys.readouterr().out
    assert main(args[:-6] + ["--eye-weight", "0.5", "--eye-channels", "16"]) != 0
    assert "eye critic needs" in capsys.readouterr().err


def test_oversampling_lists_each_labelled_face_k_times_and_resumes_only_alike(tmp_path, capsys):
    from collections import Counter

    from fel.__main__ import main
    from fel.checkpoints import load_checkpoint
    from fel.data import CelebA
    from fel.data.synthfaces import write_synthfaces
    from fel.interface_gan.recipe import oversampled

    root = write_synthfaces(tmp_path / "sf", n=300, seed=2, workers=1, progress=False)
    faces = CelebA(root, split="train", size=16)
    glasses = faces.labels[:, faces.attr_names.index("Eyeglasses")].numpy()
    hats = faces.labels[:, faces.attr_names.index("Wearing_Hat")].numpy()
    assert 0 < glasses.sum() < len(faces) and 0 < hats.sum() < len(faces)
    listed = Counter(oversampled(faces, {"Eyeglasses": 3, "Wearing_Hat": 2}).indices)
    for i in range(len(faces)):  # the larger count wins where a face has both
        assert listed[i] == (3 if glasses[i] else 2 if hats[i] else 1), i
    with pytest.raises(KeyError, match="did you mean 'Eyeglasses'"):
        oversampled(faces, {"Eyeglass": 3})
    with pytest.raises(ValueError, match="whole numbers >= 1"):
        oversampled(faces, {"Eyeglasses": 0})

    args = ["train", "gan", "--root", str(root), "--out", str(tmp_path / "run"), "--size", "16",
            "--z-dim", "16", "--w-dim", "16", "--mapping-layers", "2", "--g-channels", "32,16,8",
            "--d-channels", "32,16,8", "--batch-size", "8", "--epochs", "1", "--warmup", "1"]  # fmt: skip
    assert main(args + ["--max-steps", "2", "--oversample", "eyeglasses=3"]) == 0
    run = load_checkpoint(tmp_path / "run" / "last.pt")
    assert run["meta"]["oversample"] == {"Eyeglasses": 3}  # recorded by its own name
    assert run["meta"]["train_images"] == len(faces)  # the data's own count, not the stream's
    capsys.readouterr()
    assert main(args + ["--max-steps", "3", "--resume"]) != 0
    assert "trained with oversampling {'Eyeglasses': 3}" in capsys.readouterr().err
    assert main(args + ["--max-steps", "3", "--resume", "--oversample", "Eyeglasses=3"]) == 0
    assert load_checkpoint(tmp_path / "run" / "last.pt")["meta"]["step"] == 3
    with pytest.raises(SystemExit):
        main(args + ["--oversample", "Eyeglasses"])
    assert "expected ATTR=K" in capsys.readouterr().err


def test_missing_shipped_checkpoint_says_how_to_train_it(tmp_path, monkeypatch):
    monkeypatch.setattr(fel, "CHECKPOINT_DIR", tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        load_pretrained()
    assert TRAIN_COMMAND in str(err.value)


@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped GAN checkpoint yet")
def test_shipped_gan_samples_varied_faces_and_inverts_its_own():
    model = load_pretrained(device="cpu")
    with torch.no_grad():
        x = model.decode(model.sample_latent(16, torch.Generator().manual_seed(0)))
    assert x.shape == (16, 3, 64, 64) and x.std(0).mean() > 0.05
    assert np.isfinite(model.meta["test"]["fd"]) and np.isfinite(model.meta["test"]["fd_real"])
    start = (model.decode_w(model.w_avg[None]) - x[:2]).abs().mean()
    w = model.encode(x[:2], steps=100, progress=False)
    assert (model.decode_w(w) - x[:2]).abs().mean() < 0.5 * start


def test_gan_editor_edits_in_w_and_its_truncation_slider_redraws_both_pictures():
    from fel.interface_gan import gan_editor

    torch.manual_seed(14)
    g = _perturb(Generator(TINY), 0.05).eval()
    with torch.no_grad():
        g.w_avg.normal_()  # truncation pulls towards a point away from the code
    w = g.w_space().sample_latent(1, torch.Generator().manual_seed(0))
    editor = gan_editor(g, w, {"n": torch.randn(16)}, truncation=0.5, scale=1)
    assert g.truncation == 0.5
    n = editor.directions["n"]

    def picture(w_final):  # the synthesis network by hand, no truncation inside
        return png_bytes(((g.synthesis(w_final) + 1) / 2).clamp(0, 1).detach(), scale=1)

    editor.set(n=2.0)
    assert editor.image.value == picture(g.w_avg.lerp(w + 2.0 * n, 0.5))  # edit, then truncate
    assert editor.image.value != picture(g.w_avg.lerp(w, 0.5) + 2.0 * n)  # not the other order
    original, edited = editor.original.value, editor.image.value
    editor.truncation_slider.value = 1.0
    assert g.truncation == 1.0
    assert editor.original.value != original and editor.image.value != edited
    assert editor.image.value == picture(w + 2.0 * n)
    on_release = gan_editor(g, w, {"n": torch.randn(16)}, continuous=False, scale=1)
    assert not on_release.continuous and not on_release.truncation_slider.continuous_update
    with pytest.raises(ValueError, match="truncation"):
        gan_editor(g, w, {"n": torch.randn(16)}, truncation=1.5)


@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped GAN checkpoint yet")
def test_shipped_gan_smiles_along_its_smiling_boundary_in_w():
    from fel.directions import train_boundary
    from fel.interface_gan.boundaries import sample_and_score

    model, clf = load_pretrained(device="cpu"), load_classifier(device="cpu")
    smile = clf.attr_names.index("Smiling")
    data = sample_and_score(model, clf, n=3000, psi=0.7, seed=0, progress=False)
    normal, report = train_boundary(data["w"], data["scores"][:, smile], chosen_ratio=0.05)
    assert report["val_accuracy"] > 0.85
    sigma = float((data["w"] @ normal).std())
    w = model.w_space().sample_latent(128, torch.Generator().manual_seed(7))  # not fitted on
    with torch.no_grad():
        before = clf.predict(model.decode_w(w, psi=0.7))[:, smile]
        after = clf.predict(model.decode_w(w + 3 * sigma * normal, psi=0.7))[:, smile]
    assert (after - before).mean() > 0.2


class _BrightnessPredictor:
    """Predicts "Bangs" when a face's mean is above 0.5 and "Smiling" when below: rates a test
    can count by hand."""

    attr_names = ["Bangs", "Smiling"]

    def predict(self, images):
        m = images.float().mean((1, 2, 3))
        return torch.stack([(m > 0.5).float() * 0.9, (m < 0.5).float() * 0.9], 1)


def test_coverage_counts_what_the_generator_draws_against_the_data():
    from fel.interface_gan.recipe import coverage

    g = Generator(TINY).eval()
    z = g.sample_latent(40, generator=torch.Generator().manual_seed(0))  # coverage's own draw
    with torch.no_grad():
        drawn = g.decode(z, psi=1.0).mean((1, 2, 3)) > 0.5
    real = torch.zeros(40, 3, 16, 16, dtype=torch.uint8)
    real[:10] = 200  # a quarter of the real faces are bright
    rates = coverage(g, real, _BrightnessPredictor(), attributes=("Bangs", "Smiling"), n=40)
    assert rates["Bangs"]["generated"] == pytest.approx(float(drawn.float().mean()))
    assert rates["Bangs"]["data"] == 0.25 and rates["Smiling"]["data"] == 0.75
    assert rates["Bangs"]["ratio"] == pytest.approx(rates["Bangs"]["generated"] / 0.25)
    with pytest.raises(KeyError, match="Smilling"):
        coverage(g, real, _BrightnessPredictor(), attributes=("Smilling",), n=40)


class _PatchPredictor:
    """Predicts "Eyeglasses" when a face has a pure green 4x4 patch in its corner (which no
    generator here can draw) and "Smiling" when it has none."""

    attr_names = ["Eyeglasses", "Smiling"]

    def predict(self, images):
        corner = images[:, :, :4, :4].float().mean((2, 3))
        patch = (corner[:, 1] > 0.9) & (corner[:, 0] < 0.1) & (corner[:, 2] < 0.1)
        return torch.stack([0.05 + 0.9 * patch.float(), 0.95 - 0.9 * patch.float()], 1)


class _MeanCritic(nn.Module):
    def forward(self, x):
        return 10 * x.mean((1, 2, 3))


def test_why_dropped_asks_the_critic_and_the_inversion():
    from fel.interface_gan.recipe import why_dropped

    torch.manual_seed(11)
    gan = _perturb(GAN(TINY), 0.05).eval()
    gan.discriminator = _MeanCritic()
    with torch.no_grad():
        real = gan.generator_ema.decode(torch.randn(8, 16), psi=1.0)  # all drawable...
    real[:3, :, :4, :4] = torch.tensor([0.0, 1.0, 0.0])[:, None, None]  # ...but the patch
    found = why_dropped(gan, real, _PatchPredictor(), attributes=("Eyeglasses", "Smiling"),
                        steps=200)  # fmt: skip
    logit = 10 * (real * 2 - 1).mean((1, 2, 3))
    assert found["Eyeglasses"]["with"] == 3 and found["Smiling"]["with"] == 5
    assert found["Eyeglasses"]["d_gap"] == pytest.approx(float(logit[:3].mean() - logit[3:].mean()))
    assert found["Smiling"]["d_gap"] == pytest.approx(float(logit[3:].mean() - logit[:3].mean()))
    assert found["Eyeglasses"]["drawable"] == 0.0 and found["Smiling"]["drawable"] == 1.0
    assert math.isnan(found["Eyeglasses"]["eye_gap"])  # no eye critic
    gan.eye_discriminator = _MeanCritic()  # sees the eyes' 4 x 4 patches at 16 px, sliced by hand
    x = real * 2 - 1
    eyes = 10 * (x[:, :, 6:10, 4:8].mean((1, 2, 3)) + x[:, :, 6:10, 8:12].mean((1, 2, 3))) / 2
    found = why_dropped(gan, real, _PatchPredictor(), attributes=("Eyeglasses",), steps=1)
    assert found["Eyeglasses"]["eye_gap"] == pytest.approx(float(eyes[:3].mean() - eyes[3:].mean()))
    none = why_dropped(gan, real[3:], _PatchPredictor(), attributes=("Eyeglasses",), steps=1)
    assert math.isnan(none["Eyeglasses"]["d_gap"]) and math.isnan(none["Eyeglasses"]["drawable"])
