"""n-bit quantisation against integer arithmetic, dequantisation noise, bits/dim."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fel.density import bits_per_dim, dequantize, quantize


@pytest.mark.parametrize("n_bits", range(1, 9))
def test_every_uint8_value_lands_in_its_integer_bin(n_bits):
    k = np.arange(256, dtype=np.uint8)
    x = torch.from_numpy(k).float() / 255  # what the data pipeline hands the models
    expected = (k >> (8 - n_bits)).astype(np.float32)
    assert np.array_equal(quantize(x, n_bits).numpy(), expected)
    assert np.array_equal(quantize(x.double(), n_bits).numpy(), expected)


def test_dequantised_values_stay_inside_their_bin_and_repeat_with_a_seed():
    x = torch.arange(256).float().repeat(40) / 255
    a = dequantize(x, 5, torch.Generator().manual_seed(3))
    b = dequantize(x, 5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(torch.floor(a * 32), quantize(x, 5))
    within = a * 32 - quantize(x, 5)
    assert within.mean().item() == pytest.approx(0.5, abs=0.02)  # uniform over the bin


def test_bits_per_dim_of_the_uniform_density_is_n_bits():
    # p = 1 on [0, 1)^D: nll = 0, every n-bit image has probability 2^(-n D)
    assert bits_per_dim(torch.zeros(3), 12, 5).tolist() == [5.0, 5.0, 5.0]
    assert bits_per_dim(torch.tensor([12 * math.log(2)]), 12, 5).item() == pytest.approx(6.0)


def test_bad_bit_depth():
    with pytest.raises(ValueError, match="n_bits"):
        quantize(torch.zeros(1), 0)
