"""Checkpoints: ``{"model": state_dict, "config": {...}, "meta": {...}}``, written atomically.

Files are written to a temporary sibling and ``os.replace``d into place, so an interrupted save
never leaves a broken checkpoint, and read with ``torch.load(..., weights_only=True)``, so loading
a file never runs code from it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

import fel


class CheckpointError(ValueError):
    """A checkpoint file that is not what fel expects; the message says which key or shape."""


class DataMismatchError(CheckpointError):
    """A checkpoint trained on other data than the data in use; the message says both, and how
    to train checkpoints on the data in use."""


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        FileNotFoundError: with a hint on how to get or train it.
        CheckpointError: the file is truncated, not a torch file, or lacks "model"/"config".
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} not found. The shipped checkpoints live in {fel.CHECKPOINT_DIR} "
            "(restore them with `git checkout data/checkpoints`), or train one with `python -m fel train ...`."
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(payload, dict) or "model" not in payload or "config" not in payload:
        keys = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(
            f"{path} lacks the 'model' and 'config' entries of a fel checkpoint (found {keys})"
        )
    return payload


def load_state(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    source: str = "checkpoint",
    file_key: Callable[[str], str] | None = None,
) -> None:
    """Load ``state`` into ``model`` strictly; a mismatch names the key and both shapes.

    ``file_key`` maps the model's state-dict names to the file's, when a published format names
    them otherwise; ``state`` and every message then use the file's names.
    """
    own_state = model.state_dict()
    names = {file_key(k) if file_key else k: k for k in own_state}
    own = {name: own_state[k] for name, k in names.items()}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise CheckpointError(
            f"{source} does not fit {type(model).__name__}: missing keys {missing[:5]}, "
            f"unexpected keys {unexpected[:5]}"
        )
    for key, value in state.items():
        if own[key].shape != value.shape:
            raise CheckpointError(
                f"{source}: '{key}' has shape {tuple(value.shape)} but the model expects "
                f"{tuple(own[key].shape)}; was it trained with another config?"
            )
    model.load_state_dict({names[k]: v.to(own[k].dtype) for k, v in state.items()})


def half_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors as float16 (for small committed checkpoints); others unchanged."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def export_checkpoint(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the small checkpoint that gets committed: fp16 weights, config and metadata, no
    optimiser state."""
    return save_checkpoint(
        path,
        {
            "model": half_state(payload["model"]),
            "config": payload["config"],
            "meta": payload["meta"],
        },
    )


def load_model(
    path: str | os.PathLike, build, device: torch.device | str | None = None
) -> nn.Module:
    """``build(config)`` a model, fill it from the checkpoint at ``path`` and put it in eval mode
    on ``device`` (default ``fel.device()``); the checkpoint's metadata becomes ``model.meta``."""
    state = load_checkpoint(path)
    model = build(state["config"])
    load_state(model, state["model"], str(path))
    model.meta = state.get("meta", {})
    return model.to(device or fel.device()).eval()


def resolve_checkpoint(name: str) -> Path:
    """Where a course checkpoint (``vae.pt``, ``glow.pt``, ``gan.pt``, ``classifier.pt``) is read
    from: ``$FEL_CHECKPOINTS/name`` (a folder written by ``python -m fel train course``) when that
    file exists, else the shipped ``data/checkpoints/name``."""
    folder = os.environ.get("FEL_CHECKPOINTS")
    if folder and (Path(folder).expanduser() / name).is_file():
        return Path(folder).expanduser() / name
    return fel.CHECKPOINT_DIR / name


def is_shipped(name: str) -> bool:
    """True when the course checkpoint ``name`` resolves to the one shipped in
    ``data/checkpoints/`` rather than to one of ``$FEL_CHECKPOINTS`` (see
    :func:`resolve_checkpoint`). The notebooks check their claims about the shipped models (which
    load only on the SynthFaces they were trained on) and print, not assert, on a learner's own."""
    return resolve_checkpoint(name).parent == fel.CHECKPOINT_DIR


def check_trained_on(
    meta: dict,
    path: str | os.PathLike,
    root: str | os.PathLike | None = None,
    loader: str = "fel.vae.load",
) -> None:
    """Refuse a checkpoint trained on other data than ``root`` (default: the data in use, see
    :func:`fel.data.fingerprint.data_in_use`; nothing to check before any data exists).

    The fingerprints recorded in ``meta["data"]`` are compared (file list and labels, so the
    same CelebA in another layout passes). A checkpoint from before fingerprints is compared by
    its data set's kind (SynthFaces or CelebA) only.

    ``loader`` names the function that loads the file by path, for the message.

    Raises:
        DataMismatchError: what the checkpoint was trained on, what data is in use, and the
            ``train course`` command that makes checkpoints for it.
    """
    from fel.data.fingerprint import data_fingerprint, data_in_use, describe

    root = Path(root) if root is not None else data_in_use()
    if root is None:
        return
    using = data_fingerprint(root)
    trained = meta.get("data")
    if trained is None:
        kind = "SynthFaces" if meta.get("dataset") == "synthfaces" else "CelebA"
        if kind == using["dataset"]:
            return
        trained_text = f"{kind} ({meta.get('root', 'unknown root')})"
    elif trained.get("fingerprint") == using["fingerprint"]:
        return
    else:
        trained_text = describe(trained)
    source = "FEL_CELEBA_ROOT=" if os.environ.get("FEL_CELEBA_ROOT") else ""
    raise DataMismatchError(
        f"{path} was trained on {trained_text}, but the data in use ({source}{root}) is "
        f"{describe(using)}: its scores and edits would mean nothing there. Train the course's "
        f"checkpoints on it with `python -m fel train course --data celeba --root {root} --out DIR` "
        "and `export FEL_CHECKPOINTS=DIR`; to apply this checkpoint anyway, load it by path "
        f"({loader}({str(path)!r}))."
    )


def load_course_checkpoint(name: str, load, device=None) -> nn.Module:
    """``load(path, device)`` of the resolved checkpoint :func:`resolve_checkpoint` ``(name)``,
    checked against the data in use (:func:`check_trained_on`)."""
    path = resolve_checkpoint(name)
    model = load(path, device)
    check_trained_on(getattr(model, "meta", {}), path, loader=f"{load.__module__}.{load.__name__}")
    return model
