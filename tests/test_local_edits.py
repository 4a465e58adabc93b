"""Local edits (LowRankGAN's null-space projection) against independent oracles: a linear decoder
whose outside pixels depend on a known subspace, and reverse-mode Jacobians for the Gram."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fel.edit import FamilyDirections
from fel.local_edits import energy, null_space_projection, outside_mask, pixel_gram
from fel.metrics import INNER_FACE, region_mask

SIZE, DIM, HIDDEN_RANK = 8, 12, 3


class LinearDecoder(nn.Module):
    """x = A z + b as [B, 3, SIZE, SIZE]; the pixels outside the inner face read only the first
    HIDDEN_RANK columns of a random rotation Q, so A_out = B Q_k^T has rank HIDDEN_RANK."""

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.q = torch.linalg.qr(torch.randn(DIM, DIM, generator=g, dtype=torch.float64))[0]
        weight = torch.randn(3, SIZE, SIZE, DIM, generator=g, dtype=torch.float64)
        outside = outside_mask(SIZE)
        k = self.q[:, :HIDDEN_RANK]
        weight[:, outside] = weight[:, outside] @ k @ k.T  # only the span of Q_k reaches outside
        self.weight = nn.Parameter(weight.float())
        self.bias = nn.Parameter(torch.randn(3, SIZE, SIZE, generator=g))

    def decode(self, z):
        return torch.einsum("chwd,bd->bchw", self.weight, z) + self.bias


class TanhDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(DIM, 32), nn.Tanh(), nn.Linear(32, 3 * SIZE * SIZE))

    def decode(self, z):
        return torch.sigmoid(self.net(z)).view(-1, 3, SIZE, SIZE)


def test_outside_mask_is_the_complement_of_the_inner_face():
    mask = outside_mask(64)
    assert mask.dtype == torch.bool and mask.shape == (64, 64)
    assert torch.equal(mask, ~region_mask(64, INNER_FACE))
    assert mask[0, 0] and mask[63, 32] and not mask[40, 32]  # corner and chin kept, mouth edited


def test_gram_of_a_linear_decoder_is_its_outside_rows_squared():
    model = LinearDecoder()
    keep = outside_mask(SIZE)
    codes = torch.randn(5, DIM)
    gram = pixel_gram(model, codes, keep, progress=False)
    rows = model.weight.detach().double()[:, keep].reshape(-1, DIM)
    assert gram.dtype == torch.float64 and gram.shape == (DIM, DIM)
    torch.testing.assert_close(gram, rows.T @ rows, rtol=1e-5, atol=1e-5)
    assert torch.linalg.matrix_rank(gram, rtol=1e-6) == HIDDEN_RANK
    assert energy(gram, HIDDEN_RANK) == pytest.approx(1.0, abs=1e-6)
    assert energy(gram, 0) == 0.0


def test_projected_edit_leaves_the_outside_still_and_moves_the_inside():
    model = LinearDecoder()
    keep = outside_mask(SIZE)
    gram = pixel_gram(model, torch.randn(3, DIM), keep, progress=False)
    direction = torch.randn(DIM)
    local = null_space_projection(direction, gram, HIDDEN_RANK)
    z = torch.randn(4, DIM)
    with torch.no_grad():
        before = model.decode(z)
        raw_change = (model.decode(z + 3 * direction) - before).abs()
        local_change = (model.decode(z + 3 * local) - before).abs()
    assert raw_change[:, :, keep].max() > 0.5  # the raw edit reaches the hair
    assert local_change[:, :, keep].max() < 1e-4  # the projected one does not
    assert local_change[:, :, ~keep].mean() > 0.3 * raw_change[:, :, ~keep].mean()
    # the projection is the one onto the complement of span(Q_k), computed independently
    k = model.q[:, :HIDDEN_RANK]
    expected = direction.double() - k @ (k.T @ direction.double())
    torch.testing.assert_close(local.double(), expected, rtol=1e-4, atol=1e-5)
    assert torch.equal(null_space_projection(direction, gram, 0), direction)


def test_gram_of_a_nonlinear_decoder_matches_reverse_mode_jacobians():
    model = TanhDecoder()
    keep = torch.rand(SIZE, SIZE, generator=torch.Generator().manual_seed(1)) > 0.5
    codes = torch.randn(4, DIM)
    expected = torch.zeros(DIM, DIM, dtype=torch.float64)
    for code in codes:
        jac = torch.autograd.functional.jacobian(lambda z: model.decode(z[None])[0], code)
        rows = jac[:, keep].reshape(-1, DIM).double()
        expected += rows.T @ rows
    got = pixel_gram(model, codes, keep, progress=False)
    torch.testing.assert_close(got, expected / len(codes), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(
    "codes, keep, match",
    [
        (torch.randn(DIM), outside_mask(SIZE), "codes must be"),
        (torch.randn(0, DIM), outside_mask(SIZE), "codes must be"),
        (torch.randn(2, DIM), outside_mask(16), "the mask is"),
    ],
)
def test_pixel_gram_rejects_broken_inputs(codes, keep, match):
    with pytest.raises(ValueError, match=match):
        pixel_gram(TanhDecoder(), codes, keep, progress=False)


def test_null_space_projection_rejects_broken_inputs():
    gram = pixel_gram(LinearDecoder(), torch.randn(2, DIM), outside_mask(SIZE), progress=False)
    with pytest.raises(ValueError, match="needs 13x13"):
        null_space_projection(torch.randn(DIM + 1), gram, 2)
    for rank in (-1, DIM):
        with pytest.raises(ValueError, match="rank must be"):
            null_space_projection(torch.randn(DIM), gram, rank)
    inside_span = LinearDecoder().q[:, 0].float()  # wholly in the top eigenvectors
    with pytest.raises(ValueError, match="nothing of it is left"):
        null_space_projection(inside_span, gram, HIDDEN_RANK)


def test_family_directions_local_keeps_every_direction_out_of_the_outside():
    model = LinearDecoder()
    keep = outside_mask(SIZE)
    codes = torch.randn(40, DIM)
    found = FamilyDirections(model, codes, {"smile": torch.randn(DIM), "mouth": torch.randn(DIM)})
    local = found.local(HIDDEN_RANK, n_codes=4, progress=False)
    assert local.codes is codes and set(local.directions) == {"smile", "mouth"}
    z = codes[:3]
    with torch.no_grad():
        for step in local.steps().values():
            change = (model.decode(z + 3 * step) - model.decode(z)).abs()
            assert change[:, :, keep].max() < 1e-4 < change[:, :, ~keep].max()
    for rank in (0, DIM):
        with pytest.raises(ValueError, match="local rank must be in"):
            found.local(rank, progress=False)
