"""Face datasets in CelebA's layout: the reader, attribute names and SynthFaces."""

from fel.data.attributes import ATTRIBUTES, attribute_indices, check_attribute
from fel.data.celeba import (
    CelebA,
    CelebAFormatError,
    find_layout,
    read_identities,
    read_landmarks,
)
from fel.data.synthfaces import default_root, is_synthfaces

__all__ = [
    "ATTRIBUTES",
    "CelebA",
    "CelebAFormatError",
    "attribute_indices",
    "check_attribute",
    "default_root",
    "find_layout",
    "is_synthfaces",
    "read_identities",
    "read_landmarks",
]
