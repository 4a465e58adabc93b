"""Checkpoints know their data: fingerprints that survive a change of layout, checkpoints
resolved from FEL_CHECKPOINTS, and SynthFaces checkpoints refused, clearly, on other data."""

from __future__ import annotations

import pytest

import fel
import fel.vae
from fel.checkpoints import (
    DataMismatchError,
    is_shipped,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from fel.data.fingerprint import data_fingerprint, data_in_use
from fel.data.synthfaces import write_synthfaces
from tests import fake_celeba
from tests.celeba_copies import kaggle_copy


def test_one_data_set_has_one_fingerprint_in_every_layout(tmp_path):
    prints = {
        layout: data_fingerprint(fake_celeba.make_tree(tmp_path / layout, layout))
        for layout in ("official", "torchvision", "kaggle", "zip")
    }
    assert len({p["fingerprint"] for p in prints.values()}) == 1
    assert prints["zip"]["dataset"] == "CelebA"
    assert prints["zip"]["images"] == len(fake_celeba.FILES)
    changed = tmp_path / "changed"
    fake_celeba.copy_tree(tmp_path / "official", changed)
    attr = changed / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    row = lines[5].split()
    row[3] = "1" if row[3] == "-1" else "-1"  # one label flipped
    lines[5] = " ".join(row)
    attr.write_text("\n".join(lines) + "\n")
    assert data_fingerprint(changed)["fingerprint"] != prints["official"]["fingerprint"]


@pytest.fixture(scope="module")
def other_copy(tmp_path_factory):
    """SynthFaces rendered with another seed, in Kaggle's layout, without its extra files."""
    rendered = write_synthfaces(tmp_path_factory.mktemp("seed1") / "synth", n=40, seed=1,
                                workers=1, progress=False)  # fmt: skip
    return kaggle_copy(rendered, tmp_path_factory.mktemp("kaggle") / "celeba")


LOADERS = ["fel.vae", "fel.flow", "fel.interface_gan", "fel.classifier"]


@pytest.mark.parametrize("module", LOADERS)
def test_a_shipped_checkpoint_is_refused_on_other_data(module, other_copy, monkeypatch):
    import importlib

    loader = importlib.import_module(module)
    monkeypatch.setenv("FEL_CELEBA_ROOT", str(other_copy))
    monkeypatch.delenv("FEL_CHECKPOINTS", raising=False)
    assert data_in_use() == other_copy and data_fingerprint(other_copy)["dataset"] == "CelebA"
    with pytest.raises(DataMismatchError) as info:
        loader.load_pretrained("cpu")
    message = str(info.value)
    assert "was trained on SynthFaces (seed 0, 30,000 images" in message
    assert f"FEL_CELEBA_ROOT={other_copy}" in message and "CelebA (40 images" in message
    assert f"python -m fel train course --data celeba --root {other_copy} --out DIR" in message
    assert "FEL_CHECKPOINTS" in message and "load it by path" in message
    assert f"({module}." in message.split("load it by path")[1]  # this family's own loader
    name = {"fel.vae": "vae.pt", "fel.flow": "glow.pt", "fel.interface_gan": "gan.pt",
            "fel.classifier": "classifier.pt"}[module]  # fmt: skip
    loader.load(fel.CHECKPOINT_DIR / name, "cpu")  # by path: still works


def test_checkpoints_resolve_from_fel_checkpoints_and_pass_on_their_own_data(
    other_copy, tmp_path, monkeypatch
):
    folder = tmp_path / "course"
    folder.mkdir()
    payload = load_checkpoint(fel.CHECKPOINT_DIR / "vae.pt")
    payload["meta"]["data"] = data_fingerprint(other_copy)  # as if trained on the copy
    save_checkpoint(folder / "vae.pt", payload)
    monkeypatch.setenv("FEL_CELEBA_ROOT", str(other_copy))
    monkeypatch.setenv("FEL_CHECKPOINTS", str(folder))
    assert resolve_checkpoint("vae.pt") == folder / "vae.pt"
    assert resolve_checkpoint("glow.pt") == fel.CHECKPOINT_DIR / "glow.pt"  # not in the folder
    assert not is_shipped("vae.pt") and is_shipped("glow.pt")  # the notebooks judge only these
    vae = fel.vae.load_pretrained("cpu")
    assert vae.meta["data"]["fingerprint"] == data_fingerprint(other_copy)["fingerprint"]
    monkeypatch.delenv("FEL_CELEBA_ROOT")
    if data_in_use() is not None:  # the SynthFaces render: the course folder's VAE is refused
        with pytest.raises(DataMismatchError, match="was trained on CelebA \\(40 images"):
            fel.vae.load_pretrained("cpu")


def test_a_checkpoint_from_before_fingerprints_is_checked_by_its_kind(other_copy):
    from fel.checkpoints import check_trained_on

    check_trained_on({"dataset": "celeba", "root": "/x"}, "old.pt", other_copy)
    with pytest.raises(DataMismatchError, match="trained on SynthFaces \\(data/synthfaces\\)"):
        check_trained_on({"dataset": "synthfaces", "root": "data/synthfaces"}, "old.pt", other_copy)
