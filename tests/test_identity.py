"""The identity embedding: its label reader, its loss, its verification score, and where the
yardstick and the editors use it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from fel.data import CelebAFormatError, read_identities
from fel.identity import (
    CosFace,
    IdentityConfig,
    IdentityEmbedder,
    load,
    people_of,
    train_identity,
    verify,
)
from tests import fake_celeba as fake

PEOPLE = [7, 7, 12, 3, 3]  # the fake tree's five images, as identity_CelebA.txt lists them


def _with_identities(root, layout="official"):
    tree = fake.make_tree(root, layout)
    base = tree / "celeba" if layout == "torchvision" else tree
    # CelebA's own spacing: one space, no header
    (base / "identity_CelebA.txt").write_text(
        "".join(f"{f} {p}\n" for f, p in zip(fake.FILES, PEOPLE))
    )
    return tree


@pytest.mark.parametrize("layout", ["official", "torchvision", "zip"])
def test_read_identities_in_every_layout(tmp_path, layout):
    root = _with_identities(tmp_path / "celeba", layout)
    assert read_identities(root) == dict(zip(fake.FILES, PEOPLE))


def test_people_of_follows_the_split(tmp_path):
    from fel.data import CelebA

    root = _with_identities(tmp_path / "celeba")
    train = CelebA(root, split="train", size=16, cache=False)  # partition 0, 0, 0, 1, 2
    assert people_of(train).tolist() == PEOPLE[:3]


def test_missing_identity_file_says_where_to_get_it(tmp_path):
    root = fake.make_tree(tmp_path / "celeba", "kaggle")
    with pytest.raises(FileNotFoundError, match="identity_CelebA.txt.*Kaggle"):
        read_identities(root)


@pytest.mark.parametrize("line", ["000003.jpg", "000003.jpg x", "000003.jpg 0", "a 1 2"])
def test_bad_identity_line_names_its_number(tmp_path, line):
    root = _with_identities(tmp_path / "celeba")
    path = root / "identity_CelebA.txt"
    rows = path.read_text().splitlines()
    rows[2] = line
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(CelebAFormatError, match="line 3"):
        read_identities(root)


def test_a_face_without_a_person_is_named(tmp_path):
    from fel.data import CelebA

    root = _with_identities(tmp_path / "celeba")
    path = root / "identity_CelebA.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))  # drop 000001.jpg
    with pytest.raises(CelebAFormatError, match="000001.jpg"):
        people_of(CelebA(root, split="train", size=16, cache=False))


# ----------------------------------------------------------------------------- the network


def test_embeddings_are_unit_vectors_at_any_input_size():
    torch.manual_seed(0)
    net = IdentityEmbedder(IdentityConfig(size=32, width=4, dim=8)).eval()
    x = torch.rand(5, 3, 32, 32)
    e = net.embed(x)
    assert e.shape == (5, 8)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(
        net.embed((x * 255).round().to(torch.uint8)), net.embed((x * 255).round() / 255)
    )
    assert net.embed(torch.rand(2, 3, 64, 64)).shape == (2, 8)  # resized to the model's size
    torch.testing.assert_close(net.similarity(x, x), torch.ones(5))


def test_embedder_refuses_bad_inputs():
    net = IdentityEmbedder(IdentityConfig(size=16, width=2, dim=4)).eval()
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        net.embed(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="face by face"):
        net.similarity(torch.rand(2, 3, 16, 16), torch.rand(3, 3, 16, 16))
    for bad in ({"size": 40}, {"dim": 1}, {"margin": 1.0}, {"scale": 0.0}):
        with pytest.raises(ValueError):
            IdentityConfig(**bad)


def test_cosface_loss_is_cross_entropy_with_the_margin_off_the_true_cosine():
    torch.manual_seed(0)
    config = IdentityConfig(size=16, width=2, dim=4, scale=10.0, margin=0.3)
    head = CosFace(IdentityEmbedder(config), people=6).eval()
    x, person = torch.rand(4, 3, 16, 16), torch.tensor([0, 5, 2, 2])
    loss, accuracy = head(x, person)
    e = head.embedder(x)
    cos = torch.stack([torch.stack([F.cosine_similarity(e[i], c, dim=0) for c in head.centres])
                       for i in range(4)])  # fmt: skip
    expected = 0.0
    for i in range(4):  # written out: -log softmax of the margined true logit
        logits = 10.0 * cos[i].clone()
        logits[person[i]] -= 10.0 * 0.3
        expected += -(logits[person[i]] - torch.logsumexp(logits, 0)) / 4
    torch.testing.assert_close(loss, expected)
    assert accuracy == (cos.argmax(1) == person).float().mean()


# ----------------------------------------------------------------------------- verification


class _Planted:
    """An "embedder" that returns planted unit vectors: the face's index is its first pixel."""

    def __init__(self, vectors):
        self.vectors = F.normalize(torch.as_tensor(vectors, dtype=torch.float32), dim=1)

    def embed(self, images):
        return self.vectors[images[:, 0, 0, 0].long()]


def _index_images(n):
    images = torch.zeros(n, 3, 2, 2)
    images[:, 0, 0, 0] = torch.arange(n).float()
    return images


def test_verify_matches_a_pair_count_by_hand():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(7, 3))
    people = np.array([1, 1, 1, 2, 2, 3, 3])
    r = verify(_Planted(vectors), _index_images(7), people)
    e = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    same, other = [], []
    for i in range(7):
        for j in range(i + 1, 7):
            (same if people[i] == people[j] else other).append(e[i] @ e[j])
    wins = sum((s > o) + 0.5 * (s == o) for s in same for o in other)  # Mann-Whitney
    assert r["auc"] == pytest.approx(wins / (len(same) * len(other)))
    assert r["pairs"] == 21 and r["faces"] == 7 and r["people"] == 3
    assert r["same_mean"] == pytest.approx(np.mean(same))
    assert r["different_mean"] == pytest.approx(np.mean(other))


def test_verify_separable_people_have_no_errors():
    people = np.array([0, 0, 0, 1, 1, 1])
    vectors = np.eye(2)[people] + 0.01 * np.random.default_rng(1).normal(size=(6, 2))
    r = verify(_Planted(vectors), _index_images(6), people)
    assert r["auc"] == 1.0 and r["eer"] == 0.0
    assert r["different_mean"] < r["threshold"] <= r["same_mean"]


def test_verify_needs_both_kinds_of_pair():
    with pytest.raises(ValueError, match="pairs of one person and pairs of two"):
        verify(_Planted(np.eye(3)), _index_images(3), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="3 person labels for 4 faces"):
        verify(_Planted(np.eye(4)), _index_images(4), np.array([1, 1, 2]))


# ----------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from fel.data.synthfaces import write_synthfaces
    from fel.training import TrainConfig

    tmp = tmp_path_factory.mktemp("identity")
    root = write_synthfaces(tmp / "sf", n=400, seed=3, workers=1, progress=False)
    config = TrainConfig(epochs=2, batch_size=32, lr=2e-3, warmup_steps=2)
    result = train_identity(root, tmp / "run", config, IdentityConfig(size=32, width=4, dim=16))
    return root, tmp, result


def test_training_keeps_the_embedder_and_scores_held_out_people(trained):
    from fel.checkpoints import export_checkpoint

    root, tmp, result = trained
    assert all(not k.startswith(("embedder.", "centres")) for k in result["model"])
    test = result["meta"]["test"]
    assert 0.5 < test["auc"] <= 1.0 and 0 <= test["eer"] < 0.5  # learnt something in 2 epochs
    assert result["meta"]["train_people"] > 10 and result["meta"]["data"]["fingerprint"]
    assert any("valid_auc" in h for h in result["meta"]["history"])
    net = load(export_checkpoint(result, tmp / "identity.pt"), "cpu")
    assert net.threshold == pytest.approx(test["threshold"])
    assert net.embed(torch.rand(2, 3, 32, 32)).shape == (2, 16)


def test_training_resumes_where_it_stopped(trained, tmp_path):
    from fel.training import TrainConfig

    root, _, _ = trained
    config = TrainConfig(epochs=1, batch_size=32, lr=2e-3, warmup_steps=2)
    small = IdentityConfig(size=16, width=2, dim=4)
    once = train_identity(root, tmp_path / "a", config, small)
    train_identity(root, tmp_path / "b", config, small, max_steps=3)
    resumed = train_identity(root, tmp_path / "b", config, small, resume=True)
    for k, v in once["model"].items():
        torch.testing.assert_close(resumed["model"][k], v)


def test_cli_trains_and_reports_verification(trained, capsys):
    from fel.__main__ import main

    root, tmp, _ = trained
    args = ["train", "identity", "--root", str(root), "--out", str(tmp / "cli"), "--size", "16",
            "--width", "2", "--dim", "4", "--batch-size", "32", "--max-steps", "2"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "verification ROC AUC" in out and "held-out people" in out


# ----------------------------------------------------------------------------- in the yardstick


class _Decoder(torch.nn.Module):
    """decode(z [B, 2]) -> a flat grey face whose brightness is z[:, 0]."""

    def decode(self, z):
        return torch.sigmoid(z[:, :1, None, None]).expand(-1, 3, 16, 16).contiguous()

    def sample_latent(self, n, generator=None):
        return torch.randn(n, 2, generator=generator)


def test_sweep_and_report_measure_identity():
    from fel.comparison import sweep_edit
    from fel.metrics import edit_report, identity_similarity

    torch.manual_seed(0)
    embedder = IdentityEmbedder(IdentityConfig(size=16, width=2, dim=4)).eval()

    class Predictor:
        attr_names = ["Smiling", "Male"]

        def predict(self, images):
            m = images.mean((1, 2, 3))
            return torch.stack([m, 1 - m], 1)

    before = _Decoder().decode(torch.zeros(3, 2))
    assert identity_similarity(embedder, before, before) == pytest.approx(1.0)
    after = _Decoder().decode(torch.full((3, 2), 2.0))
    r = edit_report(Predictor(), before, after, "Smiling", identity=embedder)
    assert r["identity"] == pytest.approx(float(embedder.similarity(before, after).mean()))
    assert "identity" not in edit_report(Predictor(), before, after, "Smiling")
    sweep = sweep_edit(_Decoder(), Predictor(), torch.zeros(3, 2), torch.tensor([1.0, 0.0]),
                       "Smiling", sigma=1.0, steps=(0.5, 4.0), identity=embedder)  # fmt: skip
    assert len(sweep.identity) == 2 and "identity" in sweep.at(4.0)
    far = _Decoder().decode(torch.tensor([[4.0, 0.0]]).expand(3, 2))
    assert sweep.identity[1] == pytest.approx(identity_similarity(embedder, before, far))


def test_editor_status_shows_the_identity_verdict():
    from fel.widgets import LatentEditor

    class Threshold:
        """The shipped embedder's interface with a chosen verdict: cosine = 1 - brightness gap."""

        threshold = 0.9

        def similarity(self, a, b):
            return 1 - (a - b).abs().mean((1, 2, 3))

    editor = LatentEditor(_Decoder(), torch.zeros(2), {"Bright": torch.tensor([1.0, 0.0])},
                          ranges=(-6, 6), identity=Threshold())  # fmt: skip
    assert "identity cosine 1.00" in editor.status.value and "same person" in editor.status.value
    editor.sliders["Bright"].value = 6.0
    assert "another person" in editor.status.value
    assert f"{1 - (math.exp(6) / (1 + math.exp(6)) - 0.5):.2f}" in editor.status.value


def test_training_refuses_a_test_split_too_small_to_verify_before_it_trains(tmp_path):
    root = _with_identities(tmp_path / "celeba")  # its test split is one face
    with pytest.raises(ValueError, match="too few for a verification score"):
        train_identity(root, tmp_path / "run", config=IdentityConfig(size=16, width=2, dim=4))
    assert not (tmp_path / "run" / "last.pt").exists()


def test_load_pretrained_can_go_on_without_an_embedding(tmp_path, monkeypatch):
    from fel.checkpoints import DataMismatchError
    from fel.identity import load_pretrained

    root = fake.make_tree(tmp_path / "celeba", "kaggle")
    monkeypatch.setenv("FEL_CELEBA_ROOT", str(root))  # real CelebA: the shipped one is refused
    with pytest.raises(DataMismatchError):
        load_pretrained("cpu")
    with pytest.warns(UserWarning, match="no identity cosine.*has no identity_CelebA.txt"):
        assert load_pretrained("cpu", required=False) is None
    (root / "identity_CelebA.txt").write_text("")  # with the file: the refusal's own reason
    with pytest.warns(UserWarning, match="no identity cosine.*trained on SynthFaces"):
        assert load_pretrained("cpu", required=False) is None
