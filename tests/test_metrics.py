"""Edit metrics on hand-made cases with a predictor whose answers we know."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fel.data.synthfaces import counterfactual, render_aligned, sample_factors
from fel.metrics import (
    EDIT_REGIONS,
    changed_outside,
    counterfactual_error,
    edit_report,
    preservation,
    region_mask,
    speckles,
)


class BrightnessPredictor:
    """'Smiling' = mean brightness of the mouth region, 'Male' = of the top rows, 'Young' constant."""

    attr_names = ["Smiling", "Male", "Young"]

    def predict(self, images):
        mouth = region_mask(images.shape[-1], EDIT_REGIONS["Smiling"])
        smile = images.mean(1)[:, mouth].mean(1)
        top = images[:, :, :4].mean((1, 2, 3))
        return torch.stack([smile, top, torch.full_like(top, 0.5)], 1)


def test_an_edit_inside_its_region_scores_as_intended():
    before = torch.zeros(4, 3, 32, 32)
    after = before.clone()
    after[:, :, region_mask(32, EDIT_REGIONS["Smiling"])] = 1.0  # brighten exactly the mouth region
    r = edit_report(BrightnessPredictor(), before, after, "smiling")
    assert r["target_change"] == pytest.approx(1.0)
    assert r["leakage"] == pytest.approx(0.0)
    assert r["preservation"] == pytest.approx(0.0)
    assert r["artefacts"] == 0.0  # a solid block: its edges are no dots
    assert r["changes"] == {"Smiling": pytest.approx(1.0), "Male": 0.0, "Young": 0.0}


def test_an_edit_that_breaks_up_the_face_shows_its_dots_and_only_those_it_added():
    # INNER_FACE at 32 px: rows 12-29, columns 7-24, 324 pixels per face
    before = torch.full((2, 3, 32, 32), 0.5)
    before[:, :, 20, 12] = 1.0  # one dot in both faces before the edit
    after = before.clone()
    after[0, :, 14, 10] = after[0, 2, 25, 20] = 0.0  # the edit adds two dots to face 0 ...
    after[1, :, 2, 2] = 1.0  # ... and one to face 1 outside the inner face, which is not counted
    r = edit_report(BrightnessPredictor(), before, after, "Smiling")
    assert r["artefacts"] == pytest.approx(2 / 648)
    assert edit_report(BrightnessPredictor(), after, before, "Smiling")["artefacts"] == (
        pytest.approx(-2 / 648)
    )


def test_an_edit_that_spills_shows_leakage_and_poor_preservation():
    before = torch.zeros(2, 3, 32, 32)
    after = torch.full_like(before, 0.5)  # the whole image changes
    r = edit_report(BrightnessPredictor(), before, after, "Smiling")
    assert r["target_change"] == pytest.approx(0.5)
    assert r["leakage"] == pytest.approx(0.25)  # Male moved by 0.5, Young by 0: mean 0.25
    assert r["preservation"] == pytest.approx(0.5)


def test_attribute_names_in_any_case_are_one_attribute():
    before = torch.zeros(2, 3, 32, 32)
    after = before.clone()
    after[:, :, region_mask(32, EDIT_REGIONS["Smiling"])] = 1.0
    r = edit_report(BrightnessPredictor(), before, after, "Smiling", attributes=["smiling", "male"])
    assert r["leakage"] == pytest.approx(0.0) and set(r["changes"]) == {"Smiling", "Male"}


def test_bad_inputs():
    with pytest.raises(KeyError, match="Smiling"):
        edit_report(
            BrightnessPredictor(), torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), "Smilling"
        )
    with pytest.raises(ValueError, match="shape"):
        preservation(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 9, 9), None)


def _render(faces, smiles, size=32):
    images = np.stack(
        [render_aligned(counterfactual(f, smile=v), size) for f, v in zip(faces, smiles)]
    )
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255


def test_counterfactual_error_is_zero_for_the_truth_and_grows_with_the_miss():
    faces = sample_factors(3, seed=9)
    start = faces["smile"]
    target = np.where(start < 0.5, 1.0, 0.0)
    assert counterfactual_error(_render(faces, target), faces, "smile", target) == pytest.approx(
        0.0, abs=1e-7
    )
    halfway = counterfactual_error(_render(faces, (start + target) / 2), faces, "smile", target)
    unedited = counterfactual_error(_render(faces, start), faces, "smile", target)
    assert 0 < halfway < unedited
    with pytest.raises(ValueError, match="one face and one value"):
        counterfactual_error(_render(faces, target), faces[:2], "smile", target)


def test_changed_outside_counts_pixels_outside_the_inner_face_by_any_channel():
    before = torch.zeros(2, 3, 100, 100)
    after = before.clone()
    after[:, :, 40:90, 30:70] = 1.0  # inside INNER_FACE (0.36..0.95 x 0.22..0.78): not counted
    assert changed_outside(before, after) == 0.0
    after[0, 2, :10, :] = 0.2  # one channel of the top 10 rows of one face
    outside = 100 * 100 - 59 * 56
    assert changed_outside(before, after) == pytest.approx(1000 / (2 * outside))
    assert changed_outside(before, after, threshold=0.25) == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        changed_outside(before, after[:1])


def test_speckles_count_isolated_dots_in_the_inner_face_and_pass_edges():
    # INNER_FACE at 20 px: rows 7-18, columns 4-15, 144 pixels
    flat = torch.full((2, 3, 20, 20), 0.5)
    assert speckles(flat) == 0.0
    dotted = flat.clone()
    dotted[0, 1, 8, 5] = 1.0  # one green dot
    dotted[1, :, 12, 10] = 0.0  # one black dot
    dotted[1, :, 2, 2] = 1.0  # outside the box: not counted
    dotted[0, 0, 14, 14] = 0.7  # stands out by 0.2 only
    assert speckles(dotted) == pytest.approx(2 / 288)
    assert speckles(dotted, threshold=0.15) == pytest.approx(3 / 288)
    edge, band = flat.clone(), flat.clone()
    edge[:, :, :, 10:] = 1.0  # a straight edge through the box
    band[:, :, 12:14, :] = 0.0  # a band two pixels wide
    assert speckles(edge) == 0.0 and speckles(band) == 0.0
    line = flat.clone()
    line[:, :, 12, :] = 1.0  # a one-pixel line is a row of dots to a 3x3 median
    assert speckles(line) == pytest.approx(12 / 144)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        speckles(flat[:, 0])
