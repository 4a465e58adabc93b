"""Identity embedding: is the edited face still the same person? ``python -m fel train identity``.

Papers on face editing report how well an edit keeps the person as the cosine between ArcFace
embeddings of the face before and after it. ArcFace's weights cannot be downloaded here, so the
course trains its own small embedding, with the same kind of loss, on the identity labels of the
data (``identity_CelebA.txt``: real CelebA ships it, SynthFaces writes one):

    e(x) = normalize(W flatten(CNN(x)))           x [B, 3, S, S] in [0, 1] -> e [B, D], |e| = 1
    cos_k = e . c_k / |c_k|                        one learned centre c_k per training person
    loss  = cross_entropy(s (cos - m onehot(y)), y)          (CosFace: Wang et al., 2018)

The margin m makes each face's cosine to its own person's centre beat every other person's by m.
The embedding is scored on the *held-out* people of the test split (CelebA's splits share no
person) as a verification task: every pair of test faces, ranked by the cosine of their
embeddings, against "same person or not": ROC AUC, the equal error rate and the cosine threshold
at that rate. An edit's identity similarity is ``cos(e(before), e(after))``; above the threshold
the verifier would call the two faces one person.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from fel.checkpoints import export_checkpoint, load_course_checkpoint, load_model
from fel.classifier import conv_block, fit_size
from fel.training import TrainConfig

CHECKPOINT = "identity.pt"
#: The command that trains and exports the shipped embedding.
TRAIN_COMMAND = (
    "python -m fel train identity --data synthfaces --root data/synthfaces --out runs/identity "
    "--export data/checkpoints/identity.pt"
)
#: Faces whose pairs a verification scores (a seeded sample when a split has more): 3,000 faces
#: make 4.5 million pairs, of which some 30,000 are of one person on SynthFaces.
VERIFY_FACES = 3000


@dataclass
class IdentityConfig:
    """The embedding network and its loss (defaults: the shipped recipe)."""

    size: int = 64  # input side; other sizes are resized to it
    width: int = 16  # channels of the first of four blocks; they double at each
    dim: int = 128  # embedding size
    scale: float = 16.0  # s: the logits' scale (the cosines lie in [-1, 1])
    margin: float = 0.2  # m: the cosine margin of the true person

    def __post_init__(self) -> None:
        if self.size < 16 or self.size % 16:
            raise ValueError(
                f"size must be a multiple of 16 (four stride-2 blocks), got {self.size}"
            )
        if self.dim < 2 or self.width < 1 or self.scale <= 0 or not 0 <= self.margin < 1:
            raise ValueError("need dim >= 2, width >= 1, scale > 0 and margin in [0, 1)")


#: The recipe's optimisation (the classifier's: its network is the same size).
TRAINING = TrainConfig(epochs=10, batch_size=128, lr=2e-3)


class IdentityEmbedder(nn.Module):
    """CNN: faces [B, 3, S, S] in [0, 1] -> unit embeddings [B, dim].

    The last feature map (S/16 x S/16) is flattened, not averaged, so where a feature sits (the
    eyes' spacing, the face's outline) counts as much as what it is.
    """

    def __init__(self, config: IdentityConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or IdentityConfig()
        w = c.width
        self.features = nn.Sequential(
            conv_block(3, w),
            conv_block(w, 2 * w),
            conv_block(2 * w, 4 * w),
            conv_block(4 * w, 8 * w),
        )
        self.project = nn.Linear(8 * w * (c.size // 16) ** 2, c.dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.project(self.features(x * 2 - 1).flatten(1)), dim=1)

    @torch.no_grad()
    def embed(self, images: Tensor, batch_size: int = 256) -> Tensor:
        """Unit embeddings [B, dim] (on the CPU) of images [B, 3, H, W] in [0, 1] (uint8 images
        are divided by 255), resized to the model's size."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(
                f"expected images [B, 3, H, W] in [0, 1], got shape {tuple(images.shape)}"
            )
        device = next(self.parameters()).device
        scale = 255.0 if images.dtype == torch.uint8 else 1.0
        out = [self(fit_size(c.to(device, torch.float32) / scale, self.config.size)).cpu()
               for c in images.split(batch_size)]  # fmt: skip
        return torch.cat(out)

    def similarity(self, a: Tensor, b: Tensor) -> Tensor:
        """Cosine [B] between the embeddings of faces ``a`` and ``b`` [B, 3, H, W], face by face."""
        if a.shape[0] != b.shape[0]:
            raise ValueError(f"{a.shape[0]} faces against {b.shape[0]}: compare face by face")
        return (self.embed(a) * self.embed(b)).sum(1)

    @property
    def threshold(self) -> float | None:
        """The cosine above which the verifier calls two faces one person (the test split's
        equal-error-rate threshold), when the model was trained by :func:`train_identity`."""
        return getattr(self, "meta", {}).get("test", {}).get("threshold")


class CosFace(nn.Module):
    """The embedder and one learned centre per training person; the forward is the loss.

    ``(faces [B, 3, S, S], person indices [B] in [0, people)) -> (loss, accuracy)``: CosFace's
    cross-entropy, and how often the nearest centre is the right person.
    """

    def __init__(self, embedder: IdentityEmbedder, people: int) -> None:
        super().__init__()
        self.embedder = embedder
        self.centres = nn.Parameter(torch.randn(people, embedder.config.dim))

    def forward(self, x: Tensor, person: Tensor) -> tuple[Tensor, Tensor]:
        c = self.embedder.config
        cos = self.embedder(x) @ F.normalize(self.centres, dim=1).T  # [B, people]
        logits = c.scale * (cos - c.margin * F.one_hot(person, cos.shape[1]))
        loss = F.cross_entropy(logits.float(), person)
        return loss, (cos.argmax(1) == person).float().mean()


def loss_fn(model: nn.Module, batch) -> tuple[Tensor, dict[str, float]]:
    """CosFace's loss of one batch; ``model`` is a :class:`CosFace`, or DDP around one."""
    loss, accuracy = model(batch[0], batch[1])
    return loss, {"accuracy": accuracy.item()}


class FacesWithPeople(Dataset):
    """(image, person index) pairs: a CelebA-layout dataset and each of its faces' person."""

    def __init__(self, faces: Dataset, people: Tensor) -> None:
        if len(people) != len(faces):
            raise ValueError(f"{len(people)} person labels for {len(faces)} faces")
        self.faces, self.people = faces, people

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.faces[i][0], self.people[i]

    def __getitems__(self, indices: list[int]) -> list[tuple[Tensor, Tensor]]:
        items = self.faces.__getitems__(indices)  # one read of a cached split per batch
        return [(image, self.people[i]) for (image, _), i in zip(items, indices)]


def people_of(faces) -> np.ndarray:
    """The person number [N] of each face of a :class:`fel.data.CelebA` dataset, from its
    ``identity_CelebA.txt`` (see :func:`fel.data.read_identities`)."""
    from fel.data.celeba import CelebAFormatError, read_identities

    table = read_identities(faces.root)
    missing = [f for f in faces.filenames if f not in table]
    if missing:
        raise CelebAFormatError(
            f"{len(missing)} image(s) of {faces.root} have no person in identity_CelebA.txt, "
            f"e.g. {missing[0]}"
        )
    return np.array([table[f] for f in faces.filenames], dtype=np.int64)


@torch.no_grad()
def verify(embedder: IdentityEmbedder, images, people, n: int = VERIFY_FACES,
           seed: int = 0) -> dict[str, float]:  # fmt: skip
    """Face verification over every pair of up to ``n`` faces (a seeded sample of them).

    Args:
        images: faces [N, 3, S, S], uint8 or float in [0, 1] (a tensor, an array or a dataset's
            memory-mapped cache).
        people: the person of each face [N].

    Returns:
        ``auc`` (ROC AUC of the cosine for "same person"), ``eer`` (equal error rate),
        ``threshold`` (the cosine at that rate), ``same_mean`` and ``different_mean`` (mean cosine
        of pairs of one person and of two), and the counts ``faces``, ``people``, ``pairs``.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    people = np.asarray(people)
    if len(people) != len(images):
        raise ValueError(f"{len(people)} person labels for {len(images)} faces")
    pick = np.sort(np.random.default_rng(seed).permutation(len(people))[:n])
    e = embedder.embed(torch.as_tensor(np.asarray(images[pick]))).numpy().astype(np.float64)
    upper = np.triu_indices(len(pick), 1)
    cos = (e @ e.T)[upper]
    same = (people[pick][:, None] == people[pick][None, :])[upper]
    if same.all() or not same.any():
        raise ValueError(
            "verification needs pairs of one person and pairs of two: "
            f"{len(pick)} faces of {len(np.unique(people[pick]))} people"
        )
    fpr, tpr, thresholds = roc_curve(same, cos)
    k = int(np.argmin(np.abs(fpr - (1 - tpr))))
    return {
        "auc": float(roc_auc_score(same, cos)),
        "eer": float((fpr[k] + 1 - tpr[k]) / 2),
        "threshold": float(thresholds[k]),
        "same_mean": float(cos[same].mean()),
        "different_mean": float(cos[~same].mean()),
        "faces": len(pick),
        "people": int(len(np.unique(people[pick]))),
        "pairs": int(len(cos)),
    }


def _verifiable(people: np.ndarray) -> bool:
    """Whether faces of these people make pairs of one person and pairs of two."""
    counts = np.unique(people, return_counts=True)[1]
    return len(counts) >= 2 and bool((counts >= 2).any())


def train_identity(root: str | os.PathLike, out: str | os.PathLike,
                   train_config: TrainConfig = TRAINING, config: IdentityConfig | None = None,
                   resume: bool = False, max_steps: int | None = None,
                   dataset_name: str = "synthfaces") -> dict[str, Any]:  # fmt: skip
    """Train the embedding on the train split's people, verifying on the valid split's after
    each epoch and on the test split's held-out people at the end (``meta["test"]``).

    Returns:
        the checkpoint payload of the embedder alone (the per-person centres are dropped: they
        name training people and are no use on others).
    """
    from fel.data import CelebA
    from fel.training import data_meta, is_main_process, train

    config = config or IdentityConfig()
    train_faces = CelebA(root, split="train", size=config.size)
    numbers = people_of(train_faces)
    known, index = np.unique(numbers, return_inverse=True)
    if len(known) < 2:
        raise ValueError(f"{root}: the train split has {len(known)} person; need at least two")
    splits = {s: CelebA(root, split=s, size=config.size) for s in ("valid", "test")}
    held_out = {}
    for name, faces in splits.items():  # verify on people the embedding never saw
        people = people_of(faces)
        unseen = np.flatnonzero(~np.isin(people, known))
        pick = np.sort(np.random.default_rng(0).permutation(unseen)[:VERIFY_FACES])
        held_out[name] = (faces.images[pick], people[pick])  # read once, not every epoch
    if not _verifiable(held_out["test"][1]):  # before training, so that no run is wasted
        raise ValueError(
            f"{root}: the test split has {len(held_out['test'][1])} faces of unseen people, too "
            "few for a verification score (it needs two faces of one person and two people)"
        )
    validate = _verifiable(held_out["valid"][1])
    if not validate:
        warnings.warn("the valid split is too small to verify on: no score per epoch", stacklevel=2)

    def on_epoch_end(net: CosFace, epoch: int) -> dict[str, float]:
        if not validate:
            return {}
        r = verify(net.embedder, *held_out["valid"])
        return {"valid_auc": r["auc"], "valid_eer": r["eer"]}

    torch.manual_seed(train_config.seed)  # the initial weights follow --seed
    model = CosFace(IdentityEmbedder(config), len(known))
    dataset = FacesWithPeople(train_faces, torch.from_numpy(index))
    meta = data_meta(dataset_name, root, config.size, len(train_faces))
    meta["train_people"] = len(known)
    result = train(model, loss_fn, dataset, train_config, out, asdict(config), meta,
                   resume=resume, on_epoch_end=on_epoch_end, max_steps=max_steps)  # fmt: skip
    prefix = "embedder."
    result["model"] = {
        k[len(prefix) :]: v for k, v in result["model"].items() if k.startswith(prefix)
    }
    if not is_main_process():  # under torchrun rank 0 alone verifies the held-out people
        return result
    model.eval()
    result["meta"]["test"] = verify(model.embedder, *held_out["test"])
    return result


def build(config: dict[str, Any]) -> IdentityEmbedder:
    return IdentityEmbedder(IdentityConfig(**config))


def load(path: str | os.PathLike, device: torch.device | str | None = None) -> IdentityEmbedder:
    """An embedder from a checkpoint file, in eval mode, on ``device`` (default fel.device())."""
    return load_model(path, build, device)


def load_pretrained(device: torch.device | str | None = None,
                    required: bool = True) -> IdentityEmbedder | None:  # fmt: skip
    """The shipped embedding (trained on SynthFaces by :data:`TRAIN_COMMAND`), resolved and
    checked against the data in use like every course checkpoint (see
    :func:`fel.checkpoints.load_course_checkpoint`).

    With ``required=False``, a missing checkpoint or one trained on other data (e.g. a
    ``train course`` folder for a CelebA copy without ``identity_CelebA.txt``) gives None and a
    one-line warning saying why, so that editors and tables go on without the identity cosine.
    """
    from fel.checkpoints import DataMismatchError

    try:
        return load_course_checkpoint(CHECKPOINT, load, device)
    except (FileNotFoundError, DataMismatchError) as err:
        if required:
            raise
        reason = _no_identity_labels() or str(err)
        warnings.warn(f"no identity embedding for the data in use, so no identity cosine: {reason}",
                      stacklevel=2)  # fmt: skip
        return None


def _no_identity_labels() -> str | None:
    """Why no embedding can be trained for the data in use, when its copy has no identity file
    (``train course`` skips the stage there, so telling the learner to run it would not help)."""
    from fel.data.celeba import find_layout
    from fel.data.fingerprint import data_in_use

    root = data_in_use()
    if root is None or (find_layout(root).base / "identity_CelebA.txt").is_file():
        return None
    return (f"{root} has no identity_CelebA.txt (Kaggle's copy leaves it out), so `train course` "
            "skips the identity stage; put the file from the CelebA page beside "
            "list_attr_celeba and run `train course` again to get one")  # fmt: skip


def export(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the small checkpoint that gets committed (fp16 weights, no optimiser state)."""
    return export_checkpoint(payload, path)
