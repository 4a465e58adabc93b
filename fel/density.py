"""Images as discrete data: n-bit quantisation, uniform dequantisation and bits per dimension.

A continuous density p on [0, 1]^D bounds the probability of an n-bit image k (integer levels
0..2^n - 1 per value): log P(k) >= E_u[log p((k + u) / 2^n)] + D log 2^n, u ~ U[0, 1)^D (Theis
et al. 2016). Scoring the bin centres instead of uniform noise is not a bound: a Gaussian's
log-density is concave in x, so at the centre it exceeds its mean over the bin (by
(1/2^n)^2 / 12 / (2 sigma^2) nats per value).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def quantize(x: Tensor, n_bits: int) -> Tensor:
    """Integer levels [B, ...] in 0..2^n_bits - 1 (as floats) of images x in [0, 1].

    ``round`` first recovers the uint8 value exactly: in float32, (k / 255) * 255 can fall one
    ulp below k, and a bare ``floor`` would then drop it into the bin below.
    """
    if not 1 <= n_bits <= 8:
        raise ValueError(f"n_bits must be between 1 and 8, got {n_bits}")
    return torch.floor(torch.round(x * 255) / 2 ** (8 - n_bits))


def dequantize(x: Tensor, n_bits: int, generator: torch.Generator | None = None) -> Tensor:
    """Images x [B, ...] in [0, 1] -> their n-bit levels plus uniform noise, scaled to [0, 1).

    ``generator`` seeds the noise (drawn on the CPU, then moved to x's device) so that a
    score repeats; without it the global RNG of x's device is used.
    """
    k = quantize(x, n_bits)
    noise = torch.rand(x.shape, generator=generator).to(x) if generator else torch.rand_like(x)
    return (k + noise) / 2**n_bits


def bits_per_dim(nll: Tensor, dims: int, n_bits: int) -> Tensor:
    """Bits per dimension [B] of n-bit images from ``nll`` [B], the negative log-density in nats of
    their dequantised values on [0, 1)^dims: (nll + dims log 2^n_bits) / (dims ln 2)."""
    return (nll + dims * n_bits * math.log(2)) / (dims * math.log(2))
