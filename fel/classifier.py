"""The 40-attribute predictor: the yardstick every editing method is scored with.

A compact CNN on 64x64 faces with two heads: 40 attribute logits (multi-label) and, when trained on
SynthFaces, a regression of the continuous factors (smile, mouth opening, eye opening, ...), so an
edit can be measured in the units of the ground truth.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from fel.checkpoints import export_checkpoint, load_course_checkpoint, load_model
from fel.data.attributes import ATTRIBUTES, check_attribute
from fel.data.synthfaces import FACTOR_NAMES
from fel.training import TrainConfig

#: Factors the regression head predicts (identity, texture seed and hair category are not
#: quantities an image shows on a continuous scale).
FACTOR_TARGETS = tuple(n for n in FACTOR_NAMES if n not in ("identity", "noise_seed", "hair_color"))
CHECKPOINT = "classifier.pt"
#: The shipped predictor's training settings and width: the CLI's defaults and ``train course``
#: derive from them.
TRAINING = TrainConfig(epochs=10, batch_size=128, lr=2e-3)
WIDTH = 16  # channels of the first block


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 conv + BatchNorm + ReLU layers, the second with stride 2: [B, cin, H, W] ->
    [B, cout, H/2, W/2] (the predictor's and the identity embedding's building block)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def fit_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images [B, 3, H, W] resized (bilinear, antialiased) to [B, 3, size, size]; unchanged when
    they have that size already."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False)  # fmt: skip


class AttributeClassifier(nn.Module):
    """CNN: image [B,3,S,S] in [0,1] -> (attribute logits [B,40], standardised factors [B,F]).

    Args:
        attr_names: the attributes predicted (default CelebA's 40).
        factor_names: the factors regressed (empty when trained on real CelebA).
        width: channels of the first block; they double at each of the four blocks.
    """

    def __init__(
        self,
        attr_names: tuple[str, ...] | list[str] = ATTRIBUTES,
        factor_names: tuple[str, ...] | list[str] = FACTOR_TARGETS,
        width: int = 16,
        size: int = 64,
    ) -> None:
        super().__init__()
        self.size = size  # inputs of other sizes are resized to this one
        self.attr_names, self.factor_names = list(attr_names), list(factor_names)
        w = width
        self.features = nn.Sequential(
            conv_block(3, w),
            conv_block(w, 2 * w),
            conv_block(2 * w, 4 * w),
            conv_block(4 * w, 8 * w),
        )
        self.attributes = nn.Linear(8 * w, len(self.attr_names))
        self.factor_head = nn.Linear(8 * w, len(self.factor_names)) if self.factor_names else None
        # Factor standardisation, set from the training data: factor = mean + std * output.
        self.register_buffer("factor_mean", torch.zeros(len(self.factor_names)))
        self.register_buffer("factor_std", torch.ones(len(self.factor_names)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.features(x * 2 - 1).mean(dim=(2, 3))
        factors = self.factor_head(h) if self.factor_head is not None else None
        return self.attributes(h), factors

    @torch.no_grad()
    def _batched(
        self, images: torch.Tensor, batch_size: int = 256
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        device = next(self.parameters()).device
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(
                f"expected images [B, 3, H, W] in [0, 1], got shape {tuple(images.shape)}"
            )
        logits, factors = [], []
        for chunk in images.split(batch_size):  # resized chunk by chunk: no full-size copy
            a, f = self(fit_size(chunk.to(device, torch.float32), self.size))
            logits.append(a.float().cpu())
            if f is not None:
                factors.append(f.float().cpu())
        return torch.cat(logits), (torch.cat(factors) if factors else None)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Attribute probabilities [B, n_attrs] for images [B,3,H,W] in [0,1] (resized to the
        model's training size)."""
        return torch.sigmoid(self._batched(images)[0])

    def factors(self, images: torch.Tensor) -> torch.Tensor:
        """Estimated factors [B, n_factors] in the units of ``list_factors_synthfaces.txt``."""
        _, f = self._batched(images)
        if f is None:
            raise ValueError(
                "this classifier has no factor head (it was trained without SynthFaces factors)"
            )
        return self.to_factor_units(f)

    def to_factor_units(self, standardised: torch.Tensor) -> torch.Tensor:
        """The factor head's standardised outputs [B, F] (on the CPU) in factor units."""
        return standardised * self.factor_std.cpu() + self.factor_mean.cpu()

    def attribute_index(self, name: str) -> int:
        """Column of ``name`` in :meth:`predict`'s output (a misspelt name lists close ones)."""
        return self.attr_names.index(check_attribute(name, self.attr_names))

    def factor_index(self, name: str) -> int:
        return self.factor_names.index(check_attribute(name, self.factor_names))


def build(config: dict[str, Any]) -> AttributeClassifier:
    return AttributeClassifier(
        config["attr_names"], config["factor_names"], config["width"], config.get("size", 64)
    )


def load(path: str | os.PathLike, device: torch.device | str | None = None) -> AttributeClassifier:
    """A classifier from a checkpoint file, in eval mode, on ``device`` (default fel.device())."""
    return load_model(path, build, device)


def load_pretrained(device: torch.device | str | None = None) -> AttributeClassifier:
    """The shipped classifier (trained on SynthFaces by ``python -m fel train classifier``).

    Read from ``$FEL_CHECKPOINTS`` (a ``train course`` folder) when it has the file, else from
    ``data/checkpoints/``, and refused with a :class:`fel.checkpoints.DataMismatchError` when it
    was trained on other data than the data in use (``$FEL_CELEBA_ROOT`` or ``data/synthfaces``).
    """
    return load_course_checkpoint(CHECKPOINT, load, device)


# ----------------------------------------------------------------------------- training


class FacesWithFactors(Dataset):
    """(image, labels, standardised factors) triples: a CelebA-layout dataset plus SynthFaces factors."""

    def __init__(self, faces: Dataset, factors: np.ndarray, mean: np.ndarray, std: np.ndarray):
        self.faces = faces
        self.factors = torch.from_numpy(((factors - mean) / std).astype(np.float32))

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i: int):
        image, labels = self.faces[i]
        return image, labels, self.factors[i]


def factor_table(root: str | os.PathLike, filenames: list[str]) -> np.ndarray:
    """The FACTOR_TARGETS of ``filenames`` from a SynthFaces folder, as float64 [N, F]."""
    from fel.data.synthfaces import read_factors

    names, rows = read_factors(root)
    index = {n: i for i, n in enumerate(names)}
    missing = [f for f in filenames if f not in index]
    if missing:
        raise ValueError(f"{len(missing)} images have no factors in {root}, e.g. {missing[0]}")
    picked = rows[[index[f] for f in filenames]]
    return np.stack([picked[name] for name in FACTOR_TARGETS], axis=1)


def make_loss(attr_weight: torch.Tensor, factor_weight: float = 1.0):
    """Multi-label BCE over the attributes with weight > 0, plus MSE on standardised factors."""

    def loss_fn(model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        images, labels = batch[0], batch[1]
        logits, factors = model(images)
        w = attr_weight.to(logits.device)
        bce = (
            F.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none") * w
        ).sum(1).mean() / w.sum()
        logs = {"bce": bce.item()}
        loss = bce
        if len(batch) > 2 and factors is not None:
            mse = F.mse_loss(factors.float(), batch[2])
            loss = loss + factor_weight * mse
            logs["factor_mse"] = mse.item()
        return loss, logs

    return loss_fn


@torch.no_grad()
def evaluate(
    model: AttributeClassifier, faces: Dataset, factors: np.ndarray | None = None
) -> dict[str, Any]:
    """Per-attribute accuracy and ROC AUC (sklearn) on ``faces``; factor R^2 when given factors.

    Attributes with a single class in ``faces`` (e.g. those SynthFaces does not draw) get no AUC
    and are left out of the means.
    """
    from sklearn.metrics import r2_score, roc_auc_score

    if len(faces) == 0:
        raise ValueError("cannot evaluate on an empty split: the dataset has too few identities")
    from fel.data.celeba import iter_batches

    if hasattr(faces, "images"):  # a CelebA dataset: read its cache chunk by chunk
        batches = iter_batches(faces.images)
    else:
        batches = (
            torch.stack([faces[k][0] for k in range(s, min(s + 512, len(faces)))])
            for s in range(0, len(faces), 512)
        )
    logits, estimates = [], []
    for chunk in batches:
        a, f = model._batched(chunk)
        logits.append(a)
        if f is not None:
            estimates.append(model.to_factor_units(f))
    probs = torch.sigmoid(torch.cat(logits)).numpy()
    labels = faces.labels.numpy()
    report: dict[str, Any] = {"attributes": {}}
    for j, name in enumerate(model.attr_names):
        if name not in faces.attr_names:
            continue
        y = labels[:, faces.attr_names.index(name)]
        if y.min() == y.max():
            continue
        report["attributes"][name] = {
            "accuracy": float(((probs[:, j] > 0.5) == y).mean()),
            "auc": float(roc_auc_score(y, probs[:, j])),
            "positive_rate": float(y.mean()),
        }
    rows = report["attributes"].values()
    report["mean_auc"] = float(np.mean([r["auc"] for r in rows]))
    report["mean_accuracy"] = float(np.mean([r["accuracy"] for r in rows]))
    if factors is not None and model.factor_head is not None:
        est = torch.cat(estimates).numpy()
        report["factor_r2"] = {
            n: float(r2_score(factors[:, k], est[:, k])) for k, n in enumerate(model.factor_names)
        }
    return report


def train_classifier(
    root: str | os.PathLike,
    out: str | os.PathLike,
    config: TrainConfig = TRAINING,
    size: int = 64,
    width: int = WIDTH,
    with_factors: bool = True,
    resume: bool = False,
    max_steps: int | None = None,
    dataset_name: str = "synthfaces",
) -> dict[str, Any]:
    """Train the attribute classifier on ``root`` (train split), scoring the valid split each epoch.

    Returns:
        the final checkpoint payload; ``meta["test"]`` holds the test-split report.
    """
    from fel.data import CelebA
    from fel.training import data_meta, is_main_process, train

    train_faces = CelebA(root, split="train", size=size)
    valid_faces = CelebA(root, split="valid", size=size)
    attr_weight = (train_faces.labels.float().mean(0) > 0).float()  # skip attributes never positive
    factor_names = FACTOR_TARGETS if with_factors else ()
    torch.manual_seed(config.seed)  # the initial weights follow --seed
    model = AttributeClassifier(train_faces.attr_names, factor_names, width, size)
    dataset: Dataset = train_faces
    if with_factors:
        table = factor_table(root, train_faces.filenames)
        mean, std = table.mean(0), table.std(0) + 1e-6
        model.factor_mean.copy_(torch.from_numpy(mean).float())
        model.factor_std.copy_(torch.from_numpy(std).float())
        dataset = FacesWithFactors(train_faces, table, mean, std)

    def on_epoch_end(net: AttributeClassifier, epoch: int) -> dict[str, float]:
        r = evaluate(net, valid_faces)
        return {"valid_mean_auc": r["mean_auc"], "valid_mean_accuracy": r["mean_accuracy"]}

    model_config = {"attr_names": list(train_faces.attr_names), "factor_names": list(factor_names),
                    "width": width, "size": size}  # fmt: skip
    meta = data_meta(dataset_name, root, size, len(train_faces))
    result = train(model, make_loss(attr_weight), dataset, config, out, model_config, meta,
                   resume=resume, on_epoch_end=on_epoch_end, max_steps=max_steps)  # fmt: skip
    if not is_main_process():  # under torchrun rank 0 alone scores the test split
        return result
    test_faces = CelebA(root, split="test", size=size)
    test_factors = factor_table(root, test_faces.filenames) if with_factors else None
    model.eval()
    result["meta"]["test"] = evaluate(model, test_faces, test_factors)
    return result


def export(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a small checkpoint (fp16 weights, no optimiser state) for committing."""
    return export_checkpoint(payload, path)
