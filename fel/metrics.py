"""Edit metrics: one yardstick for every method (VAE, InterfaceGAN, Glow).

Given faces before and after an edit towards a target attribute:

* **target change**: mean change of the target attribute's predicted probability (higher = the edit
  did what it says);
* **leakage**: mean absolute change of every other modelled attribute's probability (lower = the
  edit touched nothing else);
* **preservation**: mean absolute pixel change outside the face region the edit should touch, in
  [0, 1] units (lower = the rest of the image stayed put);
* **changed outside**: the share of pixels outside the inner face (:data:`INNER_FACE`) that an
  edit changes by more than 0.1 in some colour channel (lower = hair, skin and background kept);
* **speckles**: the share of pixels inside the inner face that stand out from their 3x3
  neighbourhood's median by more than 0.25 in some channel: isolated dots, which an edit pushed
  past what a model learnt breaks into (Glow's mouth turns into red and white dots), while the
  edges of teeth and lips pass a median unchanged. An edit's *artefacts* are the speckles it adds;
* **identity similarity**: mean cosine between the identity embeddings (:mod:`fel.identity`) of
  each face before and after the edit (1 = the embedding did not move; the embedding's
  ``threshold`` is where its verifier stops calling two faces one person). The course's stand-in
  for the ArcFace cosine that papers report;
* **counterfactual error** (SynthFaces only): mean absolute pixel distance between the edited image
  and the true rendering of the same face with the target factor moved by the same amount.

Images are float [B, 3, H, W] in [0, 1], in the 148-crop frame every fel model uses.

Sample quality (of a generator, not an edit): the **Fréchet distance** between Gaussians fitted to
the attribute predictor's penultimate features of generated and of real faces (FID's formula in
the feature space of fel's own classifier, since Inception weights are not available offline).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fel.data.attributes import check_attribute

# Face regions in the centred 148x148 crop, as (top, left, bottom, right) fractions, from CelebA's
# mean aligned landmarks (eyes at y 111, mouth corners at y 152 of the 178x218 image).
MOUTH = (0.60, 0.20, 0.98, 0.80)  # mouth, lips and the smile folds of the cheeks
EYES = (0.38, 0.15, 0.62, 0.85)
BROWS = (0.30, 0.15, 0.55, 0.85)
INNER_FACE = (0.36, 0.22, 0.95, 0.78)  # brows, eyes, nose, mouth and chin: all an expression moves
#: (row, column) fractions of the left and the right eye's centre, in the same crop: CelebA's mean
#: aligned eyes at x 69 and 108, y 111.
EYE_CENTRES = ((0.515, 0.365), (0.515, 0.628))
EDIT_REGIONS = {
    "Smiling": MOUTH, "Mouth_Slightly_Open": MOUTH, "Wearing_Lipstick": MOUTH, "Big_Lips": MOUTH,
    "Narrow_Eyes": EYES, "Eyeglasses": EYES, "Arched_Eyebrows": BROWS, "Bushy_Eyebrows": BROWS,
}  # fmt: skip


class Predictor(Protocol):
    attr_names: list[str]

    def predict(self, images: torch.Tensor) -> torch.Tensor: ...


class Embedder(Protocol):
    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor: ...


def identity_similarity(embedder: Embedder, before: torch.Tensor, after: torch.Tensor) -> float:
    """Mean cosine between the identity embeddings of each face ``before`` and ``after`` an edit
    ([B, 3, H, W] in [0, 1]); ``embedder`` is e.g. :func:`fel.identity.load_pretrained`."""
    if before.shape != after.shape:
        raise ValueError(
            f"before {tuple(before.shape)} and after {tuple(after.shape)} differ in shape"
        )
    return float(embedder.similarity(before, after).mean())


def region_mask(size: int, box: tuple[float, float, float, float]) -> torch.Tensor:
    """Bool mask [size, size], True inside ``box`` = (top, left, bottom, right) fractions."""
    top, left, bottom, right = (round(f * size) for f in box)
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[top:bottom, left:right] = True
    return mask


def preservation(
    before: torch.Tensor, after: torch.Tensor, box: tuple[float, float, float, float] | None
) -> float:
    """Mean absolute pixel change outside ``box`` (everywhere when ``box`` is None)."""
    if before.shape != after.shape:
        raise ValueError(
            f"before {tuple(before.shape)} and after {tuple(after.shape)} differ in shape"
        )
    diff = (after.float() - before.float()).abs().mean(1)  # [B, H, W]
    if box is None:
        return float(diff.mean())
    outside = ~region_mask(diff.shape[-1], box)
    return float(diff[:, outside].mean())


def changed_outside(before: torch.Tensor, after: torch.Tensor, threshold: float = 0.1,
                    box: tuple[float, float, float, float] = INNER_FACE) -> float:  # fmt: skip
    """Share of the pixels outside ``box`` (over the batch) that change by more than ``threshold``
    in at least one colour channel, for images [B, 3, H, W] in [0, 1].

    0.05 means that one pixel in twenty of the hair, forehead, ears and background visibly moved.
    """
    if before.shape != after.shape:
        raise ValueError(
            f"before {tuple(before.shape)} and after {tuple(after.shape)} differ in shape"
        )
    moved = (after.float() - before.float()).abs().amax(1) > threshold  # [B, H, W]
    outside = ~region_mask(moved.shape[-1], box)
    return float(moved[:, outside].float().mean())


def speckles(images: torch.Tensor, threshold: float = 0.25,
             box: tuple[float, float, float, float] = INNER_FACE) -> float:  # fmt: skip
    """Share of the pixels inside ``box`` (over the batch) that differ from the median of their
    3x3 neighbourhood (edges replicated) by more than ``threshold`` in some colour channel, for
    images [B, 3, H, W] in [0, 1].

    An isolated dot stands out from its neighbourhood's median; a straight edge or a band two
    pixels wide does not (a one-pixel line or a sharp corner does, so clean faces score a
    little). Decodes of 64 px SynthFaces test faces score 0.2% with the shipped VAE and 0.8% with
    Glow (whose decodes are the faces themselves); Glow's smile at 4 sigma adds 3.4 points.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [B, 3, H, W], got {tuple(images.shape)}")
    x = images.float()
    windows = F.pad(x, (1, 1, 1, 1), mode="replicate").unfold(2, 3, 1).unfold(3, 3, 1)
    median = windows.flatten(-2).median(-1).values  # [B, 3, H, W]
    dots = (x - median).abs().amax(1) > threshold  # [B, H, W]
    return float(dots[:, region_mask(x.shape[-1], box)].float().mean())


def edit_report(
    predictor: Predictor,
    before: torch.Tensor,
    after: torch.Tensor,
    target: str,
    attributes: Sequence[str] | None = None,
    identity: Embedder | None = None,
) -> dict[str, object]:
    """Target change, leakage and preservation of one edit applied to a batch (and, given an
    identity embedder, how far it kept the person).

    Args:
        predictor: e.g. :func:`fel.classifier.load_pretrained`.
        before, after: images [B, 3, H, W] in [0, 1], face by face.
        target: the attribute the edit is meant to change.
        attributes: the attributes that count for leakage (default: all of the predictor's that
            it was scored on, see :func:`modelled_attributes`).
        identity: e.g. :func:`fel.identity.load_pretrained`; adds ``"identity"``, the
            :func:`identity_similarity` of ``before`` and ``after``.

    Returns:
        {"target_change", "leakage", "preservation", "artefacts", "changes": {attribute: mean
        change}} (and "identity"); "artefacts" is the share of inner-face pixels that are dots
        after the edit minus the share before (:func:`speckles`): what the edit broke up.
    """
    target = check_attribute(target, predictor.attr_names)
    attributes = list(attributes or modelled_attributes(predictor))
    p0, p1 = predictor.predict(before), predictor.predict(after)
    delta = (p1 - p0).mean(0)
    abs_delta = (p1 - p0).abs().mean(0)
    canonical = [check_attribute(a, predictor.attr_names) for a in attributes]
    idx = {a: predictor.attr_names.index(a) for a in canonical}
    others = [i for a, i in idx.items() if a != target]
    report: dict[str, object] = {
        "target_change": float(delta[predictor.attr_names.index(target)]),
        "leakage": float(abs_delta[others].mean()) if others else 0.0,
        "preservation": preservation(before, after, EDIT_REGIONS.get(target)),
        "artefacts": speckles(after) - speckles(before),
        "changes": {a: float(delta[i]) for a, i in idx.items()},
    }
    if identity is not None:
        report["identity"] = identity_similarity(identity, before, after)
    return report


def modelled_attributes(predictor: Predictor) -> list[str]:
    """The attributes a predictor was scored on (both classes present), else all of its own."""
    report = getattr(predictor, "meta", {}).get("test", {}).get("attributes")
    return list(report) if report else list(predictor.attr_names)


def counterfactual_error(
    edited: torch.Tensor, faces: np.ndarray, factor: str, values: Sequence[float]
) -> float:
    """Mean absolute pixel distance to the true counterfactuals (SynthFaces only).

    Args:
        edited: edited images [B, 3, S, S] in [0, 1].
        faces: the SynthFaces factor rows [B] of the original faces.
        factor: the factor the edit moves, e.g. "smile".
        values: per face, the value the factor should take after the edit (e.g. its original
            value plus the change the classifier's factor head measures on the edited image).
    """
    from fel.data.synthfaces import counterfactual, render_aligned

    if len(faces) != len(edited) or len(values) != len(edited):
        raise ValueError(
            f"need one face and one value per edited image, got {len(faces)}, {len(values)}, {len(edited)}"
        )
    size = edited.shape[-1]
    truth = np.stack(
        [
            render_aligned(counterfactual(f, **{factor: float(v)}), size)
            for f, v in zip(faces, values)
        ]
    )
    truth = torch.from_numpy(truth).permute(0, 3, 1, 2).float() / 255
    return float((edited.float().cpu() - truth).abs().mean())


def classifier_features(classifier: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Penultimate features [B, F] of an :class:`fel.classifier.AttributeClassifier`: the pooled
    activations its attribute head reads, for images [B, 3, H, W] in [0, 1] (resized to the
    classifier's size). Differentiable in ``images``; the caller chooses ``torch.no_grad()``."""
    captured: list[torch.Tensor] = []
    hook = classifier.attributes.register_forward_pre_hook(lambda _, args: captured.append(args[0]))
    try:
        x = images.to(next(classifier.parameters()).device, torch.float32)
        if x.shape[-2:] != (classifier.size, classifier.size):
            size = (classifier.size, classifier.size)
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        classifier(x)
    finally:
        hook.remove()
    return captured[0]


def _float64(x) -> torch.Tensor:
    return (
        x.detach().cpu().double() if torch.is_tensor(x) else torch.as_tensor(np.asarray(x)).double()
    )


def gaussian_frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Fréchet (2-Wasserstein squared) distance between N(mu1, cov1) and N(mu2, cov2):
    |mu1 - mu2|^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2)), in float64.

    tr((cov1 cov2)^(1/2)) is the sum of the square roots of the eigenvalues of the symmetric
    matrix cov1^(1/2) cov2 cov1^(1/2), which has the same eigenvalues as cov1 cov2.

    Args:
        mu1, mu2: means [F]; cov1, cov2: covariances [F, F] (symmetric positive semi-definite).
    """
    mu1, mu2, cov1, cov2 = (_float64(a) for a in (mu1, mu2, cov1, cov2))
    if cov1.shape != (len(mu1), len(mu1)) or mu2.shape != mu1.shape or cov2.shape != cov1.shape:
        raise ValueError(
            f"need means [F] and covariances [F, F] of one F, got {tuple(mu1.shape)}, "
            f"{tuple(cov1.shape)}, {tuple(mu2.shape)}, {tuple(cov2.shape)}"
        )
    values, vectors = torch.linalg.eigh(cov1)
    root1 = vectors * values.clamp_min(0).sqrt() @ vectors.T
    cross = torch.linalg.eigvalsh(root1 @ cov2 @ root1).clamp_min(0).sqrt().sum()
    fd = (mu1 - mu2).square().sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * cross
    return float(fd.clamp_min(0))


def frechet_distance(features_a, features_b) -> float:
    """Fréchet distance between Gaussians fitted (mean, unbiased covariance) to two feature
    sets [N, F] and [M, F], e.g. :func:`classifier_features` of generated and of real faces.

    The number is biased upwards for finite sets: compare only distances over the same numbers
    of faces, e.g. against the distance between two disjoint sets of real faces of that size.
    """
    a, b = _float64(features_a), _float64(features_b)
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(
            f"need two feature sets [N, F] with N >= 2, got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    f = a.shape[1]
    cov_a, cov_b = torch.cov(a.T).reshape(f, f), torch.cov(b.T).reshape(f, f)
    return gaussian_frechet_distance(a.mean(0), cov_a, b.mean(0), cov_b)
