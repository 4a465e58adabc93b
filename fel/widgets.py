"""LatentEditor: sliders that move a latent code along directions and show the decoded face.
PhotoEditor: the same, starting from an uploaded photo.

Works with any model that has the course's common face (``encode``, ``decode``,
``sample_latent``): the VAE here, the GAN and Glow later.
"""

from __future__ import annotations

import base64
import html
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import ipywidgets as widgets
import torch
from torch import Tensor

import fel
from fel.directions import sigma_step, unit
from fel.faces import align, to_model_input
from fel.viz import png_bytes

#: Where the editors' "save PNG" and "save sweep (GIF)" buttons write.
SAVE_DIR = fel.PROJECT_ROOT / "runs" / "edits"

#: Widths that line every slider's track up, in every editor.
NAME_WIDTH, END_WIDTH, TRACK_WIDTH = "170px", "44px", "300px"


def model_label(model) -> str:
    """A model's kind for file names: ``vae``, ``glow``, ``gan`` (a generator's W or W+ view),
    else its class name in lower case."""
    if hasattr(model, "generator"):
        return "gan"
    return type(model).__name__.lower()


def labelled_slider(name: str, slider: widgets.FloatSlider, unit: str = "") -> widgets.HBox:
    """One editor row: the name, the low end, the track, the high end and the value (+ unit).

    Every row has the same column widths, so the tracks of all sliders line up; the value label
    (CSS class ``fel-readout``) follows the slider.
    """
    fmt = lambda v: f"{v:+.3g}"  # noqa: E731
    slider.description, slider.readout = "", False
    slider.layout = widgets.Layout(width=TRACK_WIDTH)
    value = widgets.Label(fmt(slider.value), layout=widgets.Layout(width="52px"))
    value.add_class("fel-readout")
    slider.observe(lambda ch: setattr(value, "value", fmt(ch["new"])), names="value")
    ends = [
        widgets.HTML(f"<div style='text-align:{side}'>{fmt(v)}</div>", layout=widgets.Layout(width=END_WIDTH))
        for v, side in ((slider.min, "right"), (slider.max, "left"))
    ]  # fmt: skip
    label = widgets.HTML(f"<b>{html.escape(name)}</b>", layout=widgets.Layout(width=NAME_WIDTH))
    return widgets.HBox([label, ends[0], slider, ends[1], value, widgets.Label(unit)])


class LatentEditor:
    """Edit a face live: ``z' = z + sum_k alpha_k * d_k`` with one slider per direction.

    Args:
        model: has ``decode(z [B, D]) -> images [B,3,H,W] in [0,1]``, ``sample_latent(n)`` and,
            for picking test faces, ``encode(images) -> z``.
        z: the starting code, [D] or [1, D].
        directions: name -> direction [D], or name -> {variant: direction [D]} to offer a choice
            (e.g. ``{"raw": d, "orthogonal to mouth": d2}``; the first is the default). Each is
            normalised to unit length (unless ``normalize=False``: then a slider moves the code by
            its value times the direction as given, e.g. a unit W step on each of some W+ layers;
            with ``codes``, a step is always one sigma along the unit direction).
        ranges: (low, high) for every slider, or name -> (low, high), in slider units.
        codes: optional codes [N, D] of training faces: then a slider's unit is sigma, the spread
            of these codes along its direction (:func:`fel.directions.spread`), so +2 means twice
            the faces' natural spread in every model; without, a unit is a latent distance.
        faces: optional test images [N,3,H,W] in [0,1] to pick from (encoded on demand).
        compare: show the unedited face beside the edited one.
        scale: enlargement of the displayed image (nearest neighbour).
        device: where the model runs (default: the model's own device).
        continuous: update while a slider moves; ``None`` decides from one timed warm decode
            (continuous when a decode takes under 0.1 s, else on release).
        identity: optional identity embedder (:func:`fel.identity.load_pretrained`): the status
            line then shows the cosine between the original's and the edited face's embeddings,
            and the threshold above which the embedding calls them one person.
        label: the start of saved files' names (default: the model's kind, ``vae``, ``glow``,
            ``gan``); ``save_dir``: where "save PNG" and "save sweep" write (default
            ``runs/edits/`` in the project).

    The widget is ``editor.widget``; ``editor.sliders``, ``editor.variants`` (name -> the
    variant picker, for directions given with variants), ``editor.image``,
    ``editor.continuous`` (the update mode chosen) and ``editor.reset()`` are there for scripts
    and tests; :meth:`add_control` adds a setting of the model itself (e.g. the GAN's
    truncation). Displayed, the editor also carries a static preview (each slider's two ends
    beside the original, as HTML), which a notebook shows when it is opened untrusted or
    without a kernel.
    """

    def __init__(
        self,
        model,
        z: Tensor,
        directions: Mapping[str, Tensor | Mapping[str, Tensor]],
        ranges: tuple[float, float] | Mapping[str, tuple[float, float]] = (-3.0, 3.0),
        faces: Tensor | None = None,
        compare: bool = True,
        scale: int = 3,
        device: torch.device | str | None = None,
        continuous: bool | None = None,
        seed: int = 0,
        normalize: bool = True,
        codes: Tensor | None = None,
        identity=None,
        label: str | None = None,
        save_dir: str | os.PathLike | None = None,
    ) -> None:
        if not directions:
            raise ValueError("give at least one direction, e.g. {'Smiling': d}")
        self.model = model
        self.label = label or model_label(model)
        self.save_dir = Path(save_dir) if save_dir else SAVE_DIR
        params = list(model.parameters()) if hasattr(model, "parameters") else []
        self.device = (
            torch.device(device) if device else (params[0].device if params else fel.device())
        )
        self.z0 = z.detach().reshape(1, -1).to(self.device)
        self.unit = "σ" if codes is not None else ""
        if codes is not None:  # converted once, not once per direction
            codes = torch.as_tensor(codes).detach().float().cpu()
        self.steps: dict[str, dict[str, Tensor]] = {}  # name -> variant -> one slider unit [D]
        for name, given in directions.items():
            options = dict(given) if isinstance(given, Mapping) else {"": given}
            if not options:
                raise ValueError(f"direction {name!r} has no variants")
            self.steps[name] = {
                v: self._step(name, d, normalize, codes) for v, d in options.items()
            }
        self.directions = {name: next(iter(v.values())) for name, v in self.steps.items()}
        self.faces, self.scale, self.identity = faces, scale, identity
        self.generator = torch.Generator().manual_seed(seed)
        self.decode_seconds = self._timed_decode()
        if continuous is None:
            continuous = self.decode_seconds < 0.1
        self.continuous = continuous
        self.sliders, self.variants, rows = {}, {}, []
        for name in self.directions:
            lo, hi = ranges[name] if isinstance(ranges, Mapping) else ranges
            slider = widgets.FloatSlider(value=0.0, min=lo, max=hi, step=(hi - lo) / 60,
                                         continuous_update=continuous)  # fmt: skip
            slider.observe(self._on_change, names="value")
            self.sliders[name] = slider
            row = labelled_slider(name, slider, self.unit)
            if len(self.steps[name]) > 1:
                picker = widgets.ToggleButtons(options=list(self.steps[name]),
                                               style={"button_width": "auto"})  # fmt: skip
                picker.observe(lambda ch, n=name: self._choose(n, ch["new"]), names="value")
                self.variants[name] = picker
                row = widgets.VBox([row, widgets.HBox([widgets.Label("", layout=widgets.Layout(width=NAME_WIDTH)), picker])])  # fmt: skip
            rows.append(row)
        self.image = widgets.Image(format="png")
        self.original = widgets.Image(format="png")
        reset = widgets.Button(description="reset", icon="undo")
        reset.on_click(lambda _: self.reset())
        randomise = widgets.Button(description="random face", icon="random")
        randomise.on_click(lambda _: self.random_face())
        save_png = widgets.Button(description="save PNG", icon="download")
        save_png.on_click(lambda _: self._saving(self.save_png))
        save_gif = widgets.Button(description="save sweep (GIF)", icon="film")
        save_gif.on_click(lambda _: self._saving(self.save_sweep))
        self._last_moved = next(iter(self.directions))
        controls = [reset, randomise, save_png, save_gif]
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
        self.controls = widgets.VBox()
        self.widget = widgets.VBox([widgets.HBox(pictures), *rows, self.controls,
                                    widgets.HBox(controls), self.status])  # fmt: skip
        self._render_original()
        self.render()

    def _step(self, name: str, d, normalize: bool, codes: Tensor | None) -> Tensor:
        """One slider unit of direction ``d`` [D] on the editor's device."""
        d = torch.as_tensor(d).detach().reshape(-1).float()
        if d.numel() != self.z0.shape[1]:
            raise ValueError(
                f"direction {name!r} has {d.numel()} dimensions, the code has {self.z0.shape[1]}"
            )
        if codes is not None:
            return sigma_step(d, codes).to(self.device)
        return (unit(d) if normalize else d).to(self.device)

    def _choose(self, name: str, variant: str) -> None:
        self.directions[name] = self.steps[name][variant]
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
            edited = self._decode(self.code())
            self.image.value = png_bytes(edited, scale=self.scale)
            ms = 1000 * (time.perf_counter() - start)
            kept = self._identity_text(edited)
        except Exception as err:  # shown to the user, who would otherwise see nothing happen
            self._show_error("could not render", err)
            return
        self.error = None
        self.status.value = f"<small>decode + PNG: {ms:.0f} ms on {self.device.type}{kept}</small>"

    def _identity_text(self, edited: Tensor) -> str:
        """The status line's identity part: cosine to the original, against the threshold."""
        if self.identity is None:
            return ""
        cos = float(self.identity.similarity(self._original_pixels, edited)[0])
        threshold = getattr(self.identity, "threshold", None)
        if threshold is None:
            return f" · identity cosine {cos:.2f} to the original"
        verdict = "same person" if cos >= threshold else "<b>another person</b>"
        return (f" · identity cosine {cos:.2f} to the original: {verdict} "
                f"(one person above {threshold:.2f})")  # fmt: skip

    def _show_error(self, what: str, err: Exception) -> None:
        """Keep ``err`` in ``self.error`` and show it in red in the status line."""
        self.status.value = f"<span style='color:#c00'>{html.escape(what)}: {type(err).__name__}: {html.escape(str(err))}</span>"
        self.error = err

    def _render_original(self) -> None:
        self._original_pixels = self._decode(self.z0)  # [1, 3, S, S], for the identity cosine
        self.original.value = png_bytes(self._original_pixels, scale=self.scale)

    def _on_change(self, change) -> None:
        self._last_moved = next(n for n, sl in self.sliders.items() if sl is change["owner"])
        self.render()

    def add_control(self, control: widgets.ValueWidget, apply: Callable[[Any], None]) -> None:
        """Show ``control`` under the direction sliders; when its value changes, call
        ``apply(value)`` (which changes how the model decodes, e.g. a truncation setting) and
        re-render both pictures, since the original is decoded by the same model. A failure is
        shown in the status line, as in :meth:`render`. :meth:`reset` leaves controls as they are.
        """

        def on_change(change) -> None:
            try:
                apply(change["new"])
                self._render_original()
            except Exception as err:  # shown to the user, who would otherwise see nothing happen
                self._show_error(f"could not apply {change['new']}", err)
                return
            self.render()

        apply(control.value)
        control.observe(on_change, names="value")
        shown = (
            labelled_slider(control.description, control)
            if isinstance(control, widgets.FloatSlider)
            else control
        )
        self.controls.children = (*self.controls.children, shown)
        self._render_original()
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
            self._last_moved = name if value != 0 else self._last_moved
        self.render()

    # ------------------------------------------------------------------ saving
    def _free_path(self, stem: str, suffix: str) -> Path:
        """``save_dir/stem.suffix``, or ``stem-2``, ``stem-3``, ... when taken: nothing is
        overwritten."""
        self.save_dir.mkdir(parents=True, exist_ok=True)
        path, k = self.save_dir / f"{stem}{suffix}", 2
        while path.exists():
            path, k = self.save_dir / f"{stem}-{k}{suffix}", k + 1
        return path

    def _values_text(self, skip: str | None = None) -> str:
        """The moved sliders as a file-name part, e.g. ``Smiling+2.00_Narrow_Eyes-1.00``."""
        moved = [f"{n}{sl.value:+.2f}" for n, sl in self.sliders.items()
                 if sl.value != 0 and n != skip]  # fmt: skip
        return "_".join(moved)

    def save_png(self) -> Path:
        """Write the edited face as shown (enlarged ``scale`` times) to ``save_dir``, named by
        the label and the moved sliders (``vae_Smiling+2.00.png``); returns the path."""
        from fel.edit import picture

        path = self._free_path(f"{self.label}_{self._values_text() or 'original'}", ".png")
        picture([self._decode(self.code())], self.scale).save(path)
        return path

    def save_sweep(self, name: str | None = None, frames: int = 13, fps: float = 8.0) -> Path:
        """Write a GIF of slider ``name`` (default: the one moved last) swept over its whole
        range in ``frames`` frames, the other sliders held where they are
        (``vae_Smiling-4.00_to_+4.00.gif``); returns the path."""
        from fel.edit import picture, write_gif

        name = name or self._last_moved
        if name not in self.sliders:
            raise KeyError(f"no slider {name!r}; sliders: {', '.join(self.sliders)}")
        slider = self.sliders[name]
        held = self.code() - slider.value * self.directions[name]
        values = torch.linspace(slider.min, slider.max, frames).tolist()
        faces = [self._decode(held + v * self.directions[name]) for v in values]
        others = self._values_text(skip=name)
        stem = f"{self.label}_{name}{slider.min:+.2f}_to_{slider.max:+.2f}" + (
            f"_{others}" if others else ""
        )
        return write_gif(
            [picture([f], self.scale) for f in faces], self._free_path(stem, ".gif"), fps
        )

    def _saving(self, save: Callable[[], Path]) -> None:
        """Run a save button's action; say where the file went, or what went wrong."""
        try:
            path = save()
        except Exception as err:  # shown to the user, who would otherwise see nothing happen
            self._show_error("could not save", err)
            return
        self.status.value = f"<small>saved {html.escape(str(path))}</small>"

    @torch.no_grad()
    def preview_html(self, width: int = 96) -> str:
        """A static picture of what the sliders do: per slider, the face at the low end, the
        original and the face at the high end (HTML with PNGs inside, no kernel needed)."""
        rows = []
        for name, slider in list(self.sliders.items())[:4]:
            ends = [self.z0 + v * self.directions[name] for v in (slider.min, slider.max)]
            faces = self._decode(torch.cat([ends[0], self.z0, ends[1]]))
            cells = "".join(
                f"<td style='text-align:center'><img width={width} src='data:image/png;base64,"
                f"{base64.b64encode(png_bytes(f[None])).decode()}'><br><small>{text}</small></td>"
                for f, text in zip(faces, (f"{slider.min:+.3g} {self.unit}", "original", f"{slider.max:+.3g} {self.unit}"))
            )  # fmt: skip
            rows.append(f"<tr><td><b>{html.escape(name)}</b></td>{cells}</tr>")
        return ("<div><small>Preview of the slider ends (run the cell to move them):</small>"
                f"<table>{''.join(rows)}</table></div>")  # fmt: skip

    def _repr_mimebundle_(self, **kwargs) -> dict[str, Any]:
        """The live widget, plus :meth:`preview_html` for frontends that cannot show it."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/html"] = self.preview_html()
        return bundle


def strip(model, z: Tensor, direction: Tensor, alphas: Sequence[float]) -> Tensor:
    """Decoded images [len(alphas), 3, H, W] of ``z + alpha * unit(direction)`` for each alpha."""
    d = unit(torch.as_tensor(direction).float().reshape(-1))
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    device = params[0].device if params else torch.device("cpu")
    z = z.reshape(1, -1).to(device)
    codes = torch.cat([z + a * d.to(device) for a in alphas])
    with torch.no_grad():
        return model.decode(codes).float().cpu()


class PhotoEditor:
    """Upload a photo and edit it: align it to CelebA's frame, encode it, then edit the code.

    Each upload goes through :func:`fel.faces.align` and :func:`fel.faces.to_model_input`
    (the training crop), is encoded with ``model.encode``, and starts a fresh
    :class:`LatentEditor` from that code (its saved files are named after the model and the
    photo, e.g. ``vae_me_Smiling+2.00.png``). Problems (an unreadable file, no face) are shown in
    red in the status line and kept in ``self.error``; alignment guesses (eyes not found,
    several faces) in orange. The previous editor stays until an upload succeeds.

    Args:
        model: as for :class:`LatentEditor`, with ``encode``; in eval mode (a BatchNorm model in
            training mode would encode one photo with that photo's own statistics).
        directions: name -> direction [D], one slider each.
        ranges: slider range(s), as for :class:`LatentEditor`.
        size: the model's input resolution; default ``model.config.size``.
        pick: which face of a group photo: ``"largest"`` (with a warning) or ``"only"``
            (refuse).
        scale: enlargement of the displayed images.
        **editor_options: passed on to :class:`LatentEditor` (``compare``, ``continuous``, ...).

    The widget is ``self.widget``; ``self.editor`` is the current :class:`LatentEditor` (None
    before the first upload); :meth:`load_bytes` takes a file's bytes as an upload delivers
    them, for scripts and tests.
    """

    def __init__(
        self,
        model,
        directions: Mapping[str, Tensor],
        ranges: tuple[float, float] | Mapping[str, tuple[float, float]] = (-3.0, 3.0),
        size: int | None = None,
        pick: Literal["largest", "only"] = "largest",
        scale: int = 3,
        **editor_options,
    ) -> None:
        if not directions:
            raise ValueError("give at least one direction, e.g. {'Smiling': d}")
        self.size = size or getattr(getattr(model, "config", None), "size", None)
        if not self.size:
            raise ValueError("the model has no config.size: pass size=, its input resolution")
        self.model, self.directions, self.ranges = model, directions, ranges
        self.pick, self.scale, self.editor_options = pick, scale, editor_options
        params = list(model.parameters()) if hasattr(model, "parameters") else []
        self.device = editor_options.pop("device", None) or (
            params[0].device if params else fel.device()
        )
        self.editor: LatentEditor | None = None
        self.error: Exception | None = None
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="photo")
        self.upload.observe(self._on_upload, names="value")
        self.photo = widgets.Image(format="png")
        self.status = widgets.HTML("<small>upload a photo of a face looking at the camera</small>")
        self.editor_box = widgets.VBox()
        model_view = widgets.VBox([widgets.HTML("<b>aligned photo (model input)</b>"), self.photo])
        self.widget = widgets.VBox(
            [widgets.HBox([self.upload, self.status]), widgets.HBox([model_view, self.editor_box])]
        )

    def _on_upload(self, change) -> None:
        if change["new"]:  # clearing the value below notifies too, with nothing in it
            upload = change["new"][-1]
            self.load_bytes(bytes(upload["content"]), name=upload["name"])
            self.upload.value = ()  # so uploading the same file again still triggers

    @torch.no_grad()
    def load_bytes(self, data: bytes, name: str = "photo") -> None:
        """Align, encode and start editing the photo in ``data`` (a JPEG, PNG, ... file's bytes).

        Failures are shown in the status line and kept in ``self.error``, not raised: inside an
        upload callback an exception would vanish.
        """
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                x = to_model_input(align(data, pick=self.pick), self.size)
            z = self.model.encode(x.to(self.device))
            options = {
                "label": f"{model_label(self.model)}_{Path(name).stem}",
                **self.editor_options,
            }
            editor = LatentEditor(self.model, z, self.directions, ranges=self.ranges,
                                  scale=self.scale, device=self.device, **options)  # fmt: skip
        except Exception as err:  # shown to the user, who would otherwise see nothing happen
            self.status.value = f"<span style='color:#c00'>{html.escape(name)}: {type(err).__name__}: {html.escape(str(err))}</span>"
            self.error = err
            return
        self.error, self.editor = None, editor
        self.photo.value = png_bytes(x, scale=self.scale)
        self.editor_box.children = [editor.widget]
        notes = "".join(
            f"<br><span style='color:#b60'>{html.escape(str(w.message))}</span>" for w in caught
        )
        self.status.value = f"<small>{html.escape(name)}: aligned and encoded</small>{notes}"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
