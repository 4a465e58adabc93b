"""The InterfaceGAN pipeline on a tiny random generator and a predictor whose answers are known:
unit-norm boundaries in the release's format, a complete report, and directions that move the
score they were fitted to."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import fel
from fel.interface_gan import GANConfig, Generator, export, find_boundaries, load_boundary
from fel.interface_gan.boundaries import ATTRIBUTES, REPORT, SPACES, boundary_path

TINY = GANConfig(size=16, z_dim=12, w_dim=10, mapping_layers=2, g_channels=(16, 8, 8),
                 d_channels=(8, 8, 8))  # fmt: skip


class StubPredictor:
    """Known answers: 'Smiling' is the mean brightness of the image; every other attribute is the
    mean of one colour channel over one horizontal band (all in [0, 1])."""

    attr_names = list(ATTRIBUTES)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        bands = images.float().cpu().chunk(3, dim=2)  # top, middle, bottom
        others = [bands[k % 3][:, k // 3 % 3].mean((1, 2)) for k in range(len(ATTRIBUTES) - 1)]
        return torch.stack([smile(images), *others], 1)


def smile(images: torch.Tensor) -> torch.Tensor:
    return images.float().cpu().mean((1, 2, 3))


def _generator() -> Generator:
    torch.manual_seed(0)
    generator = Generator(TINY).eval()
    with torch.no_grad():
        generator.w_avg.normal_()  # a centre away from 0, so truncation is not a plain scaling
    return generator


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("boundaries")
    report = find_boundaries(_generator(), StubPredictor(), out, n=600, psi=0.8, chosen_ratio=0.1,
                             batch_size=128, progress=False, source="tiny")  # fmt: skip
    return out, report


def test_every_boundary_is_a_unit_float64_npy_the_release_loader_reads(run):
    out, _ = run
    for name in ATTRIBUTES:
        for space, dim in (("z", TINY.z_dim), ("w", TINY.w_dim)):
            path = boundary_path(out, name, space)
            array = np.load(path)
            assert array.shape == (1, dim) and array.dtype == np.float64
            assert np.linalg.norm(array) == pytest.approx(1.0, abs=1e-12)
            assert torch.allclose(load_boundary(path, dim), torch.from_numpy(array[0]).float())
    assert sorted(p.name for p in out.glob("*.npy")) == sorted(
        boundary_path(out, a, s).name for a in ATTRIBUTES for s in SPACES
    )


def test_the_report_is_complete_and_on_disk(run):
    out, report = run
    assert json.loads((out / REPORT).read_text()) == report
    assert report["n"] == 600 and report["truncation"] == 0.8 and report["generator"] == "tiny"
    assert list(report["attributes"]) == list(ATTRIBUTES)
    assert set(report["seconds"]) == {"sample_and_score", "fit"}
    assert all(v > 0 for v in report["seconds"].values())
    for name, entry in report["attributes"].items():
        assert 0 <= entry["positive_rate"] <= 1 and 0 <= entry["mean_score"] <= 1
        for space in SPACES:
            fit = entry[space]
            assert fit["file"] == boundary_path(out, name, space).name
            assert fit["n_train"] == 2 * 42 and fit["n_val"] == 2 * 18  # 60 a side, 70% to train
            assert fit["n_remaining"] == 600 - 120
            assert 0.5 <= fit["val_accuracy"] <= 1 and 0 <= fit["remaining_accuracy"] <= 1
            assert fit["solver"] == "svc" and fit["converged"]


@pytest.mark.parametrize("space", SPACES)
def test_moving_along_the_smile_boundary_raises_the_smile_score(run, space):
    out, _ = run
    generator = _generator()
    n = load_boundary(boundary_path(out, "Smiling", space), getattr(TINY, f"{space}_dim"))
    z = generator.sample_latent(64, torch.Generator().manual_seed(123))  # codes not fitted on
    codes = z if space == "z" else generator.mapping(z)
    decode = generator.decode if space == "z" else generator.decode_w
    with torch.no_grad():
        before = smile(decode(codes, psi=0.8))
        after = smile(decode(codes + 1.5 * n, psi=0.8))
        lower = smile(decode(codes - 1.5 * n, psi=0.8))
    assert (after - before).mean() > 0.05 and (after > before).float().mean() > 0.85
    assert (before - lower).mean() > 0.02  # less on the dark side: pixels clip at 0


def test_names_are_checked_before_any_sampling(tmp_path):
    class Counting(StubPredictor):
        calls = 0

        def predict(self, images):
            Counting.calls += 1
            return super().predict(images)

    with pytest.raises(KeyError, match="Smiling"):
        find_boundaries(_generator(), Counting(), tmp_path, ["Smilling"], n=10, progress=False)
    assert Counting.calls == 0 and not list(tmp_path.iterdir())


@pytest.mark.skipif(
    not (fel.CHECKPOINT_DIR / "classifier.pt").exists(), reason="no shipped classifier"
)
def test_cli_with_a_checkpoint_and_the_shipped_classifier(tmp_path, capsys):
    from fel.__main__ import main

    generator = _generator()
    payload = {"model": generator.state_dict(), "config": generator.config_dict(), "meta": {}}
    checkpoint = export(payload, tmp_path / "gan.pt")
    out = tmp_path / "bounds"
    args = ["boundaries", "--checkpoint", str(checkpoint), "--out", str(out), "--n", "300",
            "--chosen-ratio", "0.1", "--batch-size", "150",
            "--attributes", "smiling", "Male"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "Smiling" in printed and "Male" in printed and str(out) in printed
    assert "sampled, synthesised and scored 300 faces in" in printed
    report = json.loads((out / REPORT).read_text())
    assert list(report["attributes"]) == ["Smiling", "Male"]  # canonical names
    assert report["generator"] == str(checkpoint) and report["truncation"] == 0.7
    assert load_boundary(boundary_path(out, "Male", "w"), TINY.w_dim).shape == (TINY.w_dim,)


@pytest.mark.skipif(
    not (fel.CHECKPOINT_DIR / "classifier.pt").exists(), reason="no shipped classifier"
)
@pytest.mark.parametrize("kind", ["stylegan", "stylegan2"])
def test_cli_on_the_published_formats(kind, tmp_path, capsys):
    from fel.__main__ import main
    from tests.test_stylegan import fake_file_state
    from tests.test_stylegan2 import fake_g_ema

    checkpoint = tmp_path / f"{kind}.pt"
    state = fake_file_state(32) if kind == "stylegan" else {"g_ema": fake_g_ema(16)}
    torch.save(state, checkpoint)
    out = tmp_path / "bounds"
    args = ["boundaries", "--generator", kind, "--checkpoint", str(checkpoint), "--out", str(out),
            "--n", "60", "--chosen-ratio", "0.25", "--attributes", "Smiling"]  # fmt: skip
    assert main(args) == 0
    assert "sampled, synthesised and scored 60 faces in" in capsys.readouterr().out
    report = json.loads((out / REPORT).read_text())
    assert report["generator"] == f"{kind}: {checkpoint}"
    for space in SPACES:
        assert load_boundary(boundary_path(out, "Smiling", space)).shape == (512,)
    assert main(["boundaries", "--generator", kind]) == 2
    assert "needs --checkpoint FILE" in capsys.readouterr().err
