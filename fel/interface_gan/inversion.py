"""GAN inversion: the code whose image best matches a picture, by gradient descent on the code.

A GAN has no encoder, so a face is "encoded" by optimising a code c (one per image) to minimise

    mean_pixels (G(c) - x)^2  +  feature_weight * mean (phi(G(c)) - phi(x))^2

with Adam, where phi is an attribute classifier's penultimate features (optional). The
generator's weights are frozen during the optimisation, so backward skips their gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from fel.metrics import classifier_features


@contextmanager
def frozen(module: nn.Module):
    """No gradients for ``module``'s parameters inside the block (then restored): backward then
    skips every weight gradient, which is most of an inversion step's cost."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def invert(generator: nn.Module, render: Callable[[Tensor], Tensor], start: Tensor, x: Tensor,
           steps: int, lr: float, classifier: nn.Module | None = None,
           feature_weight: float = 1.0, progress: bool = True,
           desc: str = "GAN inversion") -> Tensor:  # fmt: skip
    """Optimised codes, shaped like ``start`` (detached).

    Args:
        generator: the module whose parameters are frozen meanwhile.
        render: codes -> images [B, 3, H, W] in [0, 1], differentiable.
        start: the initial codes, one per image (copied, not changed).
        x: the target images [B, 3, H, W] in [0, 1].
        steps, lr: Adam steps and learning rate.
        classifier: an :class:`fel.classifier.AttributeClassifier` for the feature term.
    """
    code = start.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([code], lr=lr)
    with torch.enable_grad(), frozen(generator):
        target = classifier_features(classifier, x).detach() if classifier else None
        for _ in tqdm(range(steps), desc=desc, unit="step", disable=not progress):
            image = render(code)
            loss = (image - x).square().flatten(1).mean(1).sum()
            if target is not None:
                feats = classifier_features(classifier, image)
                loss = loss + feature_weight * (feats - target).square().mean(1).sum()
            (code.grad,) = torch.autograd.grad(loss, [code])
            optimizer.step()
    return code.detach()
