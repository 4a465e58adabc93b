"""Training recipe and shipped checkpoint of the style-based GAN: ``python -m fel train gan``.

fel.training trains every model with one optimiser and one backward per step; :class:`GAN`'s
forward makes that a correct GAN update (each network gets the gradient of its own loss only,
both computed at the same weights: simultaneous gradient descent). Sample quality is a Fréchet
distance in the attribute classifier's feature space (:mod:`fel.metrics`), reported beside the
same distance between two disjoint sets of real faces, the floor a perfect generator would reach.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset, Subset

import fel
from fel.checkpoints import (
    export_checkpoint,
    load_checkpoint,
    load_course_checkpoint,
    load_state,
    resolve_checkpoint,
)
from fel.codes import model_device
from fel.data.celeba import iter_batches
from fel.interface_gan.model import GAN, GANConfig, Generator, eye_patches
from fel.metrics import classifier_features, frechet_distance
from fel.training import TrainConfig
from fel.viz import grid

CHECKPOINT = "gan.pt"
#: The command that trains and exports the shipped checkpoint.
TRAIN_COMMAND = "python -m fel train gan --out runs/gan --export data/checkpoints/gan.pt"
QUALITY_FACES = 1000  # generated faces per Fréchet distance (and real faces on each side)


#: The GAN recipe's optimisation: StyleGAN2's Adam (beta1 = 0, beta2 = 0.99) at a constant rate
#: after the warm-up. No gradient clipping: one clip over both networks' gradients would tie G's
#: step size to D's. Full precision even on CUDA: the model is small enough for bf16 to buy little,
#: and R1's double backward and the demodulation's sums of squares are where low precision bites.
GAN_OPTIMISATION = {"betas": (0.0, 0.99), "schedule": "constant", "grad_clip": None, "amp": False}
#: The whole training recipe (the shipped generator's: 12 epochs of batch 32 at 2e-3), which
#: ``python -m fel train gan``'s defaults and ``train_gan(root, out)`` share.
TRAINING = TrainConfig(epochs=12, batch_size=32, lr=2e-3, **GAN_OPTIMISATION)


def loss_fn(model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
    """The GAN objective of one step (see ``GAN.forward``); then, without gradients, ``w_avg``,
    ``generator_ema`` and the step counter are updated (``GAN.track``).

    Under torchrun ``model`` is DistributedDataParallel; what was checked for it:

    * the whole objective runs inside the wrapper's forward, so DDP's reducer is armed and
      all-reduces both networks' gradients in the one backward (calling ``model.module``'s
      networks directly would silently skip the all-reduce);
    * every trainable parameter gets a gradient every step (D from its loss, G through the
      frozen-D path), so ``find_unused_parameters`` is not needed; ``generator_ema`` does not
      require gradients, so DDP neither reduces it nor waits for it;
    * R1's ``torch.autograd.grad`` is taken with respect to the real images only, so it fires no
      DDP hook; the penalty reaches D's parameters in the main backward;
    * ``generator_ema`` is updated from generator weights that are equal on every process, so it
      stays equal without communication; buffers (``w_avg``, ``step``) are broadcast from rank 0
      at each forward (DDP's default), so ``w_avg`` follows rank 0's share of the fakes;
    * rank 0 draws the fakes' codes of the whole global batch and broadcasts them; every process
      keeps its own slice (``GAN._draw_z``; the processes' own random streams differ).

    tests/test_gan.py runs two gloo processes against one process on the global batch.
    """
    gan = getattr(model, "module", model)
    out = model(batch[0])
    gan.track(out["w"])
    return out["loss"], {k: v.item() for k, v in out.items() if k not in ("loss", "w")}


@torch.no_grad()
def evaluate(generator: Generator, images, classifier: nn.Module, n: int = QUALITY_FACES,
             seed: int = 0, batch_size: int = 250) -> dict[str, float]:  # fmt: skip
    """Fréchet distance between n generated faces (psi = 1, seeded) and n real ``images``, and the
    same distance between those and n other real images: the floor of the first number.

    Args:
        generator: the generator to score (e.g. ``gan.generator_ema``).
        images: real faces [N, 3, S, S], uint8 or float in [0, 1] (tensor, array or a dataset's
            memory-mapped cache), N >= 4; n is lowered to N // 2 when they are too few.
        classifier: an :class:`fel.classifier.AttributeClassifier`, whose penultimate features
            the distances are measured in (moved to the generator's device).

    Returns:
        ``{"fd": generated vs real, "fd_real": real vs real, "n": faces per set}``.
    """
    n = min(n, len(images) // 2)
    if n < 2:
        raise ValueError(f"need at least 4 real faces to compare with, got {len(images)}")
    device = model_device(generator)
    classifier = classifier.to(device).eval()

    def features(batches) -> torch.Tensor:
        return torch.cat([classifier_features(classifier, x.to(device)).cpu() for x in batches])

    g = torch.Generator().manual_seed(seed)
    codes = generator.sample_latent(n, generator=g).split(batch_size)
    fake = features(generator.decode(z, psi=1.0) for z in codes)
    real_a = features(iter_batches(images[:n], batch_size))
    real_b = features(iter_batches(images[n : 2 * n], batch_size))
    return {
        "fd": frechet_distance(fake, real_a),
        "fd_real": frechet_distance(real_b, real_a),
        "n": n,
    }


#: The attributes whose rates :func:`coverage` reports by default: the modes a small GAN drops
#: first (small, rare details), and two common ones to compare with.
COVERAGE_ATTRIBUTES = ("Narrow_Eyes", "Eyeglasses", "Wearing_Hat", "Bangs", "Smiling", "Male")


@torch.no_grad()
def coverage(generator: Generator, images, classifier: nn.Module,
             attributes=COVERAGE_ATTRIBUTES, n: int = QUALITY_FACES, psi: float = 1.0,
             seed: int = 0, batch_size: int = 250) -> dict[str, dict[str, float]]:  # fmt: skip
    """How often the generator draws each attribute, against how often the data has it: the
    share of n generated faces (psi, seeded) and of n real ``images`` that ``classifier``
    predicts with P > 0.5. A ratio well under 1 is a dropped mode.

    Args:
        generator: e.g. ``gan.generator_ema`` or :func:`fel.interface_gan.load_pretrained`.
        images: real faces [N, 3, S, S], uint8 or float in [0, 1] (e.g. the test split's cache).
        classifier: an attribute predictor (``attr_names``, ``predict``).

    Returns:
        ``{attribute: {"generated", "data", "ratio"}}`` (ratio: generated / data; inf when the
        data has none).
    """
    from fel.data.attributes import check_attribute

    columns = {a: classifier.attr_names.index(check_attribute(a, classifier.attr_names))
               for a in attributes}  # fmt: skip
    n = min(n, len(images))
    device = model_device(generator)
    g = torch.Generator().manual_seed(seed)
    fake = torch.cat([generator.decode(z.to(device), psi=psi).float().cpu()
                      for z in generator.sample_latent(n, generator=g).split(batch_size)])  # fmt: skip
    real = torch.cat([x.float() for x in iter_batches(images[:n], batch_size)])
    p_fake, p_real = (classifier.predict(x) > 0.5 for x in (fake, real))
    out = {}
    for name, j in columns.items():
        made, has = float(p_fake[:, j].float().mean()), float(p_real[:, j].float().mean())
        out[name] = {"generated": made, "data": has, "ratio": made / has if has else float("inf")}
    return out


def why_dropped(gan: GAN, images, classifier: nn.Module, attributes=COVERAGE_ATTRIBUTES,
                n: int = 2000, invert: int = 12, steps: int = 300,
                batch_size: int = 250) -> dict[str, dict[str, float]]:  # fmt: skip
    """Why the generator misses an attribute, asked of a whole GAN (a run's ``last.pt``,
    :func:`load_run`) on n real ``images``:

    * ``d_gap``: D's mean logit on the real faces with the attribute minus on those without.
      The optimal D's logit is log p_data(x) / p_G(x), so a gap well above 0 says that D has
      noticed the mode is missing (and G's gradient should lead there); near 0, D cannot tell.
    * ``eye_gap``: the same for the eye critic (``eye_weight``), its logit being the mean over a
      face's two eyes; nan for a GAN without one.
    * ``drawable``: of ``invert`` real faces with the attribute (predicted P > 0.9), the share
      whose inversion into W (:meth:`Generator.encode`, pixel loss, ``steps`` steps) the
      predictor still calls positive. Near 0: ``generator_ema`` cannot draw it from any code;
      high while :func:`coverage` is low: it can, but Z rarely maps there.

    Returns:
        ``{attribute: {"d_gap", "eye_gap", "drawable", "with"}}`` (``with``: real faces with it
        among n; nan where none, or no confident one, is there).
    """
    from fel.data.attributes import check_attribute

    columns = {a: classifier.attr_names.index(check_attribute(a, classifier.attr_names))
               for a in attributes}  # fmt: skip
    device = model_device(gan)
    real = torch.cat([x.float() for x in iter_batches(images[: min(n, len(images))], batch_size)])
    with torch.no_grad():
        p = torch.cat([classifier.predict(x.to(device)).cpu() for x in real.split(batch_size)])
        logit = torch.cat([gan.discriminator(x.to(device) * 2 - 1).cpu()
                           for x in real.split(batch_size)])  # fmt: skip
        eye_logit = None
        if gan.eye_discriminator is not None:  # [2B] patches, left eyes first -> [B]
            eye_logit = torch.cat([
                gan.eye_discriminator(eye_patches(x.to(device) * 2 - 1)).view(2, -1).mean(0).cpu()
                for x in real.split(batch_size)
            ])  # fmt: skip
    out = {}
    for name, j in columns.items():
        has, sure = p[:, j] > 0.5, (p[:, j] > 0.9).nonzero()[:invert, 0]
        drawable = float("nan")
        if len(sure):
            w = gan.generator_ema.encode(real[sure].to(device), steps=steps, progress=False)
            with torch.no_grad():
                again = classifier.predict(gan.generator_ema.decode_w(w, psi=1.0))[:, j]
            drawable = float((again > 0.5).float().mean())
        out[name] = {"d_gap": _gap(logit, has), "eye_gap": _gap(eye_logit, has),
                     "drawable": drawable, "with": int(has.sum())}  # fmt: skip
    return out


def _gap(logit: torch.Tensor | None, has: torch.Tensor) -> float:
    """Mean ``logit`` [N] where ``has`` [N] (bool) minus where not; nan without both groups."""
    if logit is None or not 0 < has.sum() < len(has):
        return float("nan")
    return float(logit[has].mean() - logit[~has].mean())


@torch.no_grad()
def save_grids(generator: Generator, out: Path, tag: str, seed: int = 0) -> None:
    """Write ``samples_{tag}.png``: 64 samples (8 x 8, psi = 1) from fixed, seeded Z codes."""
    z = generator.sample_latent(64, generator=torch.Generator().manual_seed(seed))
    Image.fromarray(grid(generator.decode(z, psi=1.0).cpu(), nrow=8)).save(
        out / f"samples_{tag}.png"
    )


def generator_state(state: dict[str, torch.Tensor], raw: bool = False,
                    source: str = "this checkpoint") -> dict[str, torch.Tensor]:  # fmt: skip
    """The ``generator_ema`` weights (with ``raw``: the trained ``generator``'s own) of a whole
    GAN's state dict (a run's ``last.pt``), without the prefix; a generator's own state dict is
    returned as it is, and ``raw`` on one is refused (an exported file has only the average)."""
    prefix = "generator." if raw else "generator_ema."
    if not any(k.startswith("generator_ema.") for k in state):
        if raw:
            raise ValueError(
                f"{source} holds one generator, the average that is exported; its raw weights "
                "are only in a run's last.pt (the whole GAN)"
            )
        return state
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def train_gan(root: str | os.PathLike, out: str | os.PathLike, train_config: TrainConfig = TRAINING,
              gan_config: GANConfig | None = None, resume: bool = False,
              max_steps: int | None = None, dataset_name: str = "synthfaces",
              classifier: nn.Module | None = None,
              init: str | os.PathLike | None = None,
              oversample: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
    """Train the GAN on the train split of ``root``; after each epoch write a sample grid and
    score ``generator_ema`` on the valid split, and score it on the test split at the end.

    ``out/last.pt`` keeps the whole GAN (both networks, the average, the optimiser) for
    ``resume``; the returned payload keeps only ``generator_ema``, the weights worth shipping.

    ``train_config``'s optimiser settings are replaced by :data:`GAN_OPTIMISATION` (the
    recipe's own), so the CLI and a call with a plain ``TrainConfig()`` train the same model.

    Args:
        classifier: the feature extractor of the Fréchet distances (default: the shipped
            attribute classifier).
        init: another run's ``last.pt`` (same data, same architecture) to start from: this run
            fine-tunes its networks and average with a fresh optimiser and its own step count
            (see :func:`start_from`).

    Returns:
        the final checkpoint payload (``model``: the generator_ema state dict); ``meta["test"]``
        holds the test-split ``fd``, ``fd_real`` and ``n`` (see :func:`evaluate`).
    """
    from fel.classifier import load_pretrained as load_classifier
    from fel.data import CelebA
    from fel.data.attributes import check_attribute
    from fel.training import data_meta, is_main_process, train

    train_config = replace(train_config, **GAN_OPTIMISATION)
    gan_config = gan_config or GANConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size = gan_config.size
    train_faces = CelebA(root, split="train", size=size)
    valid = CelebA(root, split="valid", size=size).images  # memory-mapped
    classifier = classifier or load_classifier(device="cpu")
    torch.manual_seed(train_config.seed)  # the initial weights follow --seed
    model = GAN(gan_config)
    meta = data_meta(dataset_name, root, size, len(train_faces))
    reals = train_faces
    if oversample:
        reals = oversampled(train_faces, oversample)
        meta["oversample"] = {check_attribute(a, train_faces.attr_names): k
                              for a, k in oversample.items()}  # fmt: skip
    if resume:
        _check_same_oversampling(out / "last.pt", meta.get("oversample"))
    if init is not None:
        meta["init"] = start_from(model, init, meta["data"], load_weights=not resume)

    def on_epoch_end(net: GAN, epoch: int) -> dict[str, float]:
        save_grids(net.generator_ema, out, f"epoch{epoch:03d}")
        r = evaluate(net.generator_ema, valid, classifier)
        return {"valid_fd": r["fd"], "valid_fd_real": r["fd_real"]}

    result = train(model, loss_fn, reals, train_config, out, model.config_dict(), meta,
                   resume=resume, on_epoch_end=on_epoch_end, max_steps=max_steps)  # fmt: skip
    result["model"] = generator_state(result["model"])
    if not is_main_process():  # under torchrun rank 0 alone scores the test split
        return result
    test = CelebA(root, split="test", size=size).images  # memory-mapped
    result["meta"]["test"] = evaluate(model.generator_ema, test, classifier)
    save_grids(model.generator_ema, out, "final")
    return result


def oversampled(faces, counts: dict[str, int]) -> Dataset:
    """``faces`` (a :class:`fel.data.CelebA`) with every face labelled with attribute ``a``
    listed ``counts[a]`` times (a face with two such attributes, the larger count), in index
    order: a ``Subset`` of len(faces) + the extra copies. A name that is not one of the faces'
    attributes raises a KeyError naming the close ones."""
    from fel.data.attributes import check_attribute

    repeats = torch.ones(len(faces), dtype=torch.long)
    for name, k in counts.items():
        name = check_attribute(name, faces.attr_names)
        if int(k) != k or k < 1:
            raise ValueError(f"oversampling counts are whole numbers >= 1, got {name}={k}")
        has = faces.labels[:, faces.attr_names.index(name)].bool()
        repeats[has] = torch.maximum(repeats[has], torch.tensor(int(k)))
    indices = torch.arange(len(faces)).repeat_interleave(repeats)
    return Subset(faces, indices.tolist())


def _check_same_oversampling(last: Path, now: dict[str, int] | None) -> None:
    """Refuse to resume ``last`` with other oversampling than it was trained with: the epochs'
    batches would change under it."""
    if not last.exists():
        return
    was = load_checkpoint(last)["meta"].get("oversample")
    if (was or None) != (now or None):
        raise ValueError(f"{last} was trained with oversampling {was or 'none'}, and this run "
                         f"asks for {now or 'none'}: resume it with the same --oversample, or "
                         "train into another output folder")  # fmt: skip


def _whole_gan(path: Path) -> dict[str, Any]:
    """A run's ``last.pt`` payload (the whole GAN); an exported file is refused by name."""
    state = load_checkpoint(path)
    if not any(k.startswith("discriminator.") for k in state["model"]):
        raise ValueError(
            f"{path} holds a generator alone (an exported checkpoint); this needs a run's "
            "last.pt, which keeps the discriminator and the optimised generator too"
        )
    return state


def load_run(path: str | os.PathLike, device: torch.device | str | None = None) -> GAN:
    """The whole GAN of a run's ``last.pt`` (both networks and the average), in eval mode on
    ``device`` (default fel.device()); ``gan.meta`` is the run's metadata."""
    state = _whole_gan(Path(path))
    gan = GAN(GANConfig(**state["config"]))
    load_state(gan, state["model"], str(path))
    gan.meta = state.get("meta", {})
    return gan.to(device or fel.device()).eval()


def start_from(model: GAN, path: str | os.PathLike, data: dict | None,
               load_weights: bool = True) -> dict[str, Any]:  # fmt: skip
    """Load another run's whole GAN (both networks, the average, ``w_avg`` and the step that
    sets the average's decay) into ``model``, refusing a run on other ``data`` (a
    :func:`fel.data.fingerprint.data_fingerprint` record). The eye critic is part of the
    objective, not of the networks fine-tuned: one that ``model`` has and the run lacks starts
    fresh, and one that the run has and ``model`` lacks is left behind.

    ``path`` may also be an exported generator (``--export``, the shipped ``gan.pt``), which holds
    the average alone: it becomes both the generator and its average, and every critic starts
    fresh (``model``'s own initial weights), at step 0.

    Returns what the new run records as ``meta["init"]``: the file, its step, config and
    training settings, its own ``init`` (None for a run from scratch), so that a chain of
    fine-tunes records every stage, and ``critics``: ``"fresh"`` for an exported file, else
    ``"loaded"``. ``load_weights=False`` only checks and describes (a resumed fine-tune, whose
    own ``last.pt`` already holds the weights).
    """
    from fel.training import check_same_data

    path = Path(path)
    state = load_checkpoint(path)
    whole = any(k.startswith("discriminator.") for k in state["model"])
    check_same_data(state["meta"].get("data"), data, path, "fine-tuning it",
                    "Start from a run on the data in use, or train from scratch.")  # fmt: skip
    if load_weights:
        own = model.state_dict()
        if whole:
            critic = "eye_discriminator."
            weights = {k: v for k, v in state["model"].items()
                       if not k.startswith(critic) or k in own}  # fmt: skip
            fresh = {k: v for k, v in own.items() if k.startswith(critic) and k not in weights}
        else:  # an exported average: G and its average both start from it, the critics fresh
            # (load_state casts the fp16 export to the model's dtypes)
            weights = {f"{net}.{k}": v for net in ("generator", "generator_ema")
                       for k, v in state["model"].items()}  # fmt: skip
            fresh = {k: v for k, v in own.items() if not k.startswith("generator")}
        load_state(model, {**weights, **fresh}, str(path))
    meta = state["meta"]
    return {"path": str(path), "step": meta.get("step"), "config": state["config"],
            "train_config": meta.get("train_config"), "init": meta.get("init"),
            "critics": "loaded" if whole else "fresh"}  # fmt: skip


def export(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the small committed checkpoint: the ``generator_ema`` weights in fp16 (the
    discriminator and the raw generator are only needed to go on training), config, metadata."""
    return export_checkpoint({**payload, "model": generator_state(payload["model"])}, path)


def load(path: str | os.PathLike, device: torch.device | str | None = None,
         raw: bool = False) -> Generator:  # fmt: skip
    """The generator of a checkpoint, in eval mode, on ``device`` (default fel.device()).

    ``path`` is an exported file (``export``, ``--export``) or a run's ``last.pt``, whose
    ``generator_ema`` is taken (with ``raw``: the trained ``generator`` itself, which only a
    ``last.pt`` holds); the checkpoint's metadata becomes ``generator.meta``.
    """
    payload = load_checkpoint(path)
    generator = Generator(GANConfig(**payload["config"]))
    load_state(generator, generator_state(payload["model"], raw, str(path)), str(path))
    generator.meta = payload.get("meta", {})
    return generator.to(device or fel.device()).eval()


def load_pretrained(device: torch.device | str | None = None) -> Generator:
    """The shipped generator (``data/checkpoints/gan.pt``), trained on SynthFaces by fel's recipe.

    Read from ``$FEL_CHECKPOINTS`` (a ``train course`` folder) when it has the file, else from
    ``data/checkpoints/``, and refused with a :class:`fel.checkpoints.DataMismatchError` when it
    was trained on other data than the data in use (``$FEL_CELEBA_ROOT`` or ``data/synthfaces``).

    Raises:
        FileNotFoundError: the file is missing; the message gives the command that trains it.
    """
    path = resolve_checkpoint(CHECKPOINT)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the GAN checkpoint has not been trained yet (or was deleted: "
            f"`git checkout data/checkpoints` restores a committed one). Train and export it "
            f"with `{TRAIN_COMMAND}`, or load another checkpoint with fel.interface_gan.load(path)."
        )
    return load_course_checkpoint(CHECKPOINT, load, device)
