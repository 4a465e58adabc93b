"""LatentEditor headless: set a slider, and the picture's bytes change; reset brings them back."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fel.widgets import LatentEditor, strip


class TinyModel(nn.Module):
    """decode: z [B, 4] -> images [B, 3, 8, 8]; encode: the inverse of the mean colour."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 3 * 8 * 8)
        self.calls = 0
        self.gain = 1.0  # a model setting (as the GAN's truncation)

    def decode(self, z):
        self.calls += 1
        return torch.sigmoid(self.gain * self.lin(z)).view(-1, 3, 8, 8)

    def encode(self, x):
        return x.mean((2, 3)).repeat(1, 2)[:, :4]

    def sample_latent(self, n, generator=None):
        return torch.randn(n, 4, generator=generator)


@pytest.fixture
def editor():
    directions = {"smile": torch.tensor([1.0, 0, 0, 0]), "eyes": torch.tensor([0, 2.0, 0, 0])}
    faces = torch.rand(3, 3, 8, 8)
    return LatentEditor(TinyModel(), torch.zeros(4), directions, faces=faces, scale=2)


def test_moving_a_slider_changes_the_picture_and_reset_restores_it(editor):
    start = editor.image.value
    assert start == editor.original.value  # sliders at 0: edited = original
    editor.sliders["smile"].value = 2.0
    moved = editor.image.value
    assert moved != start and editor.original.value == start
    assert torch.allclose(editor.code(), torch.tensor([[2.0, 0, 0, 0]]))
    editor.sliders["eyes"].value = -1.0  # the direction was normalised: one unit along axis 1
    assert torch.allclose(editor.code(), torch.tensor([[2.0, -1.0, 0, 0]]))
    editor.reset()
    assert editor.image.value == start and all(s.value == 0 for s in editor.sliders.values())


def test_set_renders_once_and_names_are_checked(editor):
    calls = editor.model.calls
    editor.set(smile=1.0, eyes=1.0)
    assert editor.model.calls == calls + 1
    with pytest.raises(KeyError, match="smile, eyes"):
        editor.set(smiel=1.0)


def test_random_face_and_picking_a_test_face_change_the_original(editor):
    start = editor.original.value
    editor.random_face()
    assert editor.original.value != start
    editor.sliders["smile"].value = 1.0
    editor.picker.value = 2
    assert torch.allclose(editor.z0, editor.model.encode(editor.faces[2:3]))
    assert editor.sliders["smile"].value == 0.0  # a new face starts unedited


def test_fast_models_update_continuously_and_bad_input_is_refused(monkeypatch):
    model = TinyModel()
    ed = LatentEditor(model, torch.zeros(1, 4), {"a": torch.ones(4)})
    assert ed.decode_seconds > 0  # measured, not assumed
    for seconds, continuous in [(0.02, True), (0.3, False)]:  # the rule, not this machine's speed
        monkeypatch.setattr(LatentEditor, "_timed_decode", lambda self, s=seconds: s)
        ed = LatentEditor(model, torch.zeros(1, 4), {"a": torch.ones(4)})
        assert ed.continuous is continuous and ed.sliders["a"].continuous_update is continuous
    with pytest.raises(ValueError, match="3 dimensions"):
        LatentEditor(model, torch.zeros(4), {"a": torch.ones(3)})
    with pytest.raises(ValueError, match="at least one direction"):
        LatentEditor(model, torch.zeros(4), {})
    with pytest.raises(ValueError, match="without faces"):
        ed.pick_face(0)


def test_strip_decodes_each_step():
    model = TinyModel()
    images = strip(model, torch.zeros(4), torch.tensor([3.0, 0, 0, 0]), [-1, 0, 1])
    assert images.shape == (3, 3, 8, 8)
    assert torch.allclose(images[1], model.decode(torch.zeros(1, 4))[0])
    assert torch.allclose(images[2], model.decode(torch.tensor([[1.0, 0, 0, 0]]))[0])


def test_errors_show_in_the_widget_instead_of_vanishing():
    class Fragile(TinyModel):
        def decode(self, z):
            if z[0, 0] > 1.5:
                raise RuntimeError("decoder blew up")
            return super().decode(z)

    ed = LatentEditor(Fragile(), torch.zeros(4), {"a": torch.tensor([1.0, 0, 0, 0])})
    good = ed.image.value
    ed.sliders["a"].value = 2.0
    assert "decoder blew up" in ed.status.value and "color:#c00" in ed.status.value
    assert (
        isinstance(ed.error, RuntimeError) and ed.image.value == good
    )  # the last good image stays
    ed.sliders["a"].value = 1.0
    assert ed.error is None and "ms" in ed.status.value and ed.image.value != good


def test_an_added_control_changes_the_model_and_redraws_both_pictures(editor):
    import ipywidgets as widgets

    gains = []
    knob = widgets.FloatSlider(value=1.0, min=0.0, max=2.0, description="gain")
    model = editor.model
    editor.add_control(knob, lambda v: (gains.append(v), setattr(model, "gain", v)))
    row = editor.controls.children[0]  # shown as a slider row like the directions'
    assert gains == [1.0] and knob in row.children and "gain" in row.children[0].value
    original, edited = editor.original.value, editor.image.value
    knob.value = 0.5
    assert gains == [1.0, 0.5]
    assert editor.original.value != original and editor.image.value != edited


def test_sigma_units_move_the_code_by_the_spread_of_the_training_codes():
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(4000, 4, generator=g) * torch.tensor([3.0, 0.5, 1.0, 1.0])
    ed = LatentEditor(TinyModel(), torch.zeros(4), {"a": torch.tensor([2.0, 0, 0, 0]),
                      "b": torch.tensor([0, 1.0, 0, 0])}, codes=codes)  # fmt: skip
    ed.set(a=1.0, b=2.0)
    sigma_a, sigma_b = codes[:, 0].std(), codes[:, 1].std()
    assert torch.allclose(ed.code(), torch.tensor([[float(sigma_a), 2 * float(sigma_b), 0, 0]]))
    assert ed.unit == "σ"


def test_variants_are_a_choice_and_the_first_is_the_default():
    raw, orth = torch.tensor([1.0, 1.0, 0, 0]), torch.tensor([1.0, 0, 0, 0])
    ed = LatentEditor(TinyModel(), torch.zeros(4), {"smile": {"raw": raw, "orthogonal": orth}})
    picker = ed.variants["smile"]
    assert picker.options == ("raw", "orthogonal") and picker.value == "raw"
    ed.set(smile=2.0)
    raw_png = ed.image.value
    assert torch.allclose(ed.code(), 2 * raw / raw.norm())
    picker.value = "orthogonal"
    assert torch.allclose(ed.code(), torch.tensor([[2.0, 0, 0, 0]])) and ed.image.value != raw_png
    with pytest.raises(ValueError, match="no variants"):
        LatentEditor(TinyModel(), torch.zeros(4), {"smile": {}})


def test_slider_rows_show_their_ends_and_line_up(editor):
    import ipywidgets as widgets

    rows = [c for c in editor.widget.children
            if isinstance(c, widgets.HBox) and set(editor.sliders.values()) & set(c.children)]  # fmt: skip
    assert len(rows) == 2
    widths = [[child.layout.width for child in row.children[:4]] for row in rows]
    assert widths[0] == widths[1] and None not in widths[0]  # same columns: the tracks line up
    for row in rows:
        name, low, slider, high, value, unit = row.children
        assert "-3" in low.value and "+3" in high.value
        assert slider.readout is False and "fel-readout" in value._dom_classes
    editor.set(smile=1.5)
    assert rows[0].children[4].value == "+1.5"


def test_the_displayed_editor_carries_a_static_preview_of_the_slider_ends(editor):
    bundle = editor._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    preview = bundle["text/html"]
    assert preview.count("<img") == 3 * len(editor.sliders)
    assert "smile" in preview and "original" in preview and "+3" in preview


def _button(editor, description: str):
    stack, found = [editor.widget], []
    while stack:
        w = stack.pop()
        found += [w] if getattr(w, "description", None) == description else []
        stack += list(getattr(w, "children", ()))
    (button,) = found
    return button


def test_save_buttons_write_the_shown_face_and_a_sweep_without_overwriting(tmp_path):
    import numpy as np
    from PIL import Image

    model = TinyModel()
    directions = {"smile": torch.tensor([1.0, 0, 0, 0]), "eyes": torch.tensor([0, 2.0, 0, 0])}
    editor = LatentEditor(model, torch.zeros(4), directions, scale=2, save_dir=tmp_path / "edits")
    editor.sliders["eyes"].value = -1.0
    editor.sliders["smile"].value = 1.5  # moved last: the sweep's slider
    _button(editor, "save PNG").click()
    first = tmp_path / "edits" / "tinymodel_smile+1.50_eyes-1.00.png"
    assert first.is_file() and "saved" in editor.status.value
    with torch.no_grad():  # the oracle: decode by hand, enlarge each pixel to 2x2
        face = model.decode(torch.tensor([[1.5, -1.0, 0, 0]]))[0].permute(1, 2, 0)
    expected = np.kron((face.numpy() * 255 + 0.5).astype(np.uint8), np.ones((2, 2, 1), np.uint8))
    assert np.array_equal(np.asarray(Image.open(first).convert("RGB")), expected)
    _button(editor, "save PNG").click()
    assert (tmp_path / "edits" / "tinymodel_smile+1.50_eyes-1.00-2.png").is_file()
    assert np.array_equal(np.asarray(Image.open(first).convert("RGB")), expected)  # untouched

    _button(editor, "save sweep (GIF)").click()
    gif = tmp_path / "edits" / "tinymodel_smile-3.00_to_+3.00_eyes-1.00.gif"
    with Image.open(gif) as im:
        assert im.n_frames == 13 and im.size == (16, 16)
        im.seek(0)
        start = np.asarray(im.convert("RGB")).astype(int)
    with torch.no_grad():
        face = model.decode(torch.tensor([[-3.0, -1.0, 0, 0]]))[0].permute(1, 2, 0)
    oracle = np.kron((face.numpy() * 255 + 0.5).astype(int), np.ones((2, 2, 1), int))
    assert np.abs(start - oracle).max() <= 8  # GIF's palette may round a colour

    (tmp_path / "blocked").write_text("a file where the folder should be")
    editor.save_dir = tmp_path / "blocked"
    _button(editor, "save PNG").click()
    assert "could not save" in editor.status.value and editor.error is not None
    with pytest.raises(KeyError, match="no slider 'mouth'"):
        editor.save_sweep("mouth")
