"""Published directions: InterfaceGAN's 39 real boundary files (and its conditional ones
reproduced by fel's projection), e4e-style ``.pt`` tensors, GANSpace ``.npz`` components, and
W+ layer-wise edits in the slider editor."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import fel
from fel.checkpoints import CheckpointError
from fel.directions import LAYER_GROUPS, layer_indices, project_boundary, wplus_direction
from fel.interface_gan import gan_editor, load_boundary, load_direction, load_ganspace
from tests.test_stylegan import fake_file_state, load_stylegan_state
from tests.test_stylegan2 import fake_g_ema, load_stylegan2_state

BOUNDARIES = fel.DATA_DIR / "interfacegan_boundaries"
FILES = sorted(BOUNDARIES.glob("*.npy"))


def test_all_39_published_boundaries_load_as_unit_vectors():
    assert len(FILES) == 39
    for path in FILES:
        n = load_boundary(path)
        assert n.shape == (512,) and n.dtype == torch.float32
        assert abs(float(n.norm()) - 1) < 1e-6
        raw = np.load(path)
        assert raw.shape == (1, 512) and raw.dtype == np.float64


CONDITIONAL = [p for p in FILES if "_c_" in p.name]


@pytest.mark.parametrize("path", CONDITIONAL, ids=lambda p: p.stem)
def test_project_boundary_reproduces_the_published_conditional_boundaries(path):
    """``age_c_gender`` is ``age`` projected off ``gender``: cosine 1.0 in float64."""
    model, attribute, conditions = re.fullmatch(
        r"((?:pggan|stylegan)_(?:celebahq|ffhq))_([a-z]+)_c_([a-z_]+)_boundary", path.stem
    ).groups()
    primal = np.load(BOUNDARIES / f"{model}_{attribute}_boundary.npy")
    others = [np.load(BOUNDARIES / f"{model}_{c}_boundary.npy") for c in conditions.split("_")]
    got = project_boundary(primal, *others, dtype=torch.float64)
    assert got.dtype == torch.float64
    cosine = float(got.numpy() @ np.load(path).reshape(-1))
    assert cosine == pytest.approx(1.0, abs=1e-12)
    assert len(CONDITIONAL) == 13  # 9 PGGAN, 4 StyleGAN FFHQ


def test_direction_tensors_for_w_and_wplus(tmp_path):
    w = torch.randn(512)
    for saved in (w, w[None], {"direction": w[None]}):
        torch.save(saved, tmp_path / "d.pt")
        torch.testing.assert_close(load_direction(tmp_path / "d.pt"), w)
    wp = torch.randn(1, 18, 512)
    torch.save(wp, tmp_path / "wp.pt")
    torch.testing.assert_close(load_direction(tmp_path / "wp.pt", n_latent=18), wp[0])
    with pytest.raises(ValueError, match=r"shape \(1, 18, 512\).*\[14, 512\]"):
        load_direction(tmp_path / "wp.pt", n_latent=14)
    torch.save(torch.randn(3, 256), tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"shape \(3, 256\)"):
        load_direction(tmp_path / "bad.pt")
    torch.save(torch.zeros(512), tmp_path / "zero.pt")
    with pytest.raises(ValueError, match="non-zero"):
        load_direction(tmp_path / "zero.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="holds a list"):
        load_direction(tmp_path / "list.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_direction(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError):
        load_direction(tmp_path / "none.pt")


def test_ganspace_components(tmp_path):
    g = np.random.default_rng(0)
    comp = g.normal(size=(5, 1, 512)).astype(np.float32)
    path = tmp_path / "stylegan2-ffhq_style_ipca_c80_n1000000_w.npz"
    np.savez(path, lat_comp=comp, lat_mean=np.ones((1, 512), np.float32),
             lat_stdev=np.arange(1, 6, dtype=np.float32), act_comp=np.zeros(3))  # fmt: skip
    got = load_ganspace(path)
    assert got["components"].shape == (5, 512)
    torch.testing.assert_close(got["components"].norm(dim=1), torch.ones(5))
    cosine = (got["components"][2] @ torch.from_numpy(comp[2, 0])) / np.linalg.norm(comp[2, 0])
    assert float(cosine) == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(got["std"], torch.arange(1.0, 6.0))
    np.savez(path, lat_comp=comp, lat_mean=np.ones(512))
    with pytest.raises(ValueError, match=r"lacks \['lat_stdev'\]"):
        load_ganspace(path)
    np.savez(path, lat_comp=comp, lat_mean=np.ones(512), lat_stdev=np.ones(4))
    with pytest.raises(ValueError, match="do not fit"):
        load_ganspace(path)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not an .npz"):
        load_ganspace(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError, match="ganspace"):
        load_ganspace(tmp_path / "none.npz")


def test_layer_groups_and_wplus_directions():
    assert layer_indices("coarse", 18) == [0, 1, 2, 3]
    assert layer_indices("middle", 18) == [4, 5, 6, 7]
    assert layer_indices("fine", 18) == list(range(8, 18))
    assert layer_indices("fine", 10) == [8, 9] and layer_indices("all", 3) == [0, 1, 2]
    assert layer_indices(range(2, 5), 10) == [2, 3, 4]
    assert set(LAYER_GROUPS) == {"coarse", "middle", "fine"}
    with pytest.raises(ValueError, match="unknown layer group 'hair'.*'coarse'"):
        layer_indices("hair", 18)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        layer_indices([3, 12], 10)
    d = wplus_direction(torch.tensor([3.0, 4.0]), [1, 2], 4)
    torch.testing.assert_close(d, torch.tensor([[0, 0], [0.6, 0.8], [0.6, 0.8], [0, 0]]))


@pytest.fixture(scope="module", params=["stylegan", "stylegan2"])
def generator(request):
    if request.param == "stylegan":
        return load_stylegan_state(fake_file_state(16, seed=11))
    return load_stylegan2_state(fake_g_ema(16, seed=11))


def test_the_editor_edits_only_the_chosen_wplus_layers(generator):
    n = generator.n_latent  # 6 at 16 px
    w = generator.mapping(generator.sample_latent(1)).detach()
    direction = torch.randn(512)
    editor = gan_editor(generator, w, {"Smiling": direction}, layers=[2, 3], continuous=False)
    before = editor.image.value
    editor.sliders["Smiling"].value = 2.0
    assert editor.image.value != before and editor.error is None
    moved = (editor.code() - editor.z0).reshape(n, 512)
    unit = direction / direction.norm()
    for layer in range(n):
        want = 2.0 * unit if layer in (2, 3) else torch.zeros(512)
        torch.testing.assert_close(moved[layer], want, atol=1e-5, rtol=0)
    # the code is W repeated before truncation; decoding truncates it with the slider's psi
    with torch.no_grad():
        torch.testing.assert_close(
            editor.model.decode(editor.z0), generator.decode_w(w, psi=0.7), atol=1e-5, rtol=0
        )
    editor.truncation_slider.value = 1.0
    assert generator.truncation == 1.0
    w_editor = gan_editor(generator, w, {"Smiling": direction}, continuous=False)  # all layers
    w_editor.sliders["Smiling"].value = 1.5
    torch.testing.assert_close(w_editor.code() - w_editor.z0, 1.5 * unit[None], atol=1e-5, rtol=0)


def test_the_editor_refuses_layers_on_a_single_style_generator():
    from fel.interface_gan import Generator

    fel_gan = Generator(size=16, g_channels=(8, 8, 8), d_channels=(8, 8, 8), z_dim=8, w_dim=8,
                        mapping_layers=1)  # fmt: skip
    with pytest.raises(ValueError, match="no W\\+"):
        gan_editor(fel_gan, torch.zeros(8), {"a": torch.ones(8)}, layers="coarse")
