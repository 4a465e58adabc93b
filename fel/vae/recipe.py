"""Training recipe and shipped checkpoint of the VAE: ``python -m fel train vae``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from fel.checkpoints import export_checkpoint, load_course_checkpoint, load_model
from fel.codes import encode_all
from fel.data.celeba import iter_batches
from fel.training import TrainConfig
from fel.vae.model import VAE, VAEConfig
from fel.viz import grid

CHECKPOINT = "vae.pt"
#: The shipped model's training settings (with :class:`VAEConfig`'s defaults): the CLI's
#: defaults, notebook 02's RETRAIN cell and ``train course`` derive from them.
TRAINING = TrainConfig(epochs=20, batch_size=64, lr=1e-3)


def loss_fn(model: VAE, batch) -> tuple[torch.Tensor, dict[str, float]]:
    """Negative (beta-)ELBO in nats per dimension, so its scale does not depend on image size.

    ``model`` may be wrapped (DistributedDataParallel): only its forward is called.
    """
    x = batch[0]
    out = model(x)
    sigma = getattr(model, "module", model).log_sigma.exp().item()
    return out["loss"] / x[0].numel(), {
        "bpd": out["bits_per_dim"].item(),
        "kl": out["kl"].item(),
        "sigma": sigma,
    }


@torch.no_grad()
def evaluate(model: VAE, images, batch_size: int = 256, seed: int = 0) -> dict[str, float]:
    """Mean ELBO (nats per image), its terms and bits/dim over uint8 or float images [N,3,S,S]
    (a tensor or an array, e.g. a dataset's memory-mapped cache).

    One seeded draw of dequantisation noise and of z per image, so the number repeats; bits/dim is
    then an unbiased estimate of an upper bound on the model's negative log-likelihood.
    """
    was_training = model.training
    model.eval()
    device = model.log_sigma.device
    g = torch.Generator().manual_seed(seed)
    sums: dict[str, float] = {}
    for x in iter_batches(images, batch_size):
        out = model(x.to(device), g)
        for k in ("elbo", "reconstruction", "kl", "bits_per_dim"):
            sums[k] = sums.get(k, 0.0) + out[k].item() * len(x)
    model.train(was_training)
    return {k: v / len(images) for k, v in sums.items()}


@torch.no_grad()
def save_grids(model: VAE, images, out: Path, tag: str, seed: int = 0) -> None:
    """Write ``recon_{tag}.png`` (16 of ``images`` above their reconstructions) and
    ``samples_{tag}.png`` (32 samples)."""
    device = model.log_sigma.device
    x = next(iter_batches(images[:16])).to(device)
    recon = model.decode(model.encode(x))
    Image.fromarray(grid(torch.cat([x, recon]).cpu(), nrow=16)).save(out / f"recon_{tag}.png")
    z = model.sample_latent(32, generator=torch.Generator().manual_seed(seed))
    Image.fromarray(grid(model.decode(z).cpu(), nrow=16)).save(out / f"samples_{tag}.png")


def train_vae(root: str | os.PathLike, out: str | os.PathLike, train_config: TrainConfig = TRAINING, vae_config: VAEConfig | None = None,
              resume: bool = False, max_steps: int | None = None, dataset_name: str = "synthfaces") -> dict[str, Any]:  # fmt: skip
    """Train a VAE on the train split of ``root``; score valid each epoch and test at the end.

    Returns:
        the final checkpoint payload; ``meta["test"]`` holds test ELBO (nats) and bits/dim.
    """
    from fel.data import CelebA
    from fel.training import data_meta, is_main_process, train

    vae_config = vae_config or VAEConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train_faces = CelebA(root, split="train", size=vae_config.size)
    valid = torch.from_numpy(CelebA(root, split="valid", size=vae_config.size).images[:1000].copy())
    torch.manual_seed(train_config.seed)  # the initial weights follow --seed
    model = VAE(vae_config)

    def on_epoch_end(net: VAE, epoch: int) -> dict[str, float]:
        save_grids(net, valid, out, f"epoch{epoch:03d}")
        r = evaluate(net, valid)
        return {"valid_elbo": r["elbo"], "valid_bpd": r["bits_per_dim"]}

    meta = data_meta(dataset_name, root, vae_config.size, len(train_faces))
    result = train(model, loss_fn, train_faces, train_config, out, model.config_dict(), meta,
                   resume=resume, on_epoch_end=on_epoch_end, max_steps=max_steps)  # fmt: skip
    if not is_main_process():  # under torchrun rank 0 alone fits the prior and scores
        return result
    model.fit_prior(encode_all(model, train_faces.images))
    result["model"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    test = CelebA(root, split="test", size=vae_config.size).images  # memory-mapped
    result["meta"]["test"] = evaluate(model, test)
    save_grids(model, test, out, "final")
    return result


def export(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the small committed checkpoint: fp16 weights, config and metadata, no optimiser."""
    return export_checkpoint(payload, path)


def load(path: str | os.PathLike, device: torch.device | str | None = None) -> VAE:
    """A VAE from a checkpoint, in eval mode, on ``device`` (default fel.device())."""
    return load_model(path, lambda config: VAE(VAEConfig(**config)), device)


def load_pretrained(device: torch.device | str | None = None) -> VAE:
    """The shipped VAE (``data/checkpoints/vae.pt``), trained on SynthFaces by fel's recipe.

    Read from ``$FEL_CHECKPOINTS`` (a ``train course`` folder) when it has the file, else from
    ``data/checkpoints/``, and refused with a :class:`fel.checkpoints.DataMismatchError` when it
    was trained on other data than the data in use (``$FEL_CELEBA_ROOT`` or ``data/synthfaces``).
    """
    return load_course_checkpoint(CHECKPOINT, load, device)
