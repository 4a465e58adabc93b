"""InterfaceGAN: fel's style-based GAN (Z and W spaces) with its training recipe and boundaries,
and the published PGGAN CelebA-HQ generator with its boundaries."""

from fel.interface_gan.boundaries import find_boundaries
from fel.interface_gan.editing import gan_editor
from fel.interface_gan.model import GAN, Discriminator, GANConfig, Generator, WSpace
from fel.interface_gan.pggan import PGGANGenerator, load_boundary, load_pggan
from fel.interface_gan.recipe import evaluate, export, load, load_pretrained, train_gan

__all__ = [
    "GAN",
    "Discriminator",
    "GANConfig",
    "Generator",
    "PGGANGenerator",
    "evaluate",
    "export",
    "find_boundaries",
    "gan_editor",
    "load",
    "load_boundary",
    "load_pggan",
    "load_pretrained",
    "train_gan",
    "WSpace",
]
