"""Latent directions against independent oracles: numpy means, sklearn AUC, geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fel.directions import (
    balanced_mean_difference,
    lerp,
    mean_difference,
    orthogonalize,
    projection_auc,
    slerp,
    unit,
)


def _world(n=4000, seed=0):
    """Codes where dimension 0 carries 'smile' and dimension 1 'male'; smiling is more common
    among women, so a plain mean difference picks up a piece of the male axis."""
    rng = np.random.default_rng(seed)
    male = rng.random(n) < 0.5
    smile = rng.random(n) < np.where(male, 0.25, 0.75)
    codes = rng.normal(size=(n, 6)).astype(np.float32)
    codes[:, 0] += 2.0 * smile
    codes[:, 1] += 2.0 * male
    return codes, smile.astype(int), male.astype(int)


def test_mean_difference_matches_numpy():
    codes, smile, _ = _world()
    expected = codes[smile == 1].mean(0) - codes[smile == 0].mean(0)
    assert np.allclose(mean_difference(codes, smile).numpy(), expected, atol=1e-5)


def test_balancing_removes_the_confounder():
    codes, smile, male = _world()
    raw = unit(mean_difference(codes, smile))
    balanced = unit(balanced_mean_difference(codes, smile, male))
    assert raw[1] < -0.3  # the raw smile vector also points towards "female"
    assert abs(balanced[1]) < 0.06 and balanced[0] > 0.99


def test_projection_auc_against_sklearn_and_chance():
    from sklearn.metrics import roc_auc_score

    codes, smile, _ = _world()
    d = mean_difference(codes[:2000], smile[:2000])
    auc = projection_auc(d, codes[2000:], smile[2000:])
    assert auc == pytest.approx(
        roc_auc_score(smile[2000:], codes[2000:] @ (d / d.norm()).numpy()), abs=1e-9
    )
    assert auc > 0.9
    assert projection_auc(torch.tensor([0, 0, 0, 0, 0, 1.0]), codes, smile) == pytest.approx(
        0.5, abs=0.04
    )


def test_orthogonalize_keeps_projections_onto_the_others():
    g = torch.Generator().manual_seed(0)
    d, a, b = (torch.randn(16, generator=g) for _ in range(3))
    o = orthogonalize(d, [a, b, a + b])  # a dependent vector is harmless
    assert abs(o @ a) < 1e-5 and abs(o @ b) < 1e-5
    z = torch.randn(16, generator=g)
    moved = z + 3.0 * o
    assert torch.allclose(moved @ a, z @ a, atol=1e-4) and torch.allclose(
        moved @ b, z @ b, atol=1e-4
    )
    assert torch.allclose(orthogonalize(d, []), d)


def test_lerp_and_slerp():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    assert torch.allclose(lerp(a, b, 0.5), torch.tensor([0.5, 1.0]))
    assert torch.allclose(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, b, 1.0), b)
    mid = slerp(torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0]), 0.5)
    assert torch.allclose(mid.norm(), torch.tensor(3.0)) and torch.allclose(mid[0], mid[1])
    assert torch.allclose(slerp(a, 2 * a, 0.5), lerp(a, 2 * a, 0.5))  # parallel: falls back to lerp
    batch = slerp(torch.randn(5, 8), torch.randn(5, 8), 0.3)
    assert batch.shape == (5, 8)


def test_bad_inputs_are_refused_with_reasons():
    codes, smile, _ = _world(50)
    with pytest.raises(ValueError, match="single class"):
        mean_difference(codes, np.ones(50))
    with pytest.raises(ValueError, match="0 or 1"):
        mean_difference(codes, smile * 2)
    with pytest.raises(ValueError, match="50 codes but 49 labels"):
        mean_difference(codes, smile[:49])
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        mean_difference(codes[0], smile)
