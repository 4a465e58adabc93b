"""rosinality's StyleGAN2 ``.pt`` loader against an oracle written from the format sheet
(``../shared/reference/stylegan2-rosinality-checkpoint.md``), piece by piece: modulated conv
against explicit per-sample convolutions, up-sampling against explicit zero insertion and
filtering, then the whole generator, on files with the published keys and shapes."""

from __future__ import annotations

import argparse
import math

import pytest
import torch
import torch.nn.functional as F

from fel.checkpoints import CheckpointError
from fel.interface_gan.stylegan2 import ModulatedConv, ToRGB, load_stylegan2, published_state

S = 512
KERNEL = torch.tensor([1.0, 3.0, 3.0, 1.0])
KERNEL = KERNEL[:, None] * KERNEL[None, :] / 64 * 4  # sums to 4


def width(r: int, multiplier: int) -> int:
    return {4: 512, 8: 512, 16: 512, 32: 512}.get(r, 16384 // r * multiplier)


def fake_g_ema(size: int, multiplier: int = 2, n_mlp: int = 8, seed: int = 0) -> dict:
    """A ``g_ema`` state dict with the sheet's keys and shapes, seeded random values: mapping
    weights about 100x the effective ones (lr_mul 0.01), non-zero biases and noise strengths,
    modulation biases near 1 (the file holds TF's +1)."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *shape, s=1.0: s * torch.randn(*shape, generator=g)  # noqa: E731
    st: dict[str, torch.Tensor] = {}
    for i in range(1, n_mlp + 1):
        st[f"style.{i}.weight"], st[f"style.{i}.bias"] = rnd(S, S, s=100.0), rnd(S, s=0.1)

    def styled(prefix, cin, cout, up):
        st[f"{prefix}.conv.weight"] = rnd(1, cout, cin, 3, 3)
        if up:
            st[f"{prefix}.conv.blur.kernel"] = KERNEL.clone()
        st[f"{prefix}.conv.modulation.weight"] = rnd(cin, S)
        st[f"{prefix}.conv.modulation.bias"] = 1 + rnd(cin, s=0.1)
        st[f"{prefix}.noise.weight"] = rnd(1, s=0.3)
        st[f"{prefix}.activate.bias"] = rnd(cout, s=0.1)

    def rgb(prefix, cin, up):
        st[f"{prefix}.bias"] = rnd(1, 3, 1, 1, s=0.1)
        if up:
            st[f"{prefix}.upsample.kernel"] = KERNEL.clone()
        st[f"{prefix}.conv.weight"] = rnd(1, 3, cin, 1, 1, s=0.3)
        st[f"{prefix}.conv.modulation.weight"] = rnd(cin, S)
        st[f"{prefix}.conv.modulation.bias"] = 1 + rnd(cin, s=0.1)

    st["input.input"] = rnd(1, 512, 4, 4)
    styled("conv1", 512, 512, False)
    rgb("to_rgb1", 512, False)
    blocks = int(math.log2(size)) - 2
    cin = 512
    for j in range(blocks):
        cout = width(2 ** (j + 3), multiplier)
        styled(f"convs.{2 * j}", cin, cout, True)
        styled(f"convs.{2 * j + 1}", cout, cout, False)
        rgb(f"to_rgbs.{j}", cout, True)
        cin = cout
    for i in range(2 * blocks + 1):
        r = 2 ** ((i + 5) // 2)
        st[f"noises.noise_{i}"] = rnd(1, 1, r, r)
    return st


# ----------------------------------------------------------------------------- the oracle


def ref_style(w, weight, bias):
    """EqualLinear, lr_mul 1: w W^T / sqrt(S) + b."""
    return w @ weight.T / math.sqrt(weight.shape[1]) + bias


def ref_modconv(x, w, st, prefix, demodulate, up):
    """One sample at a time: the per-sample weight, demodulated over (in, kh, kw), then a plain
    conv; for up, zero insertion (stride 2), padding k - 1, the flipped and in/out-swapped
    kernel (a transposed conv written out), then the blur: padding (1, 1), true convolution."""
    weight = st[f"{prefix}.weight"][0]
    s = ref_style(w, st[f"{prefix}.modulation.weight"], st[f"{prefix}.modulation.bias"])
    cout, cin, k, _ = weight.shape
    out = []
    for b in range(x.shape[0]):
        wb = weight * s[b][None, :, None, None] / math.sqrt(cin * k * k)
        if demodulate:
            wb = wb / torch.sqrt(wb.square().sum((1, 2, 3), keepdim=True) + 1e-8)
        xb = x[b : b + 1]
        if not up:
            out.append(F.conv2d(xb, wb, padding=k // 2))
            continue
        h, wd = xb.shape[-2:]
        z = xb.new_zeros(1, cin, 2 * h - 1, 2 * wd - 1)
        z[..., ::2, ::2] = xb
        y = F.conv2d(F.pad(z, (k - 1,) * 4), wb.flip(2, 3))  # [1, cout, 2H + 1, 2W + 1]
        y = F.pad(y, (1, 1, 1, 1))
        out.append(F.conv2d(y, KERNEL.flip(0, 1).expand(cout, 1, 4, 4), groups=cout))
    return torch.cat(out)


def ref_upsample(x):
    """upfirdn2d with up 2, pad (2, 1), the 4x4 kernel: zero insertion at even indices, padding,
    true convolution."""
    c, h, w = x.shape[1:]
    z = x.new_zeros(x.shape[0], c, 2 * h, 2 * w)
    z[..., ::2, ::2] = x
    z = F.pad(z, (2, 1, 2, 1))
    return F.conv2d(z, KERNEL.flip(0, 1).expand(c, 1, 4, 4), groups=c)


def ref_mapping(z, st, n_mlp=8):
    x = z / torch.sqrt(z.square().mean(1, keepdim=True) + 1e-8)
    for i in range(1, n_mlp + 1):
        weight, bias = st[f"style.{i}.weight"], st[f"style.{i}.bias"]
        x = x @ (weight * 0.01 / math.sqrt(weight.shape[1])).T + 0.01 * bias
        x = F.leaky_relu(x, 0.2) * math.sqrt(2)
    return x


def ref_styled(x, w, st, prefix, noise, up):
    x = ref_modconv(x, w, st, f"{prefix}.conv", True, up)
    x = x + st[f"{prefix}.noise.weight"] * noise  # one scalar, broadcast over channels
    x = x + st[f"{prefix}.activate.bias"][None, :, None, None]
    return F.leaky_relu(x, 0.2) * math.sqrt(2)


def ref_rgb(x, w, st, prefix, skip):
    y = ref_modconv(x, w, st, f"{prefix}.conv", False, False) + st[f"{prefix}.bias"]
    return y if skip is None else y + ref_upsample(skip)


def ref_synthesis(wp, st):
    """The sheet's latent indices: conv1 0, to_rgb1 1; block j: 2j+1, 2j+2, ToRGB 2j+3."""
    blocks = (wp.shape[1] - 2) // 2
    noise = [st[f"noises.noise_{i}"] for i in range(2 * blocks + 1)]
    x = st["input.input"].repeat(wp.shape[0], 1, 1, 1)
    x = ref_styled(x, wp[:, 0], st, "conv1", noise[0], False)
    rgb = ref_rgb(x, wp[:, 1], st, "to_rgb1", None)
    for j in range(blocks):
        x = ref_styled(x, wp[:, 2 * j + 1], st, f"convs.{2 * j}", noise[2 * j + 1], True)
        x = ref_styled(x, wp[:, 2 * j + 2], st, f"convs.{2 * j + 1}", noise[2 * j + 2], False)
        rgb = ref_rgb(x, wp[:, 2 * j + 3], st, f"to_rgbs.{j}", rgb)
    return rgb


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def state64():
    return fake_g_ema(64)


@pytest.fixture(scope="module")
def file64(tmp_path_factory, state64):
    path = tmp_path_factory.mktemp("sg2") / "stylegan2-64.pt"
    latent_avg = torch.randn(S, generator=torch.Generator().manual_seed(5))
    torch.save({"g_ema": state64, "latent_avg": latent_avg}, path)
    return path


@pytest.fixture(scope="module")
def model64(file64):
    return load_stylegan2(file64, device="cpu")


# ----------------------------------------------------------------------------- pieces


@pytest.mark.parametrize(
    ("kernel", "demodulate", "up"), [(3, True, False), (3, True, True), (1, False, False)]
)
def test_modulated_conv_equals_explicit_per_sample_convolutions(kernel, demodulate, up):
    g = torch.Generator().manual_seed(1)
    layer = ModulatedConv(6, 5, kernel, 16, demodulate, up=up)
    with torch.no_grad():
        layer.modulation.bias.add_(torch.randn(6, generator=g))
    st = {f"c.{k}": v for k, v in layer.state_dict().items()}
    x, w = torch.randn(3, 6, 7, 7, generator=g), torch.randn(3, 16, generator=g)
    with torch.no_grad():
        got = layer(x, w)
    want = ref_modconv(x, w, st, "c", demodulate, up)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_up_conv_doubles_the_size_exactly():
    layer = ModulatedConv(4, 4, 3, 8, True, up=True)
    with torch.no_grad():
        assert layer(torch.randn(2, 4, 5, 5), torch.randn(2, 8)).shape == (2, 4, 10, 10)


def test_skip_upsampling_equals_zero_insertion_with_padding_2_1():
    rgb = ToRGB(4, 8)
    skip = torch.randn(2, 3, 6, 6)
    x, w = torch.randn(2, 4, 12, 12), torch.randn(2, 8)
    with torch.no_grad():
        got = rgb(x, w, skip) - rgb(x, w)
    torch.testing.assert_close(got, ref_upsample(skip), atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- whole model


def test_the_file_infers_size_mlp_and_multiplier_and_keeps_the_noise(model64, state64, file64):
    assert (model64.resolution, model64.n_mlp, model64.channel_multiplier) == (64, 8, 2)
    assert model64.n_latent == 10 and len(state64) == 99
    torch.testing.assert_close(model64.noises.noise_7, state64["noises.noise_7"])
    saved, file = published_state(model64), torch.load(file64, weights_only=True)
    assert set(saved["g_ema"]) == set(state64)  # a round trip, key for key
    for key, value in saved["g_ema"].items():
        torch.testing.assert_close(value, state64[key])
    torch.testing.assert_close(saved["latent_avg"], file["latent_avg"])
    small = load_stylegan2_state(fake_g_ema(64, multiplier=1, n_mlp=4))
    assert (small.channel_multiplier, small.n_mlp) == (1, 4)


def load_stylegan2_state(state):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "g.pt"
        torch.save(state, path)  # a bare g_ema state dict loads too
        return load_stylegan2(path, device="cpu")


@pytest.mark.parametrize("size", [64, 256])
def test_images_equal_the_oracle(size, state64, model64):
    st = state64 if size == 64 else fake_g_ema(256, seed=3)
    model = model64 if size == 64 else load_stylegan2_state(st)
    g = torch.Generator().manual_seed(2)
    wp = torch.randn(2, model.n_latent, S, generator=g)  # a different style on every layer
    with torch.no_grad():
        raw = model.synthesis(wp)
        want = ref_synthesis(wp, st)
    assert raw.shape == (2, 3, size, size)
    inside = ((want > -1) & (want < 1)).float().mean()
    assert inside > 0.3, "the test image should not be saturated"
    assert (((raw + 1) / 2) - ((want + 1) / 2)).abs().max() <= 1e-4
    with torch.no_grad():
        torch.testing.assert_close(
            model.decode_wplus(wp), ((want + 1) / 2).clamp(0, 1), atol=1e-4, rtol=0
        )


def test_z_to_image_with_truncation_on_every_layer_towards_latent_avg(model64, state64, file64):
    latent_avg = torch.load(file64, weights_only=True)["latent_avg"]
    torch.testing.assert_close(model64.w_avg, latent_avg)
    z = torch.randn(2, S, generator=torch.Generator().manual_seed(4))
    w = ref_mapping(z, state64)
    with torch.no_grad():
        torch.testing.assert_close(model64.mapping(z), w, atol=1e-4, rtol=1e-4)
        psi = 0.6
        wp = (latent_avg + psi * (w - latent_avg))[:, None].repeat(1, 10, 1)
        want = ((ref_synthesis(wp, state64) + 1) / 2).clamp(0, 1)
        torch.testing.assert_close(model64.decode(z, psi=psi), want, atol=1e-4, rtol=0)
        assert torch.equal(model64.decode(z, psi=psi), model64.decode(z, psi=psi))  # fixed noise


def test_every_latent_index_reaches_the_image(model64):
    wp = model64.truncate(model64.mapping(torch.randn(1, S))).detach().requires_grad_(True)
    model64.synthesis(wp).square().sum().backward()
    assert (wp.grad.abs().sum(-1) > 0).all()


def test_without_latent_avg_the_centre_is_the_mean_of_4096_draws(state64):
    model = load_stylegan2_state(state64)
    with torch.no_grad():
        z = torch.randn(4096, S, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(
            model.w_avg, ref_mapping(z, state64).mean(0), atol=1e-4, rtol=1e-4
        )


def test_w_and_wplus_inversion_reduce_the_error():
    model = load_stylegan2_state(fake_g_ema(16, seed=8))  # small: inversion is many passes
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        target = model.decode(model.sample_latent(1, generator=g))
        start = (model.decode_w(model.w_avg[None]) - target).square().mean()
    for space in ("w", "wplus"):
        code = model.encode(target, space=space, steps=8, lr=0.02, progress=False)
        decode = model.decode_w if space == "w" else model.decode_wplus
        with torch.no_grad():
            assert (decode(code) - target).square().mean() < 0.6 * start  # measured: 0.37, 0.25
    assert code.shape == (1, model.n_latent, S)
    big = F.interpolate(target, size=(40, 40))  # other sizes are resized to the model's
    assert model.encode(big, space="w", steps=1, progress=False).shape == (1, S)
    assert model.w_space().decode(model.w_space().sample_latent(1)).shape == (1, 3, 16, 16)
    assert model.wplus_space().sample_latent(2).shape == (2, model.n_latent * S)


# ----------------------------------------------------------------------------- broken files


def test_broken_files_raise_clear_errors(tmp_path, state64):
    with pytest.raises(FileNotFoundError, match="convert_weight.py"):
        load_stylegan2(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file at all")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_stylegan2(junk)
    trained = tmp_path / "train.pt"
    torch.save({"g_ema": state64, "args": argparse.Namespace(size=64)}, trained)
    with pytest.raises(CheckpointError, match="argparse.Namespace.*g_ema.pt"):
        load_stylegan2(trained)
    for change, match in [
        (lambda s: s.pop("convs.3.noise.weight"), r"missing keys \['convs.3.noise.weight'\]"),
        (lambda s: s.__setitem__("extra.weight", torch.zeros(1)), r"unexpected keys \['extra"),
        (lambda s: s.__setitem__("convs.1.activate.bias", torch.zeros(7)),
         r"'convs.1.activate.bias' has shape \(7,\) but the model expects \(512,\)"),
        (lambda s: s.__setitem__("convs.2.conv.blur.kernel", KERNEL / 4), "constant kernel"),
    ]:  # fmt: skip
        state = dict(state64)
        change(state)
        path = tmp_path / "broken.pt"
        torch.save({"g_ema": state}, path)
        with pytest.raises(CheckpointError, match=match):
            load_stylegan2(path, device="cpu")
    torch.save({"g_ema": state64, "latent_avg": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match=r"'latent_avg' has shape \(3,\)"):
        load_stylegan2(path, device="cpu")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a rosinality"):
        load_stylegan2(tmp_path / "list.pt")


def test_the_published_generator_bench_prints_its_table(capsys):
    from fel.bench import bench_published

    text = bench_published(size=8, steps=1)
    assert "StyleGAN2 8 px" in text and text in capsys.readouterr().out
    for row in ("forward, batch 1", "inversion into W, per step", "inversion into W+, per step"):
        assert row in text
