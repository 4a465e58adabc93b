"""What the published style-based generators (StyleGAN, StyleGAN2) share: the course's common face
in Z, W and W+, inversion, and reading their files.

The three latent spaces (Shen et al. 2020; Abdal et al. 2019):

    Z   z [B, 512] ~ N(0, I)                         the Gaussian input
    W   w = mapping(z) [B, 512]                      one style for every layer (before truncation)
    W+  wp [B, n_latent, 512]                        one style per layer: W repeated, then
                                                     truncated, is a W+ code; inversion and
                                                     layer-wise edits leave the repeated form

Truncation ``w_avg + psi (w - w_avg)`` acts on the layers the publisher truncates (StyleGAN as
InterfaceGAN sets it up: the first 8 at psi 0.7; rosinality's StyleGAN2: all of them), *after*
any edit in W. ``decode_wplus`` does not truncate, as InterfaceGAN's ``WP`` input.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from fel.checkpoints import CheckpointError
from fel.interface_gan.inversion import invert

SPACES = ("w", "wplus")


def read_state_file(path: str | os.PathLike, what: str, where: str) -> object:
    """``torch.load(path, weights_only=True)`` on the CPU, with errors that say what went wrong.

    Args:
        what: the file expected, for messages (e.g. "rosinality's StyleGAN2 .pt").
        where: where such a file comes from, for the not-found message.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is not a torch file, is truncated, or needs code to load
            (a training checkpoint holding an ``argparse.Namespace``: the message says how to
            keep only its weights).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found. fel cannot download it: {where} Pass its path.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Namespace" in str(err):
            raise CheckpointError(
                f"{path} is a training checkpoint: it holds an argparse.Namespace ('args'), which "
                "weights_only=True refuses to unpickle since unpickling can run code. If you "
                'trust the file, keep only its weights once: python -c "import torch; '
                f"c = torch.load('{path}', weights_only=False); "
                "torch.save({'g_ema': c['g_ema']}, 'g_ema.pt')\" and load g_ema.pt."
            ) from None
        raise CheckpointError(f"{path} is not a readable {what} ({err})") from None
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"{path} is not a readable {what} ({type(err).__name__}: {err})"
        ) from None


def tensor_dict(state: object, path: str | os.PathLike, what: str) -> dict[str, Tensor]:
    """``state`` itself if it is a dict of tensors, else a :class:`CheckpointError`."""
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not {what}")
    return state


def check_constant(stored: Tensor, key: str, expected: Tensor, path) -> None:
    """A stored constant (a blur kernel) must be the value the architecture defines."""
    value = stored.float()
    if value.shape != expected.shape or not torch.allclose(value, expected, atol=1e-6):
        raise CheckpointError(
            f"{path}: '{key}' is not the constant kernel this architecture uses "
            f"(expected {expected.flatten()[:4].tolist()}..., got {value.flatten()[:4].tolist()}...)"
        )


class StyleGenerator(nn.Module):
    """The common face of a published style-based generator; subclasses define the networks.

    Subclasses set ``resolution``, ``z_dim``, ``w_dim``, ``n_latent`` and ``truncation`` (the
    default psi), and implement ``mapping(z)``, ``truncation_coefficients(psi)`` (one per layer,
    [n_latent]), the ``w_avg`` buffer and ``synthesis(wp)`` (raw images in about [-1, 1]).

    Shapes: Z and W codes [B, 512]; W+ codes [B, n_latent, 512]; images [B, 3, R, R] in [0, 1].
    """

    resolution: int
    z_dim: int
    w_dim: int
    n_latent: int
    truncation: float
    w_avg: Tensor

    @property
    def device(self) -> torch.device:
        return self.w_avg.device

    def preprocess(self, z: Tensor) -> Tensor:
        """Z codes as the publisher feeds them (default: unchanged)."""
        return z

    def mapping(self, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def synthesis(self, wp: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def truncation_coefficients(self, psi: float) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check(self, code: Tensor, wplus: bool) -> Tensor:
        shape = (self.n_latent, self.w_dim) if wplus else (self.w_dim,)
        if code.dim() != len(shape) + 1 or tuple(code.shape[1:]) != shape:
            name = "W+ codes" if wplus else "codes"
            raise ValueError(
                f"{name} must be [B, {', '.join(map(str, shape))}], got {tuple(code.shape)}"
            )
        return code.to(self.device, torch.float32)

    def truncate(self, w: Tensor, psi: float | None = None) -> Tensor:
        """W codes [B, 512] (repeated over the layers) or W+ codes [B, n_latent, 512] ->
        truncated W+ codes [B, n_latent, 512]: ``w_avg + c_l (w_l - w_avg)`` on layer l, with
        ``c = truncation_coefficients(psi)`` (default psi: ``truncation``)."""
        if w.dim() == 2:
            w = self._check(w, False)[:, None].expand(-1, self.n_latent, -1)
        else:
            w = self._check(w, True)
        psi = self.truncation if psi is None else psi
        if psi == 1:
            return w
        coefficients = self.truncation_coefficients(psi).to(w)[None, :, None]
        return self.w_avg + coefficients * (w - self.w_avg)

    def _images(self, wp: Tensor) -> Tensor:
        return ((self.synthesis(wp) + 1) / 2).clamp(0, 1)

    def decode_wplus(self, wp: Tensor, batch_size: int | None = None) -> Tensor:
        """Images [B, 3, R, R] in [0, 1] from W+ codes [B, n_latent, 512], **not** truncated.

        Runs ``batch_size`` codes at a time (default: about 4M output pixels' worth, i.e. 4
        faces at 1024 px, 64 at 256 px; a bar when there is more than one batch); gradients
        flow when the caller enables them.
        """
        batch_size = batch_size or max(1, 2**22 // self.resolution**2)
        chunks = self._check(wp, True).split(batch_size)
        bar = tqdm(chunks, desc=f"{type(self).__name__} decode", unit="batch",
                   disable=len(chunks) <= 1)  # fmt: skip
        return torch.cat([self._images(c) for c in bar])

    def decode_w(
        self, w: Tensor, psi: float | None = None, batch_size: int | None = None
    ) -> Tensor:
        """Images from W codes [B, 512], truncated by ``psi`` (default ``truncation``) after any
        edit, as the publisher does."""
        return self.decode_wplus(self.truncate(w, psi), batch_size)

    def decode(self, z: Tensor, psi: float | None = None, batch_size: int | None = None) -> Tensor:
        """Images from Z codes [B, 512]: preprocessed, mapped, truncated, synthesised."""
        return self.decode_w(self.mapping(z), psi, batch_size)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n Z codes [n, 512] from N(0, I), preprocessed as the publisher does (drawn on the CPU,
        so a seed gives the same codes on every device), on the model's device."""
        return self.preprocess(torch.randn(n, self.z_dim, generator=generator)).to(self.device)

    def encode(self, x: Tensor, space: str = "w", truncated: bool = False, steps: int = 200,
               lr: float = 0.05, classifier: nn.Module | None = None,
               feature_weight: float = 1.0, progress: bool = True) -> Tensor:  # fmt: skip
        """Invert images into W or W+ by optimising one code per image (Adam, ``steps`` steps,
        learning rate ``lr``) on the mean squared pixel error, plus ``feature_weight`` times the
        squared error of a ``classifier``'s penultimate features when one is given.

        Every code starts at ``w_avg``. The generator's weights get no gradients.

        Args:
            x: images [B, 3, H, W] in [0, 1], resized to R x R when H, W differ.
            space: "w" (codes [B, 512], for :meth:`decode_w`) or "wplus" (codes
                [B, n_latent, 512], for :meth:`decode_wplus`, or for ``truncate`` then
                ``decode_wplus`` with ``truncated=True``).
            truncated: W+ codes that are truncated before synthesis (the slider editor's
                layer-wise codes); W codes always are.
        """
        if space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, got {space!r}")
        x = torch.as_tensor(x).to(self.device, torch.float32)
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W], got {tuple(x.shape)}")
        if x.shape[-2:] != (self.resolution, self.resolution):
            size = (self.resolution, self.resolution)
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        if space == "w":
            start, render = self.w_avg.expand(len(x), -1), self.truncate
        else:
            start = self.w_avg.expand(len(x), self.n_latent, -1)
            render = self.truncate if truncated else (lambda wp: wp)
        desc = f"{type(self).__name__} inversion into {'W' if space == 'w' else 'W+'}"
        return invert(self, lambda c: self._images(render(c)), start, x, steps, lr, classifier,
                      feature_weight, progress, desc)  # fmt: skip

    def w_space(self):
        """This generator seen from W (see :class:`fel.interface_gan.WSpace`)."""
        from fel.interface_gan.model import WSpace

        return WSpace(self)

    def wplus_space(self, truncated: bool = False) -> WPlusSpace:
        """This generator seen from W+ (see :class:`WPlusSpace`)."""
        return WPlusSpace(self, truncated)

    @staticmethod
    def to_uint8(images: Tensor) -> Tensor:
        """Images in [0, 1] -> uint8 as the publishers write them: ``x * 255 + 0.5`` truncated
        (the same as ``(raw + 1) * 127.5 + 0.5`` on the raw output)."""
        return (images * 255 + 0.5).clamp(0, 255).to(torch.uint8)


class WPlusSpace(nn.Module):
    """A style generator's common face with every code a **flattened W+ code**
    [B, n_latent * 512], for :class:`fel.widgets.LatentEditor` and the direction helpers.

    With ``truncated=False`` (InterfaceGAN's ``WP``) codes are synthesised as they are, and
    ``sample_latent`` gives truncated mapped draws. With ``truncated=True`` a code is W repeated
    per layer *before* truncation, and ``decode`` truncates it with the generator's current
    ``truncation``: a layer-wise edit is then an edit of W on some layers only, and a truncation
    slider still acts.
    """

    def __init__(self, generator: StyleGenerator, truncated: bool = False) -> None:
        super().__init__()
        self.generator, self.truncated = generator, truncated

    def _unflatten(self, code: Tensor) -> Tensor:
        g = self.generator
        return code.reshape(-1, g.n_latent, g.w_dim)

    def decode(self, code: Tensor) -> Tensor:
        """Images [B, 3, R, R] in [0, 1] from codes [B, n_latent * 512]."""
        wp = self._unflatten(code)
        return self.generator.decode_wplus(self.generator.truncate(wp) if self.truncated else wp)

    def encode(self, x: Tensor, **inversion) -> Tensor:
        """Codes [B, n_latent * 512] of images x (see :meth:`StyleGenerator.encode`)."""
        wp = self.generator.encode(x, space="wplus", truncated=self.truncated, **inversion)
        return wp.flatten(1)

    @torch.no_grad()
    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n codes [n, n_latent * 512]: mapped Gaussian draws, repeated over the layers (and
        truncated unless this view truncates at decoding)."""
        g = self.generator
        w = g.mapping(g.sample_latent(n, generator))
        wp = w[:, None].expand(-1, g.n_latent, -1) if self.truncated else g.truncate(w)
        return wp.flatten(1)
