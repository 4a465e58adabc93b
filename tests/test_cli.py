"""The command line: help for every subcommand, real work on small inputs, clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

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


def test_train_glow_runs_records_its_command_and_exports(tmp_path, capsys):
    from fel.checkpoints import load_checkpoint
    from fel.data.synthfaces import write_synthfaces

    root = write_synthfaces(tmp_path / "sf", n=200, seed=2, workers=1, progress=False)
    args = ["train", "glow", "--root", str(root), "--out", str(tmp_path / "run"), "--size", "16",
            "--levels", "2", "--steps", "1", "--hidden", "8", "--batch-size", "16", "--max-steps", "3",
            "--export", str(tmp_path / "glow.pt")]  # fmt: skip
    assert main(args) == 0
    assert "bits/dim" in capsys.readouterr().out
    payload = load_checkpoint(tmp_path / "glow.pt")
    assert payload["config"]["size"] == 16 and payload["meta"]["step"] == 3
    assert payload["meta"]["command"].startswith("python -m fel ")
    assert payload["meta"]["train_config"]["amp"] is False  # flows train in full precision
    assert all(v.dtype != torch.float32 for v in payload["model"].values())  # fp16 export


def test_train_glow_refuses_a_size_its_levels_cannot_squeeze(tmp_path, capsys):
    args = [
        "train",
        "glow",
        "--root",
        str(tmp_path),
        "--out",
        str(tmp_path / "run"),
        "--size",
        "20",
    ]
    assert main(args) == 2
    assert "divisible" in capsys.readouterr().err


def test_library_errors_keep_their_traceback_and_fels_own_are_one_line(monkeypatch, capsys):
    import fel.__main__ as cli

    def out_of_memory(args):
        torch.empty(-1)  # raised inside torch, as a CUDA out-of-memory error or an NCCL failure is

    def bad_name(args):
        from fel.data.attributes import check_attribute

        check_attribute("Smilling")

    class Parser:  # `fel info` whose command is replaced by the one under test
        def __init__(self, run):
            self.args = build_parser().parse_args(["info"])
            self.args.run = run

        def parse_args(self, argv):
            return self.args

    monkeypatch.setattr(cli, "build_parser", lambda: Parser(bad_name))
    assert main([]) == 2
    assert "Smiling" in capsys.readouterr().err  # the close name, on one line
    monkeypatch.setattr(cli, "build_parser", lambda: Parser(out_of_memory))
    with pytest.raises(RuntimeError):
        main([])


@pytest.mark.parametrize("family", ["classifier", "vae", "glow", "gan"])
def test_cli_defaults_are_the_recipe_that_made_the_shipped_checkpoint(family):
    """`python -m fel train FAMILY` without flags, `train_FAMILY()` with its defaults and the
    shipped checkpoint's recorded settings are one recipe (epochs, batch, rate, warm-up)."""
    import importlib
    from dataclasses import asdict

    from fel import CHECKPOINT_DIR
    from fel.__main__ import _train_config
    from fel.checkpoints import load_checkpoint

    module = {"classifier": "fel.classifier", "vae": "fel.vae.recipe", "glow": "fel.flow.recipe",
              "gan": "fel.interface_gan.recipe"}[family]  # fmt: skip
    recipe = importlib.import_module(module).TRAINING
    cli = _train_config(build_parser().parse_args(["train", family, "--out", "x"]))
    keys = ("epochs", "batch_size", "lr", "warmup_steps", "seed")
    assert {k: getattr(cli, k) for k in keys} == {k: getattr(recipe, k) for k in keys}
    shipped = load_checkpoint(CHECKPOINT_DIR / f"{family}.pt")["meta"]["train_config"]
    if family == "gan":  # shipped after more epochs than the default (its README says so)
        keys = keys[1:]
    assert {k: shipped[k] for k in keys} == {k: asdict(recipe)[k] for k in keys}


@pytest.mark.parametrize("family", ["vae", "glow"])
def test_cli_model_flags_default_to_the_model_config(family):
    from fel.flow import GlowConfig
    from fel.vae import VAEConfig

    args = build_parser().parse_args(["train", family, "--out", "x"])
    config = {"vae": VAEConfig(), "glow": GlowConfig()}[family]
    flags = {
        "vae": ("size", "latent", "width", "beta"),
        "glow": ("size", "levels", "steps", "hidden"),
    }
    assert all(getattr(args, f) == getattr(config, f) for f in flags[family])
