"""Face datasets in CelebA's layout: the reader, attribute names and SynthFaces."""

from fel.data.attributes import ATTRIBUTES, attribute_indices, check_attribute
from fel.data.celeba import CelebA, CelebAFormatError, find_layout, read_identities
from fel.data.synthfaces import default_root

__all__ = [
    "ATTRIBUTES",
    "CelebA",
    "CelebAFormatError",
    "attribute_indices",
    "check_attribute",
    "default_root",
    "find_layout",
    "read_identities",
]
