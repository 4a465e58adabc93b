"""LatentEditor: sliders that move a latent code along directions and show the decoded face.

Works with any model that has the course's common face (``encode``, ``decode``,
``sample_latent``): the VAE here, the GAN and Glow later.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import torch
from torch import Tensor

import fel
from fel.directions import unit
from fel.viz import png_bytes


class LatentEditor:
    """Edit a face live: ``z' = z + sum_k alpha_k * d_k`` with one slider per direction.

    Args:
        model: has ``decode(z [B, D]) -> images [B,3,H,W] in [0,1]``, ``sample_latent(n)`` and,
            for picking test faces, ``encode(images) -> z``.
        z: the starting code, [D] or [1, D].
        directions: name -> direction [D]; normalised to unit length, so slider units are
            latent-space distances.
        ranges: (low, high) for every slider, or name -> (low, high).
        faces: optional test images [N,3,H,W] in [0,1] to pick from (encoded on demand).
        compare: show the unedited face beside the edited one.
        scale: enlargement of the displayed image (nearest neighbour).
        device: where the model runs (default: the model's own device).
        continuous: update while a slider moves; ``None`` decides from one timed warm decode
            (continuous when a decode takes under 0.1 s, else on release).

    The widget is ``editor.widget``; ``editor.sliders``, ``editor.image`` and ``editor.reset()``
    are there for scripts and tests.
    """

    def __init__(
        self,
        model,
        z: Tensor,
        directions: Mapping[str, Tensor],
        ranges: tuple[float, float] | Mapping[str, tuple[float, float]] = (-3.0, 3.0),
        faces: Tensor | None = None,
        compare: bool = True,
        scale: int = 3,
        device: torch.device | str | None = None,
        continuous: bool | None = None,
        seed: int = 0,
    ) -> None:
        if not directions:
            raise ValueError("give at least one direction, e.g. {'Smiling': d}")
        self.model = model
        params = list(model.parameters()) if hasattr(model, "parameters") else []
        self.device = (
            torch.device(device) if device else (params[0].device if params else fel.device())
        )
        self.z0 = z.detach().reshape(1, -1).to(self.device)
        self.directions = {}
        for name, d in directions.items():
            d = torch.as_tensor(d).detach().reshape(-1).float()
            if d.numel() != self.z0.shape[1]:
                raise ValueError(
                    f"direction {name!r} has {d.numel()} dimensions, the code has {self.z0.shape[1]}"
                )
            self.directions[name] = unit(d).to(self.device)
        self.faces, self.scale = faces, scale
        self.generator = torch.Generator().manual_seed(seed)
        self.decode_seconds = self._timed_decode()
        if continuous is None:
            continuous = self.decode_seconds < 0.1
        self.sliders = {}
        for name in self.directions:
            lo, hi = ranges[name] if isinstance(ranges, Mapping) else ranges
            slider = widgets.FloatSlider(value=0.0, min=lo, max=hi, step=(hi - lo) / 60, description=name,
                                         continuous_update=continuous, readout_format=".2f",
                                         style={"description_width": "initial"},
                                         layout=widgets.Layout(width="420px"))  # fmt: skip
            slider.observe(self._on_change, names="value")
            self.sliders[name] = slider
        self.image = widgets.Image(format="png")
        self.original = widgets.Image(format="png")
        reset = widgets.Button(description="reset", icon="undo")
        reset.on_click(lambda _: self.reset())
        randomise = widgets.Button(description="random face", icon="random")
        randomise.on_click(lambda _: self.random_face())
        controls = [reset, randomise]
        if faces is not None:
            self.picker = widgets.BoundedIntText(
                value=0, min=0, max=len(faces) - 1, description="test face"
            )
            self.picker.observe(lambda ch: self.pick_face(ch["new"]), names="value")
            controls.append(self.picker)
        self.status = widgets.HTML()
        self.error: Exception | None = None
        labelled = lambda img, text: widgets.VBox([widgets.HTML(f"<b>{text}</b>"), img])  # noqa: E731
        pictures = (
            [labelled(self.original, "original"), labelled(self.image, "edited")]
            if compare
            else [self.image]
        )
        self.widget = widgets.VBox(
            [widgets.HBox(pictures), *self.sliders.values(), widgets.HBox(controls), self.status]
        )
        self._render_original()
        self.render()

    # ------------------------------------------------------------------ state
    def code(self) -> Tensor:
        """The edited code [1, D] for the current slider values."""
        z = self.z0.clone()
        for name, slider in self.sliders.items():
            z += slider.value * self.directions[name]
        return z

    @torch.no_grad()
    def _decode(self, z: Tensor) -> Tensor:
        return self.model.decode(z.to(self.device)).float().cpu()

    def _timed_decode(self) -> float:
        """Seconds for one warm decode (the first call pays one-off costs: thread pools, kernel
        caches, CUDA context; timing it would make a fast model look slow)."""
        self._decode(self.z0)
        start = time.perf_counter()
        self._decode(self.z0)
        return time.perf_counter() - start

    def render(self) -> None:
        """Decode the current code into the edited image.

        A failure (a model error, a bad code) is shown in the widget's status line, in red,
        instead of vanishing inside an ipywidgets callback; the last good image stays.
        """
        start = time.perf_counter()
        try:
            self.image.value = png_bytes(self._decode(self.code()), scale=self.scale)
        except Exception as err:  # shown to the user, who would otherwise see nothing happen
            self.status.value = f"<span style='color:#c00'>could not render: {type(err).__name__}: {html.escape(str(err))}</span>"
            self.error = err
            return
        self.error = None
        ms = 1000 * (time.perf_counter() - start)
        self.status.value = f"<small>decode + PNG: {ms:.0f} ms on {self.device.type}</small>"

    def _render_original(self) -> None:
        self.original.value = png_bytes(self._decode(self.z0), scale=self.scale)

    def _on_change(self, change) -> None:
        self.render()

    def _set_code(self, z: Tensor) -> None:
        self.z0 = z.detach().reshape(1, -1).to(self.device)
        self._render_original()
        self.reset()

    # ------------------------------------------------------------------ actions
    def reset(self) -> None:
        """All sliders back to 0 (the image is rendered once, not once per slider)."""
        self.set(**dict.fromkeys(self.sliders, 0.0))

    def random_face(self) -> None:
        """Start again from a code drawn from the model's prior."""
        self._set_code(self.model.sample_latent(1, generator=self.generator))

    @torch.no_grad()
    def pick_face(self, index: int) -> None:
        """Start again from test face ``index``, encoded by the model."""
        if self.faces is None:
            raise ValueError("this editor was made without faces to pick from")
        self._set_code(self.model.encode(self.faces[index : index + 1].to(self.device)))

    def set(self, **values: float) -> None:
        """Set sliders by name, e.g. ``editor.set(Smiling=2.0)``, then render once."""
        unknown = [name for name in values if name not in self.sliders]
        if unknown:
            raise KeyError(f"no slider {unknown[0]!r}; sliders: {', '.join(self.sliders)}")
        for name, value in values.items():
            slider = self.sliders[name]
            slider.unobserve(self._on_change, names="value")
            slider.value = value
            slider.observe(self._on_change, names="value")
        self.render()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def strip(model, z: Tensor, direction: Tensor, alphas: Sequence[float]) -> Tensor:
    """Decoded images [len(alphas), 3, H, W] of ``z + alpha * unit(direction)`` for each alpha."""
    d = unit(torch.as_tensor(direction).float().reshape(-1))
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    device = params[0].device if params else torch.device("cpu")
    z = z.reshape(1, -1).to(device)
    codes = torch.cat([z + a * d.to(device) for a in alphas])
    with torch.no_grad():
        return model.decode(codes).float().cpu()
