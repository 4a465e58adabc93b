"""The slider editor for the GANs: InterfaceGAN edits in W (or on some W+ layers of a published
style generator), with a truncation slider."""

from __future__ import annotations

from collections.abc import Mapping

import ipywidgets as widgets
from torch import Tensor

from fel.directions import wplus_direction
from fel.widgets import LatentEditor


def gan_editor(generator, w: Tensor, directions: Mapping[str, Tensor],
               ranges: tuple[float, float] | Mapping[str, tuple[float, float]] = (-3.0, 3.0),
               truncation: float = 0.7, layers=None, **options) -> LatentEditor:  # fmt: skip
    """A :class:`fel.widgets.LatentEditor` on ``generator.w_space()`` plus a truncation slider.

    Edits are ``w + sum_k alpha_k n_k`` in W; with ``layers`` (a published StyleGAN or StyleGAN2
    only) they act on those W+ layers alone, so that, say, a smile edit on the middle layers
    leaves the fine layers' hair colour and skin alone. The truncation slider sets
    ``generator.truncation`` (psi), which ``decode_w`` applies *after* the edit, and re-renders
    both pictures; the slider is ``editor.truncation_slider``. The editor's "test face" picker
    inverts faces into W (slow: an optimisation per face).

    Args:
        generator: fel's GAN (:func:`fel.interface_gan.load_pretrained`),
            :func:`~fel.interface_gan.load_stylegan` or :func:`~fel.interface_gan.load_stylegan2`;
            its ``truncation`` is changed.
        w: the starting W code, [w_dim] or [1, w_dim].
        directions: name -> W direction [w_dim] (boundary normals), normalised by the editor, or
            name -> {variant: direction} to offer a choice (e.g. raw and conditional).
        ranges: slider ranges, as for ``LatentEditor``: in W distances, or in sigma with
            ``codes=`` (sampled W codes [N, w_dim], passed to ``LatentEditor``; W edits only).
        truncation: the slider's starting psi in [0, 1].
        layers: None (every layer: an edit in W), or the W+ layers to edit: "coarse",
            "middle", "fine", "all" or indices (see :func:`fel.directions.layer_indices`).
            The editor's codes are then W repeated per layer [n_latent * w_dim], truncated at
            decoding, and a slider value alpha moves each chosen layer by alpha along n.
        options: passed to ``LatentEditor`` (``faces``, ``scale``, ``compare``, ``continuous``,
            ...); ``continuous`` applies to the truncation slider too.
    """
    if not 0.0 <= truncation <= 1.0:
        raise ValueError(f"truncation must be in [0, 1], got {truncation}")
    generator.truncation = truncation
    if layers is None:
        editor = LatentEditor(generator.w_space(), w, directions, ranges, **options)
    else:
        if not hasattr(generator, "wplus_space"):
            raise ValueError(
                f"{type(generator).__name__} has one style for all layers (no W+): layer-wise "
                "edits need a published StyleGAN or StyleGAN2 (load_stylegan, load_stylegan2)"
            )
        if options.get("codes") is not None:
            raise ValueError(
                "codes= (sigma units) is for edits in W; a layer edit moves each chosen layer by "
                "a W distance: give ranges in W distances instead"
            )
        n = generator.n_latent
        wp = w.reshape(1, 1, -1).expand(1, n, -1).flatten(1)
        on_layers = lambda d: wplus_direction(d, layers, n).flatten()  # noqa: E731
        per_layer = {k: {v: on_layers(x) for v, x in d.items()} if isinstance(d, Mapping) else on_layers(d)
                     for k, d in directions.items()}  # fmt: skip
        editor = LatentEditor(generator.wplus_space(truncated=True), wp, per_layer, ranges,
                              normalize=False, **options)  # fmt: skip
    editor.layers = layers
    slider = widgets.FloatSlider(value=truncation, min=0.0, max=1.0, step=0.05,
                                 description="truncation ψ", readout_format=".2f",
                                 continuous_update=editor.continuous,
                                 style={"description_width": "initial"},
                                 layout=widgets.Layout(width="420px"))  # fmt: skip
    editor.add_control(slider, lambda psi: setattr(generator, "truncation", float(psi)))
    editor.truncation_slider = slider
    return editor
