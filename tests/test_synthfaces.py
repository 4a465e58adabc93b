"""SynthFaces: determinism, CelebA file formats, label rules, counterfactuals, the reader."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from fel.data import ATTRIBUTES, CelebA
from fel.data.celeba import read_attributes, read_partition
from fel.data.synthfaces import (
    DRAWN,
    FACTOR_NAMES,
    NOT_DRAWN,
    SynthConfig,
    counterfactual,
    labels_from_factors,
    landmarks,
    noisy_labels,
    read_factors,
    render,
    render_aligned,
    sample_factors,
    write_synthfaces,
)

N = 60


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return write_synthfaces(
        tmp_path_factory.mktemp("sf") / "synthfaces", n=N, seed=5, workers=1, progress=False
    )


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_whatever_the_workers(synth, tmp_path):
    two = write_synthfaces(tmp_path / "two", n=N, seed=5, workers=2, progress=False)
    assert _digest(two) == _digest(synth)
    other = write_synthfaces(tmp_path / "other", n=N, seed=6, workers=1, progress=False)
    assert _digest(other) != _digest(synth)


def test_files_follow_celebas_layout(synth):
    jpgs = sorted(p.name for p in (synth / "img_align_celeba").iterdir())
    assert jpgs == [f"{i:06d}.jpg" for i in range(1, N + 1)]
    from PIL import Image

    with Image.open(synth / "img_align_celeba" / "000001.jpg") as im:
        assert im.format == "JPEG" and im.size == (178, 218) and im.mode == "RGB"
    lines = (synth / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == str(N) and lines[1].split() == list(ATTRIBUTES)
    # CelebA's row format: name, then each value right-aligned in two characters.
    assert all(re.fullmatch(r"\d{6}\.jpg( (-1| 1)){40}", row) for row in lines[2:])
    for name in ("identity_CelebA.txt", "list_eval_partition.txt"):
        rows = [r.split() for r in (synth / name).read_text().splitlines()]
        assert len(rows) == N and all(len(r) == 2 and r[1].isdigit() for r in rows)
    lm = (synth / "list_landmarks_align_celeba.txt").read_text().splitlines()
    assert (
        lm[0] == str(N) and len(lm[1].split()) == 10 and all(len(r.split()) == 11 for r in lm[2:])
    )


def test_reader_and_strict_parser_agree_with_the_label_rule(synth):
    names, files, values = read_attributes(synth / "list_attr_celeba.txt")
    _, factors = read_factors(synth)
    rule = labels_from_factors(factors)
    # label noise is 1%: almost every label equals the rule; undrawn attributes are all -1
    assert (values == rule).mean() > 0.97
    assert (values[:, [ATTRIBUTES.index(a) for a in NOT_DRAWN]] == -1).all()
    ds = CelebA(synth, split="all", size=32, cache=False)
    assert len(ds) == N and ds.labels.shape == (N, 40)
    assert np.array_equal(ds.labels.numpy(), (values > 0).astype(np.int64))


def test_partition_is_by_identity(synth):
    ident = dict(r.split() for r in (synth / "identity_CelebA.txt").read_text().splitlines())
    part = read_partition(synth / "list_eval_partition.txt")
    split_of_identity = {}
    for name, i in ident.items():
        assert split_of_identity.setdefault(i, part[name]) == part[name]


def test_factors_round_trip_through_the_text_file(synth):
    _, factors = read_factors(synth)
    again = sample_factors(N, seed=5)
    for name in FACTOR_NAMES:
        np.testing.assert_array_equal(factors[name], again[name])
    assert np.array_equal(render(factors[7]), render(again[7]))


def test_marginals_close_to_celeba_and_correlations_present():
    labels = labels_from_factors(sample_factors(20000, seed=1)) > 0
    freq = dict(zip(ATTRIBUTES, labels.mean(0)))
    celeba = {"Smiling": 0.48, "Mouth_Slightly_Open": 0.48, "Male": 0.42, "Young": 0.77,
              "No_Beard": 0.83, "Wearing_Lipstick": 0.47, "Bangs": 0.15, "Narrow_Eyes": 0.12,
              "Eyeglasses": 0.065, "Gray_Hair": 0.04, "Bald": 0.02}  # fmt: skip
    for name, p in celeba.items():
        assert abs(freq[name] - p) < max(0.03, 0.35 * p), (name, freq[name], p)
    col = {a: labels[:, ATTRIBUTES.index(a)].astype(float) for a in ATTRIBUTES}
    corr = lambda a, b: np.corrcoef(col[a], col[b])[0, 1]  # noqa: E731
    assert corr("Smiling", "Mouth_Slightly_Open") > 0.3
    assert corr("Male", "Wearing_Lipstick") < -0.5 and corr("Male", "No_Beard") < -0.3
    assert corr("Male", "Eyeglasses") > 0.05 and corr("Young", "Gray_Hair") < -0.2


def test_couplings_zero_remove_correlations_but_keep_marginals():
    cfg = SynthConfig(smile_mouth_coupling=0.0, gender_coupling=0.0, age_coupling=0.0)
    labels = labels_from_factors(sample_factors(20000, seed=1, config=cfg)) > 0
    col = {a: labels[:, ATTRIBUTES.index(a)].astype(float) for a in ATTRIBUTES}
    assert (
        abs(np.corrcoef(col["Smiling"], col["Mouth_Slightly_Open"])[0, 1]) < 0.1
    )  # identities cluster images: about 1000 independent draws
    assert (
        abs(np.corrcoef(col["Male"], col["Wearing_Lipstick"])[0, 1]) < 0.1
    )  # identities cluster images: about 1000 independent draws
    assert abs(col["Wearing_Lipstick"].mean() - 0.47) < 0.04


def test_label_noise_flips_a_share_of_positives_and_as_many_negatives():
    clean = labels_from_factors(sample_factors(5000, seed=2))
    noisy = noisy_labels(clean, 0.1, seed=2)
    for a in DRAWN:
        j = ATTRIBUTES.index(a)
        pos, neg = clean[:, j] > 0, clean[:, j] < 0
        flipped_pos, flipped_neg = (noisy[pos, j] < 0).sum(), (noisy[neg, j] > 0).sum()
        assert flipped_pos == flipped_neg == min(round(0.1 * pos.sum()), neg.sum()), a
    assert np.array_equal((noisy > 0).sum(0), (clean > 0).sum(0))  # frequencies unchanged
    undrawn = [ATTRIBUTES.index(a) for a in NOT_DRAWN]
    assert (noisy[:, undrawn] == -1).all()


def test_label_rule_on_hand_made_faces():
    f = sample_factors(1, seed=0)
    f = counterfactual(f, smile=0.9, mouth_open=0.1, eye_open=0.3, male=0.8, stubble=0.0, beard=0.0,
                       mustache=0.7, goatee=0.0, recession=0.9, age=0.2)  # fmt: skip
    row = dict(zip(ATTRIBUTES, labels_from_factors(f)[0]))
    assert row["Smiling"] == 1 and row["Mouth_Slightly_Open"] == -1 and row["Narrow_Eyes"] == 1
    assert row["Male"] == 1 and row["Mustache"] == 1 and row["No_Beard"] == -1
    assert row["Bald"] == 1 and row["Receding_Hairline"] == -1 and row["Young"] == 1
    assert row["Black_Hair"] == row["Brown_Hair"] == row["Blond_Hair"] == -1  # bald: no hair colour


def test_counterfactual_changes_only_what_it_should():
    face = sample_factors(40, seed=3)[11]
    smiling = counterfactual(face, smile=0.95)
    neutral = counterfactual(face, smile=0.05)
    assert smiling["identity"] == face["identity"] and smiling["noise_seed"] == face["noise_seed"]
    a, b = render(smiling).astype(int), render(neutral).astype(int)
    changed = np.abs(a - b).sum(-1) > 30
    ys, xs = np.nonzero(changed)
    # the edit lives around the mouth and cheeks (mouth at y ~ 152 in the 178x218 image)
    assert changed.sum() > 100 and 125 < ys.mean() < 175 and 60 < xs.mean() < 120
    assert np.array_equal(render(counterfactual(face)), render(face))  # no change, same pixels
    with pytest.raises(KeyError, match="smile"):
        counterfactual(face, smiel=0.5)


def test_landmarks_sit_where_celeba_puts_them():
    pts = np.stack([landmarks(r) for r in sample_factors(500, seed=4)]).mean(0)
    celeba_mean = np.array([[69, 111], [108, 111], [88, 134], [72, 152], [105, 152]])
    assert np.abs(pts - celeba_mean).max() < 5


def test_render_sizes():
    face = sample_factors(1, seed=0)[0]
    assert render(face).shape == (218, 178, 3) and render(face).dtype == np.uint8
    assert render(face, size=(89, 109)).shape == (109, 89, 3)
    assert render_aligned(face, 64).shape == (64, 64, 3)


def test_existing_folder_is_reused_or_refused(synth, tmp_path):
    before = _digest(synth)
    assert write_synthfaces(synth, n=N, seed=5, progress=False) == synth  # complete: nothing to do
    assert _digest(synth) == before
    with pytest.raises(FileExistsError, match="force"):
        write_synthfaces(synth, n=N + 1, seed=5, progress=False)
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a SynthFaces folder"):
        write_synthfaces(tmp_path / "stuff", n=5, progress=False)
    assert (tmp_path / "stuff" / "mine.txt").read_text() == "keep me"
    with pytest.raises(ValueError):
        sample_factors(0)
