"""Training recipe and shipped checkpoint of Glow: ``python -m fel train glow``."""

from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from fel.checkpoints import (
    export_checkpoint,
    load_checkpoint,
    load_course_checkpoint,
    load_model,
)
from fel.codes import model_device
from fel.data.celeba import iter_batches
from fel.flow.model import Glow, GlowConfig
from fel.training import TrainConfig
from fel.viz import grid

CHECKPOINT = "glow.pt"
#: The shipped model's training settings (with :class:`GlowConfig`'s defaults): the CLI's
#: defaults, the notebook's RETRAIN cell and ``train course`` derive from them.
TRAINING = TrainConfig(epochs=4, batch_size=64, lr=1e-3, warmup_steps=200, amp=False)
INIT_IMAGES = 512  # images for ActNorm's data-dependent initialisation


def loss_fn(model: Glow, batch) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean bits/dim of the batch (the negative log-likelihood on Glow's scale).

    ``model`` may be wrapped (DistributedDataParallel): only its forward is called.
    """
    bpd = model(batch[0]).mean()
    return bpd, {"bpd": bpd.item()}


@torch.no_grad()
def evaluate(model: Glow, images, batch_size: int = 256, seed: int = 0) -> dict[str, float]:
    """Mean bits/dim over uint8 or float images [N, 3, S, S] (a tensor, an array or a dataset's
    memory-mapped cache), with seeded dequantisation noise so the number repeats."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    g = torch.Generator().manual_seed(seed)
    total = sum(
        model.bits_per_dim(x.to(device), g).sum().item() for x in iter_batches(images, batch_size)
    )
    model.train(was_training)
    return {"bits_per_dim": total / len(images)}


@torch.no_grad()
def save_grids(model: Glow, images, out: Path, tag: str, seed: int = 0) -> None:
    """Write ``samples_{tag}.png`` (32 samples at T = 0.7) and ``recon_{tag}.png`` (16 of
    ``images`` above their exact reconstructions)."""
    device = model_device(model)
    g = torch.Generator().manual_seed(seed)
    samples = model.sample(32, generator=g, temperature=0.7).cpu()
    Image.fromarray(grid(samples, nrow=16)).save(out / f"samples_{tag}.png")
    x = next(iter_batches(images[:16])).to(device)
    recon = model.decode(model.encode(x))
    Image.fromarray(grid(torch.cat([x, recon]).cpu(), nrow=16)).save(out / f"recon_{tag}.png")


def train_glow(root: str | os.PathLike, out: str | os.PathLike, train_config: TrainConfig = TRAINING, glow_config: GlowConfig | None = None,
               resume: bool = False, max_steps: int | None = None, dataset_name: str = "synthfaces") -> dict[str, Any]:  # fmt: skip
    """Train Glow on the train split of ``root``; score valid each epoch and test at the end.

    ActNorm is initialised from the first ``INIT_IMAGES`` training images (the same on every
    process under torchrun) before the first step. Mixed precision is always off.

    Returns:
        the final checkpoint payload; ``meta["test"]`` holds the test bits/dim.
    """
    from fel.data import CelebA
    from fel.training import data_meta, is_main_process, train

    out = Path(out)
    glow_config = glow_config or GlowConfig()  # the shipped architecture
    out.mkdir(parents=True, exist_ok=True)
    # Full precision even on CUDA: log-determinants and exact inverses do not survive bf16.
    train_config = replace(train_config, amp=False)
    if resume:
        saved = load_checkpoint(out / "last.pt")["config"]
        if saved != asdict(glow_config):
            changed = {k: (v, asdict(glow_config).get(k)) for k, v in saved.items()
                       if asdict(glow_config).get(k) != v}  # fmt: skip
            raise ValueError(
                f"{out / 'last.pt'} was trained with another Glow config (saved, given): {changed}; "
                "resume with the same model options"
            )
    size = glow_config.size
    train_faces = CelebA(root, split="train", size=size)
    valid = torch.from_numpy(CelebA(root, split="valid", size=size).images[:1000].copy())
    torch.manual_seed(train_config.seed)  # the initial weights follow --seed
    model = Glow(glow_config)
    if not resume:
        x = next(iter_batches(train_faces.images[:INIT_IMAGES], INIT_IMAGES))
        model.initialize(model.dequantize(x, torch.Generator().manual_seed(train_config.seed)))

    def on_epoch_end(net: Glow, epoch: int) -> dict[str, float]:
        save_grids(net, valid, out, f"epoch{epoch:03d}")
        return {"valid_bpd": evaluate(net, valid)["bits_per_dim"]}

    meta = data_meta(dataset_name, root, size, len(train_faces))
    result = train(model, loss_fn, train_faces, train_config, out, model.config_dict(), meta,
                   resume=resume, on_epoch_end=on_epoch_end, max_steps=max_steps)  # fmt: skip
    if not is_main_process():  # under torchrun rank 0 alone scores the test split
        return result
    test = CelebA(root, split="test", size=size).images  # memory-mapped
    result["meta"]["test"] = evaluate(model, test)
    save_grids(model, test, out, "final")
    return result


def export(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the small committed checkpoint: fp16 weights, config and metadata, no optimiser."""
    return export_checkpoint(payload, path)


def load(path: str | os.PathLike, device: torch.device | str | None = None) -> Glow:
    """A Glow from a checkpoint, in eval mode, on ``device`` (default fel.device())."""
    return load_model(path, lambda config: Glow(GlowConfig(**config)), device)


def load_pretrained(device: torch.device | str | None = None) -> Glow:
    """The shipped Glow (``data/checkpoints/glow.pt``), trained on SynthFaces by fel's recipe.

    Read from ``$FEL_CHECKPOINTS`` (a ``train course`` folder) when it has the file, else from
    ``data/checkpoints/``, and refused with a :class:`fel.checkpoints.DataMismatchError` when it
    was trained on other data than the data in use (``$FEL_CELEBA_ROOT`` or ``data/synthfaces``).
    """
    return load_course_checkpoint(CHECKPOINT, load, device)
