"""Latent codes of whole image collections, for any model with ``encode`` (VAE, Glow, GAN)."""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm

from fel.data.celeba import iter_batches


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (CPU for a model without parameters)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


@torch.no_grad()
def encode_all(
    model: nn.Module, images, batch_size: int = 512, progress: bool = False
) -> torch.Tensor:
    """Codes [N, D] (on the CPU) of images [N, 3, S, S] (uint8 or float in [0, 1]; a tensor, an
    array or a dataset's memory-mapped cache), batch by batch on the model's device, in eval mode."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    batches = iter_batches(images, batch_size)
    if progress:
        batches = tqdm(batches, total=-(-len(images) // batch_size), desc="encoding", unit="batch")
    codes = torch.cat([model.encode(x.to(device)).float().cpu() for x in batches])
    model.train(was_training)
    return codes
