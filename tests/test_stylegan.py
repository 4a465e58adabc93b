"""InterfaceGAN's StyleGAN (v1) loader against an oracle written from the format sheet
(``../shared/reference/interfacegan-stylegan-checkpoint.md``): the fused up-conv against
nearest up-sampling and a conv with the flipped kernel, the epilogue's order by hand,
truncation of the first 8 layers only, lod, and the whole generator at 128 px (the first size
with a fused layer), on files with the published keys and shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fel.checkpoints import CheckpointError
from fel.interface_gan.stylegan import ConvLayer, load_stylegan, published_state

BLUR = torch.tensor([1.0, 2.0, 1.0])
BLUR = BLUR[:, None] * BLUR[None, :] / 16


def width(r: int) -> int:
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32}.get(r, 16)


def fake_file_state(resolution: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """InterfaceGAN's converted state dict, from the sheet's table: 17 + 15 (log2 R - 1) keys,
    no ``truncation.truncation``, fused up-convs from 128 px stored [3, 3, in, out]."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *shape, s=1.0: s * torch.randn(*shape, generator=g)  # noqa: E731
    st: dict[str, torch.Tensor] = {}
    for i in range(8):
        st[f"mapping.dense{i}.linear.weight"] = rnd(512, 512, s=100.0)  # lr 0.01: stored x100
        st[f"mapping.dense{i}.wscale.bias"] = rnd(512, s=10.0)
    st["truncation.w_avg"] = rnd(512, s=0.5)
    st["synthesis.lod"] = torch.tensor(0.0)
    blocks = int(math.log2(resolution)) - 1
    for i in range(2 * blocks):
        r = 2 ** (i // 2 + 2)
        c, cin = width(r), width(r // 2) if i % 2 == 0 else width(r)
        p = f"synthesis.layer{i}"
        if i == 0:
            st[f"{p}.first_layer"] = rnd(1, 512, 4, 4)
        elif i % 2 == 0 and r >= 128:
            st[f"{p}.weight"] = rnd(3, 3, cin, c)
        else:
            st[f"{p}.conv.weight"] = rnd(c, cin, 3, 3)
        if i % 2 == 0 and i > 0:
            st[f"{p}.blur.kernel"] = BLUR.expand(c, 1, 3, 3).clone()
        st[f"{p}.epilogue.bias"] = rnd(c, s=0.2)
        st[f"{p}.epilogue.apply_noise.weight"] = rnd(c, s=0.3)
        st[f"{p}.epilogue.apply_noise.noise"] = rnd(1, 1, r, r)
        st[f"{p}.epilogue.style_mod.dense.linear.weight"] = rnd(2 * c, 512)
        st[f"{p}.epilogue.style_mod.dense.wscale.bias"] = rnd(2 * c, s=0.2)
    for b in range(blocks):
        c = width(2 ** (b + 2))
        st[f"synthesis.output{b}.conv.weight"] = rnd(3, c, 1, 1)
        st[f"synthesis.output{b}.bias"] = rnd(3, s=0.1)
    return st


# ----------------------------------------------------------------------------- the oracle


def ref_mapping(z, st):
    z = z * math.sqrt(512) / z.norm(dim=1, keepdim=True)  # InterfaceGAN's preprocessing
    x = z / torch.sqrt(z.square().mean(1, keepdim=True) + 1e-8)
    s = math.sqrt(2) / math.sqrt(512) * 0.01
    for i in range(8):
        weight, bias = st[f"mapping.dense{i}.linear.weight"], st[f"mapping.dense{i}.wscale.bias"]
        x = F.leaky_relu(x @ (weight * s).T + 0.01 * bias, 0.2)  # no gain after it
    return x


def ref_epilogue(x, w, st, p):
    x = x + st[f"{p}.apply_noise.noise"] * st[f"{p}.apply_noise.weight"].view(1, -1, 1, 1)
    x = F.leaky_relu(x + st[f"{p}.bias"].view(1, -1, 1, 1), 0.2)
    mean = x.mean((2, 3), keepdim=True)
    var = x.var((2, 3), unbiased=False, keepdim=True)
    x = (x - mean) / torch.sqrt(var + 1e-8)
    s = w @ st[f"{p}.style_mod.dense.linear.weight"].T / math.sqrt(512)
    s = s + st[f"{p}.style_mod.dense.wscale.bias"]
    c = x.shape[1]
    return x * (s[:, :c, None, None] + 1) + s[:, c:, None, None]


def ref_up_layer(x, st, p):
    """The sheet's equivalent form: nearest x2, then a 3x3 conv whose kernel is the stored one
    (fused: [kh, kw, in, out] permuted and flipped in both spatial axes), the scale, the blur."""
    if f"{p}.weight" in st:
        kernel = st[f"{p}.weight"].permute(3, 2, 0, 1).flip(2, 3)
    else:
        kernel = st[f"{p}.conv.weight"]
    x = F.interpolate(x, scale_factor=2, mode="nearest")
    x = F.conv2d(x, kernel, padding=1) * math.sqrt(2) / math.sqrt(kernel.shape[1] * 9)
    c = x.shape[1]
    return F.conv2d(x, BLUR.expand(c, 1, 3, 3), padding=1, groups=c)


def ref_synthesis(wp, st):
    blocks = wp.shape[1] // 2
    x = st["synthesis.layer0.first_layer"].repeat(wp.shape[0], 1, 1, 1)
    x = ref_epilogue(x, wp[:, 0], st, "synthesis.layer0.epilogue")
    for i in range(1, 2 * blocks):
        p = f"synthesis.layer{i}"
        if i % 2 == 0:
            x = ref_up_layer(x, st, p)
        else:
            k = st[f"{p}.conv.weight"]
            x = F.conv2d(x, k, padding=1) * math.sqrt(2) / math.sqrt(k.shape[1] * 9)
        x = ref_epilogue(x, wp[:, i], st, f"{p}.epilogue")
    rgb = st[f"synthesis.output{blocks - 1}.conv.weight"]
    return F.conv2d(x, rgb) / math.sqrt(rgb.shape[1]) + st[
        f"synthesis.output{blocks - 1}.bias"
    ].view(1, 3, 1, 1)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def state128():
    return fake_file_state(128)


@pytest.fixture(scope="module")
def file128(tmp_path_factory, state128):
    path = tmp_path_factory.mktemp("sg") / "stylegan_celebahq.pth"
    torch.save(state128, path)
    return path


@pytest.fixture(scope="module")
def model128(file128):
    return load_stylegan(file128, device="cpu")


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("resolution", [64, 128])
def test_up_layers_equal_nearest_upsampling_the_flipped_kernel_and_the_blur(resolution):
    layer = ConvLayer(6, 4, resolution, 512, up=True)
    assert layer.fused == (resolution >= 128)  # fused from 128 px output on
    assert layer.state_dict()["weight" if layer.fused else "conv.weight"].shape == (
        (3, 3, 6, 4) if layer.fused else (4, 6, 3, 3)
    )
    st = {f"l.{k}": v for k, v in layer.state_dict().items()}
    layer.epilogue.forward = lambda x, w: x  # the epilogue is checked in the whole model
    x = torch.randn(2, 6, 5, 5)
    with torch.no_grad():
        got = layer(x, None)
    torch.testing.assert_close(got, ref_up_layer(x, st, "l"), atol=1e-5, rtol=1e-5)


def test_the_file_has_the_published_layout(state128, model128):
    assert len(state128) == 17 + 15 * 6 == 107
    assert model128.resolution == 128 and model128.n_latent == 12
    assert set(published_state(model128)) == set(state128)
    for key, value in published_state(model128).items():
        torch.testing.assert_close(value, state128[key])  # a round trip, key for key
    assert len(published_state(load_stylegan_state(fake_file_state(1024, seed=1)))) == 152


def load_stylegan_state(state):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "g.pth"
        torch.save(state, path)
        return load_stylegan(path, device="cpu")


def test_images_equal_the_oracle(model128, state128):
    wp = torch.randn(2, 12, 512, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        raw = model128.synthesis(wp)
        want = ref_synthesis(wp, state128)
    assert raw.shape == (2, 3, 128, 128)
    assert ((want > -1) & (want < 1)).float().mean() > 0.3, "the test image should not be saturated"
    assert ((raw - want) / 2).abs().max() <= 1e-4


def test_z_is_rescaled_mapped_and_truncated_on_the_first_8_layers(model128, state128):
    z = torch.randn(2, 512, generator=torch.Generator().manual_seed(3)) * 3
    w = ref_mapping(z, state128)
    with torch.no_grad():
        torch.testing.assert_close(model128.mapping(z), w, atol=1e-4, rtol=1e-4)
        w_avg = state128["truncation.w_avg"]
        coef = torch.tensor([0.7] * 8 + [1.0] * 4).view(1, 12, 1)
        wp = w_avg + coef * (w[:, None] - w_avg)
        torch.testing.assert_close(model128.truncate(w), wp, atol=1e-5, rtol=1e-5)
        want = ((ref_synthesis(wp, state128) + 1) / 2).clamp(0, 1)
        torch.testing.assert_close(model128.decode(z), want, atol=1e-4, rtol=0)
        # W+ input is not truncated; W input is, after the edit
        torch.testing.assert_close(model128.decode_wplus(wp), want, atol=1e-4, rtol=0)
        n = torch.randn(512)
        edited = model128.truncate(w + n)
        torch.testing.assert_close(
            edited, w_avg + coef * (w[:, None] + n - w_avg), atol=1e-5, rtol=1e-5
        )
        codes = model128.sample_latent(3)
        torch.testing.assert_close(codes.norm(dim=1), torch.full((3,), math.sqrt(512)))


def test_every_latent_index_reaches_the_image(model128):
    wp = model128.truncate(model128.mapping(torch.randn(1, 512))).detach().requires_grad_(True)
    model128.synthesis(wp).square().sum().backward()
    assert (wp.grad.abs().sum(-1) > 0).all()


def test_lod_skips_the_last_blocks(model128):
    wp = model128.truncate(model128.mapping(torch.randn(1, 512))).detach()
    with torch.no_grad():
        model128.synthesis_net.lod.fill_(1.0)
        try:
            low = model128.synthesis(wp)
        finally:
            model128.synthesis_net.lod.fill_(0.0)
    assert low.shape == (1, 3, 128, 128)
    assert torch.equal(low[..., ::2, ::2], low[..., 1::2, 1::2])  # 64 px, doubled


def test_published_boundaries_edit_a_code_to_its_distance(model128):
    from fel.directions import edit_to_distance

    path = "../shared/reference/interfacegan-boundaries/stylegan_celebahq_smile_w_boundary.npy"
    from pathlib import Path

    from fel.interface_gan import load_boundary

    if not Path(path).is_file():
        pytest.skip("../shared/reference is not beside the project")
    n = load_boundary(path)
    w = model128.mapping(model128.sample_latent(2)).detach()
    moved = edit_to_distance(w, n, 2.0)
    torch.testing.assert_close(moved @ n.double().float(), torch.full((2,), 2.0), atol=1e-4, rtol=0)
    assert np.isclose(float(n.norm()), 1.0)


def test_broken_files_raise_clear_errors(tmp_path, state128):
    with pytest.raises(FileNotFoundError, match="stylegan_ffhq.pth"):
        load_stylegan(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_stylegan(junk)
    path = tmp_path / "broken.pth"
    for change, match in [
        (lambda s: s.pop("synthesis.layer5.epilogue.bias"),
         r"missing keys \['synthesis.layer5.epilogue.bias'\]"),
        (lambda s: s.__setitem__("synthesis.layer10.weight", torch.zeros(128, 256, 3, 3)),
         r"'synthesis.layer10.weight' has shape \(128, 256, 3, 3\) but the model expects \(3, 3, 256, 128\)"),
        (lambda s: s.__setitem__("synthesis.layer2.blur.kernel", torch.ones(512, 1, 3, 3)),
         "constant kernel"),
        (lambda s: s.__setitem__("truncation.truncation", torch.ones(1, 12, 1)), "constant"),
        (lambda s: s.__setitem__("mapping.dense8.linear.weight", torch.zeros(2)),
         r"unexpected keys \['mapping.dense8"),
    ]:  # fmt: skip
        state = dict(state128)
        change(state)
        torch.save(state, path)
        with pytest.raises(CheckpointError, match=match):
            load_stylegan(path, device="cpu")
    state = dict(state128)
    state["truncation.truncation"] = torch.tensor([0.7] * 8 + [1.0] * 4).view(1, 12, 1)
    torch.save(state, path)
    assert load_stylegan(path, device="cpu").n_latent == 12  # the module's own key is accepted
    torch.save({"a": 1}, path)
    with pytest.raises(CheckpointError, match="not an InterfaceGAN StyleGAN"):
        load_stylegan(path)
