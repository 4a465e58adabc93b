"""Comparing editing methods on one yardstick: edits of matched strength, scored the same way.

A VAE, a GAN and Glow measure an edit ``z + alpha * d`` in three different latent spaces, so
"alpha = 2" means three different things. To compare them fairly, each method edits at its
**matched strength**: the alpha at which the attribute predictor sees the same mean rise of the
target attribute's probability (say +0.25) over the same faces. At that point the side effects
are compared (:func:`score_edit`): leakage into other attributes, pixels changed outside the
edited region, and the distance to SynthFaces' true counterfactual.

Shapes: codes [N, D]; a direction [D]; images [B, 3, H, W] float in [0, 1].
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from fel.codes import model_device
from fel.data.attributes import check_attribute
from fel.directions import unit
from fel.metrics import (
    Embedder,
    Predictor,
    changed_outside,
    counterfactual_error,
    edit_report,
    identity_similarity,
    modelled_attributes,
    speckles,
)

#: The SynthFaces factor behind each attribute this module can score against ground truth
#: (each factor lies in [0, 1]; the attribute is a threshold of it).
FACTOR_OF = {
    "Smiling": "smile", "Mouth_Slightly_Open": "mouth_open", "Narrow_Eyes": "eye_open",
    "Bangs": "bangs", "Eyeglasses": "eyeglasses", "Male": "male", "Young": "age",
    "Big_Lips": "lip_fullness", "Big_Nose": "nose_size", "Arched_Eyebrows": "brow_arch",
    "Bushy_Eyebrows": "brow_thickness", "Wearing_Lipstick": "lipstick", "Heavy_Makeup": "makeup",
}  # fmt: skip


@dataclass(frozen=True)
class MatchedStrength:
    """Result of :func:`matched_strength`.

    Attributes:
        alpha: the edit size along the *unit* direction, in latent units (negative for a fall).
        change: the mean change of the target probability that ``alpha`` gives.
        rise: the change asked for.
        reached: False when even ``max_alpha`` falls short; ``alpha`` is then ``+-max_alpha``
            and ``change`` what it gives.
        evaluations: how many times the search decoded and scored the whole batch.
    """

    alpha: float
    change: float
    rise: float
    reached: bool
    evaluations: int

    def __str__(self) -> str:
        if self.reached:
            return f"alpha {self.alpha:+.3f} gives {self.change:+.3f} (asked {self.rise:+.3f})"
        return (
            f"NOT REACHED: alpha {self.alpha:+.3f} (the limit) gives only {self.change:+.3f} "
            f"(asked {self.rise:+.3f})"
        )


def _codes_and_direction(codes, direction) -> tuple[Tensor, Tensor]:
    codes = torch.as_tensor(codes).detach().float()
    d = torch.as_tensor(direction).detach().float()
    if d.dim() == 2 and d.shape[0] == 1:
        d = d[0]
    if codes.dim() != 2 or len(codes) == 0:
        raise ValueError(f"codes must be [N, D] with N >= 1, got shape {tuple(codes.shape)}")
    if d.dim() != 1 or d.shape[0] != codes.shape[1]:
        raise ValueError(
            f"direction must be [D] with D = {codes.shape[1]} (the codes' size), got shape "
            f"{tuple(d.shape)}"
        )
    if not (torch.isfinite(codes).all() and torch.isfinite(d).all()):
        raise ValueError("codes and direction must be finite")
    if d.norm() == 0:
        raise ValueError("direction is zero: there is no way to move along it")
    return codes, unit(d).to(codes.device)


@torch.no_grad()
def mean_probability(model, predictor: Predictor, codes: Tensor, target: str,
                     batch_size: int = 256) -> float:  # fmt: skip
    """Mean predicted probability of ``target`` over the faces ``model.decode(codes)``.

    Args:
        model: has ``decode(codes [B, D]) -> images [B, 3, H, W]`` (an ``nn.Module``).
        predictor: has ``attr_names`` and ``predict(images) -> probabilities [B, n_attrs]``.
        codes: [N, D], decoded ``batch_size`` at a time on the model's device.
    """
    column = predictor.attr_names.index(check_attribute(target, predictor.attr_names))
    device = model_device(model)
    total = 0.0
    for chunk in torch.as_tensor(codes).split(batch_size):
        images = model.decode(chunk.to(device)).float()
        total += float(predictor.predict(images)[:, column].double().sum())
    return total / len(codes)


def matched_strength(
    model,
    predictor: Predictor,
    codes,
    direction,
    target: str,
    rise: float = 0.25,
    max_alpha: float = 3.0,
    tol: float = 0.005,
    max_steps: int = 40,
    batch_size: int = 256,
) -> MatchedStrength:
    """The edit size alpha at which ``codes + alpha * unit(direction)`` raises the mean predicted
    probability of ``target`` by ``rise`` (lowers it, for a negative ``rise``).

    Bisection on alpha in [0, max_alpha] (in [-max_alpha, 0] for a negative rise). It assumes
    that the mean probability moves monotonically with alpha over that interval, which is what
    an attribute direction is for; if it does not, the answer is *a* crossing point, not
    necessarily the first. First the limit is tried: when ``max_alpha`` does not give the rise,
    the result says so (``reached=False``, alpha at the limit, the change it gives) instead of
    searching. Otherwise the search stops when the change is within ``tol`` of ``rise`` or
    after ``max_steps`` halvings, and returns the point of the final bracket that reaches the rise.

    Args:
        model: has ``decode(codes [B, D]) -> images [B, 3, H, W] in [0, 1]`` (an ``nn.Module``;
            a GAN in W: ``generator.w_space()``).
        predictor: has ``attr_names`` and ``predict(images) -> probabilities [B, n_attrs]``
            (e.g. :func:`fel.classifier.load_pretrained`).
        codes: [N, D] the faces to edit (e.g. encoded test faces).
        direction: [D] or [1, D]; normalised here, so alpha is a latent distance.
        target: the attribute, a name in ``predictor.attr_names`` (case-insensitive).
        rise: the mean change of the target probability to reach, in (-1, 1), not 0.
        max_alpha: the largest edit size to try (> 0), e.g. 4 standard deviations of the
            training codes along the direction.
        tol: stop when the change is this close to ``rise``.
        max_steps: at most this many halvings of the bracket.
        batch_size: codes decoded at once.

    Returns:
        :class:`MatchedStrength` (``print`` it for one line).

    Raises:
        KeyError: unknown attribute (the message lists close names).
        ValueError: bad shapes, non-finite values, a zero direction, or a rise, limit or
            tolerance out of range.
    """
    target = check_attribute(target, predictor.attr_names)
    codes, d = _codes_and_direction(codes, direction)
    if not (math.isfinite(rise) and 0 < abs(rise) < 1):
        raise ValueError(f"rise must lie in (-1, 1) and not be 0, got {rise}")
    if not (math.isfinite(max_alpha) and max_alpha > 0):
        raise ValueError(f"max_alpha must be a positive number, got {max_alpha}")
    if not tol > 0 or max_steps < 1:
        raise ValueError(f"need tol > 0 and max_steps >= 1, got {tol} and {max_steps}")
    sign = 1.0 if rise > 0 else -1.0
    start = mean_probability(model, predictor, codes, target, batch_size)
    evaluations = 1

    def change(a: float) -> float:  # signed change at alpha = sign * a
        nonlocal evaluations
        evaluations += 1
        return mean_probability(model, predictor, codes + sign * a * d, target, batch_size) - start

    lo, hi = 0.0, float(max_alpha)
    reached_at_hi = change(hi)
    if sign * reached_at_hi < abs(rise) - tol:
        return MatchedStrength(sign * hi, reached_at_hi, rise, False, evaluations)
    for _ in range(max_steps):
        if abs(reached_at_hi - rise) <= tol:
            break
        mid = (lo + hi) / 2
        c = change(mid)
        if sign * c >= abs(rise):
            hi, reached_at_hi = mid, c
        else:
            lo = mid
            if abs(c - rise) <= tol:
                return MatchedStrength(sign * mid, c, rise, True, evaluations)
    return MatchedStrength(sign * hi, reached_at_hi, rise, True, evaluations)


#: Edit strengths an :func:`sweep_edit` measures by default, in sigma (0.25 ... 6).
SWEEP_STEPS = tuple(k / 4 for k in range(1, 25))


@dataclass(frozen=True)
class EditSweep:
    """An edit ``codes + step * sigma * unit(direction)`` measured at growing ``steps`` (in sigma,
    the spread of the codes along the direction, :func:`fel.directions.spread`).

    Attributes:
        target: the attribute the edit should raise.
        sigma: the latent distance of one step unit.
        steps: the strengths measured, in sigma, ascending.
        change: per step, the mean change of the target's predicted probability.
        leakage: per step, the mean absolute change of the other modelled attributes.
        outside: per step, the share of pixels outside the inner face changed by more than 0.1
            (:func:`fel.metrics.changed_outside`).
        artefacts: per step, the share of the inner face's pixels that the edit turned into
            isolated dots (:func:`fel.metrics.speckles` after, minus before).
        rise, outside_limit, leakage_limit, artefact_limit: what counts as reached, and as clean.
        identity: per step, the mean cosine between the identity embeddings of each face before
            and after (:func:`fel.metrics.identity_similarity`); empty when not measured.
    """

    target: str
    sigma: float
    steps: tuple[float, ...]
    change: tuple[float, ...]
    leakage: tuple[float, ...]
    outside: tuple[float, ...]
    artefacts: tuple[float, ...]
    rise: float = 0.5
    outside_limit: float = 0.05
    leakage_limit: float = 0.05
    artefact_limit: float = 0.01
    identity: tuple[float, ...] = ()

    @property
    def reach(self) -> float | None:
        """The smallest step whose change reaches ``rise`` (None when no step does)."""
        return next((s for s, c in zip(self.steps, self.change) if c >= self.rise), None)

    @property
    def clean_until(self) -> float:
        """The last step before the outside share first passes ``outside_limit`` or the
        artefacts first pass ``artefact_limit`` (the largest step swept when neither does; 0 when
        the first step already does)."""
        last = 0.0
        for step, share, dots in zip(self.steps, self.outside, self.artefacts):
            if share > self.outside_limit or dots > self.artefact_limit:
                break
            last = step
        return last

    @property
    def stopped_by(self) -> str | None:
        """What ends the clean range: ``"outside"``, ``"artefacts"`` (both: ``"outside"``), or
        None when the edit stays clean over every step swept."""
        for share, dots in zip(self.outside, self.artefacts):
            if share > self.outside_limit:
                return "outside"
            if dots > self.artefact_limit:
                return "artefacts"
        return None

    def at(self, step: float) -> dict[str, float]:
        """``{"step", "change", "leakage", "outside", "artefacts"}`` (and ``"identity"``, when
        measured) at one of the swept steps."""
        i = self.steps.index(step)
        row = {"step": step, "change": self.change[i], "leakage": self.leakage[i],
               "outside": self.outside[i], "artefacts": self.artefacts[i]}  # fmt: skip
        if self.identity:
            row["identity"] = self.identity[i]
        return row

    @property
    def clean(self) -> bool:
        """The edit reaches ``rise`` and, at that step, stays within every limit."""
        if self.reach is None:
            return False
        row = self.at(self.reach)
        return (row["outside"] <= self.outside_limit and row["leakage"] <= self.leakage_limit
                and row["artefacts"] <= self.artefact_limit)  # fmt: skip

    def __str__(self) -> str:
        if self.reach is None:
            return (f"{self.target}: never reaches {self.rise:+.2f} (at {self.steps[-1]:g} sigma: "
                    f"{self.change[-1]:+.3f}); clean until {self.clean_until:g} sigma")  # fmt: skip
        row = self.at(self.reach)
        kept = f", identity {row['identity']:.3f}" if "identity" in row else ""
        return (f"{self.target}: {self.rise:+.2f} at {self.reach:g} sigma, outside "
                f"{100 * row['outside']:.1f}%, leakage {row['leakage']:.3f}, artefacts "
                f"{signed_percent(row['artefacts'])}{kept}; clean until {self.clean_until:g} sigma")  # fmt: skip


def signed_percent(share: float) -> str:
    """A signed share as a percentage to one decimal, with no "-0.0%"."""
    return f"{round(100 * share, 1) + 0.0:+.1f}%"


@torch.no_grad()
def sweep_edit(model, predictor: Predictor, codes, direction, target: str, sigma: float,
               steps=SWEEP_STEPS, rise: float = 0.5, outside_limit: float = 0.05,
               leakage_limit: float = 0.05, artefact_limit: float = 0.01, batch_size: int = 64,
               identity: Embedder | None = None) -> EditSweep:  # fmt: skip
    """Measure the edit ``codes + step * sigma * unit(direction)`` at each of ``steps``.

    Args:
        model: has ``decode(codes [B, D]) -> images [B, 3, H, W] in [0, 1]`` (an ``nn.Module``;
            a GAN in W: ``generator.w_space()``).
        predictor: has ``attr_names`` and ``predict(images)``; leakage counts the attributes it
            was scored on (:func:`fel.metrics.modelled_attributes`).
        codes: [N, D] fresh faces to edit, e.g. test faces without the attribute.
        direction: [D]; normalised here.
        target: the attribute the edit should raise.
        sigma: the latent distance of one unit of ``steps`` (:func:`fel.directions.spread` of
            the training codes along ``direction``), > 0.
        steps: strengths in sigma, > 0 and ascending.
        rise, outside_limit, leakage_limit, artefact_limit: stored in the result (see
            :class:`EditSweep`).
        batch_size: faces decoded at once.
        identity: an identity embedder (:func:`fel.identity.load_pretrained`), to measure at
            each step how far the edit kept the person (``EditSweep.identity``).
    """
    target = check_attribute(target, predictor.attr_names)
    codes, d = _codes_and_direction(codes, direction)
    steps = tuple(float(s) for s in steps)
    if not steps or any(b <= a for a, b in zip(steps, steps[1:])) or steps[0] <= 0:
        raise ValueError(f"steps must be positive and ascending, got {steps}")
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number, got {sigma}")
    column = predictor.attr_names.index(target)
    others = [predictor.attr_names.index(a) for a in modelled_attributes(predictor) if a != target]
    device = model_device(model)

    def faces(c: Tensor) -> Tensor:
        return torch.cat([model.decode(b.to(device)).float().cpu() for b in c.split(batch_size)])

    before = faces(codes)
    p0 = _predict_all(predictor, before, batch_size)
    dots0 = speckles(before)
    change, leakage, outside, artefacts, kept = [], [], [], [], []
    for step in steps:
        after = faces(codes + step * sigma * d)
        delta = _predict_all(predictor, after, batch_size) - p0
        change.append(float(delta[:, column].mean()))
        leakage.append(float(delta[:, others].abs().mean()) if others else 0.0)
        outside.append(changed_outside(before, after))
        artefacts.append(speckles(after) - dots0)
        if identity is not None:
            kept.append(identity_similarity(identity, before, after))
    return EditSweep(target, float(sigma), steps, tuple(change), tuple(leakage), tuple(outside),
                     tuple(artefacts), rise, outside_limit, leakage_limit, artefact_limit,
                     tuple(kept))  # fmt: skip


def lacking(predictor: Predictor, images: Tensor, attributes, below: float = 0.3,
            batch_size: int = 256, at_least: int = 1) -> Tensor:  # fmt: skip
    """Indices [K] of the faces in ``images`` [N, 3, H, W] (in [0, 1]) whose predicted probability
    of every one of ``attributes`` is below ``below``: faces an edit towards them can show.

    When fewer than ``at_least`` faces are below (a small data set, a weak predictor), the
    faces least likely to show the attributes (by their largest probability) make up the number,
    after those below, so that a notebook always has a face to start from."""
    columns = [predictor.attr_names.index(check_attribute(a, predictor.attr_names))
               for a in ([attributes] if isinstance(attributes, str) else attributes)]  # fmt: skip
    highest = _predict_all(predictor, images, batch_size)[:, columns].max(1).values
    found = torch.nonzero(highest < below).flatten()
    if len(found) >= min(at_least, len(images)):
        return found
    rest = [int(i) for i in highest.argsort() if highest[i] >= below]
    return torch.cat([found, torch.tensor(rest[: at_least - len(found)], dtype=found.dtype)])


@torch.no_grad()
def _predict_all(predictor: Predictor, images: Tensor, batch_size: int) -> Tensor:
    """The predictor's probabilities [N, n_attrs] (float, on the CPU), ``batch_size`` at a time."""
    return torch.cat([predictor.predict(b).float().cpu() for b in images.split(batch_size)])


def score_edit(
    predictor: Predictor,
    before: Tensor,
    after: Tensor,
    target: str,
    faces: np.ndarray | None = None,
    factor: str | None = None,
    counterfactual_size: int | None = None,
    identity: Embedder | None = None,
) -> dict[str, object]:
    """One method's edit of a batch, on the course's yardstick.

    Args:
        predictor: the attribute predictor; for the counterfactual scores, one with SynthFaces'
            factor head (``factors``, ``factor_index``: :func:`fel.classifier.load_pretrained`).
        before: the unedited faces as the model renders them, ``decode(z)``, [B, 3, H, W] in [0, 1].
        after: the edited faces ``decode(z + alpha * d)``, same shape.
        target: the attribute the edit is meant to change.
        faces: optional SynthFaces factor rows [B] of the original faces
            (:func:`fel.data.synthfaces.read_factors`), for the counterfactual scores.
        factor: the SynthFaces factor behind ``target`` (default ``FACTOR_OF[target]``).
        counterfactual_size: compute the counterfactual scores at this resolution (``before``
            and ``after`` are area-averaged down to it), so that models of different resolutions
            are compared at a common one; default: the images' own.
        identity: an identity embedder, for :func:`fel.metrics.edit_report`'s ``identity``.

    Returns:
        :func:`fel.metrics.edit_report`'s ``target_change``, ``leakage``, ``preservation``,
        ``artefacts`` and ``changes`` (and ``identity``), plus, with ``faces``:

        * ``counterfactual_error``: mean absolute pixel distance between ``after`` and the true
          rendering of each face with its factor moved as much as the predictor's factor head
          says the edit moved it (as in notebook 03);
        * ``counterfactual_floor``: the same distance for ``before`` and the unmoved faces, the
          part of the error that reconstruction alone already costs.
    """
    report = edit_report(predictor, before, after, target, identity=identity)
    if faces is None:
        return report
    target = check_attribute(target, predictor.attr_names)
    if factor is None:
        if target not in FACTOR_OF:
            raise KeyError(
                f"no SynthFaces factor is known for {target!r}; pass factor=, one of the "
                f"predictor's factor names (FACTOR_OF covers {', '.join(FACTOR_OF)})"
            )
        factor = FACTOR_OF[target]
    if not hasattr(predictor, "factors"):
        raise TypeError(
            "counterfactual scores need a predictor with a SynthFaces factor head "
            "(factors, factor_index), e.g. fel.classifier.load_pretrained()"
        )
    k = predictor.factor_index(factor)
    with torch.no_grad():
        moved = (predictor.factors(after)[:, k] - predictor.factors(before)[:, k]).numpy()
    values = np.clip(faces[factor] + moved, 0.0, 1.0)
    if counterfactual_size is not None and counterfactual_size != after.shape[-1]:
        if counterfactual_size > after.shape[-1]:
            raise ValueError(
                f"counterfactual_size {counterfactual_size} is larger than the images "
                f"({after.shape[-1]}): scores are compared at a resolution all models reach"
            )
        before, after = (
            F.interpolate(x.float(), size=counterfactual_size, mode="area") for x in (before, after)
        )
    report["counterfactual_error"] = counterfactual_error(after, faces, factor, values)
    report["counterfactual_floor"] = counterfactual_error(before, faces, factor, faces[factor])
    return report


def psnr(reference: Tensor, images: Tensor) -> float:
    """Mean over the batch of each image's peak signal-to-noise ratio, in dB, for images
    [B, 3, H, W] in [0, 1]: ``10 log10(1 / MSE)`` (an exact copy gives ``inf``)."""
    if reference.shape != images.shape:
        raise ValueError(
            f"reference {tuple(reference.shape)} and images {tuple(images.shape)} differ in shape"
        )
    mse = (images.float().cpu() - reference.float().cpu()).square().flatten(1).mean(1)
    return float((-10 * mse.double().log10()).mean())


@torch.no_grad()
def decode_latency(model, codes: Tensor, repeats: int = 10) -> float:
    """Median milliseconds of one ``model.decode(codes)`` call (after one untimed warm-up call),
    for codes [B, D]; divide by B for a per-face figure."""
    codes = torch.as_tensor(codes).to(model_device(model))
    cuda = codes.device.type == "cuda"
    model.decode(codes)
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()  # the previous call's kernels are not this one's time
        start = time.perf_counter()
        model.decode(codes)
        if cuda:
            torch.cuda.synchronize()
        times.append(1000 * (time.perf_counter() - start))
    return float(np.median(times))
