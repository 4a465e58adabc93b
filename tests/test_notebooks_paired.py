"""Every notebook source (notebooks/NN_name.py) has its paired .ipynb, with the same code, run."""

from __future__ import annotations

import jupytext
import pytest

from fel import PROJECT_ROOT

SOURCES = sorted((PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def _code(nb) -> list[str]:
    return [c.source.strip() for c in nb.cells if c.cell_type == "code"]


def test_there_are_notebooks():
    assert SOURCES, "no notebooks/NN_name.py found"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_pair_has_the_same_code_and_was_executed(source):
    ipynb = source.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} missing: run `make notebooks`"
    script, notebook = jupytext.read(source), jupytext.read(ipynb)
    assert _code(script) == _code(notebook), (
        f"{source.name} and {ipynb.name} differ: run `make notebooks`"
    )
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code_cells), f"{ipynb.name} is not fully executed"
    assert any(c.outputs for c in code_cells), f"{ipynb.name} has no outputs"
    assert notebook.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"
