"""CelebA's 40 binary attributes: their names, in CelebA's order, and name checking."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald",
    "Bangs", "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair",
    "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard",
    "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings",
    "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip


def check_attribute(name: str, known: Iterable[str] = ATTRIBUTES) -> str:
    """Return ``name`` if it is a known attribute, else raise a KeyError naming the closest ones.

    Matching is exact first, then case-insensitive ("smiling" -> "Smiling").
    """
    known = list(known)
    if name in known:
        return name
    by_lower = {k.lower(): k for k in known}
    if isinstance(name, str) and name.lower() in by_lower:
        return by_lower[name.lower()]
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=5, cutoff=0.5)
    hint = (
        f"did you mean {', '.join(repr(by_lower[c]) for c in close)}?"
        if close
        else f"known attributes: {', '.join(known)}"
    )
    raise KeyError(f"unknown attribute {name!r}; {hint}")


def attribute_indices(names: Iterable[str] | None, known: Iterable[str] = ATTRIBUTES) -> list[int]:
    """Column indices of ``names`` in ``known`` (all columns when ``names`` is None)."""
    known = list(known)
    if names is None:
        return list(range(len(known)))
    if isinstance(names, str):
        names = [names]
    return [known.index(check_attribute(n, known)) for n in names]
