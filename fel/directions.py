"""Directions in latent space: attribute vectors, SVM boundaries, conditional projection, PCA and
SeFa directions, edits and interpolation.

Plain functions over tensors (numpy arrays are accepted too), with no hidden state, in the manner of
InterfaceGAN's ``utils/manipulator.py``. Shapes: codes [N, D], labels [N] in {0, 1}, scores [N],
directions [D].
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor


def _as_tensor(x, dtype=torch.float32) -> Tensor:
    return (x.detach() if torch.is_tensor(x) else torch.as_tensor(np.asarray(x))).to(dtype)


def _float64(x) -> Tensor:
    """``x`` as a float64 CPU tensor: the exact arithmetic here is small, and not every accelerator
    has float64."""
    return (x.detach().cpu() if torch.is_tensor(x) else torch.as_tensor(np.asarray(x))).double()


def _device(x) -> torch.device:
    return x.device if torch.is_tensor(x) else torch.device("cpu")


def _vector(x, name: str) -> Tensor:
    """One direction given as [D] or [1, D] -> float64 CPU [D]."""
    v = _float64(x)
    if v.dim() == 2 and v.shape[0] == 1:
        v = v[0]
    if v.dim() != 1:
        raise ValueError(f"{name} must be [D] or [1, D], got shape {tuple(v.shape)}")
    return v


def _check(codes: Tensor, labels: Tensor, one_class: bool = False) -> tuple[Tensor, Tensor]:
    codes, labels = _as_tensor(codes), _as_tensor(labels).flatten()
    if codes.dim() != 2:
        raise ValueError(f"codes must be [N, D], got shape {tuple(codes.shape)}")
    if labels.shape[0] != codes.shape[0]:
        raise ValueError(f"{codes.shape[0]} codes but {labels.shape[0]} labels")
    if not torch.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0 or 1")
    if labels.min() == labels.max() and not one_class:
        raise ValueError(
            "labels hold a single class: a direction needs examples with and without the attribute"
        )
    return codes, labels.bool()


def unit(v: Tensor) -> Tensor:
    """``v`` scaled to unit length (along the last dimension)."""
    v = _as_tensor(v)
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def spread(codes, direction) -> float:
    """Standard deviation of ``codes`` [N, D] along the unit ``direction`` [D]: the unit in which
    fel's sliders and edit benchmarks measure an edit ("2 sigma" is twice the natural spread of
    the faces along that direction, whatever the latent space's scale)."""
    codes = _as_tensor(codes)
    if codes.dim() != 2 or len(codes) < 2:
        raise ValueError(f"codes must be [N, D] with N >= 2, got shape {tuple(codes.shape)}")
    d = _vector(direction, "direction").float().to(codes.device)
    if d.shape[0] != codes.shape[1]:
        raise ValueError(f"direction has {d.shape[0]} dimensions, the codes {codes.shape[1]}")
    return float((codes @ unit(d)).std())


def sigma_step(direction, codes) -> Tensor:
    """One sigma step [D] along ``direction`` [D]: the unit direction times the spread of
    ``codes`` [N, D] along it (:func:`spread`), the step a slider's "+1" makes."""
    d = unit(_vector(direction, "direction").float())
    return d * spread(codes, d)


def mean_difference(codes, labels) -> Tensor:
    """Attribute vector: mean code of faces with the attribute minus mean code of those without.

    Returns:
        direction [D] (not normalised: its length is the average distance between the groups).
    """
    codes, labels = _check(codes, labels)
    return codes[labels].mean(0) - codes[~labels].mean(0)


def balanced_mean_difference(codes, labels, confounder) -> Tensor:
    """Mean difference computed within each value of a correlated attribute, then averaged.

    If smiling faces are more often female, the plain difference also points towards "female".
    Comparing smiling and non-smiling faces *of the same gender* and averaging the two
    differences (weighted by group size) cancels that part.

    Args:
        codes: [N, D]; labels: [N] in {0, 1}; confounder: [N] in {0, 1} (e.g. Male).
    """
    codes, labels = _check(codes, labels)
    confounder = _as_tensor(confounder).flatten().bool()
    parts, weights = [], []
    for value in (False, True):
        group = confounder == value
        pos, neg = group & labels, group & ~labels
        if pos.any() and neg.any():
            parts.append(codes[pos].mean(0) - codes[neg].mean(0))
            weights.append(float(group.sum()))
    if not parts:
        raise ValueError("no confounder group has both classes of the attribute")
    w = torch.tensor(weights, device=parts[0].device) / sum(weights)
    return (torch.stack(parts) * w[:, None]).sum(0)


def projection_auc(direction, codes, labels) -> float:
    """ROC AUC of ``codes @ direction`` as a score for the attribute (held-out codes, please).

    1.0: the direction separates the classes perfectly; 0.5: it knows nothing about them.
    NaN when ``labels`` hold a single class (a small held-out split without, say, one face
    wearing eyeglasses): the AUC is undefined there, and a table of several shows ``nan``.
    """
    from sklearn.metrics import roc_auc_score

    codes, labels = _check(codes, labels, one_class=True)
    if labels.all() or not labels.any():
        return float("nan")
    scores = codes @ unit(direction)
    return float(roc_auc_score(labels.cpu().numpy(), scores.cpu().numpy()))


def _residual(direction: Tensor, others) -> Tensor:
    """float64 ``direction`` minus its component in the span of ``others`` (modified Gram-Schmidt).

    An ``other`` whose residue after the previous ones is below 1e-4 of its length counts as
    already in the span: that residue is rounding noise, not a direction to remove.
    """
    d = direction
    basis: list[Tensor] = []
    for o in others:
        o = _float64(o)
        size = o.norm()
        for b in basis:
            o = o - (o @ b) * b
        if o.norm() > 1e-4 * size:
            basis.append(o / o.norm())
    for b in basis:
        d = d - (d @ b) * b
    return d


def orthogonalize(direction, others) -> Tensor:
    """Remove from ``direction`` its component in the span of ``others`` (Gram-Schmidt, float64).

    Moving along the result leaves the projections onto every direction in ``others`` unchanged:
    "smile, but keep the mouth closed" is ``orthogonalize(smile, [mouth_open])``.

    Returns:
        the orthogonalised direction [D] (float32, on ``direction``'s device), at its remaining
        length (not re-normalised).
    """
    return _residual(_float64(direction), others).to(_device(direction), torch.float32)


def project_boundary(primal, *conditions, dtype: torch.dtype = torch.float32) -> Tensor:
    """Conditional boundary: the unit vector closest to ``primal`` orthogonal to every condition.

    InterfaceGAN's conditional manipulation ("age, but keep gender and eyeglasses"): ``primal``
    minus its least-squares projection onto span(conditions), renormalised. Moving a code along it
    changes the primal attribute and leaves every condition's signed distance z . c unchanged.
    Any number of conditions (the release handles at most two); they need not be unit or
    mutually orthogonal. Computed in float64.

    Args:
        primal: the boundary normal [D] or [1, D].
        *conditions: normals [D] or [1, D] to keep fixed.

    Returns:
        unit vector [D] on ``primal``'s device, of ``dtype`` (float32 by default, to add to
        codes; float64 keeps all of the float64 arithmetic, e.g. to compare with a published
        ``.npy`` boundary).

    Raises:
        ValueError: shapes differ, or ``primal`` is zero or lies in the span of the conditions.
    """
    p = _vector(primal, "primal")
    cs = [_vector(c, f"condition {i}") for i, c in enumerate(conditions)]
    for i, c in enumerate(cs):
        if c.shape != p.shape:
            raise ValueError(f"condition {i} has {c.shape[0]} dimensions, the primal {p.shape[0]}")
    r = _residual(p, cs)
    if r.norm() <= 1e-6 * p.norm():
        raise ValueError(
            "the primal direction is zero or lies in the span of the conditions: no part of it "
            "is orthogonal to all of them"
        )
    return (r / r.norm()).to(_device(primal), dtype)


def _numpy(x) -> np.ndarray:
    """A float32 or float64 numpy view of ``x`` (other dtypes become float64)."""
    a = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)


#: liblinear iterations before :func:`train_boundary` gives up (and warns).
LINEAR_SVC_MAX_ITER = 10_000


def train_boundary(
    codes,
    scores,
    chosen_ratio: float = 0.02,
    split_ratio: float = 0.7,
    seed: int = 0,
    solver: str = "svc",
) -> tuple[Tensor, dict]:
    """InterfaceGAN's boundary: a linear SVM between the codes with the highest and lowest scores.

    The release's procedure: sort the N codes by score; the top ``int(chosen_ratio * N)`` are the
    positives and as many from the bottom the negatives; each class is shuffled (``seed``) and split
    into ``split_ratio`` for training and the rest for validation; a linear SVM (C = 1) is fit on
    the training codes. The boundary is the SVM's normal (intercept dropped), unit length, pointing
    towards higher scores.

    Solvers, both hinge loss with C = 1: ``"svc"``, the default, is the release's
    ``SVC(kernel="linear")`` (libsvm, exact); ``"linear_svc"`` is ``LinearSVC(loss="hinge",
    dual=True)`` (liblinear, which also penalises the intercept and stops at
    ``LINEAR_SVC_MAX_ITER``, with a warning): an opt-in for millions of codes. On 20,000 W codes of
    the shipped GAN (Smiling, top and bottom 2%) the two normals agree only to cosine 0.882, while
    ``"svc"`` reproduces the release to 0.9999998; SVC took 0.04 s there (0.14 / 1.7 s at
    N = 100k / 500k on a 2-core CPU, against 0.10 / 0.56 s for LinearSVC).

    Args:
        codes: [N, D] latent codes.
        scores: [N] or [N, 1] attribute scores of the images decoded from ``codes``.
        chosen_ratio: fraction of N taken as positives (and as negatives), in (0, 0.5].
        split_ratio: fraction of each class used for training, in (0, 1].
        seed: seed of the shuffle before the split (and of liblinear's coordinate order).
        solver: ``"svc"`` or ``"linear_svc"``.

    Returns:
        ``(normal, report)``: the unit normal [D] (float32, CPU) and a dict with ``n_train``,
        ``n_val`` (both classes together), ``val_accuracy`` (None without validation codes),
        ``n_remaining``, ``remaining_accuracy`` (on the unchosen middle codes, labelled as in the
        release: positive when the score is at least the midpoint (max + min) / 2 of all scores;
        None when nothing remains), ``solver`` (the one used) and ``converged``.

    Raises:
        ValueError: bad shapes or ratios, non-finite values, too few codes for one training sample
            per class, or scores that do not separate the chosen positives from the negatives.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import SVC, LinearSVC

    codes, scores = _numpy(codes), _numpy(scores)
    if codes.ndim != 2:
        raise ValueError(f"codes must be [N, D], got shape {codes.shape}")
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.shape != (codes.shape[0],):
        raise ValueError(
            f"scores must be [N] or [N, 1] with N = {codes.shape[0]}, got {scores.shape}"
        )
    if not (np.isfinite(codes).all() and np.isfinite(scores).all()):
        raise ValueError("codes and scores must be finite")
    if not 0 < chosen_ratio <= 0.5:
        raise ValueError(f"chosen_ratio must lie in (0, 0.5], got {chosen_ratio}")
    if not 0 < split_ratio <= 1:
        raise ValueError(f"split_ratio must lie in (0, 1], got {split_ratio}")
    if solver not in ("svc", "linear_svc"):
        raise ValueError(f"solver must be 'svc' or 'linear_svc', got {solver!r}")
    n = len(scores)
    chosen = int(n * chosen_ratio)
    n_train = int(chosen * split_ratio)
    if n_train < 1:
        raise ValueError(
            f"too few codes: {n} x chosen_ratio {chosen_ratio} gives {chosen} per class and "
            f"{n_train} to train on; need at least 1 per class (more codes or a larger ratio)"
        )
    order = np.argsort(-scores, kind="stable")
    top, bottom = order[:chosen], order[n - chosen :]
    if scores[top[-1]] <= scores[bottom[0]]:
        raise ValueError(
            "the chosen positives and negatives share scores (are the scores constant?)"
        )
    rng = np.random.default_rng(seed)
    top, bottom = top[rng.permutation(chosen)], bottom[rng.permutation(chosen)]
    train = np.concatenate([top[:n_train], bottom[:n_train]])
    val = np.concatenate([top[n_train:], bottom[n_train:]])
    labels = np.r_[np.ones(n_train), np.zeros(n_train)]

    if solver == "svc":
        clf = SVC(kernel="linear", C=1.0)
    else:
        clf = LinearSVC(
            loss="hinge", dual=True, C=1.0, max_iter=LINEAR_SVC_MAX_ITER, random_state=seed
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(codes[train].astype(np.float64), labels)
    converged = solver == "svc" or clf.n_iter_ < LINEAR_SVC_MAX_ITER
    if not converged:
        warnings.warn(
            f"LinearSVC stopped after {LINEAR_SVC_MAX_ITER} iterations short of its tolerance "
            "(the scores do not separate the chosen codes cleanly); the normal is usually within "
            "cosine 0.99 of the exact one. solver='svc' fits exactly, slower.",
            stacklevel=2,
        )
    w = clf.coef_.ravel()
    # Decision values of every code (one matrix-vector product, no copy of the codes).
    positive = codes @ w.astype(codes.dtype) + clf.intercept_[0] > 0

    def accuracy(index: np.ndarray, truth: np.ndarray) -> float | None:
        return float((positive[index] == truth).mean()) if len(index) else None

    n_val = len(val) // 2
    remaining = order[chosen : n - chosen]
    midpoint = (scores.max() + scores.min()) / 2
    report = {
        "n_train": 2 * n_train,
        "n_val": 2 * n_val,
        "val_accuracy": accuracy(val, np.r_[np.ones(n_val), np.zeros(n_val)].astype(bool)),
        "n_remaining": len(remaining),
        "remaining_accuracy": accuracy(remaining, scores[remaining] >= midpoint),
        "solver": solver,
        "converged": bool(converged),
    }
    normal = torch.from_numpy(w / np.linalg.norm(w)).float()
    return normal, report


def edit_to_distance(z, normal, distance) -> Tensor:
    """Move codes to a signed distance from a boundary: z + (d - z . n) n (InterfaceGAN's edit).

    Only the component along the unit normal n changes; the rest of each code stays as it was.

    Args:
        z: codes [B, D] or one code [D].
        normal: boundary normal [D] or [1, D] (normalised here).
        distance: target signed distance d, a scalar or [B].

    Returns:
        the moved codes, shaped like ``z`` (float32), with z' . n = d.
    """
    z = _as_tensor(z)
    n = unit(_vector(normal, "normal")).to(z.device)
    if z.dim() not in (1, 2) or z.shape[-1] != n.shape[0]:
        raise ValueError(f"z must be [B, {n.shape[0]}] or [{n.shape[0]}], got {tuple(z.shape)}")
    d = _as_tensor(distance).to(z.device)
    if d.dim() > 1 or (d.dim() == 1 and (z.dim() != 2 or d.shape[0] != z.shape[0])):
        raise ValueError(
            f"distance must be a scalar or [B] for z {tuple(z.shape)}, got {tuple(d.shape)}"
        )
    return z + (d - z @ n).unsqueeze(-1) * n


def linear_interpolate(z, normal, start: float = -3.0, end: float = 3.0, steps: int = 10) -> Tensor:
    """One code moved to ``steps`` evenly spaced signed distances from ``start`` to ``end``.

    InterfaceGAN's ``linear_interpolate`` (Z space): row i is the code with its component along
    the unit normal set to ``linspace(start, end, steps)[i]``.

    Args:
        z: one code [D] or [1, D].
        normal: boundary normal [D] or [1, D].

    Returns:
        codes [steps, D] (float32).
    """
    z = _as_tensor(z)
    if z.dim() == 2 and z.shape[0] == 1:
        z = z[0]
    if z.dim() != 1:
        raise ValueError(f"z must be one code [D] or [1, D], got shape {tuple(z.shape)}")
    distances = torch.linspace(start, end, steps, device=z.device)
    return edit_to_distance(z.expand(steps, -1), normal, distances)


#: W+ layer groups of a style generator (Karras et al. 2019, section 3.1): coarse styles (4-8 px:
#: pose, face shape, glasses), middle (16-32 px: features, hair style, eyes open or closed) and
#: fine (64 px and up: colour scheme, micro-structure). Two latent layers per resolution, from 4 px.
LAYER_GROUPS = {"coarse": (0, 4), "middle": (4, 8), "fine": (8, None)}


def layer_indices(layers, n_latent: int) -> list[int]:
    """The W+ layers an edit acts on: ``"all"``, a group of :data:`LAYER_GROUPS`, a ``range``
    or explicit indices, each in [0, n_latent).

    Raises:
        ValueError: an unknown group name, an index out of range, or no layer at all.
    """
    if isinstance(layers, str):
        if layers == "all":
            return list(range(n_latent))
        if layers not in LAYER_GROUPS:
            groups = ", ".join(map(repr, LAYER_GROUPS))
            raise ValueError(f"unknown layer group {layers!r}; use 'all', {groups} or indices")
        start, stop = LAYER_GROUPS[layers]
        indices = list(range(n_latent))[start:stop]
    else:
        indices = sorted({int(i) for i in layers})
    bad = [i for i in indices if not 0 <= i < n_latent]
    if bad or not indices:
        raise ValueError(f"layers must be indices in [0, {n_latent}), got {indices}")
    return indices


def wplus_direction(direction, layers, n_latent: int) -> Tensor:
    """A W direction [D] on some W+ layers only: [n_latent, D], the unit direction on every
    chosen layer and zero elsewhere, so ``wp + alpha * wplus_direction(n, layers, L)`` moves each
    chosen layer's style by alpha along n (InterfaceGAN's W+ edit, restricted to layers)."""
    d = unit(_vector(direction, "direction"))
    mask = torch.zeros(n_latent, 1, device=d.device)
    mask[layer_indices(layers, n_latent)] = 1
    return (mask * d).float()


def _top_eigen(symmetric: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Top-k eigenvectors [k, D] (rows, largest eigenvalue first, each signed so its largest
    entry is positive) and eigenvalues [k] of a symmetric matrix [D, D]."""
    values, vectors = torch.linalg.eigh(symmetric)  # ascending
    values, vectors = values.flip(0)[:k], vectors.flip(1)[:, :k].T
    vectors = vectors * vectors.gather(1, vectors.abs().argmax(1, keepdim=True)).sign()
    return vectors, values


def pca_directions(codes, k: int) -> tuple[Tensor, Tensor]:
    """GANSpace (Härkönen et al. 2020): the top-k principal components of latent codes.

    Args:
        codes: [N, D], N >= 2 (e.g. sampled codes, or W codes of a StyleGAN).
        k: how many components, 1..min(N, D).

    Returns:
        ``(directions, explained_variance_ratio)``: unit rows [k, D] by decreasing variance (each
        signed so its largest entry is positive) and the fraction of the total variance [k] each
        explains; float32, CPU.
    """
    x = _float64(codes)
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"codes must be [N, D] with N >= 2, got shape {tuple(x.shape)}")
    if not 1 <= k <= min(x.shape):
        raise ValueError(f"k must lie in 1..{min(x.shape)} for codes {tuple(x.shape)}, got {k}")
    x = x - x.mean(0)
    cov = x.T @ x / (x.shape[0] - 1)
    directions, variances = _top_eigen(cov, k)
    return directions.float(), (variances / torch.trace(cov)).float()


def sefa_directions(weight, k: int) -> tuple[Tensor, Tensor]:
    """SeFa (Shen & Zhou 2021): closed-form directions from the weight the latent code enters by.

    The unit directions n that a layer y = W z changes most, argmax |W n|, are the top
    eigenvectors of W^T W.

    Args:
        weight: W [out, in] of the first (or a modulation) layer; a conv weight
            [out, in, kh, kw] counts as the [out * kh * kw, in] matrix it applies to a 1x1 input
            (e.g. PGGAN's ``layer0.conv.weight``).
        k: how many directions, 1..in.

    Returns:
        ``(directions, eigenvalues)``: unit rows [k, in] by decreasing eigenvalue (each signed so
        its largest entry is positive) and the eigenvalues [k] of W^T W; float32, CPU.
    """
    w = _float64(weight)
    if w.dim() == 4:
        w = w.transpose(0, 1).flatten(1).T
    if w.dim() != 2:
        raise ValueError(f"weight must be [out, in] or [out, in, kh, kw], got {tuple(w.shape)}")
    if not 1 <= k <= w.shape[1]:
        raise ValueError(f"k must lie in 1..{w.shape[1]}, got {k}")
    directions, values = _top_eigen(w.T @ w, k)
    return directions.float(), values.float()


def lerp(a, b, t: float) -> Tensor:
    """Straight-line interpolation (1 - t) a + t b."""
    a, b = _as_tensor(a), _as_tensor(b)
    return a + (b - a) * t


def slerp(a, b, t: float) -> Tensor:
    """Spherical interpolation along the great circle from ``a`` to ``b`` (rows, last dim).

    For Gaussian latents, lerp's midpoints have smaller norms than typical samples; slerp keeps
    them on the shell where the prior's mass lies. Falls back to lerp for (anti)parallel vectors.
    """
    a, b = _as_tensor(a), _as_tensor(b)
    cos = (unit(a) * unit(b)).sum(-1, keepdim=True).clamp(-1, 1)
    omega = torch.arccos(cos)
    so = torch.sin(omega)
    safe = so.abs() > 1e-6
    w_a = torch.where(
        safe,
        torch.sin((1 - t) * omega) / so.where(safe, torch.ones_like(so)),
        torch.full_like(so, 1 - t),
    )
    w_b = torch.where(
        safe, torch.sin(t * omega) / so.where(safe, torch.ones_like(so)), torch.full_like(so, t)
    )
    return w_a * a + w_b * b
