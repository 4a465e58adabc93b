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
    knob = widgets.FloatSlider(value=1.0, min=0.0, max=2.0)
    model = editor.model
    editor.add_control(knob, lambda v: (gains.append(v), setattr(model, "gain", v)))
    assert gains == [1.0] and knob in editor.controls.children
    original, edited = editor.original.value, editor.image.value
    knob.value = 0.5
    assert gains == [1.0, 0.5]
    assert editor.original.value != original and editor.image.value != edited
