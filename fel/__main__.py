"""Command line: ``python -m fel data|bench|train|boundaries|edit|info ...`` (also installed as ``fel``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import fel


def _data_synth(args: argparse.Namespace) -> None:
    from fel.data.synthfaces import SynthConfig, write_synthfaces

    config = SynthConfig(label_noise=args.label_noise)
    out = write_synthfaces(args.out, args.n, args.seed, args.workers, config, force=args.force)
    print(f"SynthFaces: {args.n} images (seed {args.seed}) in {out}")


def _data_info(args: argparse.Namespace) -> None:
    from fel.data import CelebA

    ds = CelebA(args.root, split="all", size=16, cache=False)
    layout = ds.layout
    print(f"root:        {args.root}")
    print(f"attributes:  {layout.attr_file}")
    print(f"partition:   {layout.partition_file or 'none (seeded 80/10/10 split)'}")
    print(f"images:      {layout.images}{' (zip, read in place)' if layout.zipped else ''}")
    print(f"images listed: {len(ds)}")
    for split in ("train", "valid", "test"):
        print(f"  {split:6s} {len(CelebA(args.root, split=split, size=16, cache=False))}")
    print("attribute frequencies (%):")
    freq = ds.labels.float().mean(0) * 100
    for name, p in sorted(zip(ds.attr_names, freq.tolist()), key=lambda t: -t[1]):
        print(f"  {name:22s} {p:5.1f}")


def _data_sheet(args: argparse.Namespace) -> None:
    import torch
    from PIL import Image

    from fel.data import CelebA
    from fel.viz import grid

    ds = CelebA(args.root, split=args.split, size=args.size, cache=False)
    rows, cols = args.rows, args.cols
    take = list(range(0, len(ds), max(1, len(ds) // (rows * cols))))[: rows * cols]
    images = [ds[i][0] for i in take]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid(torch.stack(images), nrow=cols)).save(args.out)
    print(f"contact sheet of {len(images)} {args.split} faces: {args.out}")


def _bench_data(args: argparse.Namespace) -> None:
    from fel.bench import bench_data

    bench_data(root=args.root, n=args.n, size=args.size, workers=args.workers, repeats=args.repeats)


def _dataset_root(args: argparse.Namespace) -> Path:
    if args.root is not None:
        return args.root
    if args.data == "celeba":
        env = os.environ.get("FEL_CELEBA_ROOT")
        if not env:
            raise ValueError("--data celeba needs --root /path/to/celeba (or FEL_CELEBA_ROOT)")
        return Path(env)
    from fel.data.synthfaces import write_synthfaces

    return write_synthfaces(
        fel.DATA_DIR / "synthfaces"
    )  # not $FEL_CELEBA_ROOT: --data says SynthFaces


def _train_config(args: argparse.Namespace):
    from fel.training import TrainConfig

    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       warmup_steps=args.warmup, num_workers=args.workers, seed=args.seed)  # fmt: skip


def _finish_training(
    args: argparse.Namespace, result: dict, summary: Callable[[dict], str]
) -> None:
    """Record the command in the checkpoint's metadata; on rank 0 (the only process that scores
    the test split), print ``summary(test scores)`` and export."""
    from fel.checkpoints import export_checkpoint

    result["meta"]["command"] = args.command_line
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 reports and exports
        return
    print(summary(result["meta"]["test"]))
    if args.export:
        print(f"exported {export_checkpoint(result, args.export)}")


def _train_classifier(args: argparse.Namespace) -> None:
    from fel.classifier import train_classifier

    root = _dataset_root(args)
    result = train_classifier(root, args.out, _train_config(args), size=args.size, width=args.width,
                              with_factors=args.data == "synthfaces", resume=args.resume,
                              max_steps=args.max_steps, dataset_name=args.data)  # fmt: skip
    _finish_training(args, result, lambda test: f"test: mean AUC {test['mean_auc']:.4f}, mean "
                     f"accuracy {test['mean_accuracy']:.4f} over {len(test['attributes'])} attributes")  # fmt: skip


def _train_identity(args: argparse.Namespace) -> None:
    from fel.identity import IdentityConfig, train_identity

    root = _dataset_root(args)
    config = IdentityConfig(size=args.size, width=args.width, dim=args.dim)
    result = train_identity(root, args.out, _train_config(args), config, resume=args.resume,
                            max_steps=args.max_steps, dataset_name=args.data)  # fmt: skip
    _finish_training(args, result, lambda t: f"test (held-out people): verification ROC AUC {t['auc']:.4f}, "
                     f"equal error rate {t['eer']:.3f} at cosine {t['threshold']:.3f}; mean cosine "
                     f"{t['same_mean']:.3f} for one person, {t['different_mean']:.3f} for two "
                     f"({t['pairs']:,} pairs of {t['faces']:,} faces)")  # fmt: skip


def _train_vae(args: argparse.Namespace) -> None:
    from fel.vae import VAEConfig, train_vae

    root = _dataset_root(args)
    config = VAEConfig(size=args.size, latent=args.latent, width=args.width, beta=args.beta)
    result = train_vae(root, args.out, _train_config(args), config, resume=args.resume,
                       max_steps=args.max_steps, dataset_name=args.data)  # fmt: skip
    _finish_training(args, result, lambda test: f"test: ELBO {test['elbo']:.1f} nats/image, {test['bits_per_dim']:.3f} "
                     f"bits/dim (reconstruction {test['reconstruction']:.1f}, KL {test['kl']:.1f})")  # fmt: skip


def _train_glow(args: argparse.Namespace) -> None:
    from fel.flow import GlowConfig, train_glow

    root = _dataset_root(args)
    config = GlowConfig(size=args.size, levels=args.levels, steps=args.steps, hidden=args.hidden,
                        lu=not args.plain_conv, n_bits=args.n_bits, min_scale=args.min_scale)  # fmt: skip
    result = train_glow(root, args.out, _train_config(args), config, resume=args.resume,
                        max_steps=args.max_steps, dataset_name=args.data)  # fmt: skip
    _finish_training(args, result, lambda test: f"test: {test['bits_per_dim']:.3f} bits/dim")


def _train_course(args: argparse.Namespace) -> None:
    from fel.course import train_course

    root = _dataset_root(args)
    report = train_course(root, args.out, size=args.size, quick=args.quick, dataset_name=args.data,
                          seed=args.seed, workers=args.workers, command=args.command_line)  # fmt: skip
    if os.environ.get("RANK", "0") == "0":
        seconds = sum(e["seconds"] for e in report["stages"].values())
        print(
            f"course checkpoints in {args.out} ({seconds / 60:.1f} min); use them with "
            f"FEL_CELEBA_ROOT={root} FEL_CHECKPOINTS={args.out}"
        )


def _ints(text: str) -> tuple[int, ...]:
    """``"128,64,32"`` -> (128, 64, 32)."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _attribute_count(text: str) -> tuple[str, int]:
    """``--oversample``'s ATTR=K."""
    name, _, count = text.partition("=")
    if not name or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"expected ATTR=K with a whole K >= 1, got {text!r}")
    return name, int(count)


def _train_gan(args: argparse.Namespace) -> None:
    from fel.interface_gan import GANConfig, train_gan

    root = _dataset_root(args)
    options = ("z_dim", "w_dim", "mapping_layers", "mapping_lr_mul", "g_channels", "d_channels",
               "r1_gamma", "r1_every", "ema_decay", "augment", "imle_weight",
               "imle_pool", "imle_every", "imle_focus", "eye_weight", "eye_channels", "match_weight")  # fmt: skip
    given = {k: getattr(args, k) for k in options if getattr(args, k) is not None}
    config = GANConfig(size=args.size, **given)
    classifier = None
    if args.classifier:
        from fel.classifier import load as load_classifier

        classifier = load_classifier(args.classifier, "cpu")
    result = train_gan(root, args.out, _train_config(args), config, resume=args.resume,
                       max_steps=args.max_steps, dataset_name=args.data,
                       classifier=classifier, init=args.init,
                       oversample=dict(args.oversample or []))  # fmt: skip
    _finish_training(args, result, lambda test: (
        f"test: Fréchet distance {test['fd']:.4g} in the classifier's feature space over "
        f"{test['n']} faces (real vs real: {test['fd_real']:.4g})"
    ))  # fmt: skip


#: ``boundaries --generator``: each format's scoring batch (4 faces at 1024 px).
GENERATORS = {"gan": 500, "stylegan": 4, "stylegan2": 4}


def _boundaries(args: argparse.Namespace) -> None:
    from fel.classifier import load as load_classifier
    from fel.classifier import load_pretrained as pretrained_classifier
    from fel.interface_gan import (
        find_boundaries,
        load,
        load_pretrained,
        load_stylegan,
        load_stylegan2,
    )
    from fel.interface_gan.boundaries import ATTRIBUTES

    device = fel.device()
    loaders = {"gan": load, "stylegan": load_stylegan, "stylegan2": load_stylegan2}
    if args.checkpoint:
        generator = loaders[args.generator](args.checkpoint, device)
    elif args.generator == "gan":
        generator = load_pretrained(device)
    else:
        raise ValueError(f"--generator {args.generator} needs --checkpoint FILE (fel ships none)")
    if args.classifier:
        predictor = load_classifier(args.classifier, device)
    else:
        predictor = pretrained_classifier(device)
    source = str(args.checkpoint or "shipped (data/checkpoints/gan.pt)")
    if args.generator != "gan":
        source = f"{args.generator}: {source}"
    args.batch_size = args.batch_size or GENERATORS[args.generator]
    args.out = args.out or fel.DATA_DIR / "boundaries" / args.generator
    report = find_boundaries(generator, predictor, args.out, args.attributes or ATTRIBUTES,
                             n=args.n, psi=args.truncation, chosen_ratio=args.chosen_ratio,
                             seed=args.seed, batch_size=args.batch_size, source=source)  # fmt: skip
    print(f"{'attribute':22s} {'space':5s} {'val acc':>8s} {'remaining acc':>14s}")
    for name, entry in report["attributes"].items():
        for space in ("z", "w"):
            val, rest = entry[space]["val_accuracy"], entry[space]["remaining_accuracy"]
            rest = "-" if rest is None else f"{rest:.3f}"  # None: chosen_ratio 0.5 leaves none
            print(f"{name:22s} {space:5s} {val:8.3f} {rest:>14s}")
    seconds = report["seconds"]
    print(f"sampled, synthesised and scored {args.n} faces in {seconds['sample_and_score']:.1f} s; "
          f"fitted {2 * len(report['attributes'])} boundaries in {seconds['fit']:.1f} s")  # fmt: skip
    print(f"boundaries and report.json in {args.out}")


def _add_training_args(
    p: argparse.ArgumentParser,
    epochs: int,
    batch: int,
    lr: float,
    size: int = 64,
    warmup: int = 100,
) -> None:
    p.add_argument(
        "--data",
        choices=["synthfaces", "celeba"],
        default="synthfaces",
        help="dataset kind (default: %(default)s)",
    )
    p.add_argument(
        "--root",
        type=Path,
        default=None,
        help="dataset folder (default: data/synthfaces, or $FEL_CELEBA_ROOT for celeba)",
    )
    p.add_argument("--size", type=int, default=size, help="image size (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=epochs, help="epochs (default: %(default)s)")
    p.add_argument(
        "--batch-size", type=int, default=batch, help="global batch size (default: %(default)s)"
    )
    p.add_argument("--lr", type=float, default=lr, help="peak learning rate (default: %(default)s)")
    p.add_argument(
        "--warmup", type=int, default=warmup, help="warm-up steps (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument(
        "--workers", type=int, default=0, help="DataLoader workers (default: %(default)s)"
    )
    p.add_argument("--out", type=Path, required=True, help="run folder for last.pt and logs")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (demos)")
    p.add_argument(
        "--export", type=Path, default=None, help="also write a small fp16 checkpoint here"
    )


def _bench_train(args: argparse.Namespace) -> None:
    from fel.bench import bench_train

    bench_train(root=args.root, steps=args.steps, batch_size=args.batch_size)


def _bench_boundaries(args: argparse.Namespace) -> None:
    from fel.bench import bench_boundaries

    bench_boundaries(n=args.n)


def _bench_edits(args: argparse.Namespace) -> None:
    from fel.bench import bench_edits

    bench_edits(root=args.root, families=args.models, n_fresh=args.n, n_codes=args.codes,
                pictures=args.pictures, local_rank=args.local_rank)  # fmt: skip


def _bench_coverage(args: argparse.Namespace) -> None:
    from fel.bench import bench_coverage

    bench_coverage(args.checkpoints, root=args.root, n=args.n, raw=args.raw, why=args.why,
                   split=args.split, seed=args.seed, edits=args.edits)  # fmt: skip


def _bench_faces(args: argparse.Namespace) -> None:
    from fel.bench import bench_faces

    bench_faces(upsample=args.upsample)


def _bench_edit(args: argparse.Namespace) -> None:
    from fel.bench import bench_edit

    bench_edit(repeats=args.repeats, published=not args.no_published)


def _edit(args: argparse.Namespace) -> None:
    import warnings

    from fel.edit import edit_photo
    from fel.faces import AlignmentWarning, SeveralFaces

    with warnings.catch_warnings(record=True) as caught:  # alignment guesses, as one line each
        warnings.simplefilter("always", AlignmentWarning)
        try:
            lines = edit_photo(args.photo, args.model, args.out, edits=args.edit, sweep=args.sweep,
                               side_by_side=args.side_by_side,
                               pick="largest" if args.largest else "only", n_codes=args.codes,
                               gan_steps=args.steps, scale=args.scale, fps=args.fps,
                               local_rank=args.local_rank)  # fmt: skip
        except SeveralFaces as err:
            raise SeveralFaces(f"{err} (on the command line: --largest)") from None
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    print("\n".join(lines))


def _info(args: argparse.Namespace) -> None:
    from fel.environment import environment_report

    for key, value in environment_report().items():
        print(f"{key:14s} {value}")


def _add_root(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root",
        type=Path,
        default=fel.DATA_DIR / "synthfaces",
        help="dataset folder (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    from fel.interface_gan.recipe import TRAINING as GAN_TRAINING

    parser = argparse.ArgumentParser(prog="python -m fel", description=fel.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fel {fel.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="make or inspect a CelebA-layout dataset")
    data_cmds = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    synth = data_cmds.add_parser(
        "synth", help="render SynthFaces, the offline CelebA-layout dataset"
    )
    synth.add_argument(
        "--out",
        type=Path,
        default=fel.DATA_DIR / "synthfaces",
        help="output folder (default: %(default)s)",
    )
    synth.add_argument(
        "--n", type=int, default=30000, help="number of images (default: %(default)s)"
    )
    synth.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    synth.add_argument(
        "--workers", type=int, default=None, help="processes (default: CPU count, at most 8)"
    )
    synth.add_argument(
        "--label-noise",
        type=float,
        default=0.01,
        help="share of each attribute's positives mislabelled, with as many negatives (default: %(default)s)",
    )
    synth.add_argument("--force", action="store_true", help="replace an existing, different set")
    synth.set_defaults(run=_data_synth)
    info = data_cmds.add_parser(
        "info", help="summarise a CelebA-layout folder: layout, splits, attributes"
    )
    _add_root(info)
    info.set_defaults(run=_data_info)
    sheet = data_cmds.add_parser(
        "sheet", help="save a contact sheet (PNG grid) of a dataset's faces"
    )
    _add_root(sheet)
    sheet.add_argument(
        "--out",
        type=Path,
        default=Path("synthfaces.png"),
        help="PNG to write (default: %(default)s)",
    )
    sheet.add_argument(
        "--split",
        default="test",
        choices=["train", "valid", "test", "all"],
        help="split to sample (default: %(default)s)",
    )
    sheet.add_argument(
        "--size", type=int, default=96, help="face size in pixels (default: %(default)s)"
    )
    sheet.add_argument("--rows", type=int, default=6, help="rows (default: %(default)s)")
    sheet.add_argument("--cols", type=int, default=10, help="columns (default: %(default)s)")
    sheet.set_defaults(run=_data_sheet)

    bench = commands.add_parser("bench", help="benchmarks that print tables")
    bench_cmds = bench.add_subparsers(dest="bench_command", required=True, metavar="WHAT")
    bdata = bench_cmds.add_parser(
        "data", help="the reader (first pass, cached reads) against torchvision's pipeline"
    )
    bdata.add_argument(
        "--root",
        type=Path,
        default=None,
        help="an existing CelebA-layout folder to read (default: write a fresh SynthFaces set in a temporary folder)",
    )
    bdata.add_argument(
        "--n", type=int, default=3000, help="images to write and read (default: %(default)s)"
    )
    bdata.add_argument("--size", type=int, default=64, help="image size (default: %(default)s)")
    bdata.add_argument(
        "--workers", type=int, default=None, help="processes (default: CPU count, at most 8)"
    )
    bdata.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="rounds; the table shows medians (default: %(default)s)",
    )
    bdata.set_defaults(run=_bench_data)
    btrain = bench_cmds.add_parser(
        "train", help="training images/s of the default recipes (VAE, classifier, Glow, GAN)"
    )
    btrain.add_argument(
        "--root", type=Path, default=None, help="dataset folder (default: data/synthfaces)"
    )
    btrain.add_argument(
        "--steps", type=int, default=20, help="timed steps per recipe (default: %(default)s)"
    )
    btrain.add_argument(
        "--batch-size", type=int, default=64, help="batch size (default: %(default)s)"
    )
    btrain.set_defaults(run=_bench_train)
    bedit = bench_cmds.add_parser(
        "edit", help="slider move -> new image latency of the live editor; encode/decode latency"
    )
    bedit.add_argument(
        "--repeats", type=int, default=200, help="slider moves per model (default: %(default)s)"
    )
    bedit.add_argument(
        "--no-published",
        action="store_true",
        help="skip the 1024 px StyleGAN2 forward and inversion (about a minute on a 2-core CPU)",
    )
    bedit.set_defaults(run=_bench_edit)
    bcover = bench_cmds.add_parser(
        "coverage",
        help="the GAN's rates of rare attributes against the data's, and its Fréchet distance",
    )
    bcover.add_argument("checkpoints", nargs="*", type=Path,
                        help="more generators to compare with the shipped one (exported or last.pt)")  # fmt: skip
    _add_root(bcover)
    bcover.add_argument("--n", type=int, default=1000, help="faces per set (default: %(default)s)")
    bcover.add_argument("--split", choices=("valid", "test"), default="test",
                        help="real faces to compare with (default: %(default)s); choose among "
                        "copies on valid with another --seed, report the chosen one on test")  # fmt: skip
    bcover.add_argument("--seed", type=int, default=0,
                        help="seed of the generated faces' codes (default: %(default)s)")  # fmt: skip
    bcover.add_argument("--raw", action="store_true",
                        help="also the trained generator's own weights of each run's last.pt, "
                        "under their moving average (what ships)")  # fmt: skip
    bcover.add_argument("--why", action="store_true",
                        help="for each run's last.pt: has its discriminator noticed each "
                        "missing mode, and can its generator draw it at all (W inversion)?")  # fmt: skip
    bcover.add_argument("--edits", action="store_true",
                        help="also: can InterfaceGAN still edit each generator? The rise of each "
                        "expression along its boundary in W at 2 and 4 sigma (about 30 s each)")  # fmt: skip
    bcover.set_defaults(run=_bench_coverage)
    bfaces = bench_cmds.add_parser(
        "faces",
        help="face alignment on real photographs turned and scaled (eye line tilt, eye offset) "
        "and the LFW subset's detection rate (needs scikit-image, in the [dev] extra)",
    )
    bfaces.add_argument(
        "--upsample", type=int, default=4,
        help="enlarge the 25x25 LFW crops this many times (default: %(default)s)",
    )  # fmt: skip
    bfaces.set_defaults(run=_bench_faces)
    bedits = bench_cmds.add_parser(
        "edits",
        help="Smiling, Narrow_Eyes and Mouth_Slightly_Open per model: the step (in sigma) that "
        "gives +0.5, and how clean it is (pixels moved outside the inner face, leakage)",
    )
    bedits.add_argument(
        "--root", type=Path, default=None,
        help="data folder (default: $FEL_CELEBA_ROOT, else data/synthfaces)",
    )  # fmt: skip
    bedits.add_argument(
        "--models", nargs="+", choices=("vae", "glow", "gan"), default=["vae", "glow", "gan"],
        help="families to measure (default: all); checkpoints resolve as load_pretrained() does",
    )  # fmt: skip
    bedits.add_argument(
        "--n", type=int, default=256, help="fresh faces per edit (default: %(default)s)"
    )
    bedits.add_argument(
        "--codes", type=int, default=8192,
        help="training faces (VAE, Glow) or samples (GAN) behind each direction (default: %(default)s)",
    )  # fmt: skip
    bedits.add_argument(
        "--pictures", type=Path, default=None,
        help="also write FAMILY_expressions.png here (4 faces, each edit at its +0.5 step)",
    )  # fmt: skip
    bedits.add_argument(
        "--local-rank", type=int, default=32,
        help="also measure the GAN's local edits: its boundaries kept out of this many latent "
        "directions that move the hair, skin and background most (0: skip; default: %(default)s)",
    )  # fmt: skip
    bedits.set_defaults(run=_bench_edits)
    bbound = bench_cmds.add_parser(
        "boundaries",
        help="the InterfaceGAN pipeline (sample, score, 7 attributes x Z and W) on the shipped GAN",
    )
    bbound.add_argument(
        "--n", type=int, default=20_000, help="codes to sample (default: %(default)s)"
    )
    bbound.set_defaults(run=_bench_boundaries)

    train = commands.add_parser(
        "train", help="train a model with fel's recipes (resumable; torchrun for several GPUs)"
    )
    train_cmds = train.add_subparsers(dest="train_command", required=True, metavar="MODEL")
    clf = train_cmds.add_parser(
        "classifier", help="the 40-attribute predictor (+ SynthFaces factors)"
    )
    from fel.classifier import TRAINING as CLF_TRAINING
    from fel.classifier import WIDTH as CLF_WIDTH

    _add_training_args(clf, epochs=CLF_TRAINING.epochs, batch=CLF_TRAINING.batch_size,
                       lr=CLF_TRAINING.lr, warmup=CLF_TRAINING.warmup_steps)  # fmt: skip
    clf.add_argument("--width", type=int, default=CLF_WIDTH,
                     help="channels of the first block (default: %(default)s)")  # fmt: skip
    clf.set_defaults(run=_train_classifier)

    from fel.identity import TRAINING as ID_TRAINING
    from fel.identity import IdentityConfig

    ident = train_cmds.add_parser(
        "identity", help="the identity embedding that says whether an edit kept the person"
    )
    _add_training_args(ident, epochs=ID_TRAINING.epochs, batch=ID_TRAINING.batch_size,
                       lr=ID_TRAINING.lr)  # fmt: skip
    ident.add_argument("--width", type=int, default=IdentityConfig.width,
                       help="channels of the first block (default: %(default)s)")  # fmt: skip
    ident.add_argument("--dim", type=int, default=IdentityConfig.dim,
                       help="embedding size (default: %(default)s)")  # fmt: skip
    ident.set_defaults(run=_train_identity)

    from fel.vae.model import VAEConfig
    from fel.vae.recipe import TRAINING as VAE_TRAINING

    vae_defaults = VAEConfig()
    vae = train_cmds.add_parser("vae", help="the convolutional VAE (notebooks 02-03)")
    _add_training_args(vae, epochs=VAE_TRAINING.epochs, batch=VAE_TRAINING.batch_size,
                       lr=VAE_TRAINING.lr, size=vae_defaults.size,
                       warmup=VAE_TRAINING.warmup_steps)  # fmt: skip
    vae.add_argument("--latent", type=int, default=vae_defaults.latent,
                     help="latent size (default: %(default)s)")  # fmt: skip
    vae.add_argument("--width", type=int, default=vae_defaults.width,
                     help="channels of the first block (default: %(default)s)")  # fmt: skip
    vae.add_argument("--beta", type=float, default=vae_defaults.beta,
                     help="KL weight; 1 = the ELBO (default: %(default)s)")  # fmt: skip
    vae.set_defaults(run=_train_vae)

    from fel.flow.model import GlowConfig
    from fel.flow.recipe import TRAINING as GLOW_TRAINING

    glow_defaults = GlowConfig()
    glow = train_cmds.add_parser("glow", help="the multi-scale normalizing flow (notebook 05)")
    _add_training_args(glow, epochs=GLOW_TRAINING.epochs, batch=GLOW_TRAINING.batch_size,
                       lr=GLOW_TRAINING.lr, size=glow_defaults.size,
                       warmup=GLOW_TRAINING.warmup_steps)  # fmt: skip
    glow.add_argument("--levels", type=int, default=glow_defaults.levels,
                      help="levels L (default: %(default)s)")  # fmt: skip
    glow.add_argument("--steps", type=int, default=glow_defaults.steps,
                      help="flow steps K per level (default: %(default)s)")  # fmt: skip
    glow.add_argument("--hidden", type=int, default=glow_defaults.hidden,
                      help="coupling network channels (default: %(default)s)")  # fmt: skip
    glow.add_argument(
        "--n-bits", type=int, default=5, help="colour bits scored (default: %(default)s)"
    )
    glow.add_argument(
        "--plain-conv", action="store_true", help="plain 1x1 convolutions instead of LU"
    )
    glow.add_argument(
        "--min-scale",
        type=float,
        default=0.5,
        help="floor of the coupling scales; 0 = Glow's sigmoid(h + 2) (default: %(default)s)",
    )
    glow.set_defaults(run=_train_glow)

    # GAN options default to None, i.e. GANConfig's value (named in the help), so that building
    # the parser does not import torch.
    gan = train_cmds.add_parser(
        "gan", help="the style-based GAN that InterfaceGAN edits (notebook 04)"
    )
    _add_training_args(gan, epochs=GAN_TRAINING.epochs, batch=GAN_TRAINING.batch_size,
                       lr=GAN_TRAINING.lr)  # fmt: skip
    gan.add_argument("--z-dim", type=int, help="Z size (default: 128)")
    gan.add_argument("--w-dim", type=int, help="W size (default: 128)")
    gan.add_argument("--mapping-layers", type=int, help="layers of the mapping MLP (default: 4)")
    gan.add_argument(
        "--mapping-lr-mul",
        type=float,
        help="the mapping MLP's learning rate relative to the rest's (default: 0.01, StyleGAN's)",
    )
    gan.add_argument(
        "--g-channels",
        type=_ints,
        help="generator widths at 4, 8, ..., size, comma-separated (default: 128,128,64,32,16)",
    )
    gan.add_argument(
        "--d-channels",
        type=_ints,
        help="discriminator widths at 4, 8, ..., size, comma-separated (default: 128,128,64,16,8)",
    )
    gan.add_argument("--r1-gamma", type=float, help="R1 penalty weight (default: 0.05)")
    gan.add_argument("--r1-every", type=int, help="lazy R1: every k-th step (default: 4)")
    gan.add_argument(
        "--ema-decay", type=float, help="generator average's decay per step (default: 0.999)"
    )
    gan.add_argument(
        "--augment",
        help="DiffAugment transforms of every image the discriminator sees, comma-separated, from "
        "color, translation, cutout (default: none)",
    )
    gan.add_argument(
        "--imle-weight",
        type=float,
        help="weight of the coverage term: each real face pulls the nearest of --imle-pool x "
        "batch extra fakes towards it, in mean squared pixel error (default: 0, off)",
    )
    gan.add_argument(
        "--imle-pool", type=int, help="candidate fakes per real face of that term (default: 4)"
    )
    gan.add_argument(
        "--imle-every", type=int, help="lazy coverage term: every k-th step (default: 4)"
    )
    gan.add_argument(
        "--imle-focus",
        type=float,
        help="weight each real face of that term by softmax(focus x D(real)), so the faces the "
        "generator covers least pull hardest (default: 0, equal weights)",
    )
    gan.add_argument(
        "--eye-weight",
        type=float,
        help="weight of an eye critic: a second discriminator that sees only both eyes' "
        "patches, a quarter of the image wide (default: 0, none)",
    )
    gan.add_argument(
        "--eye-channels",
        type=_ints,
        help="the eye critic's widths at 4, 8, ..., size / 4, comma-separated (default: 128,64,32)",
    )
    gan.add_argument(
        "--match-weight",
        type=float,
        help="weight of feature matching: the sliced Wasserstein distance between fakes' and "
        "reals' features in each critic's last hidden layer, so that G draws a mode the critic "
        "represents at its share of the data (default: 0, off)",
    )
    gan.add_argument(
        "--init",
        type=Path,
        default=None,
        help="fine-tune: start from another run's last.pt (same data and architecture) with a "
        "fresh optimiser; or from an exported generator such as the shipped gan.pt, whose "
        "critics then start fresh",
    )
    course = train_cmds.add_parser(
        "course",
        help="every course checkpoint (classifier, VAE, GAN and its boundaries, Glow) on one "
        "data set, resumable stage by stage",
    )
    course.add_argument("--data", choices=["synthfaces", "celeba"], default="celeba",
                        help="dataset kind (default: %(default)s)")  # fmt: skip
    course.add_argument("--root", type=Path, default=None,
                        help="the CelebA copy (default: $FEL_CELEBA_ROOT)")  # fmt: skip
    course.add_argument("--out", type=Path, required=True,
                        help="checkpoint folder (then: export FEL_CHECKPOINTS=OUT)")  # fmt: skip
    course.add_argument("--size", type=int, default=64, choices=[64, 128],
                        help="image size of every model (default: %(default)s)")  # fmt: skip
    course.add_argument("--quick", action="store_true",
                        help="a real but tiny run (1-3 epochs per model), to try the path")  # fmt: skip
    course.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    course.add_argument("--workers", type=int, default=0,
                        help="DataLoader workers (default: %(default)s)")  # fmt: skip
    course.set_defaults(run=_train_course)

    gan.add_argument(
        "--classifier",
        type=Path,
        default=None,
        help="attribute predictor whose features the Fréchet distance uses: one trained on the "
        "same data (default: the shipped one, trained on SynthFaces)",
    )
    gan.add_argument(
        "--oversample",
        type=_attribute_count,
        nargs="+",
        metavar="ATTR=K",
        help="list each training face with attribute ATTR K times, e.g. Eyeglasses=3: D then "
        "sees it K times as often, a lever against a mode G draws too rarely (default: none)",
    )
    gan.set_defaults(run=_train_gan)

    bounds = commands.add_parser(
        "boundaries",
        help="InterfaceGAN boundaries of a generator in Z and W (sample, score, fit SVMs)",
    )
    bounds.add_argument(
        "--generator",
        choices=sorted(GENERATORS),
        default="gan",
        help="fel's GAN, or a published file's format: InterfaceGAN's stylegan_*.pth or "
        "rosinality's StyleGAN2 .pt (default: %(default)s)",
    )
    bounds.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="the generator's file: for gan an exported checkpoint or a run's last.pt "
        "(default: the shipped one); required for the published formats",
    )
    bounds.add_argument(
        "--classifier",
        type=Path,
        default=None,
        help="attribute predictor checkpoint (default: the shipped one)",
    )
    bounds.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the .npy boundaries and report.json "
        f"(default: {fel.DATA_DIR / 'boundaries'}/GENERATOR)",
    )
    bounds.add_argument(
        "--attributes",
        nargs="+",
        default=None,
        help="attributes (default: Smiling Mouth_Slightly_Open Narrow_Eyes Male Eyeglasses Young "
        "Bangs)",
    )
    bounds.add_argument(
        "--n", type=int, default=20_000, help="sampled codes (default: %(default)s)"
    )
    bounds.add_argument(
        "--truncation",
        type=float,
        default=0.7,
        help="psi of the faces that get scored (default: %(default)s)",
    )
    bounds.add_argument(
        "--chosen-ratio",
        type=float,
        default=0.02,
        help="share of codes taken as positives, and as negatives (default: %(default)s)",
    )
    bounds.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="faces per batch (default: 500 for gan, 4 for the 1024 px published generators)",
    )
    bounds.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    bounds.set_defaults(run=_boundaries)

    edit = commands.add_parser(
        "edit",
        help="edit a photo's face with one model: align, encode, move in sigma, decode, write",
        description="Align PHOTO to CelebA's frame, encode it with the chosen model (the GAN "
        "inverts, with a progress bar), move the code along attribute directions in sigma (the "
        "sliders' unit) and write the decoded face. The models and data are the notebooks': "
        "$FEL_CHECKPOINTS (or the shipped checkpoints) on $FEL_CELEBA_ROOT (or SynthFaces).",
    )
    edit.add_argument("photo", type=Path, help="a photo with one face (JPEG, PNG, ...)")
    edit.add_argument("--model", choices=("vae", "glow", "gan"), default="vae",
                      help="which family edits (default: %(default)s)")  # fmt: skip
    edit.add_argument("--edit", action="append", default=[], metavar="ATTRIBUTE=SIGMA",
                      help="e.g. Smiling=+2; repeat for several edits at once")  # fmt: skip
    edit.add_argument("--sweep", metavar="ATTRIBUTE=START:STOP:FRAMES",
                      help="one frame per value, e.g. Smiling=-3:3:13 (with --out x.gif, or "
                      "x.png for a strip); --edit values apply to every frame")  # fmt: skip
    edit.add_argument("--out", type=Path, required=True,
                      help="edited.png (.jpg), or sweep.gif / strip.png with --sweep")  # fmt: skip
    edit.add_argument("--side-by-side", action="store_true",
                      help="put the aligned photo and the unedited reconstruction first")  # fmt: skip
    edit.add_argument("--largest", action="store_true",
                      help="with several faces, edit the largest (default: refuse)")  # fmt: skip
    edit.add_argument("--codes", type=int, default=2000,
                      help="faces the directions are made from (default: %(default)s)")  # fmt: skip
    edit.add_argument("--local-rank", type=int, default=0,
                      help="keep the edit out of this many latent directions that move the hair, "
                      "skin and background most (a local edit, as notebook 04's sliders; VAE "
                      "and GAN; about 13 s for the GAN); 0: the raw direction (default)")  # fmt: skip
    edit.add_argument("--steps", type=int, default=300,
                      help="GAN inversion steps (default: %(default)s)")  # fmt: skip
    edit.add_argument("--scale", type=int, default=4,
                      help="enlargement of the written faces (default: %(default)s)")  # fmt: skip
    edit.add_argument("--fps", type=float, default=8.0,
                      help="frames per second of a GIF sweep (default: %(default)s)")  # fmt: skip
    edit.set_defaults(run=_edit)

    env = commands.add_parser("info", help="versions, compute device and data locations")
    env.set_defaults(run=_info)
    return parser


def _raised_by_fel(err: BaseException) -> bool:
    """Whether the innermost frame of err's traceback is fel's own code (a check of the user's
    input or data), not torch, numpy or another library (CUDA out of memory, an NCCL failure)."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    package = Path(__file__).resolve().parent
    return tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(package)


def main(argv: list[str] | None = None) -> int:
    """Run one command. fel's own complaints about input (missing data, a bad name, a diverged
    run) print as one line and exit 2; errors from inside libraries keep their traceback."""
    args = build_parser().parse_args(argv)
    args.command_line = "python -m fel " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        args.run(args)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        if not (_raised_by_fel(err) or isinstance(err, (FileNotFoundError, FileExistsError))):
            raise
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
