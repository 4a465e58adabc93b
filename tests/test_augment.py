"""DiffAugment (fel.interface_gan.augment): each transform checked against what it must do to a
hand-made image, and the GAN objective with augmentation."""

import pytest
import torch

from fel.interface_gan import GAN, GANConfig
from fel.interface_gan.augment import augment, color, cutout, parse_policy, translation

TINY = GANConfig(size=16, z_dim=16, w_dim=16, mapping_layers=2, g_channels=(16, 8, 8),
                 d_channels=(8, 8, 16))  # fmt: skip


def _dot_images(b: int = 64, size: int = 16) -> torch.Tensor:
    """[b, 3, size, size]: zeros with one pixel of value 1 + channel at the centre."""
    x = torch.zeros(b, 3, size, size)
    x[:, :, size // 2, size // 2] = torch.tensor([1.0, 2.0, 3.0])[:, None].T
    return x


def _one_factor(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The factor k [B] with b = k a per image (least squares), checked to fit every pixel."""
    k = (a * b).flatten(1).sum(1) / a.square().flatten(1).sum(1)
    assert (b - k.view(-1, *[1] * (a.dim() - 1)) * a).abs().max() < 1e-5
    return k


def test_policy_names_are_checked():
    assert parse_policy("") == ()
    assert parse_policy(" color , cutout") == ("color", "cutout")
    with pytest.raises(ValueError, match="'colour'.*color, translation, cutout"):
        parse_policy("colour,cutout")
    with pytest.raises(ValueError, match="unknown augmentation"):
        GANConfig(augment="flip")


def test_no_policy_is_the_identity():
    x = torch.randn(4, 3, 8, 8)
    assert augment(x, "") is x


def test_translation_moves_each_image_by_at_most_an_eighth_and_keeps_its_pixels():
    torch.manual_seed(0)
    x = _dot_images()
    y = translation(x)
    shifts = set()
    for image in y:
        (c, r, q) = image.nonzero(as_tuple=True)  # the dot, now somewhere else
        assert torch.equal(c, torch.tensor([0, 1, 2]))
        assert torch.equal(image[:, r[0], q[0]], torch.tensor([1.0, 2.0, 3.0]))
        dy, dx = int(r[0]) - 8, int(q[0]) - 8
        assert abs(dy) <= 2 and abs(dx) <= 2
        shifts.add((dy, dx))
    assert len(shifts) > 10  # each image has its own draw
    # a uniform image: the pixels shifted in from outside are zero, a band at most 2 wide
    ones = translation(torch.ones(64, 1, 16, 16))
    assert set(ones.unique().tolist()) <= {0.0, 1.0}
    assert (ones[:, 0, 2:-2, 2:-2] == 1).all()


def test_cutout_zeroes_one_square_of_half_the_size_per_image_clipped_at_the_border():
    torch.manual_seed(0)
    y = cutout(torch.ones(200, 3, 16, 16))
    holes = y[:, 0] == 0
    assert torch.equal(holes, (y == 0).all(1))  # the same hole in every channel
    rows, cols = holes.any(2), holes.any(1)
    for hole, r, c in zip(holes, rows, cols):
        assert int(hole.sum()) == int(r.sum()) * int(c.sum())  # a rectangle ...
        assert 4 <= r.sum() <= 8 and 4 <= c.sum() <= 8  # ... of 8x8 cut by the border
    # the centre is uniform over 17 x 17 places, 9 x 9 of which keep the square inside
    inside = (holes.sum((1, 2)) == 64).float().mean()
    assert abs(inside - (9 / 17) ** 2) < 0.08
    assert holes.any(0).all()  # every pixel can be cut


def test_color_draws_a_brightness_saturation_and_contrast_per_image():
    torch.manual_seed(0)
    x = torch.rand(500, 3, 4, 4) * 2 - 1
    y = color(x)
    grey_x, grey_y = x.mean(1), y.mean(1)  # [B, H, W]
    # brightness: the image mean moves by U(-0.5, 0.5) (saturation and contrast keep it)
    brightness = y.mean((1, 2, 3)) - x.mean((1, 2, 3))
    assert -0.5 <= brightness.min() < -0.45 and 0.45 < brightness.max() <= 0.5
    # contrast: the grey picture is stretched about its mean by one factor U(0.5, 1.5)
    contrast = _one_factor(grey_x - grey_x.mean((1, 2), keepdim=True),
                           grey_y - grey_y.mean((1, 2), keepdim=True))  # fmt: skip
    assert 0.5 <= contrast.min() < 0.55 and 1.45 < contrast.max() <= 1.5
    # saturation: each pixel's colour about its grey is scaled by U(0, 2), then by the contrast
    saturation = _one_factor(x - grey_x[:, None], y - grey_y[:, None]) / contrast
    assert 0 <= saturation.min() < 0.05 and 1.95 < saturation.max() <= 2


def test_augmented_gan_objective_reaches_both_networks_through_the_transforms():
    torch.manual_seed(0)
    gan = GAN(TINY, augment="color,translation,cutout", r1_gamma=1.0)
    real = torch.rand(8, 3, 16, 16)
    z = torch.randn(8, 16)
    out = gan(real, z)
    assert torch.isfinite(out["loss"]) and out["r1_loss"] > 0
    out["loss"].backward()
    for net in (gan.generator, gan.discriminator):
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    # the transforms are random: the same batch scores differently from draw to draw
    torch.manual_seed(1)
    again = gan(real, z)
    assert not torch.isclose(again["real_logit"], out["real_logit"])
    plain = GAN(TINY)
    plain.load_state_dict(gan.state_dict())
    torch.manual_seed(1)
    assert torch.equal(plain(real, z)["real_logit"], plain(real, z)["real_logit"])
