"""The notebooks on a learner's own CelebA: a copy that is not SynthFaces-shaped (Kaggle's layout,
no factors, identity or landmark files), the course trained on it by ``train course --quick``,
and each notebook run top to bottom under nbval with ``FEL_CELEBA_ROOT`` and ``FEL_CHECKPOINTS``
pointing at the two, as the README tells a learner to.

SynthFaces-only cells (factors, counterfactuals) and cells for the files Kaggle leaves out must
say so in a line and let the notebook go on; a cell that reads SynthFaces' files, opens a list
file by path or loads a shipped SynthFaces checkpoint fails the run (the loaders refuse those on
other data). Claims asserted about the shipped models (``fel.checkpoints.is_shipped``) are
printed, not asserted, for the learner's: a --quick course on 300 faces edits almost nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fel import PROJECT_ROOT
from fel.data.synthfaces import write_synthfaces
from tests.celeba_copies import kaggle_copy

ON_OWN_CELEBA = sorted(p.stem for p in (PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def own_celeba(tmp_path_factory):
    """(a 300-face Kaggle-layout copy, the course checkpoints trained on it by --quick)."""
    from fel.course import train_course

    base = tmp_path_factory.mktemp("own_celeba")
    rendered = write_synthfaces(base / "synth", n=300, seed=3, workers=1, progress=False)
    root = kaggle_copy(rendered, base / "celeba")
    train_course(root, base / "checkpoints", quick=True, dataset_name="celeba")
    return root, base / "checkpoints"


@pytest.mark.parametrize("name", ON_OWN_CELEBA)
def test_notebook_runs_on_own_celeba_with_its_course_checkpoints(own_celeba, name):
    root, checkpoints = own_celeba
    env = {**os.environ, "FEL_CELEBA_ROOT": str(root), "FEL_CHECKPOINTS": str(checkpoints)}
    notebook = PROJECT_ROOT / "notebooks" / f"{name}.ipynb"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
         "--nbval-current-env", "--nbval-cell-timeout=600", str(notebook)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert run.returncode == 0, f"{name} failed on a Kaggle-layout CelebA:\n{run.stdout[-6000:]}"
