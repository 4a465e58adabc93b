"""Benchmarks behind ``python -m fel bench``: they measure and print tables; they assert nothing."""

from __future__ import annotations

import io
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Print (and return) a Markdown table, ready to paste into the README."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    text = "\n".join(
        [f"\n{title}\n", line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        + [line(r) for r in cells[1:]]
    )
    print(text)
    return text


def machine() -> str:
    import torch

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"


def bench_data(
    root: Path | None = None,
    n: int = 3000,
    size: int = 64,
    workers: int | None = None,
    repeats: int = 3,
) -> str:
    """Time the reader against torchvision's standard pipeline on the same files, in one run.

    The standard pipeline is a ``DataLoader`` (batches of 64, as many worker processes as fel's
    first pass uses) over PIL decoding, ``CenterCrop(148)``, ``Resize(size, antialias=True)`` and
    ``ToTensor``. fel's first pass is ``CelebA(...)`` with no cache yet (list files, decoding,
    cache writing); its cached reads are a shuffled epoch through a ``DataLoader`` as
    ``fel.training`` reads it, after one untimed epoch (a training run's later epochs). Every
    image is read once beforehand, so the files are in the page cache for both pipelines. Each
    stage runs ``repeats`` times, interleaved; the table shows medians.
    """
    import shutil
    import statistics

    import torch
    import torchvision.transforms as T
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset

    from fel.data import CelebA
    from fel.data.celeba import _read_bytes
    from fel.data.synthfaces import write_synthfaces
    from fel.processes import default_workers

    workers = workers or default_workers()

    class Standard(Dataset):
        """torchvision's usual CelebA preprocessing, one PIL image at a time."""

        def __init__(self, ds: CelebA):
            self.layout, self.filenames, self.labels = ds.layout, ds.filenames, ds.labels
            self.transform = T.Compose(
                [T.CenterCrop(148), T.Resize(size, antialias=True), T.ToTensor()]
            )

        def __len__(self) -> int:
            return len(self.filenames)

        def __getitem__(self, i: int):
            image = Image.open(io.BytesIO(_read_bytes(self.layout, self.filenames[i])))
            return self.transform(image.convert("RGB")), self.labels[i]

    def epoch(batches) -> None:
        for _ in batches:
            pass

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if root is None:
            t = time.perf_counter()
            root = write_synthfaces(
                tmp / "synthfaces", n=n, seed=0, workers=workers, progress=False
            )
            dt = time.perf_counter() - t
            rows.append(["SynthFaces: render + write 178x218 JPEGs", n, f"{n / dt:,.0f}", "-"])
        listed = CelebA(root, split="all", size=size, cache=False)
        for name in listed.filenames:
            _read_bytes(listed.layout, name)  # into the page cache, for both pipelines alike
        n = len(listed)
        standard = Standard(listed)

        def one_round(cache: Path) -> dict[str, float]:
            """Images per second of every stage, each run once."""
            rates = {}

            def timed(stage: str, fn):
                t = time.perf_counter()
                out = fn()
                rates[stage] = n / (time.perf_counter() - t)
                return out

            timed("base", lambda: epoch(DataLoader(standard, batch_size=64, num_workers=workers)))
            quiet = {"cache": cache, "progress": False}
            timed("first", lambda: CelebA(root, "all", size, workers=workers, **quiet))
            ds = timed("reopen", lambda: CelebA(root, "all", size, **quiet))
            loader = DataLoader(ds, batch_size=64, shuffle=True, generator=torch.Generator())
            epoch(loader)  # untimed: maps the cache's pages in, as a training run's first epoch
            timed("cached", lambda: epoch(loader))
            timed("item", lambda: epoch(ds[i] for i in range(n)))
            timed("bulk", lambda: np.array(ds.images))
            shutil.rmtree(cache)
            return rates

        rounds = [one_round(tmp / f"cache-{r}") for r in range(repeats)]
        med = {stage: statistics.median(r[stage] for r in rounds) for stage in rounds[0]}

    def row(stage: str, key: str) -> list[object]:
        return [stage, n, f"{med[key]:,.0f}", f"{med[key] / med['base']:.2f}"]

    gib = 3 * size * size * med["bulk"] / 2**30
    rows += [
        row(f"torchvision pipeline: DataLoader, {workers} workers, PIL + crop + resize", "base"),
        row(f"fel first pass ({workers} processes: list files, decode, write cache)", "first"),
        row("fel reopen (list files, cache key, memmap)", "reopen"),
        row("fel cached: shuffled DataLoader batches of 64, as fel.training reads", "cached"),
        row("fel cached: ds[i] one at a time (float tensor + labels)", "item"),
        row(f"fel cached: bulk read of ds.images ({gib:.1f} GiB/s)", "bulk"),
    ]
    table = print_table(
        f"python -m fel bench data --size {size}, median of {repeats}  ({machine()})",
        ["stage", "images", "images/s", "x torchvision"],
        rows,
    )
    summary = print_table(
        "against the torchvision pipeline, same files, same run",
        ["", "ratio", "goal"],
        [
            ["first pass", f"{med['first'] / med['base']:.2f}x", ">= 2.5x"],
            ["cached reads", f"{med['cached'] / med['base']:.1f}x", ">= 20x"],
        ],
    )
    return table + "\n" + summary


def bench_train(root: Path | None = None, steps: int = 20, batch_size: int = 64) -> str:
    """Training throughput (images/s) of the default recipes, through the real loop and data.

    Times ``steps + 3`` and ``3`` steps of ``fel.training.train`` and divides the difference, so
    start-up (data cache, model build, first-step allocation) is not counted.
    """
    import torch

    import fel
    from fel.classifier import AttributeClassifier, make_loss
    from fel.data import CelebA
    from fel.data.synthfaces import default_root
    from fel.flow import Glow, GlowConfig
    from fel.flow.recipe import loss_fn as glow_loss
    from fel.interface_gan import GAN, GANConfig
    from fel.interface_gan.recipe import loss_fn as gan_loss
    from fel.training import Distributed, TrainConfig, train
    from fel.vae import VAE, VAEConfig
    from fel.vae.recipe import loss_fn as vae_loss

    root = root or default_root()
    d = Distributed(0, 1, fel.device())
    # name: (model, loss, image size, autocast on CUDA), each as its CLI recipe trains it
    recipes = {
        "VAE (width 16, latent 128)": (lambda: VAE(VAEConfig()), vae_loss, 64, True),
        "attribute classifier (width 16)": (
            lambda: AttributeClassifier(),
            make_loss(torch.ones(40)),
            64,
            True,
        ),
        "Glow (L 4, K 8, hidden 64)": (lambda: Glow(GlowConfig()), glow_loss, 64, False),
        "GAN (G 128..16, D 128..8 channels)": (lambda: GAN(GANConfig()), gan_loss, 64, False),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (build, loss, size, amp) in recipes.items():
            faces = CelebA(root, split="valid", size=size, progress=False)
            cfg = TrainConfig(epochs=100, batch_size=batch_size, warmup_steps=1, amp=amp)
            train(
                build(), loss, faces, cfg, Path(tmp) / f"warm-{len(rows)}", {}, dist_=d, max_steps=2
            )
            times = []  # after an untimed run that pays first-use costs (threads, CUDA context)
            for n in (3, steps + 3):
                t = time.perf_counter()
                train(
                    build(),
                    loss,
                    faces,
                    cfg,
                    Path(tmp) / f"{len(rows)}-{n}",
                    {},
                    dist_=d,
                    max_steps=n,
                )
                times.append(time.perf_counter() - t)
            per_step = (times[1] - times[0]) / steps
            rows.append(
                [name, size, batch_size, f"{per_step * 1000:.0f}", f"{batch_size / per_step:,.0f}"]
            )
    return print_table(
        f"python -m fel bench train --steps {steps} --batch-size {batch_size}  ({machine()}, device {d.device})",
        ["recipe", "size", "batch", "ms/step", "images/s"],
        rows,
    )


def bench_edit(repeats: int = 200, published: bool = True) -> str:
    """Slider move -> new PNG bytes in ``LatentEditor``, per shipped model and device: median, p95.

    Each repeat sets a slider to a new value, which decodes the edited code and encodes the PNG
    exactly as in a notebook (without the browser round trip). Then the encode/decode latency
    table and, with ``published``, the cost of a 1024 px StyleGAN2 (:func:`bench_published`).
    """
    import numpy as np
    import torch

    import fel
    from fel.flow import load_pretrained as load_glow
    from fel.flow.recipe import CHECKPOINT as GLOW
    from fel.interface_gan import load_pretrained as load_gan
    from fel.interface_gan.recipe import CHECKPOINT as GAN
    from fel.vae import load_pretrained as load_vae
    from fel.vae.recipe import CHECKPOINT as VAE
    from fel.widgets import LatentEditor

    devices = [torch.device("cpu")] + ([fel.device()] if fel.device().type != "cpu" else [])
    shipped = {"VAE 64x64": (load_vae, VAE), "Glow 64x64": (load_glow, GLOW),
               "GAN 64x64": (load_gan, GAN)}  # fmt: skip
    loaders = {}
    for name, (load, checkpoint) in shipped.items():
        if (fel.CHECKPOINT_DIR / checkpoint).is_file():
            loaders[name] = load
        else:
            print(f"{name}: skipped, no {fel.CHECKPOINT_DIR / checkpoint} yet")
    rows = []
    for name, load in loaders.items():
        for device in devices:
            model = load(device)
            g = torch.Generator().manual_seed(0)
            z = model.sample_latent(1, generator=g)
            direction = torch.randn(z.shape[1], generator=g)
            editor = LatentEditor(model, z, {"edit": direction}, device=device)
            slider = editor.sliders["edit"]
            values = np.linspace(slider.min, slider.max, repeats)
            times = []
            for v in values:
                start = time.perf_counter()
                slider.value = float(v)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(1000 * (time.perf_counter() - start))
            times = np.array(times[5:])  # the first few warm caches up
            rows.append(
                [
                    name,
                    device.type,
                    len(times),
                    f"{np.median(times):.1f}",
                    f"{np.percentile(times, 95):.1f}",
                ]
            )
    text = print_table(
        f"python -m fel bench edit --repeats {repeats}  ({machine()}, {torch.get_num_threads()} threads)",
        ["model", "device", "moves", "median ms", "p95 ms"],
        rows,
    )
    text += "\n" + bench_codec(loaders, devices)
    if published:
        text += "\n" + bench_published()
    return text


def bench_boundaries(n: int = 20_000, target_seconds: float = 180.0) -> str:
    """The whole ``python -m fel boundaries`` pipeline on the shipped GAN and classifier (all 7
    attributes, Z and W, written to a temporary folder), timed per stage against the target."""
    import tempfile

    import torch

    import fel
    from fel.classifier import load_pretrained as load_classifier
    from fel.interface_gan import find_boundaries
    from fel.interface_gan import load_pretrained as load_gan

    device = fel.device()
    generator, predictor = load_gan(device), load_classifier(device)
    with tempfile.TemporaryDirectory() as out:
        report = find_boundaries(generator, predictor, out, n=n)
    seconds = report["seconds"]
    total = sum(seconds.values())
    fits = 2 * len(report["attributes"])
    return print_table(
        f"python -m fel bench boundaries --n {n}  ({machine()}, {device.type}, "
        f"{torch.get_num_threads()} threads)",
        ["stage", "items", "seconds"],
        [
            ["sample, synthesise (psi 0.7), score", f"{n:,} faces", f"{seconds['sample_and_score']:.1f}"],
            ["fit SVM boundaries", f"{fits} (7 attributes x Z, W)", f"{seconds['fit']:.1f}"],
            [f"total (target <= {target_seconds:.0f} s)", "", f"{total:.1f}"],
        ],
    )  # fmt: skip


#: (degrees, scale) of the real photographs' transforms in ``bench faces`` and its tests.
PHOTO_TRANSFORMS = ((0, 1.0), (10, 1.0), (-10, 1.0), (20, 1.0), (-20, 1.0), (30, 1.0),
                    (-30, 1.0), (0, 0.5), (0, 2.0))  # fmt: skip


def bench_faces(upsample: int = 4, lfw_angles: Sequence[float] = (0, 20)) -> str:
    """Face alignment on real photographs: each sample photo (:mod:`fel.sample_photos`) turned
    and scaled, scored against its hand-marked eyes; then the LFW subset's detection rate
    (faces found, and with their eyes) and false alarms on its background crops."""
    import warnings

    import cv2

    from fel import faces
    from fel.sample_photos import MARKED_EYES, alignment_error, lfw_faces, sample_photo, transformed

    rows = []
    for name in MARKED_EYES:
        photo, eyes = sample_photo(name)
        for angle, scale in PHOTO_TRANSFORMS:
            image, true = transformed(photo, eyes, angle, scale)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", faces.AlignmentWarning)
                try:
                    face = faces.find_face(image)
                except faces.FaceNotFound:
                    face = None
            seconds = time.perf_counter() - start
            if face is None:
                rows.append(
                    [name, f"{angle:+d}°", f"{scale:g}x", "no face", "", "", f"{seconds:.2f}"]
                )
                continue
            tilt, offset = alignment_error((face.left_eye, face.right_eye), true)
            rows.append([name, f"{angle:+d}°", f"{scale:g}x", "yes" if face.eyes_detected else "no",
                         f"{tilt:+.2f}°", f"{offset:.2f}", f"{seconds:.2f}"])  # fmt: skip
    photos = print_table(
        f"python -m fel bench faces: real photographs turned and scaled ({machine()}); "
        "tilt: the true eye line after alignment (0 is level); offset: the farther true eye "
        "from CelebA's position, in aligned pixels",
        ["photo", "turned", "scaled", "eyes found", "tilt", "offset (px)", "seconds"],
        rows,
    )
    lfw_rows = []
    for label, crops in zip(("faces", "backgrounds"), lfw_faces()):
        for angle in lfw_angles if label == "faces" else (0,):
            found = with_eyes = 0
            for crop in crops:
                grey = cv2.resize(crop, None, fx=upsample, fy=upsample,
                                  interpolation=cv2.INTER_CUBIC)  # fmt: skip
                image, _ = transformed(np.repeat(grey[..., None], 3, -1), ((0, 0), (1, 0)), angle)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", faces.AlignmentWarning)
                    try:
                        face = faces.find_face(image)
                    except faces.FaceNotFound:
                        continue
                found, with_eyes = found + 1, with_eyes + face.eyes_detected
            lfw_rows.append([f"{len(crops)} LFW {label}", f"{angle:+g}°",
                             f"{found / len(crops):.0%}", f"{with_eyes / len(crops):.0%}"])  # fmt: skip
    lfw = print_table(
        f"LFW subset (scikit-image), 25x25 grey crops enlarged {upsample}x (bicubic)",
        ["crops", "turned", "a face found", "with both eyes"],
        lfw_rows,
    )
    return photos + "\n" + lfw


GOAL_FD = 15.8  # the test FD of the generator shipped before the rare modes were chased: beat it
GOAL_RATIO = 0.5  # each attribute drawn at least this share of its rate in the data


def bench_coverage(checkpoints: Sequence[Path] = (), root: Path | None = None,
                   n: int = 1000, raw: bool = False, why: bool = False, split: str = "test",
                   seed: int = 0, edits: bool = False) -> str:  # fmt: skip
    """What the GAN draws against what the data has (goal: each attribute at >= 0.5x its rate
    in the data), and its Fréchet distance, for the shipped generator and each of
    ``checkpoints`` (exported files or runs' ``last.pt``): :func:`fel.interface_gan.recipe.coverage`
    and ``evaluate`` over ``n`` faces at psi 1 (codes drawn with ``seed``) against ``split``,
    in the shipped predictor's eyes. The last column names the modes under half their rate,
    or the FD over the goal's. To choose among a run's copies honestly, choose on
    ``split="valid"`` with another ``seed`` and report the chosen one on the test split: the
    choice then favours neither the test faces nor the codes it is reported with. With
    ``raw``, each of ``checkpoints`` (a run's ``last.pt``, which holds both) gets a second row:
    the trained generator's own weights under their moving average,
    which is what ships. With ``why``, a second table asks each of ``checkpoints`` (runs'
    ``last.pt``) why (:func:`fel.interface_gan.recipe.why_dropped`): has D noticed the mode is
    missing, and can the generator draw it at all? With ``edits``, a table asks each generator
    whether InterfaceGAN can still edit it (goal 2 needs each expression at +0.5 within 4 sigma;
    a generator that draws every mode but keeps its expressions off any line in W meets goal 3
    and breaks the course): :func:`_edits_in_w`."""

    import fel
    from fel.checkpoints import resolve_checkpoint
    from fel.classifier import load_pretrained as load_classifier
    from fel.data import CelebA
    from fel.data.synthfaces import default_root
    from fel.interface_gan.recipe import (
        CHECKPOINT,
        COVERAGE_ATTRIBUTES,
        coverage,
        evaluate,
        load,
        load_run,
        why_dropped,
    )

    if split not in ("valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test', got {split!r}: the generator "
                         "learnt from the training split")  # fmt: skip
    root = Path(root) if root else default_root()
    device = fel.device()
    predictor = load_classifier(device)
    start, rows, real = time.perf_counter(), [], {}

    def real_faces(size: int):  # the split's memory-mapped cache, opened once per size
        if size not in real:
            real[size] = CelebA(root, split=split, size=size).images
        return real[size]

    rows_to_measure = [(resolve_checkpoint(CHECKPOINT), False)]
    for path in checkpoints:  # each raw row right under its average's
        rows_to_measure += [(path, False), (path, True)] if raw else [(path, False)]
    # every file is read before any is measured, so that a bad one stops the bench at once
    generators = [
        (path, is_raw, load(path, device, raw=is_raw)) for path, is_raw in rows_to_measure
    ]
    runs = [(path, load_run(path, device)) for path in checkpoints] if why else []
    for path, is_raw, generator in generators:
        faces = real_faces(generator.config.size)
        rates = coverage(generator, faces, predictor, n=n, seed=seed)
        fd = evaluate(generator, faces, predictor, n=n, seed=seed)["fd"]
        which = ", raw G" if is_raw else ""
        where = f"{_shown(path)}{which} (step {generator.meta.get('step', '?')})"
        short = [a for a, r in rates.items() if r["ratio"] < GOAL_RATIO]
        short += [f"FD >= {GOAL_FD}"] if fd >= GOAL_FD else []
        rows.append([where, f"{fd:.1f}"] + [
            f"{r['generated']:.3f} / {r['data']:.3f} ({r['ratio']:.2f}x)" for r in rates.values()
        ] + [", ".join(short) or "none: goal met"])  # fmt: skip
    text = print_table(
        f"python -m fel bench coverage  ({machine()}, {device.type}, {n} faces at psi 1 per "
        f"generator (seed {seed}) against {n} {split} faces, P > 0.5; "
        f"{time.perf_counter() - start:.0f} s)",
        ["generator", "FD", *(f"{a} (generated / data)" for a in COVERAGE_ATTRIBUTES),
         f"short of the goal (< {GOAL_RATIO}x, FD >= {GOAL_FD})"], rows,
    )  # fmt: skip
    if edits:
        text += "\n" + _edits_in_w(generators, predictor, seed)
    if not runs:
        return text
    start, rows, invert, steps = time.perf_counter(), [], 12, 300
    eyes = any(gan.eye_discriminator is not None for _, gan in runs)
    for path, gan in runs:
        found = why_dropped(
            gan, real_faces(gan.config.size), predictor, n=2 * n, invert=invert, steps=steps
        )
        rows.append([f"{_shown(path)} (step {gan.meta.get('step', '?')})"] + [
            f"{r['d_gap']:+.2f} / " + (f"{r['eye_gap']:+.2f} / " if eyes else "")
            + f"{r['drawable']:.2f}" for r in found.values()
        ])  # fmt: skip
    eye_part = ", and the same for the eye critic (eye gap)" if eyes else ""
    return text + "\n" + print_table(
        f"why: D's mean logit on {split} faces with the attribute minus without ({2 * n} faces; "
        f"> 0: D has noticed the mode is missing){eye_part} / share of {invert} faces with it "
        f"that the average generator can draw (W inversion, {steps} steps, still P > 0.5); "
        f"{time.perf_counter() - start:.0f} s",
        ["run", *(f"{a} (D gap / {'eye gap / ' if eyes else ''}drawable)"
                  for a in COVERAGE_ATTRIBUTES)], rows,
    )  # fmt: skip


#: ``bench coverage --edits``: samples behind each boundary, fresh faces per edit, steps (sigma).
EDIT_CODES, EDIT_FACES, EDIT_STEPS = 4096, 96, (1.0, 2.0, 4.0)


def _edits_in_w(generators, predictor, seed: int) -> str:
    """The table of ``bench coverage --edits``: for each (path, is_raw, generator), the mean rise
    of P(target) when up to :data:`EDIT_FACES` fresh faces lacking each expression (W samples,
    seed ``seed + 1``, P < 0.3 at psi 0.7) move 2 and 4 sigma along its InterfaceGAN boundary
    in W (:func:`fel.edit.gan_directions`, :data:`EDIT_CODES` samples), as ``bench edits``
    measures a shipped generator, and the expressions short of goal 2's +0.5 within 4 sigma."""
    import torch

    from fel.comparison import lacking, sweep_edit
    from fel.directions import spread
    from fel.edit import gan_directions

    start, rows = time.perf_counter(), []
    for path, is_raw, generator in generators:
        found = gan_directions(generator, EXPRESSIONS, predictor, EDIT_CODES, progress=False)
        model, codes = found.model, found.codes
        device = next(model.parameters()).device
        fresh = model.sample_latent(
            4 * EDIT_FACES, generator=torch.Generator().manual_seed(seed + 1)
        )
        with torch.no_grad():
            images = torch.cat([model.decode(c.to(device)).float().cpu() for c in fresh.split(128)])
        cells, short = [], []
        for target, direction in found.directions.items():
            chosen = lacking(predictor, images, target)[:EDIT_FACES]
            sweep = sweep_edit(model, predictor, fresh[chosen].cpu(), direction, target,
                               spread(codes, direction), steps=EDIT_STEPS)  # fmt: skip
            change = dict(zip(sweep.steps, sweep.change))
            cells.append(f"{change[2.0]:+.2f} / {change[4.0]:+.2f} ({len(chosen)})")
            short += [] if sweep.reach is not None else [target]
        which = ", raw G" if is_raw else ""
        rows.append([f"{_shown(path)}{which} (step {generator.meta.get('step', '?')})", *cells,
                     ", ".join(short) or "none"])  # fmt: skip
    return print_table(
        f"editable in W? mean rise of P(target) at 2 σ / 4 σ along InterfaceGAN's boundary "
        f"({EDIT_CODES} samples at psi 0.7), over (n) fresh faces lacking it (seed {seed + 1}); "
        f"{time.perf_counter() - start:.0f} s",
        ["generator", *EXPRESSIONS, "short of +0.5 within 4 σ (goal 2)"], rows,
    )  # fmt: skip


def _shown(path: Path | str) -> str:
    """``path`` relative to the working directory when it lies under it."""
    return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else str(path)


def _timed(fn, arg, device) -> float:
    """Milliseconds of one call ``fn(arg)``."""
    start = time.perf_counter()
    fn(arg)
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - start)


def bench_codec(loaders, devices, repeats: int = 20) -> str:
    """Median encode and decode latency of each model for batches of 1 and 64 faces.

    A call slower than a second (the GAN's encoder: a 300-step optimisation) is timed once.
    """
    import torch

    rows = []
    for name, load in loaders.items():
        for device in devices:
            model = load(device)
            for batch in (1, 64):
                z = model.sample_latent(batch, generator=torch.Generator().manual_seed(0))
                z = z.to(device)
                with torch.no_grad():
                    x = model.decode(z)
                    cells = []
                    for fn, arg in ((model.encode, x), (model.decode, z)):
                        times = [_timed(fn, arg, device)]  # warm-up, kept if slow
                        if times[0] < 1000:
                            times = [_timed(fn, arg, device) for _ in range(repeats)]
                        cells.append(f"{np.median(times):.1f}")
                rows.append([name, device.type, batch, *cells])
    return print_table(
        f"encode / decode latency, median of {repeats}  ({machine()})",
        ["model", "device", "batch", "encode ms", "decode ms"],
        rows,
    )


def _peak_rss_mib() -> float:
    """This process's peak resident memory so far, MiB (Linux and macOS report different units)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _peak_memory(device) -> str:
    """Peak memory so far: CUDA's peak allocation on a GPU, else the process's resident set."""
    import torch

    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} (CUDA)"
    return f"{_peak_rss_mib():.0f} (RSS)"


def bench_published(size: int = 1024, steps: int = 3, batch: int = 1) -> str:
    """A published-size StyleGAN2 (rosinality's layout, config-f channels, random weights: the
    cost does not depend on the values): one forward pass, and W and W+ inversion steps, on the
    CPU and on ``fel.device()``. Memory: the CPU's peak resident set of this process after
    each row (it only grows), and CUDA's peak allocation."""
    import torch

    import fel
    from fel.interface_gan.stylegan2 import StyleGAN2Generator

    devices = [torch.device("cpu")] + ([fel.device()] if fel.device().type != "cpu" else [])
    rows = []
    for device in devices:
        torch.manual_seed(0)
        model = StyleGAN2Generator(size).to(device).eval()
        z = model.sample_latent(batch, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            model.decode(z)  # warm-up
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            forward = _timed(model.decode, z, device)
            target = model.decode(z)

        rows.append(
            [f"forward, batch {batch}", device.type, f"{forward / 1000:.2f}", _peak_memory(device)]
        )
        for space in ("w", "wplus"):
            model.encode(target, space=space, steps=1, progress=False)  # warm-up
            start = time.perf_counter()
            model.encode(target, space=space, steps=steps, progress=False)
            if device.type == "cuda":
                torch.cuda.synchronize()
            per_step = (time.perf_counter() - start) / steps
            name = f"inversion into {'W' if space == 'w' else 'W+'}, per step"
            rows.append([name, device.type, f"{per_step:.2f}", _peak_memory(device)])
        del model
    return print_table(
        f"StyleGAN2 {size} px (config-f shapes, random weights; {steps} inversion steps timed)"
        f"  ({machine()}, {torch.get_num_threads()} threads)",
        ["what", "device", "seconds", "peak MiB"],
        rows,
    )


#: The expression edits ``bench edits`` measures, and the goal each must meet at 64 px.
EXPRESSIONS = ("Smiling", "Narrow_Eyes", "Mouth_Slightly_Open")


def _edit_setups(families: Sequence[str], root: Path, n_codes: int, n_fresh: int, device,
                 local_rank: int):  # fmt: skip
    """Per measured row: (name, model to decode, {attribute: (direction, sigma)}, candidate fresh
    codes, predictor).

    The directions are :func:`fel.edit.family_directions`' (mean difference of the codes of
    ``n_codes`` training faces for the VAE and Glow, balanced over :data:`fel.edit.CONFOUNDERS`;
    InterfaceGAN's SVC boundary in W from ``n_codes`` samples scored at psi 0.7 for the GAN, seed
    0). With ``local_rank``, the GAN has a second row, "GAN local": its boundaries kept out of the
    outside of the inner face (:meth:`fel.edit.FamilyDirections.local`, that rank, the Gram of
    32 of those samples). Fresh codes: encoded test faces; for the GAN, new W samples (seed 1),
    decoded at psi 0.7.
    """
    import torch

    from fel.classifier import load_pretrained as load_classifier
    from fel.codes import encode_all
    from fel.data import CelebA
    from fel.directions import spread
    from fel.edit import family_directions

    predictor = load_classifier(device)
    for family in families:
        found = family_directions(family, EXPRESSIONS, root, n_codes, device, predictor)
        model = found.model
        if family == "gan":
            fresh = model.sample_latent(4 * n_fresh, generator=torch.Generator().manual_seed(1))
        else:
            test = CelebA(root, split="test", size=model.config.size)
            fresh = encode_all(model, test.images[: 4 * n_fresh], batch_size=128)
        variants = [(family, found)]
        if family == "gan" and local_rank:
            variants.append(("gan local", found.local(local_rank, n_codes=32)))
        for name, chosen in variants:
            edits = {a: (d, spread(chosen.codes, d)) for a, d in chosen.directions.items()}
            yield name, model, edits, fresh.cpu(), predictor


def bench_edits(root: Path | None = None, families: Sequence[str] = ("vae", "glow", "gan"),
                n_fresh: int = 256, n_codes: int = 8192, pictures: Path | None = None,
                local_rank: int = 32) -> str:  # fmt: skip
    """The expression edits of the shipped models, each on its own direction, on fresh faces.

    Per family and edit (:data:`EXPRESSIONS`): ``n_fresh`` fresh faces whose predicted
    P(target) < 0.3 (:func:`fel.comparison.lacking`), swept along the direction from 0.25 to 6
    sigma of the codes (:func:`fel.comparison.sweep_edit`). The table gives the smallest step
    at which the mean P(target) rises by +0.5, and at that step the share of pixels outside the
    inner face changed by more than 0.1, the leakage, the dots the edit adds inside the inner face
    (:func:`fel.metrics.speckles`, after minus before: where an edit breaks up) and the identity
    cosine (the shipped identity embedding's, :mod:`fel.identity`, between each face before and
    after); then the last step before the outside share passes 5% or the dots 1% ("clean
    until", and which of the two ends it). The goal: +0.5 within 4 sigma at <= 5% outside,
    <= 0.05 leakage and <= 1% dots, with the identity cosine above the embedding's same-person
    threshold. With ``local_rank`` (0: none), the GAN is measured a second time on
    its local edits (the boundaries in the null space of the outside's top ``local_rank``
    latent directions, :mod:`fel.local_edits`).

    With ``pictures``, also writes ``{row}_expressions.png`` (``gan_local_expressions.png`` for
    the local row) there: four fresh faces lacking all
    three attributes (rows), unedited, then each edit twice: at the step it needed for +0.5 (4
    sigma when it never got there) and at the end of its slider (where it stops being clean, at
    most 4 sigma); at 2x.
    """
    import torch
    from PIL import Image

    import fel
    from fel.comparison import lacking, signed_percent, sweep_edit
    from fel.data.synthfaces import default_root
    from fel.identity import load_pretrained as load_identity
    from fel.viz import grid

    root = Path(root) if root else default_root()
    device = fel.device()
    identity = load_identity(device)
    start = time.perf_counter()
    rows, limits = [], []
    for family, model, edits, fresh, predictor in _edit_setups(
        families, root, n_codes, n_fresh, device, local_rank
    ):
        with torch.no_grad():
            images = torch.cat([model.decode(c.to(device)).float().cpu() for c in fresh.split(128)])
        size = images.shape[-1]
        label = {
            "vae": "VAE",
            "glow": "Glow",
            "gan": "GAN",
            "gan local": f"GAN local r{local_rank}",
        }[family]
        cells, clean, steps = [label, f"{size}"], [label, f"{size}"], {}
        for target, (direction, sigma) in edits.items():
            chosen = lacking(predictor, images, target)[:n_fresh]
            sweep = sweep_edit(model, predictor, fresh[chosen], direction, target, sigma,
                               identity=identity)  # fmt: skip
            print(f"{family} ({len(chosen)} faces): {sweep}")
            if sweep.reach is None:
                cells.append(f"never ({sweep.change[-1]:+.2f} at {sweep.steps[-1]:g} σ)")
            else:
                row = sweep.at(sweep.reach)
                kept = row["identity"] >= identity.threshold
                mark = "" if sweep.clean and sweep.reach <= 4 and kept else " ✗"
                cells.append(f"{sweep.reach:g} σ / {100 * row['outside']:.1f}% / "
                             f"{row['leakage']:.3f} / {signed_percent(row['artefacts'])} / "
                             f"{row['identity']:.2f}{mark}")  # fmt: skip
            ended = {"outside": " (outside)", "artefacts": " (dots)", None: ""}[sweep.stopped_by]
            clean.append(f"{sweep.clean_until:g} σ{ended}")
            d = sigma * direction / direction.norm()
            steps[target] = [(sweep.reach or 4.0) * d, min(sweep.clean_until, 4.0) * d]
        if pictures is not None:
            shown = fresh[lacking(predictor, images, EXPRESSIONS)[:4]]
            with torch.no_grad():
                columns = [model.decode(shown.to(device)).float().cpu()] + [
                    model.decode((shown + d.to(shown)).to(device)).float().cpu()
                    for pair in steps.values() for d in pair
                ]  # fmt: skip
            tiles = torch.stack(columns, 1).flatten(0, 1)  # row by row: face, then its edits
            tiles = torch.nn.functional.interpolate(tiles, scale_factor=2, mode="nearest")
            Path(pictures).mkdir(parents=True, exist_ok=True)
            Image.fromarray(grid(tiles, nrow=len(columns))).save(
                Path(pictures) / f"{family.replace(' ', '_')}_expressions.png"
            )
        rows.append(cells)
        limits.append(clean)
    headers = ["model", "size",
               *(f"{a} (step / outside / leak / dots / identity)" for a in EXPRESSIONS)]  # fmt: skip
    text = print_table(
        f"python -m fel bench edits  ({machine()}, {device.type}, {torch.get_num_threads()} threads, "
        f"{n_fresh} fresh faces per edit, one person above identity cosine "
        f"{identity.threshold:.2f}, {time.perf_counter() - start:.0f} s)",
        headers, rows,
    )  # fmt: skip
    text += "\n" + print_table(
        "where each edit stops being clean: the last step before more than 5% of the pixels "
        "outside the inner face move (outside) or the edit adds dots to more than 1% inside (dots)",
        ["model", "size", *EXPRESSIONS], limits,
    )  # fmt: skip
    return text
