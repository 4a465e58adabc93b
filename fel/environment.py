"""What fel runs on: package versions, the compute device and where data and checkpoints live."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

import fel

PACKAGES = (
    "torch", "torchvision", "numpy", "pillow", "matplotlib", "ipywidgets",
    "jupyterlab", "tqdm", "scikit-learn",
)  # fmt: skip


def environment_report() -> dict[str, str]:
    """A name -> value table of the environment, for notebooks and ``python -m fel info``."""
    import torch

    report = {
        "fel": fel.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
    }
    for name in PACKAGES:
        try:
            report[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            report[name] = "not installed"
    report["device"] = str(fel.device())
    report["cuda"] = (
        f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
        if torch.cuda.is_available()
        else "not available"
    )
    report["cpu threads"] = str(torch.get_num_threads())
    report["data dir"] = str(fel.DATA_DIR)
    report["checkpoints"] = str(fel.CHECKPOINT_DIR)
    return report
