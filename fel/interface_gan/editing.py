"""The slider editor for the GAN: InterfaceGAN edits in W, with a truncation slider."""

from __future__ import annotations

from collections.abc import Mapping

import ipywidgets as widgets
from torch import Tensor

from fel.interface_gan.model import Generator
from fel.widgets import LatentEditor


def gan_editor(generator: Generator, w: Tensor, directions: Mapping[str, Tensor],
               ranges: tuple[float, float] | Mapping[str, tuple[float, float]] = (-3.0, 3.0),
               truncation: float = 0.7, **options) -> LatentEditor:  # fmt: skip
    """A :class:`fel.widgets.LatentEditor` on ``generator.w_space()`` plus a truncation slider.

    Edits are ``w + sum_k alpha_k n_k`` in W; the truncation slider sets
    ``generator.truncation`` (psi), which ``decode_w`` applies *after* the edit, and re-renders
    both pictures; the slider is ``editor.truncation_slider``. The editor's "test face" picker
    inverts faces into W (slow: an optimisation per face).

    Args:
        generator: e.g. :func:`fel.interface_gan.load_pretrained`; its ``truncation`` is changed.
        w: the starting W code, [w_dim] or [1, w_dim].
        directions: name -> W direction [w_dim] (boundary normals), normalised by the editor.
        ranges: slider ranges in W distances, as for ``LatentEditor``.
        truncation: the slider's starting psi in [0, 1].
        options: passed to ``LatentEditor`` (``faces``, ``scale``, ``compare``, ``continuous``,
            ...); ``continuous`` applies to the truncation slider too.
    """
    if not 0.0 <= truncation <= 1.0:
        raise ValueError(f"truncation must be in [0, 1], got {truncation}")
    generator.truncation = truncation
    editor = LatentEditor(generator.w_space(), w, directions, ranges, **options)
    slider = widgets.FloatSlider(value=truncation, min=0.0, max=1.0, step=0.05,
                                 description="truncation ψ", readout_format=".2f",
                                 continuous_update=editor.continuous,
                                 style={"description_width": "initial"},
                                 layout=widgets.Layout(width="420px"))  # fmt: skip
    editor.add_control(slider, lambda psi: setattr(generator, "truncation", float(psi)))
    editor.truncation_slider = slider
    return editor
