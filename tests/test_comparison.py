"""fel.comparison with toy models whose target probability is a known function of alpha."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from torch import nn

from fel.comparison import (
    FACTOR_OF,
    MatchedStrength,
    decode_latency,
    lacking,
    matched_strength,
    mean_probability,
    psnr,
    score_edit,
    sweep_edit,
)
from fel.data.synthfaces import counterfactual, render_aligned, sample_factors


class PixelModel(nn.Module):
    """decode: z [B, D] -> images [B, 3, 4, 4], every pixel of image i equal to z[i, 0]."""

    def __init__(self):
        super().__init__()
        self.decodes = 0

    def decode(self, z):
        self.decodes += 1
        return z[:, :1, None, None].expand(-1, 3, 4, 4).clone()


class LogisticPredictor:
    """'Smiling' = sigmoid(k * (mean pixel - 0.5)); 'Male' constant."""

    attr_names = ["Smiling", "Male"]

    def __init__(self, k: float = 4.0):
        self.k = k

    def predict(self, images):
        x = images.mean((1, 2, 3))
        return torch.stack([torch.sigmoid(self.k * (x - 0.5)), torch.full_like(x, 0.3)], 1)


class LinearPredictor:
    """'Smiling' = mean pixel, so the mean probability is exactly linear in alpha."""

    attr_names = ["Smiling"]

    def predict(self, images):
        return images.mean((1, 2, 3))[:, None]


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_bisection_finds_the_closed_form_alpha_of_a_logistic_toy():
    # Every code has pixel value 0.5 (p = 0.5); moving by alpha along axis 0 gives
    # p = sigmoid(k * alpha), so p = 0.5 + rise at alpha = logit(0.5 + rise) / k.
    k, rise = 4.0, 0.3
    codes = torch.zeros(5, 3)
    codes[:, 0] = 0.5
    codes[:, 1:] = torch.randn(5, 2)  # other coordinates do not matter to this model
    result = matched_strength(PixelModel(), LogisticPredictor(k), codes, torch.tensor([2.0, 0, 0]),
                              "smiling", rise=rise, max_alpha=5.0, tol=1e-5)  # fmt: skip
    assert isinstance(result, MatchedStrength) and result.reached
    assert result.alpha == pytest.approx(logit(0.5 + rise) / k, abs=1e-3)
    assert result.change == pytest.approx(rise, abs=1e-5)
    assert "gives +0.300" in str(result)


def test_a_fall_is_found_on_the_negative_side():
    codes = torch.full((4, 2), 0.5)
    r = matched_strength(PixelModel(), LogisticPredictor(4.0), codes, torch.tensor([1.0, 0]),
                         "Smiling", rise=-0.2, max_alpha=5.0, tol=1e-5)  # fmt: skip
    assert r.reached and r.alpha == pytest.approx(logit(0.3) / 4.0, abs=1e-3) and r.alpha < 0
    assert r.change == pytest.approx(-0.2, abs=1e-5)


def test_different_faces_average_and_the_unit_direction_sets_the_scale():
    # Linear toy: p_i = x_i + alpha * cos(direction, axis 0); the mean rises by alpha * cos.
    codes = torch.tensor([[0.1, 0.0], [0.3, 1.0], [0.2, -1.0]])
    direction = torch.tensor([3.0, 4.0])  # unit: (0.6, 0.8), so alpha moves pixels by 0.6 alpha
    r = matched_strength(PixelModel(), LinearPredictor(), codes, direction[None], "Smiling",
                         rise=0.3, max_alpha=2.0, tol=1e-6)  # fmt: skip
    assert r.alpha == pytest.approx(0.3 / 0.6, abs=1e-4)
    assert mean_probability(PixelModel(), LinearPredictor(), codes, "Smiling") == pytest.approx(0.2)


def test_an_unreachable_rise_is_reported_not_returned_as_an_answer():
    model = PixelModel()
    codes = torch.full((3, 2), 0.5)
    r = matched_strength(model, LogisticPredictor(4.0), codes, torch.tensor([1.0, 0]),
                         "Smiling", rise=0.45, max_alpha=0.5)  # fmt: skip
    best = 1 / (1 + math.exp(-4.0 * 0.5)) - 0.5  # the most alpha = 0.5 can give: 0.381
    assert not r.reached and r.alpha == 0.5 and r.change == pytest.approx(best, abs=1e-6)
    assert r.evaluations == 2 and model.decodes == 2  # start and limit only: no search
    assert "NOT REACHED" in str(r)
    # A direction the predictor does not see at all: nothing to reach.
    flat = matched_strength(PixelModel(), LogisticPredictor(), codes, torch.tensor([0, 1.0]),
                            "Smiling", max_alpha=3.0)  # fmt: skip
    assert not flat.reached and flat.change == pytest.approx(0.0)


def test_bad_inputs_raise_clear_errors():
    model, pred, codes, d = PixelModel(), LogisticPredictor(), torch.zeros(2, 3), torch.ones(3)
    with pytest.raises(KeyError, match="did you mean 'Smiling'"):
        matched_strength(model, pred, codes, d, "Smilng")
    with pytest.raises(ValueError, match=r"direction must be \[D\] with D = 3"):
        matched_strength(model, pred, codes, torch.ones(4), "Smiling")
    with pytest.raises(ValueError, match=r"codes must be \[N, D\]"):
        matched_strength(model, pred, torch.zeros(3), d, "Smiling")
    with pytest.raises(ValueError, match="direction is zero"):
        matched_strength(model, pred, codes, torch.zeros(3), "Smiling")
    with pytest.raises(ValueError, match="finite"):
        matched_strength(model, pred, codes, torch.tensor([1.0, float("nan"), 0]), "Smiling")
    for rise in (0.0, 1.0, -1.5, float("nan")):
        with pytest.raises(ValueError, match="rise must lie in"):
            matched_strength(model, pred, codes, d, "Smiling", rise=rise)
    with pytest.raises(ValueError, match="max_alpha"):
        matched_strength(model, pred, codes, d, "Smiling", max_alpha=0)
    with pytest.raises(ValueError, match="tol"):
        matched_strength(model, pred, codes, d, "Smiling", tol=0)


class FactorPredictor(LinearPredictor):
    """A predictor with a factor head: 'smile' read off as the mean pixel."""

    factor_names = ["smile"]

    def factor_index(self, name):
        return self.factor_names.index(name)

    def factors(self, images):
        return images.mean((1, 2, 3))[:, None]


def _render(faces, smiles, size=16):
    images = [render_aligned(counterfactual(f, smile=v), size) for f, v in zip(faces, smiles)]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255


def test_score_edit_adds_the_counterfactual_error_and_its_floor():
    faces = sample_factors(2, seed=3)
    before = _render(faces, faces["smile"])  # a perfect reconstruction: floor 0
    after = before.clone()
    r = score_edit(FactorPredictor(), before, after, "Smiling", faces=faces)
    assert r["target_change"] == 0.0 and r["counterfactual_floor"] == pytest.approx(0, abs=1e-7)
    assert r["counterfactual_error"] == pytest.approx(0, abs=1e-7)  # no move, no error
    brighter = (before + 0.1).clamp(0, 1)  # the factor head reads a smile change; the truth differs
    r = score_edit(FactorPredictor(), before, brighter, "Smiling", faces=faces)
    assert r["counterfactual_error"] > 0.01 and set(r) >= {"leakage", "preservation", "changes"}
    assert "counterfactual_error" not in score_edit(FactorPredictor(), before, after, "Smiling")


class TrueFactors(FactorPredictor):
    """A perfect factor head: the smile each registered rendering was drawn with."""

    def __init__(self, images, smiles):
        self.known = list(zip(images, smiles))

    def factors(self, images):
        values = [next(v for known, v in self.known if torch.equal(known, x)) for x in images]
        return torch.tensor(values, dtype=torch.float32)[:, None]


def test_an_edit_that_is_the_true_counterfactual_scores_zero_error():
    faces = sample_factors(3, seed=5)
    start = np.clip(faces["smile"], 0.0, 0.6)
    faces["smile"] = start
    before, after = _render(faces, start, 64), _render(faces, start + 0.3, 64)
    truth = TrueFactors([*before, *after], [*start, *(start + 0.3)])
    r = score_edit(truth, before, after, "Smiling", faces=faces)
    assert r["counterfactual_floor"] == pytest.approx(0, abs=1e-7)
    assert r["counterfactual_error"] == pytest.approx(0, abs=1e-7)  # moved by +0.3: the truth
    backwards = TrueFactors([*before, *after], [*(start + 0.3), *start])  # a head that reads -0.3
    wrong = score_edit(backwards, before, after, "Smiling", faces=faces)
    assert wrong["counterfactual_error"] > 5e-4  # a smile is a small part of the face


def test_score_edit_needs_a_factor_and_a_factor_head():
    faces = sample_factors(1, seed=3)
    x = torch.zeros(1, 3, 8, 8)
    assert FACTOR_OF["Smiling"] == "smile"
    wavy = type("WavyPredictor", (FactorPredictor,), {"attr_names": ["Wavy_Hair"]})()
    with pytest.raises(KeyError, match="pass factor="):
        score_edit(wavy, x, x, "Wavy_Hair", faces=faces)
    with pytest.raises(TypeError, match="factor head"):
        score_edit(LinearPredictor(), x, x, "Smiling", faces=faces)


def test_psnr_and_decode_latency(monkeypatch):
    x = torch.zeros(2, 3, 4, 4)
    assert psnr(x, x + 0.1) == pytest.approx(20.0)  # MSE 0.01 -> 20 dB
    assert psnr(x, x) == float("inf")
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(x, torch.zeros(2, 3, 5, 5))

    clock = [0.0]
    durations = iter([5.0, 0.030, 0.010, 0.070])  # seconds: a slow first call, then three

    class Timed(PixelModel):
        def decode(self, z):
            clock[0] += next(durations)
            return super().decode(z)

    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])  # a clock only decode moves
    model = Timed()
    ms = decode_latency(model, torch.zeros(1, 2), repeats=3)
    assert ms == pytest.approx(30.0) and model.decodes == 4  # the warm-up untimed; the median


def test_counterfactual_scores_at_a_common_resolution():
    faces = sample_factors(2, seed=3)
    before = _render(faces, faces["smile"], size=32)
    r = score_edit(
        FactorPredictor(), before, before, "Smiling", faces=faces, counterfactual_size=16
    )
    assert r["counterfactual_floor"] < 0.02  # area-averaged 32 -> 16 is close to a 16 render
    with pytest.raises(ValueError, match="larger than the images"):
        score_edit(
            FactorPredictor(), before, before, "Smiling", faces=faces, counterfactual_size=64
        )


class EdgeModel(nn.Module):
    """decode: z [B, 2] -> 3x20x20 images: the inner face is z[:, 0]; the border z[:, 1]."""

    def decode(self, z):
        x = z[:, 1, None, None, None].expand(-1, 3, 20, 20).clone()
        x[:, :, 7:19, 4:16] = z[:, 0, None, None, None]
        return x


class InnerPredictor:
    """'Smiling' = the inner face's value (the pixel at the centre); 'Male' = the border's."""

    attr_names = ["Smiling", "Male"]

    def predict(self, images):
        return torch.stack([images[:, 0, 12, 10], images[:, 0, 0, 0]], 1)


def test_sweep_edit_finds_the_step_and_where_the_edit_stops_being_clean():
    # The direction moves the inner face by 0.11 per sigma and the border by 0.03 per sigma, so
    # the rise of +0.5 comes at 5 sigma, and the border passes the 0.1 threshold above 3.33 sigma.
    direction = torch.tensor([0.11, 0.03])
    sigma = float(direction.norm())
    codes = torch.zeros(8, 2)
    sweep = sweep_edit(EdgeModel(), InnerPredictor(), codes, direction, "smiling", sigma,
                       steps=[1, 2, 3, 4, 5, 6])  # fmt: skip
    assert sweep.target == "Smiling"
    assert sweep.change == pytest.approx((0.11, 0.22, 0.33, 0.44, 0.55, 0.66))
    assert sweep.reach == 5
    assert sweep.leakage[2] == pytest.approx(0.09)  # Male moves with the border
    # the inner face fills INNER_FACE's box at 20 px, so every pixel outside it is border
    assert sweep.outside == (0.0, 0.0, 0.0, 1.0, 1.0, 1.0)
    # Flat faces, no dots; but once the inner square stands 0.25 above the border (from 4 sigma:
    # 0.44 against 0.12), its 4 sharp corners do stand out from their 3x3 medians: 4 of 144
    assert sweep.artefacts == pytest.approx((0, 0, 0, 4 / 144, 4 / 144, 4 / 144))
    assert sweep.clean_until == 3 and sweep.stopped_by == "outside" and not sweep.clean
    assert "5 sigma" in str(sweep)
    never = sweep_edit(EdgeModel(), InnerPredictor(), codes, direction, "Smiling", sigma, steps=[1])
    assert never.reach is None and "never reaches" in str(never)


class DottedModel(nn.Module):
    """decode: z [B, 2] -> 3x20x20 grey images with dots of height z[:, 0] on every third pixel
    of every third row inside INNER_FACE's box (rows 7-18, columns 4-15 at 20 px): 16 of its 144
    pixels."""

    def decode(self, z):
        x = torch.full((len(z), 3, 20, 20), 0.5)
        x[:, :, 7:19:3, 4:16:3] += z[:, 0, None, None, None]
        return x


class DotPredictor(InnerPredictor):
    """'Smiling' = the height of one of DottedModel's dots; 'Male' = the border's."""

    def predict(self, images):
        return torch.stack([images[:, 0, 13, 10], images[:, 0, 0, 0]], 1)


def test_sweep_edit_stops_the_clean_range_where_the_edit_breaks_into_dots():
    # 0.1 per sigma: the dots stand out by more than 0.25 from 3 sigma on (16 of 144 pixels),
    # and P(Smiling) rises by +0.5 at 5 sigma
    def sweep(**limits):
        return sweep_edit(DottedModel(), DotPredictor(), torch.zeros(4, 2), torch.tensor([1.0, 0]),
                          "Smiling", 0.1, steps=[1, 2, 3, 4, 5], **limits)  # fmt: skip

    dotted = sweep()
    assert dotted.outside == (0.0,) * 5
    assert dotted.artefacts == pytest.approx((0, 0, 16 / 144, 16 / 144, 16 / 144))
    assert dotted.reach == 5 and dotted.at(5)["artefacts"] == pytest.approx(16 / 144)
    assert dotted.clean_until == 2 and dotted.stopped_by == "artefacts" and not dotted.clean
    assert "artefacts +11.1%" in str(dotted)
    lenient = sweep(artefact_limit=0.2)
    assert lenient.clean_until == 5 and lenient.stopped_by is None and lenient.clean


def test_sweep_edit_and_lacking_refuse_bad_input():
    model, predictor, codes = EdgeModel(), InnerPredictor(), torch.zeros(4, 2)
    d = torch.tensor([1.0, 0.0])
    with pytest.raises(ValueError, match="ascending"):
        sweep_edit(model, predictor, codes, d, "Smiling", 1.0, steps=[2, 1])
    with pytest.raises(ValueError, match="sigma"):
        sweep_edit(model, predictor, codes, d, "Smiling", 0.0)
    with pytest.raises(KeyError, match="Smiling"):
        sweep_edit(model, predictor, codes, d, "Smilng", 1.0)
    with pytest.raises(KeyError, match="Smiling"):
        lacking(predictor, model.decode(codes), ["Smilng"])


def test_lacking_picks_the_faces_below_the_threshold_on_every_attribute():
    codes = torch.tensor([[0.1, 0.1], [0.5, 0.1], [0.1, 0.9], [0.2, 0.2]])
    images = EdgeModel().decode(codes)
    assert lacking(InnerPredictor(), images, "Smiling").tolist() == [0, 2, 3]
    assert lacking(InnerPredictor(), images, ["Smiling", "Male"]).tolist() == [0, 3]
    # too few below: the least likely faces (largest probability 0.5, then 0.9) make up the number
    assert lacking(InnerPredictor(), images, ["Smiling", "Male"], at_least=3).tolist() == [0, 3, 1]
    assert lacking(InnerPredictor(), images, "Smiling", below=0.05).tolist() == [0]  # 0.1 < 0.2
    assert lacking(InnerPredictor(), images, "Smiling", below=0.05, at_least=9).tolist() == [
        0,
        2,
        3,
        1,
    ]
