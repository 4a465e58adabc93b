"""``python -m fel edit`` on a real photograph (matplotlib's sample portrait of Grace Hopper,
taken from the installed wheel at test time), and every bad input it must refuse clearly.

The edits are judged by independent measures: the attribute predictor (an edit of +2 sigma
toward Smiling must raise its probability, -2 must lower it), the pixels (the written panels
are the aligned photo, the model's reconstruction and the edit, so the first two must match
what fel.faces and the model give on their own) and the GIF's frame count.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from fel.__main__ import main
from fel.edit import parse_edit, parse_sweep
from fel.faces import AlignmentWarning, align, to_model_input

PHOTO = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
FAST = ["--codes", "400", "--scale", "1"]  # directions from 400 faces; the model's own pixels
PANEL = 64 + 2  # a face and the 2 px gap of fel.viz.grid


@pytest.fixture(scope="module")
def photo():
    if not PHOTO.is_file():
        pytest.skip(f"matplotlib's sample photo is missing: {PHOTO}")
    return PHOTO


def _panels(path: Path) -> list[np.ndarray]:
    """The 64x64 faces of a picture written by ``fel edit`` (grid: 2 px gaps around each)."""
    img = np.asarray(Image.open(path).convert("RGB"))
    n = (img.shape[1] - 2) // PANEL
    return [img[2 : 2 + 64, 2 + k * PANEL : 2 + k * PANEL + 64] for k in range(n)]


def _smile(path: Path) -> float:
    from fel.classifier import load_pretrained

    predictor = load_pretrained("cpu")
    face = torch.from_numpy(_panels(path)[-1].copy()).permute(2, 0, 1)[None].float() / 255
    return float(predictor.predict(face)[0, predictor.attr_names.index("Smiling")])


def test_parse_edit_and_sweep():
    assert parse_edit("Smiling=+2") == ("Smiling", 2.0)
    assert parse_edit(" Narrow_Eyes = -1.5") == ("Narrow_Eyes", -1.5)
    name, values = parse_sweep("Smiling=-3:3:13")
    assert name == "Smiling" and values == pytest.approx(np.linspace(-3, 3, 13))
    for bad in ("Smiling", "Smiling=", "=2", "Smiling=two"):
        with pytest.raises(ValueError, match="ATTRIBUTE=SIGMA"):
            parse_edit(bad)
    for bad in ("Smiling=1:2", "Smiling=a:b:3", "Smiling=-3:3:2.5"):
        with pytest.raises(ValueError, match="START:STOP:FRAMES"):
            parse_sweep(bad)
    with pytest.raises(ValueError, match="at least 2 frames"):
        parse_sweep("Smiling=-3:3:1")


def test_vae_edit_of_a_real_photo_smiles_and_shows_its_steps(photo, tmp_path, capsys):
    out = {v: tmp_path / f"smile{v:+d}.png" for v in (-2, 2)}
    for v, path in out.items():
        args = ["edit", str(photo), "--model", "vae", "--edit", f"smiling={v:+d}", "--out",
                str(path), "--side-by-side", *FAST]  # fmt: skip
        assert main(args) == 0
    printed = capsys.readouterr()
    assert "warning:" not in printed.err  # the eyes are found: the alignment is no guess
    assert "Smiling +2.00 σ: P" in printed.out and "identity cosine" in printed.out
    photo_panel, recon, edited = _panels(out[2])
    with warnings.catch_warnings():
        warnings.simplefilter("error", AlignmentWarning)
        face = align(photo)
    aligned = to_model_input(face, 64)[0].permute(1, 2, 0).mul(255).add(0.5).byte()
    assert np.array_equal(photo_panel, aligned.numpy())
    assert np.array_equal(recon, _panels(out[-2])[1])  # the same reconstruction both times
    assert np.abs(edited.astype(int) - recon.astype(int)).mean() > 1.0
    assert _smile(out[2]) > 0.5 > _smile(out[-2])


def test_sweeps_write_a_gif_frame_per_value_and_a_strip(photo, tmp_path, capsys):
    gif, strip = tmp_path / "sweep.gif", tmp_path / "sweep.png"
    base = ["edit", str(photo), "--model", "glow", "--edit", "Narrow_Eyes=+0.5", *FAST]
    assert main([*base, "--sweep", "Smiling=-2:2:5", "--out", str(gif)]) == 0
    with Image.open(gif) as im:
        assert im.n_frames == 5 and im.size == (64, 64)  # one face: no gaps
    assert main([*base, "--sweep", "Smiling=-2:2:5", "--out", str(strip), "--side-by-side"]) == 0
    assert Image.open(strip).size == (2 + 7 * PANEL, PANEL + 2)  # photo, reconstruction, 5 faces
    lines = [line for line in capsys.readouterr().out.splitlines() if "Smiling" in line]
    assert len(lines) == 10 and all("Narrow_Eyes +0.50 σ" in line for line in lines)
    assert "Smiling +0.00 σ" in lines[2]


def test_gan_edit_inverts_the_photo(photo, tmp_path, capsys):
    out = tmp_path / "gan.png"
    assert main(["edit", str(photo), "--model", "gan", "--edit", "Smiling=+2", "--out", str(out),
                 "--steps", "20", *FAST]) == 0  # fmt: skip
    assert Image.open(out).size == (64, 64)
    assert "gan: wrote" in capsys.readouterr().out


def _error(capsys, *args) -> str:
    assert main(["edit", *map(str, args), *FAST]) == 2
    return capsys.readouterr().err


def test_bad_inputs_are_refused_with_what_to_do(photo, tmp_path, capsys):
    out = tmp_path / "out.png"
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (400, 400), (120, 140, 160)).save(blank)
    assert "no face found" in _error(capsys, blank, "--edit", "Smiling=1", "--out", out)
    assert "cannot read" in _error(capsys, text, "--edit", "Smiling=1", "--out", out)
    assert "No such file" in _error(capsys, tmp_path / "x.jpg", "--edit", "Smiling=1", "--out", out)
    err = _error(capsys, photo, "--edit", "Smilng=1", "--out", out)
    assert "unknown attribute 'Smilng'" in err and "'Smiling'" in err
    for model in ("glow", "gan"):  # checked before any model work
        assert "did you mean" in _error(capsys, photo, "--model", model, "--edit", "Smilng=1",
                                        "--out", out)  # fmt: skip
    assert "ATTRIBUTE=SIGMA" in _error(capsys, photo, "--edit", "Smiling", "--out", out)
    assert "nothing to do" in _error(capsys, photo, "--out", out)
    assert "local rank must be 0" in _error(capsys, photo, "--edit", "Smiling=1", "--local-rank",
                                            "-1", "--out", out)  # fmt: skip
    assert "must be in [1, 128)" in _error(capsys, photo, "--edit", "Smiling=1", "--local-rank",
                                           "128", "--out", out)  # fmt: skip
    assert "at most 1024" in _error(capsys, photo, "--model", "glow", "--edit", "Smiling=1",
                                    "--local-rank", "4", "--out", out)  # fmt: skip
    assert ".gif or .png" in _error(capsys, photo, "--sweep", "Smiling=-1:1:3", "--out",
                                    tmp_path / "s.mp4")  # fmt: skip
    assert ".png or .jpg" in _error(capsys, photo, "--edit", "Smiling=1", "--out",
                                    tmp_path / "e.gif")  # fmt: skip
    assert "does not exist" in _error(capsys, photo, "--edit", "Smiling=1", "--out",
                                      tmp_path / "missing" / "e.png")  # fmt: skip
    assert not out.exists()


def test_several_faces_are_refused_unless_largest_is_asked_for(photo, tmp_path, capsys):
    one = Image.open(photo).convert("RGB")
    two = Image.new("RGB", (one.width * 2 + 40, one.height), "white")
    two.paste(one, (0, 0))
    two.paste(one.resize((one.width * 3 // 4, one.height * 3 // 4)), (one.width + 40, 60))
    group = tmp_path / "group.jpg"
    two.save(group)
    out = tmp_path / "largest.png"
    err = _error(capsys, group, "--edit", "Smiling=1", "--out", out)
    assert "found 2 faces" in err and not out.exists()
    assert main(["edit", str(group), "--edit", "Smiling=1", "--out", str(out), "--largest",
                 *FAST]) == 0  # fmt: skip
    assert "aligning the largest" in capsys.readouterr().err and out.is_file()
