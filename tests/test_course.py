"""``python -m fel train course --quick`` on a CelebA copy that is not SynthFaces-shaped: every
stage's checkpoint, the report, resumption that skips finished stages, and checkpoints that the
notebooks' loaders accept on that data (and refuse elsewhere)."""

from __future__ import annotations

import json

import pytest

from fel.checkpoints import DataMismatchError, load_checkpoint
from fel.data.fingerprint import data_fingerprint
from fel.data.synthfaces import write_synthfaces
from tests.celeba_copies import kaggle_copy


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    from fel.__main__ import main

    base = tmp_path_factory.mktemp("course")
    rendered = write_synthfaces(base / "synth", n=300, seed=2, workers=1, progress=False)
    root = kaggle_copy(rendered, base / "celeba")
    out = base / "out"
    args = [
        "train",
        "course",
        "--data",
        "celeba",
        "--root",
        str(root),
        "--out",
        str(out),
        "--quick",
    ]
    assert main(args) == 0
    return root, out, args


def test_every_stage_writes_its_checkpoint_with_the_datas_fingerprint(course):
    root, out, _ = course
    fingerprint = data_fingerprint(root)["fingerprint"]
    for name in ("classifier.pt", "vae.pt", "gan.pt", "glow.pt"):
        meta = load_checkpoint(out / name)["meta"]
        assert meta["data"]["fingerprint"] == fingerprint and meta["resolution"] == 64
        assert "train course" in meta["command"]
    assert load_checkpoint(out / "glow.pt")["config"]["size"] == 64  # one size for all
    assert (out / "boundaries" / "w_Smiling_boundary.npy").is_file()
    report = json.loads((out / "report.json").read_text())
    assert list(report["stages"]) == ["classifier", "identity", "vae", "gan", "boundaries", "glow"]
    assert "identity_CelebA.txt" in report["stages"]["identity"]["skipped"]  # Kaggle has none
    assert not (out / "identity.pt").exists()
    assert report["data"]["dataset"] == "CelebA" and report["quick"] is True
    assert "bits_per_dim" in report["stages"]["vae"]["test"]
    assert "FEL_CHECKPOINTS" in (out / "README.md").read_text()


def test_a_second_run_skips_the_finished_stages(course, capsys):
    from fel.__main__ import main

    _, out, args = course
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.count("done already") == 5


def test_the_loaders_take_the_course_folder_on_its_data(course, monkeypatch):
    import fel.classifier
    import fel.flow
    import fel.interface_gan
    import fel.vae

    root, out, _ = course
    monkeypatch.setenv("FEL_CELEBA_ROOT", str(root))
    monkeypatch.setenv("FEL_CHECKPOINTS", str(out))
    for module in (fel.vae, fel.flow, fel.interface_gan, fel.classifier):
        model = module.load_pretrained("cpu")
        assert model.meta["data"]["fingerprint"] == data_fingerprint(root)["fingerprint"]
    monkeypatch.delenv("FEL_CELEBA_ROOT")
    if (fel.DATA_DIR / "synthfaces" / "list_attr_celeba.txt").is_file():
        with pytest.raises(DataMismatchError, match="trained on CelebA \\(300 images"):
            fel.vae.load_pretrained("cpu")


def test_bad_arguments_get_clear_errors(tmp_path, capsys):
    from fel.__main__ import main

    assert main(["train", "course", "--data", "celeba", "--root", str(tmp_path), "--out",
                 str(tmp_path / "o")]) == 2  # fmt: skip
    assert "no list_attr_celeba.txt" in capsys.readouterr().err


def test_the_identity_stage_trains_on_a_copy_with_identity_labels(tmp_path, monkeypatch):
    import fel.course

    root = write_synthfaces(tmp_path / "synth", n=600, seed=2, workers=1, progress=False)
    monkeypatch.setattr(fel.course, "STAGES", ("identity",))  # this stage alone
    report = fel.course.train_course(root, tmp_path / "out", quick=True, dataset_name="synthfaces")
    meta = load_checkpoint(tmp_path / "out" / "identity.pt")["meta"]
    assert meta["data"]["fingerprint"] == data_fingerprint(root)["fingerprint"]
    assert 0 < report["stages"]["identity"]["test"]["auc"] <= 1
    assert "verification ROC AUC" in (tmp_path / "out" / "README.md").read_text()
