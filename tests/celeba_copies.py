"""CelebA copies that are not SynthFaces-shaped, built from a SynthFaces render: the layouts a
learner's download has, without SynthFaces' extra files."""

from __future__ import annotations

import shutil
from pathlib import Path

from fel.data.celeba import read_attributes, read_partition


def kaggle_copy(src: str | Path, dst: str | Path) -> Path:
    """``src`` (official layout) rewritten as Kaggle ships CelebA: CSV lists and the nested
    ``img_align_celeba/img_align_celeba/`` folder; no factors, identity, landmark or
    ``synthfaces.json`` files. Returns ``dst``."""
    src, dst = Path(src), Path(dst)
    names, files, values = read_attributes(src / "list_attr_celeba.txt")
    partition = read_partition(src / "list_eval_partition.txt")
    images = dst / "img_align_celeba" / "img_align_celeba"
    images.mkdir(parents=True)
    rows = ["image_id," + ",".join(names)]
    rows += [f + "," + ",".join(str(int(v)) for v in row) for f, row in zip(files, values)]
    (dst / "list_attr_celeba.csv").write_text("\n".join(rows) + "\n")
    (dst / "list_eval_partition.csv").write_text(
        "image_id,partition\n" + "".join(f"{f},{partition[f]}\n" for f in files)
    )
    for f in files:
        shutil.copyfile(src / "img_align_celeba" / f, images / f)
    return dst
