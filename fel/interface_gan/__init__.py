"""InterfaceGAN: fel's style-based GAN (Z and W spaces) with its training recipe and boundaries,
and the published generators people edit (PGGAN CelebA-HQ, InterfaceGAN's StyleGAN,
rosinality's StyleGAN2: Z, W and W+) with their published directions."""

from fel.interface_gan.boundaries import find_boundaries
from fel.interface_gan.direction_files import load_direction, load_ganspace
from fel.interface_gan.editing import gan_editor
from fel.interface_gan.model import GAN, Discriminator, GANConfig, Generator, WSpace
from fel.interface_gan.pggan import PGGANGenerator, load_boundary, load_pggan
from fel.interface_gan.published import StyleGenerator, WPlusSpace
from fel.interface_gan.recipe import evaluate, export, load, load_pretrained, train_gan
from fel.interface_gan.stylegan import StyleGANGenerator, load_stylegan
from fel.interface_gan.stylegan2 import StyleGAN2Generator, load_stylegan2

__all__ = [
    "GAN",
    "Discriminator",
    "GANConfig",
    "Generator",
    "PGGANGenerator",
    "StyleGAN2Generator",
    "StyleGANGenerator",
    "StyleGenerator",
    "WPlusSpace",
    "evaluate",
    "export",
    "find_boundaries",
    "gan_editor",
    "load",
    "load_boundary",
    "load_direction",
    "load_ganspace",
    "load_pggan",
    "load_pretrained",
    "load_stylegan",
    "load_stylegan2",
    "train_gan",
    "WSpace",
]
