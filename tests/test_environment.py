"""Project plumbing: environment.yml mirrors pyproject.toml; device and seeding behave."""

from __future__ import annotations

import re

import tomllib
import torch
import yaml

import fel
from fel import PROJECT_ROOT


def _normalise(spec: str) -> str:
    name, rest = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", spec.strip()).groups()
    return name.lower().replace("_", "-") + rest.replace(" ", "")


def test_environment_yml_and_pyproject_list_the_same_dependencies():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    wanted = {
        _normalise(d) for d in project["dependencies"] + project["optional-dependencies"]["dev"]
    }
    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "conda-forge" in env["channels"]
    listed = {_normalise(d) for d in conda + pip if not d.startswith(("python", "pip", "-e"))}
    assert listed == wanted, (
        f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"
    )
    assert "-e ." in pip  # installs fel itself


def test_device_prefers_what_is_available(monkeypatch):
    monkeypatch.delenv("FEL_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert fel.device().type == expected
    assert fel.device("cpu") == torch.device("cpu")
    monkeypatch.setenv("FEL_DEVICE", "cpu")
    assert fel.device() == torch.device("cpu")


def test_seed_everything_repeats_every_generator():
    import random

    import numpy as np

    def draw():
        return random.random(), np.random.rand(), torch.rand(3).tolist()

    fel.seed_everything(7)
    a = draw()
    fel.seed_everything(7)
    assert draw() == a
    fel.seed_everything(8)
    assert draw() != a


def test_version_is_exposed():
    assert re.fullmatch(r"\d+\.\d+\.\d+", fel.__version__)
