"""InterfaceGAN: the published PGGAN CelebA-HQ generator and its boundaries."""

from fel.interface_gan.pggan import PGGANGenerator, load_boundary, load_pggan

__all__ = ["PGGANGenerator", "load_boundary", "load_pggan"]
