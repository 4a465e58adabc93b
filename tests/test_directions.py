"""Latent directions against independent oracles: numpy means, sklearn AUC, geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fel.directions import (
    balanced_mean_difference,
    edit_to_distance,
    lerp,
    linear_interpolate,
    mean_difference,
    orthogonalize,
    pca_directions,
    project_boundary,
    projection_auc,
    sefa_directions,
    slerp,
    spread,
    train_boundary,
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


def test_projection_auc_is_nan_on_one_class_and_refuses_bad_labels():
    codes, smile, _ = _world()
    d = mean_difference(codes[:2000], smile[:2000])
    assert math.isnan(projection_auc(d, codes[:50], np.zeros(50)))
    assert math.isnan(projection_auc(d, codes[:50], np.ones(50)))
    with pytest.raises(ValueError, match="0 or 1"):
        projection_auc(d, codes[:50], np.full(50, 2.0))
    with pytest.raises(ValueError, match="labels"):
        projection_auc(d, codes[:50], np.zeros(40))


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


def _planted(n=20000, d=512, noise=0.3, seed=0):
    """Gaussian codes whose score is their projection on a hidden unit direction, plus noise."""
    rng = np.random.default_rng(seed)
    planted = rng.normal(size=d)
    planted /= np.linalg.norm(planted)
    codes = rng.normal(size=(n, d)).astype(np.float32)
    return codes, codes @ planted + noise * rng.normal(size=n), planted


@pytest.mark.parametrize(("solver", "cosine"), [(None, 0.999999), ("linear_svc", 0.98)])
def test_train_boundary_matches_a_plain_linear_svm(solver, cosine):
    """The default is InterfaceGAN's own SVC(kernel="linear"); liblinear only comes close."""
    from sklearn.svm import SVC

    codes, scores, _ = _planted()
    kwargs = {"solver": solver} if solver else {}
    normal, report = train_boundary(codes, scores, split_ratio=1.0, **kwargs)
    order = np.argsort(scores)
    chosen = np.r_[order[-400:], order[:400]]  # top and bottom 2 % of 20,000
    w = SVC(kernel="linear").fit(codes[chosen], np.r_[np.ones(400), np.zeros(400)]).coef_[0]
    assert normal.shape == (512,) and normal.dtype == torch.float32
    assert float(normal.norm()) == pytest.approx(1.0, abs=1e-6)
    assert float(normal.double() @ torch.from_numpy(w / np.linalg.norm(w))) >= cosine
    assert report["n_train"] == 800 and report["n_val"] == 0 and report["val_accuracy"] is None
    assert report["solver"] == (solver or "svc") and report["converged"]


def test_train_boundary_recovers_a_planted_direction_towards_higher_scores():
    codes, scores, planted = _planted()
    normal, report = train_boundary(codes, scores)
    assert float(normal.double() @ torch.from_numpy(planted)) > 0.9
    assert report["n_train"] == 2 * 280 and report["n_val"] == 2 * 120
    assert report["n_remaining"] == 20000 - 800 and report["converged"]
    assert report["val_accuracy"] > 0.95 and report["remaining_accuracy"] > 0.8
    flipped, _ = train_boundary(codes, -scores)
    assert float(flipped.double() @ torch.from_numpy(planted)) < -0.9


def test_train_boundary_accepts_column_scores_and_tensors():
    codes, scores, _ = _planted(n=5000, d=64)
    normal, report = train_boundary(codes, scores, seed=3)
    column, _ = train_boundary(codes, scores[:, None], seed=3)
    tensors, again = train_boundary(torch.from_numpy(codes), torch.from_numpy(scores), seed=3)
    assert torch.equal(normal, column) and torch.allclose(normal, tensors, atol=1e-6)
    assert again == report


def test_train_boundary_refuses_bad_inputs():
    codes, scores, _ = _planted(n=200, d=8)
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        train_boundary(codes[0], scores)
    with pytest.raises(ValueError, match=r"\[N\] or \[N, 1\] with N = 200"):
        train_boundary(codes, scores[:150])
    with pytest.raises(ValueError, match=r"\[N\] or \[N, 1\]"):
        train_boundary(codes, np.stack([scores, scores], 1))
    with pytest.raises(ValueError, match="too few codes: 50"):
        train_boundary(codes[:50], scores[:50])  # 1 per class, 0 left to train on
    for ratio in (0.0, 0.6):
        with pytest.raises(ValueError, match="chosen_ratio"):
            train_boundary(codes, scores, chosen_ratio=ratio)
    with pytest.raises(ValueError, match="split_ratio"):
        train_boundary(codes, scores, split_ratio=0.0)
    with pytest.raises(ValueError, match="share scores"):
        train_boundary(codes, np.ones(200), chosen_ratio=0.1)
    with pytest.raises(ValueError, match="finite"):
        train_boundary(codes, np.where(np.arange(200) == 7, np.nan, scores))
    with pytest.raises(ValueError, match="solver"):
        train_boundary(codes, scores, solver="sgd")


@pytest.mark.parametrize("k", [1, 2, 5])
def test_project_boundary_against_least_squares(k):
    rng = np.random.default_rng(k)
    primal = rng.normal(size=(1, 512)).astype(np.float32)
    conditions = [rng.normal(size=(1, 512)) * rng.uniform(0.5, 2) for _ in range(k)]
    conditions[0] = torch.from_numpy(conditions[0][0])  # [D] torch and [1, D] numpy mix
    result = project_boundary(primal, *conditions).double().numpy()
    c = np.vstack([np.asarray(x, dtype=np.float64).reshape(1, -1) for x in conditions])
    p = primal[0].astype(np.float64)
    coef = np.linalg.lstsq(c.T, p, rcond=None)[0]
    oracle = (p - c.T @ coef) / np.linalg.norm(p - c.T @ coef)
    assert result.shape == (512,)
    assert abs(np.linalg.norm(result) - 1) < 1e-6
    assert np.abs(c @ result / np.linalg.norm(c, axis=1)).max() < 1e-6
    assert np.abs(result - oracle).max() < 1e-6
    assert result @ p > 0


def test_project_boundary_edge_cases():
    rng = np.random.default_rng(0)
    p, a, b = rng.normal(size=(3, 16))
    assert torch.allclose(project_boundary(p), unit(torch.from_numpy(p)), atol=1e-6)
    both = project_boundary(p, a, b, a + b)  # a dependent condition is harmless
    assert torch.allclose(both, project_boundary(p, a, b), atol=1e-6)
    with pytest.raises(ValueError, match="span of the conditions"):
        project_boundary(2 * a - b, a, b)
    with pytest.raises(ValueError, match="condition 0 has 15 dimensions"):
        project_boundary(p, a[:15])
    with pytest.raises(ValueError, match=r"primal must be \[D\] or \[1, D\]"):
        project_boundary(np.ones((2, 16)), a)


def test_edit_to_distance_lands_at_the_distance():
    g = torch.Generator().manual_seed(0)
    z, n = torch.randn(6, 512, generator=g), 3 * torch.randn(512, generator=g)
    u = n / n.norm()
    for d in (2.5, torch.linspace(-3, 3, 6)):
        moved = edit_to_distance(z, n[None], d)
        assert moved.shape == z.shape
        assert torch.allclose(moved @ u, torch.as_tensor(d).expand(6), atol=1e-5)
        # the part orthogonal to the normal is untouched
        assert torch.allclose(moved - (moved @ u)[:, None] * u, z - (z @ u)[:, None] * u, atol=1e-5)
    one = edit_to_distance(z[0].numpy(), n.numpy(), -1.0)
    assert one.shape == (512,) and float(one @ u) == pytest.approx(-1.0, abs=1e-5)
    with pytest.raises(ValueError, match="distance must be a scalar or"):
        edit_to_distance(z, n, torch.zeros(5))
    with pytest.raises(ValueError, match=r"z must be \[B, 512\]"):
        edit_to_distance(z[:, :10], n, 0.0)


def test_linear_interpolate_as_in_the_release():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(1, 512)).astype(np.float32)
    n = rng.normal(size=(1, 512))
    n /= np.linalg.norm(n)
    codes = linear_interpolate(z, n)
    # InterfaceGAN's formula, in numpy: z + (linspace(-3, 3, 10) - z . n) n
    expected = z + (np.linspace(-3.0, 3.0, 10) - z @ n.T).reshape(-1, 1) * n
    assert codes.shape == (10, 512)
    assert np.allclose(codes.numpy(), expected, atol=1e-5)
    assert linear_interpolate(z[0], n, start=0.0, end=1.0, steps=3).shape == (3, 512)
    with pytest.raises(ValueError, match="one code"):
        linear_interpolate(np.zeros((2, 512)), n)


def test_pca_directions_against_numpy_svd_and_sklearn():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    codes = (
        rng.normal(size=(3000, 12))
        * np.linspace(3, 0.5, 12)
        @ np.linalg.qr(rng.normal(size=(12, 12)))[0]
    )
    directions, ratio = pca_directions(codes, 4)
    assert directions.shape == (4, 12) and ratio.shape == (4,)
    assert torch.allclose(directions.norm(dim=1), torch.ones(4), atol=1e-6)
    _, s, vt = np.linalg.svd(codes - codes.mean(0), full_matrices=False)
    assert np.allclose(np.abs(np.sum(directions.numpy() * vt[:4], axis=1)), 1, atol=1e-5)
    assert np.allclose(ratio.numpy(), (s**2 / (s**2).sum())[:4], atol=1e-6)
    pca = PCA(4).fit(codes)
    assert np.allclose(np.abs(directions.numpy() @ pca.components_.T), np.eye(4), atol=1e-5)
    assert np.allclose(ratio.numpy(), pca.explained_variance_ratio_, atol=1e-6)
    assert bool((directions.gather(1, directions.abs().argmax(1, keepdim=True)) > 0).all())
    with pytest.raises(ValueError, match="k must lie in 1..12"):
        pca_directions(codes, 13)


def test_sefa_directions_against_numpy_eigh():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(64, 32))
    directions, values = sefa_directions(torch.from_numpy(weight), 5)
    eigenvalues, eigenvectors = np.linalg.eigh(weight.T @ weight)
    assert directions.shape == (5, 32) and values.shape == (5,)
    assert np.allclose(values.numpy(), eigenvalues[::-1][:5], rtol=1e-6)
    top = eigenvectors[:, ::-1][:, :5].T
    assert np.allclose(np.abs(np.sum(directions.numpy() * top, axis=1)), 1, atol=1e-5)
    # the first direction is the one the layer stretches most: |W n|^2 = largest eigenvalue
    assert np.linalg.norm(weight @ directions[0].double().numpy()) ** 2 == pytest.approx(
        eigenvalues[-1], rel=1e-6
    )
    conv = rng.normal(size=(8, 32, 4, 4))  # [out, in, kh, kw] acting on a 1x1 input
    as_matrix = conv.transpose(0, 2, 3, 1).reshape(-1, 32)
    d_conv, v_conv = sefa_directions(conv, 3)
    d_mat, v_mat = sefa_directions(as_matrix, 3)
    assert torch.allclose(d_conv, d_mat, atol=1e-5) and torch.allclose(v_conv, v_mat, rtol=1e-5)
    with pytest.raises(ValueError, match="k must lie in 1..32"):
        sefa_directions(weight, 33)


def test_train_boundary_warns_when_liblinear_stops_early(monkeypatch):
    import fel.directions

    monkeypatch.setattr(fel.directions, "LINEAR_SVC_MAX_ITER", 2)
    codes, scores, planted = _planted(n=5000, d=64, noise=3.0)
    with pytest.warns(UserWarning, match="LinearSVC stopped after 2 iterations.*solver='svc'"):
        normal, report = train_boundary(codes, scores, solver="linear_svc")
    assert not report["converged"] and float(normal.norm()) == pytest.approx(1.0, abs=1e-6)


def test_spread_is_the_standard_deviation_along_the_unit_direction():
    rng = np.random.default_rng(0)
    codes = torch.from_numpy(rng.normal(size=(5000, 3)) * [2.0, 0.5, 1.0]).float()
    assert spread(codes, torch.tensor([10.0, 0.0, 0.0])) == pytest.approx(2.0, rel=0.05)
    d = torch.tensor([0.0, 3.0, 4.0])  # unit (0, 0.6, 0.8): sqrt(0.36 * 0.25 + 0.64 * 1)
    assert spread(codes, d) == pytest.approx(float(torch.std(codes @ (d / 5))), rel=1e-5)
    with pytest.raises(ValueError, match="dimensions"):
        spread(codes, torch.ones(2))
    with pytest.raises(ValueError, match="N >= 2"):
        spread(codes[:1], d)
