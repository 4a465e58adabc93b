"""Edit a photo outside a notebook: ``python -m fel edit PHOTO --model vae --edit Smiling=+2``.

The photo is aligned to CelebA's frame (:func:`fel.faces.align`), encoded by one family (the
VAE's encoder, Glow's exact inverse, or inversion into the GAN's W), moved along attribute
directions in **σ**, the sliders' unit (the spread of the training codes along a direction), and
decoded. The directions are made as :mod:`fel.bench`'s ``edits`` and the notebooks make them:
the mean difference of encoded, labelled training faces for the VAE and Glow (balanced over a
correlated attribute where :data:`CONFOUNDERS` names one); InterfaceGAN's SVC boundary in W, from
generated faces the course's attribute predictor labelled, for the GAN. A local edit
(:meth:`FamilyDirections.local`) keeps them out of the hair, skin and background.

Shapes: codes [N, D]; images [B, 3, S, S] in [0, 1].
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

import fel
from fel.data.attributes import check_attribute
from fel.directions import sigma_step
from fel.faces import align, to_model_input
from fel.viz import grid

FAMILIES = ("vae", "glow", "gan")
#: The GAN's truncation for scoring, inversion and decoding (InterfaceGAN's psi).
GAN_PSI = 0.7
#: Attribute -> the correlated attribute its VAE and Glow direction is balanced over
#: (:func:`fel.directions.balanced_mean_difference`). Narrow eyes come with smiles in the data
#: (a squint), so the plain mean difference of Narrow_Eyes also smiles: in the shipped VAE it
#: raised P(Smiling) by +0.32 at the step that narrowed the eyes (leakage 0.057 -> 0.045).
CONFOUNDERS = {"Narrow_Eyes": "Smiling"}
#: The longest code :meth:`FamilyDirections.local` takes Jacobians for (one forward pass each).
LOCAL_MAX_DIM = 1024
#: Output formats: a picture, or for a sweep an animated GIF or a PNG strip of its faces.
PICTURES, SWEEPS = (".png", ".jpg", ".jpeg"), (".gif", ".png")


def parse_edit(text: str) -> tuple[str, float]:
    """``"Smiling=+2"`` -> ``("Smiling", 2.0)``: an attribute and a step in σ."""
    name, sep, value = text.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise ValueError(
            f"cannot read the edit {text!r}: write ATTRIBUTE=SIGMA, e.g. Smiling=+2"
        ) from None


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """``"Smiling=-3:3:13"`` -> ``("Smiling", [-3.0, -2.5, ..., 3.0])``: 13 steps from -3 σ to 3 σ."""
    name, sep, spec = text.partition("=")
    parts = spec.split(":")
    try:
        if not sep or not name.strip() or len(parts) != 3:
            raise ValueError
        start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise ValueError(
            f"cannot read the sweep {text!r}: write ATTRIBUTE=START:STOP:FRAMES, "
            "e.g. Smiling=-3:3:13"
        ) from None
    if count < 2:
        raise ValueError(f"a sweep needs at least 2 frames, got {count} in {text!r}")
    return name.strip(), np.linspace(start, stop, count).tolist()


@dataclass
class FamilyDirections:
    """One family, ready to edit: ``model`` (encode/decode; the GAN seen from W at
    :data:`GAN_PSI`), ``codes`` [N, D] (the codes the directions came from, whose spread is the
    σ unit) and ``directions`` (attribute -> direction [D], not normalised)."""

    model: torch.nn.Module
    codes: Tensor
    directions: dict[str, Tensor]

    def steps(self) -> dict[str, Tensor]:
        """attribute -> one σ step [D] on the model's device."""
        device = next(self.model.parameters()).device
        return {a: sigma_step(d, self.codes).to(device) for a, d in self.directions.items()}

    def local(self, rank: int, n_codes: int = 16, progress: bool = True) -> FamilyDirections:
        """The same directions kept out of the pixels outside the inner face (LowRankGAN's
        null-space projection, :mod:`fel.local_edits`): each loses its part in the top ``rank``
        eigenvectors of the outside pixels' Jacobian Gram, averaged over the first ``n_codes``
        codes. Costs ``n_codes`` x D forward passes: for the GAN's 128-dim W about 0.8 s a
        code on 2 CPU cores; codes of more than :data:`LOCAL_MAX_DIM` dimensions are refused.

        Raises:
            ValueError: ``rank`` not in [1, D), or a code too long for exact Jacobians (Glow's).
        """
        from fel.local_edits import null_space_projection, outside_mask, pixel_gram

        dim = self.codes.shape[1]
        if dim > LOCAL_MAX_DIM:
            raise ValueError(
                f"local edits need the Jacobian of every pixel by every code dimension; this "
                f"model's codes have {dim} (at most {LOCAL_MAX_DIM}: the VAE's and the GAN's W)"
            )
        if not 1 <= rank < dim:
            raise ValueError(
                f"the local rank must be in [1, {dim}) for {dim}-dim codes, got {rank}"
            )
        device = next(self.model.parameters()).device
        with torch.no_grad():
            size = self.model.decode(self.codes[:1].to(device)).shape[-1]
        gram = pixel_gram(self.model, self.codes[:n_codes], outside_mask(size), progress)
        directions = {a: null_space_projection(d, gram, rank) for a, d in self.directions.items()}
        return FamilyDirections(self.model, self.codes, directions)


def gan_directions(generator, attributes: Sequence[str], predictor, n_codes: int = 2000,
                   progress: bool = True) -> FamilyDirections:  # fmt: skip
    """InterfaceGAN's boundaries in W of ``generator`` (a :class:`fel.interface_gan.Generator`,
    whose ``truncation`` this sets to :data:`GAN_PSI`): the SVC boundary of each of
    ``attributes`` (checked) fitted to ``n_codes`` samples (seed 0) scored by ``predictor`` at
    that psi. The model is the generator seen from W."""
    from fel.directions import train_boundary
    from fel.interface_gan.boundaries import sample_and_score

    names = [check_attribute(a, predictor.attr_names) for a in attributes]
    generator.truncation = GAN_PSI
    data = sample_and_score(generator, predictor, n=n_codes, psi=GAN_PSI, seed=0,
                            progress=progress)  # fmt: skip
    directions = {
        a: train_boundary(data["w"], data["scores"][:, predictor.attr_names.index(a)])[0]
        for a in names
    }
    return FamilyDirections(generator.w_space(), data["w"], directions)


def family_directions(family: str, attributes: Sequence[str], root: str | os.PathLike | None = None,
                      n_codes: int = 2000, device=None, predictor=None,
                      progress: bool = True) -> FamilyDirections:  # fmt: skip
    """The shipped (or ``$FEL_CHECKPOINTS``) model of ``family`` and its ``attributes``' directions.

    Args:
        family: ``"vae"``, ``"glow"`` or ``"gan"``.
        attributes: CelebA attribute names (checked; a bad one lists the close ones).
        root: the labelled data for the VAE's and Glow's directions (default: the data in use,
            :func:`fel.data.default_root`).
        n_codes: training faces encoded (VAE, Glow) or faces generated and scored (GAN).
        predictor: the attribute predictor that labels the GAN's faces (default: the course's).
    """
    from fel.directions import balanced_mean_difference, mean_difference

    if family not in FAMILIES:
        raise ValueError(f"unknown model {family!r}; choose one of {', '.join(FAMILIES)}")
    device = device or fel.device()
    if family == "gan":
        from fel.classifier import load_pretrained as load_classifier
        from fel.interface_gan import load_pretrained

        predictor = predictor or load_classifier(device)
        return gan_directions(load_pretrained(device), attributes, predictor, n_codes, progress)
    from fel.codes import encode_all
    from fel.data import CelebA, default_root

    if family == "vae":
        from fel.vae import load_pretrained
    else:
        from fel.flow import load_pretrained
    model = load_pretrained(device)
    train = CelebA(root or default_root(), split="train", size=model.config.size)
    names = [check_attribute(a, train.attr_names) for a in attributes]
    codes = encode_all(model, train.images[:n_codes], batch_size=128, progress=progress)
    labels = train.labels[:n_codes]

    def direction(name: str) -> Tensor:
        label = labels[:, train.attr_names.index(name)]
        if name in CONFOUNDERS:
            confounder = labels[:, train.attr_names.index(CONFOUNDERS[name])]
            return balanced_mean_difference(codes, label, confounder)
        return mean_difference(codes, label)

    return FamilyDirections(model, codes, {a: direction(a) for a in names})


@torch.no_grad()
def encode_face(model, aligned: Image.Image, size: int, gan_steps: int = 300,
                progress: bool = True) -> tuple[Tensor, Tensor]:  # fmt: skip
    """(an aligned face (:func:`fel.faces.align`) as the model sees it [1, 3, size, size], its
    code [1, D]): the encoder, Glow's inverse, or for the GAN inversion into W (progress bar)."""
    x = to_model_input(aligned, size)
    device = next(model.parameters()).device
    if hasattr(model, "generator"):  # the GAN's W space
        return x, model.encode(x.to(device), steps=gan_steps, progress=progress).cpu()
    return x, model.encode(x.to(device)).float().cpu()


def moved(z: Tensor, steps: Mapping[str, Tensor], values: Mapping[str, float]) -> Tensor:
    """``z`` [1, D] moved by ``values[a]`` σ steps along each attribute ``a``."""
    z = z.to(next(iter(steps.values())).device).clone()
    for name, value in values.items():
        z += value * steps[name]
    return z


def picture(panels: Sequence[Tensor], scale: int = 4) -> Image.Image:
    """Images [1, 3, S, S] side by side (2 px white gaps), enlarged ``scale`` times (nearest
    neighbour: the model's own pixels, not invented detail)."""
    tiled = Image.fromarray(grid(torch.cat([p.cpu() for p in panels]), nrow=len(panels)))
    return tiled.resize((tiled.width * scale, tiled.height * scale), Image.NEAREST)


def write_gif(frames: Sequence[Image.Image], out: Path, fps: float = 8.0) -> Path:
    """Write ``frames`` as a looping animated GIF, ``fps`` frames a second."""
    frames[0].save(out, save_all=True, append_images=list(frames[1:]),
                   duration=round(1000 / fps), loop=0)  # fmt: skip
    return out


def check_output(out: str | os.PathLike, sweep: bool) -> Path:
    """The output path, refused before any work when its format does not fit the request."""
    out = Path(out)
    allowed = SWEEPS if sweep else PICTURES
    if out.suffix.lower() not in allowed:
        what = "a sweep" if sweep else "an edit"
        hint = " (MP4 needs a video writer fel does not install; write .gif)" if sweep else ""
        raise ValueError(f"cannot write {what} to {out.name}: use {' or '.join(allowed)}{hint}")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"the folder {out.parent} does not exist; create it first")
    return out


def edit_photo(photo, family: str, out: str | os.PathLike, edits: Sequence[str] = (),
               sweep: str | None = None, side_by_side: bool = False, pick: str = "only",
               n_codes: int = 2000, gan_steps: int = 300, scale: int = 4, fps: float = 8.0,
               root: str | os.PathLike | None = None, local_rank: int = 0,
               progress: bool = True) -> list[str]:  # fmt: skip
    """Align, encode, edit, decode and write ``photo``; returns the lines of a short report.

    Args:
        photo: a path or anything :func:`fel.faces.load_photo` reads.
        family: ``"vae"``, ``"glow"`` or ``"gan"``.
        out: ``.png``/``.jpg`` for an edit; ``.gif`` (animated) or ``.png`` (a strip) for a sweep.
        edits: ``"ATTRIBUTE=SIGMA"`` each (:func:`parse_edit`), applied together (and to every
            frame of a sweep).
        sweep: ``"ATTRIBUTE=START:STOP:FRAMES"`` (:func:`parse_sweep`), one frame per value.
        side_by_side: show the aligned photo and the model's unedited reconstruction before the
            edited face (the reconstruction is what the model makes of the photo; the edit is
            the difference between the last two).
        pick: ``"only"`` refuses a photo with several faces; ``"largest"`` edits the largest.
        local_rank: 0 for the directions as found; else a local edit
            (:meth:`FamilyDirections.local`): the directions kept out of this many latent
            directions that move the hair, skin and background most (16 in notebook 04).

    Raises:
        ValueError: a malformed edit or sweep, no edit at all, an output format that does not
            fit, a local rank out of range or for Glow; KeyError: an unknown attribute (with the close names); fel.faces.PhotoError:
            an unreadable photo, no face, several faces.
    """
    values = dict(parse_edit(e) for e in edits)
    swept = parse_sweep(sweep) if sweep else None
    if not values and swept is None:
        raise ValueError("nothing to do: give --edit ATTRIBUTE=SIGMA or --sweep ATTRIBUTE=A:B:N")
    if local_rank < 0:
        raise ValueError(f"the local rank must be 0 (no local edit) or more, got {local_rank}")
    out = check_output(out, sweep=swept is not None)
    attributes = list(dict.fromkeys([*values, *([swept[0]] if swept else [])]))
    aligned = align(photo, pick=pick)  # a photo without one clear face fails before any work
    device = fel.device()
    edit = family_directions(family, attributes, root=root, n_codes=n_codes, device=device,
                             progress=progress)  # fmt: skip
    if local_rank:
        edit = edit.local(local_rank, progress=progress)
    size = edit.model.generator.config.size if family == "gan" else edit.model.config.size
    names = dict(zip(attributes, edit.directions))  # as typed -> as CelebA spells it
    values = {names[a]: v for a, v in values.items()}
    x, z = encode_face(edit.model, aligned, size, gan_steps=gan_steps, progress=progress)
    steps = edit.steps()
    frames_values = [{**values, names[swept[0]]: v} for v in swept[1]] if swept else [values]
    with torch.no_grad():
        recon = edit.model.decode(z.to(device)).float().cpu()
        faces = [edit.model.decode(moved(z, steps, v)).float().cpu() for v in frames_values]
    before = [x, recon] if side_by_side else []
    if out.suffix.lower() == ".gif":  # one frame per value
        write_gif([picture([*before, f], scale) for f in faces], out, fps)
    else:  # one picture: the edit, or a sweep's faces in a row
        picture([*before, *faces], scale).save(out)
    report = [f"{family}: wrote {out} ({len(faces)} edited face{'s' * (len(faces) > 1)}, "
              f"{size}x{size} x{scale})"]  # fmt: skip
    report += _scores(recon, faces, frames_values, device)
    return report


def _scores(recon: Tensor, faces: list[Tensor], frames_values: list[dict[str, float]],
            device) -> list[str]:  # fmt: skip
    """Per frame: each edited attribute's predicted probability before -> after, and the
    identity cosine to the reconstruction (when the data in use has an identity model)."""
    from fel.classifier import load_pretrained as load_classifier
    from fel.identity import load_pretrained as load_identity

    predictor, identity = load_classifier(device), load_identity(device, required=False)
    with torch.no_grad():
        p0 = predictor.predict(recon.to(device)).float().cpu()[0]
        lines = []
        for face, values in zip(faces, frames_values):
            p = predictor.predict(face.to(device)).float().cpu()[0]
            parts = [
                f"{a} {v:+.2f} σ: P {p0[predictor.attr_names.index(a)]:.2f} -> "
                f"{p[predictor.attr_names.index(a)]:.2f}"
                for a, v in values.items()
            ]
            if identity is not None:
                cos, threshold = float(identity.similarity(recon, face)[0]), identity.threshold
                verdict = (
                    ""
                    if threshold is None
                    else (" (same person)" if cos >= threshold else " (another person)")
                )
                parts.append(f"identity cosine {cos:.2f} to the reconstruction{verdict}")
            lines.append("  " + "; ".join(parts))
    return lines
