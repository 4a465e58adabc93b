"""The PGGAN CelebA-HQ loader against the published format: keys, shapes, layer semantics by hand,
lod, uint8 conversion, and a clear error for every broken file."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fel.checkpoints import CheckpointError
from fel.interface_gan import PGGANGenerator, load_boundary, load_pggan

# The published layout, written out from the format notes rather than taken from the library.
BLOCK_CHANNELS = [512, 512, 512, 512, 256, 128, 64, 32, 16]


def fake_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """The 55 entries of ``pggan_celebahq.pth`` with random values (weights N(0, 1))."""
    g = torch.Generator().manual_seed(seed)
    shapes: dict[str, tuple[int, ...]] = {}
    cin = 512
    for b, cout in enumerate(BLOCK_CHANNELS):
        first = (cout, 512, 4, 4) if b == 0 else (cout, cin, 3, 3)
        for i, shape in ((2 * b, first), (2 * b + 1, (cout, cout, 3, 3))):
            shapes[f"layer{i}.conv.weight"] = shape
            shapes[f"layer{i}.wscale.bias"] = (cout,)
        shapes[f"output{b}.conv.weight"] = (3, cout, 1, 1)
        shapes[f"output{b}.wscale.bias"] = (3,)
        cin = cout
    state = {"lod": torch.tensor(0.0)}
    for key, shape in shapes.items():
        scale = 1.0 if key.endswith("weight") else 0.1
        state[key] = scale * torch.randn(shape, generator=g)
    return state


@pytest.fixture(scope="module")
def fake():
    return fake_state_dict()


@pytest.fixture(scope="module")
def fake_file(tmp_path_factory, fake):
    path = tmp_path_factory.mktemp("pggan") / "pggan_celebahq.pth"
    torch.save(fake, path)
    return path


@pytest.fixture(scope="module")
def model(fake_file):
    return load_pggan(fake_file, device="cpu")


def test_the_generator_has_the_published_keys_and_shapes(fake):
    state = PGGANGenerator().state_dict()
    assert len(fake) == 55 and list(state) == list(fake)
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        k: tuple(v.shape) for k, v in fake.items()
    }
    assert state["layer0.conv.weight"].shape == (512, 512, 4, 4)
    assert state["layer8.conv.weight"].shape == (256, 512, 3, 3)
    assert state["layer17.conv.weight"].shape == (16, 16, 3, 3)
    assert state["output8.conv.weight"].shape == (3, 16, 1, 1)
    assert state["lod"].shape == ()
    n = sum(p.numel() for p in PGGANGenerator().parameters())
    assert n == pytest.approx(23.1e6, abs=0.05e6)


def test_load_round_trip_and_wrapped_state_dicts(tmp_path, fake, model):
    assert not model.training and model.lod.device.type == "cpu"
    for key, value in fake.items():
        assert torch.equal(model.state_dict()[key], value), key
    for wrapper in ("state_dict", "generator"):
        torch.save({wrapper: fake}, tmp_path / f"{wrapper}.pth")
        again = load_pggan(tmp_path / f"{wrapper}.pth", device="cpu")
        assert torch.equal(again.layer17.conv.weight, fake["layer17.conv.weight"])


def test_a_1024_forward_pass(model):
    """One image at full resolution: a few seconds on one CPU thread."""
    z = model.sample_latent(1, torch.Generator().manual_seed(1))
    assert z.shape == (1, 512)
    with torch.no_grad():
        raw = model(z)
        images = model.decode(z)
    assert raw.shape == images.shape == (1, 3, 1024, 1024) and images.dtype == torch.float32
    assert torch.isfinite(raw).all() and raw.std() > 0.1
    assert images.min() >= 0 and images.max() <= 1
    assert torch.allclose(images, ((raw + 1) / 2).clamp(0, 1))


def _pixel_norm(x):
    return x / torch.sqrt((x * x).mean(dim=1, keepdim=True) + 1e-8)


def test_the_4x4_block_by_hand(model, fake):
    """lod = 8 keeps only the 4x4 block; recompute it with plain torch ops from the raw weights."""
    z = torch.randn(2, 512, generator=torch.Generator().manual_seed(2)) * 3
    x = z / z.norm(dim=1, keepdim=True) * math.sqrt(512)
    # layer0: a 4x4 kernel with padding 3 on a 1x1 input is a dense layer with a flipped kernel.
    w = fake["layer0.conv.weight"] * math.sqrt(2) / math.sqrt(512 * 16)
    h = torch.einsum("ochw,bc->bohw", w.flip(2, 3), _pixel_norm(x))
    h = F.leaky_relu(h + fake["layer0.wscale.bias"].view(1, -1, 1, 1), 0.2)
    w = fake["layer1.conv.weight"] * math.sqrt(2) / math.sqrt(512 * 9)
    h = F.conv2d(_pixel_norm(h), w, padding=1) + fake["layer1.wscale.bias"].view(1, -1, 1, 1)
    h = F.leaky_relu(h, 0.2)
    w = fake["output0.conv.weight"] / math.sqrt(512)  # gain 1, linear
    rgb = F.conv2d(_pixel_norm(h), w) + fake["output0.wscale.bias"].view(1, -1, 1, 1)

    model.lod.fill_(8.0)
    try:
        with torch.no_grad():
            out = model(z)
    finally:
        model.lod.zero_()
    assert out.shape == (2, 3, 1024, 1024)
    # nearest upsampling 4 -> 1024: constant 256x256 blocks holding the hand-computed pixels
    assert torch.allclose(out[:, :, ::256, ::256], rgb, atol=1e-4)
    blocks = out.unflatten(2, (4, 256)).unflatten(4, (4, 256))
    assert torch.equal(blocks, blocks[:, :, :, :1, :, :1].expand_as(blocks))


def test_lod_skips_the_last_blocks(model):
    z = torch.randn(1, 512, generator=torch.Generator().manual_seed(3))
    model.lod.fill_(6.0)  # blocks at 4, 8, 16: a 16x16 image in 64x64 blocks
    try:
        with torch.no_grad():
            out = model(z)
            model.lod.fill_(5.5)  # a fraction counts as the next whole level: the same image
            assert torch.equal(model(z), out)
            model.lod.fill_(9.0)
            with pytest.raises(ValueError, match="lod"):
                model(z)
    finally:
        model.lod.zero_()
    small = out[:, :, ::64, ::64]
    assert torch.equal(out, small.repeat_interleave(64, 2).repeat_interleave(64, 3))
    assert not torch.equal(small[..., 0, 0], small[..., 0, 1])


def test_to_uint8_on_known_values():
    raw = torch.tensor([-2.0, -1.0, -0.996, 0.0, 0.5, 0.999, 1.0, 3.0]).view(1, 1, 1, -1)
    expected = np.clip((raw.numpy().astype(np.float64) + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    out = PGGANGenerator.to_uint8(raw)
    assert out.dtype == torch.uint8
    assert (
        out.flatten().tolist() == expected.flatten().tolist() == [0, 0, 1, 128, 191, 255, 255, 255]
    )


def test_broken_checkpoints_raise_clear_errors(tmp_path, fake, fake_file):
    assert issubclass(CheckpointError, ValueError)
    with pytest.raises(FileNotFoundError, match="cannot download.*genforce/interfacegan"):
        load_pggan(tmp_path / "pggan_celebahq.pth")

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="garbage.pth is not a readable PyTorch state dict"):
        load_pggan(garbage)

    truncated = tmp_path / "truncated.pth"
    data = fake_file.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.pth is not a readable"):
        load_pggan(truncated)

    torch.save([fake["lod"]], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_pggan(tmp_path / "list.pth")

    missing = dict(fake)
    del missing["layer17.conv.weight"], missing["output8.wscale.bias"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"missing keys.*layer17\.conv\.weight"):
        load_pggan(tmp_path / "missing.pth")

    wrong = dict(fake, **{"layer8.conv.weight": torch.zeros(256, 256, 3, 3)})
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(
        CheckpointError,
        match=r"'layer8\.conv\.weight' has shape \(256, 256, 3, 3\).*\(256, 512, 3, 3\)",
    ):
        load_pggan(tmp_path / "wrong.pth")


def test_load_boundary(tmp_path):
    rng = np.random.default_rng(0)
    n = rng.normal(size=(1, 512))
    n /= np.linalg.norm(n)
    np.save(tmp_path / "smile.npy", n)
    b = load_boundary(tmp_path / "smile.npy")
    assert b.shape == (512,) and b.dtype == torch.float32
    assert np.allclose(b.numpy(), n[0], atol=1e-7)
    np.save(tmp_path / "rounded.npy", n.astype(np.float32) * (1 + 1e-5))
    assert load_boundary(tmp_path / "rounded.npy").norm() == pytest.approx(1.0, abs=1e-6)

    with pytest.raises(FileNotFoundError, match="cannot download.*boundaries/"):
        load_boundary(tmp_path / "age.npy")
    np.save(tmp_path / "two.npy", np.vstack([n, n]))
    with pytest.raises(ValueError, match=r"shape \(2, 512\).*shape \[1, 512\]"):
        load_boundary(tmp_path / "two.npy")
    np.save(tmp_path / "long.npy", 2 * n)
    with pytest.raises(ValueError, match="norm 2"):
        load_boundary(tmp_path / "long.npy")
    np.save(tmp_path / "nan.npy", n * np.nan)
    with pytest.raises(ValueError, match="finite unit"):
        load_boundary(tmp_path / "nan.npy")
    (tmp_path / "boundary.txt").write_text(" ".join(map(str, n[0])))
    with pytest.raises(ValueError, match="boundary.txt is not a .npy array"):
        load_boundary(tmp_path / "boundary.txt")
    torch.save(torch.from_numpy(n), tmp_path / "boundary.pt")
    np.savez(tmp_path / "both.npz", n=n)
    for name in ("boundary.pt", "both.npz"):
        with pytest.raises(ValueError, match=f"{name} is a zip archive.*not a .npy array"):
            load_boundary(tmp_path / name)
