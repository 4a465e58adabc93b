"""The command line: help for every subcommand, real work on small inputs, clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fel.__main__ import build_parser, main
from tests import fake_celeba as fake


def _subcommands(parser, prefix=()):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _subcommands(sub, (*prefix, name))


@pytest.mark.parametrize("command", list(_subcommands(build_parser())), ids=" ".join)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_module_entry_point_runs():
    out = subprocess.run(
        [sys.executable, "-m", "fel", "info"], capture_output=True, text=True, check=True
    )
    assert "torch" in out.stdout and "device" in out.stdout


def test_data_info_on_a_fake_tree(tmp_path, capsys):
    root = fake.make_tree(tmp_path / "celeba", "kaggle")
    assert main(["data", "info", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "images listed: 5" in out and "Smiling" in out and "train  3" in out


def test_data_synth_writes_a_readable_set(tmp_path, capsys):
    out = tmp_path / "sf"
    assert main(["data", "synth", "--out", str(out), "--n", "12", "--workers", "1"]) == 0
    assert (out / "img_align_celeba" / "000012.jpg").exists()
    assert main(["data", "info", "--root", str(out)]) == 0


def test_errors_are_one_clear_line_and_exit_code_2(tmp_path, capsys):
    assert main(["data", "info", "--root", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "fel data synth" in err


def test_data_sheet_writes_a_png(tmp_path):
    from PIL import Image

    root = fake.make_tree(tmp_path / "celeba")
    out = tmp_path / "sheet.png"
    assert (
        main(
            [
                "data",
                "sheet",
                "--root",
                str(root),
                "--out",
                str(out),
                "--split",
                "all",
                "--size",
                "32",
            ]
        )
        == 0
    )
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 32
