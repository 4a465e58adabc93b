"""Checkpoints: atomic writes, weights_only loading, clear errors for every broken file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from fel.checkpoints import (
    CheckpointError,
    half_state,
    load_checkpoint,
    load_state,
    save_checkpoint,
)


def _payload():
    model = nn.Linear(3, 2)
    return model, {
        "model": model.state_dict(),
        "config": {"in": 3},
        "meta": {"step": 7, "note": "x"},
    }


def test_round_trip_and_no_temporary_left(tmp_path):
    model, payload = _payload()
    path = save_checkpoint(tmp_path / "sub" / "m.pt", payload)
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.pt"]
    loaded = load_checkpoint(path)
    assert loaded["config"] == {"in": 3} and loaded["meta"]["step"] == 7
    fresh = nn.Linear(3, 2)
    load_state(fresh, loaded["model"])
    assert torch.equal(fresh.weight, model.weight)


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    _, payload = _payload()
    path = save_checkpoint(tmp_path / "m.pt", payload)
    before = path.read_bytes()

    def broken_save(obj, f):
        Path(f).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, payload)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_loading_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model": {}, "config": {}, "meta": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")


def test_broken_files_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m fel train"):
        load_checkpoint(tmp_path / "missing.pt")
    _, payload = _payload()
    good = save_checkpoint(tmp_path / "good.pt", payload).read_bytes()
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="cut.pt"):
        load_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "text.pt")
    torch.save({"weights": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="'model' and 'config'"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_shape_mismatch_names_the_key_and_both_shapes():
    with pytest.raises(
        CheckpointError, match=r"'weight' has shape \(2, 4\) but the model expects \(2, 3\)"
    ):
        load_state(nn.Linear(3, 2), nn.Linear(4, 2).state_dict())
    with pytest.raises(CheckpointError, match="missing keys"):
        load_state(
            nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)),
            nn.Sequential(nn.Linear(3, 2)).state_dict(),
        )


def test_half_state_keeps_integers_and_loads_back_as_float():
    bn = nn.BatchNorm1d(4)
    small = half_state(bn.state_dict())
    assert (
        small["weight"].dtype == torch.float16 and small["num_batches_tracked"].dtype == torch.int64
    )
    fresh = nn.BatchNorm1d(4)
    load_state(fresh, small)
    assert fresh.weight.dtype == torch.float32
