"""The whole course's checkpoints on one data set: ``python -m fel train course``.

Five stages at one image size, each a fel recipe, in the order the later ones need:

    classifier   the attribute predictor (scores every edit; its features give the GAN's FD)
    identity     the identity embedding (is an edit still the same person?), when the copy
                 has identity_CelebA.txt (Kaggle's has not: the stage is skipped, and says so)
    vae          the VAE                                       (notebooks 02, 03, 06)
    gan          the GAN, its Fréchet distance in that predictor's features   (04, 06)
    boundaries   InterfaceGAN boundaries of that GAN, scored by that predictor  (04)
    glow         Glow                                          (05, 06)

Each model stage trains in ``OUT/runs/STAGE/`` (resumable: an interrupted run continues from
its ``last.pt``) and exports ``OUT/STAGE.pt``; a stage whose output exists, trained on the same
data, is skipped. ``OUT/report.json`` and ``OUT/README.md`` say what was trained, on which data
(its fingerprint), how, and each model's test metrics. Point the notebooks at the folder with
``FEL_CHECKPOINTS=OUT`` and at the data with ``FEL_CELEBA_ROOT``.

``quick`` is a real but tiny run (one to three epochs per model) for trying the path and for CI.

Under ``torchrun`` every stage trains on all processes; rank 0 exports, fits the boundaries and
writes the report, and the others wait for it at a barrier before the next stage.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import fel
from fel.checkpoints import export_checkpoint, load_checkpoint
from fel.data.celeba import find_layout
from fel.data.fingerprint import data_fingerprint, describe

STAGES = ("classifier", "identity", "vae", "gan", "boundaries", "glow")
SIZES = (64, 128)
#: The GAN's widths at 128 px (at 64 px, GANConfig's defaults: the shipped generator's).
GAN_WIDTHS_128 = {"g_channels": (128, 128, 64, 32, 16, 8), "d_channels": (128, 128, 64, 32, 16, 8)}


@dataclass(frozen=True)
class CourseRecipe:
    """Epochs (and an optional step cap) per stage, the boundary pipeline's sample count and
    Glow's depth and width.

    The full recipe is the shipped checkpoints' (their commands are in the README); on a real
    CelebA (162,770 training faces, 7x SynthFaces) fewer epochs go as far.
    """

    epochs: dict[str, int]
    max_steps: dict[str, int | None]
    boundary_faces: int
    glow: dict[str, int]  # Glow's flow steps per level and coupling width

    @classmethod
    def full(cls) -> CourseRecipe:
        from fel.flow.model import GlowConfig
        from fel.flow.recipe import TRAINING as GLOW_TRAINING

        glow = GlowConfig()
        from fel.classifier import TRAINING as CLASSIFIER_TRAINING
        from fel.identity import TRAINING as IDENTITY_TRAINING
        from fel.vae.recipe import TRAINING as VAE_TRAINING

        return cls({"classifier": CLASSIFIER_TRAINING.epochs, "identity": IDENTITY_TRAINING.epochs,
                    "vae": VAE_TRAINING.epochs, "gan": 12,
                    "glow": GLOW_TRAINING.epochs},
                   dict.fromkeys(("classifier", "identity", "vae", "gan", "glow")), 20_000,
                   {"steps": glow.steps, "hidden": glow.hidden})  # fmt: skip

    @classmethod
    def quick(cls) -> CourseRecipe:
        """A 64 px Glow of the full width takes ~3 s a step on a 2-core CPU: the quick one is
        2 flow steps per level, 32 channels wide."""
        return cls({"classifier": 3, "identity": 2, "vae": 3, "gan": 1, "glow": 1},
                   {"classifier": None, "identity": None, "vae": None, "gan": None, "glow": 40},
                   1_000,
                   {"steps": 2, "hidden": 32})  # fmt: skip


def _rank() -> int:
    """This process's torchrun rank, from the environment: unlike
    :func:`fel.training.is_main_process` it holds before any stage has joined the process group
    (when every stage is already done, none does)."""
    return int(os.environ.get("RANK", "0"))


def _barrier() -> None:
    """Wait for rank 0's files under torchrun (a no-op in a plain run)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _glow_levels(size: int) -> int:
    """Glow's multi-scale levels: 4 at 64 px (the shipped one), one more per doubling."""
    return {32: 3, 64: 4, 128: 5}[size]


def _trained_on_same_data(path: Path, fingerprint: str) -> bool:
    if not path.is_file():
        return False
    meta = load_checkpoint(path).get("meta", {})
    return meta.get("data", {}).get("fingerprint") == fingerprint


def train_course(root: str | os.PathLike, out: str | os.PathLike, size: int = 64,
                 quick: bool = False, dataset_name: str = "celeba", seed: int = 0,
                 workers: int = 0, command: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Train every course checkpoint on the CelebA-layout copy at ``root`` into ``out``.

    Returns:
        the report written to ``out/report.json``: the data (fingerprint), the settings, and per
        stage its file, command-equivalent settings, seconds and test metrics.

    Raises:
        ValueError: an unsupported ``size``.
        FileNotFoundError: ``root`` is not a CelebA copy (what is missing).
    """
    from fel.classifier import TRAINING as CLASSIFIER_TRAINING
    from fel.classifier import load as load_classifier
    from fel.classifier import train_classifier
    from fel.flow import GlowConfig, train_glow
    from fel.flow.recipe import TRAINING as GLOW_TRAINING
    from fel.identity import TRAINING as IDENTITY_TRAINING
    from fel.identity import IdentityConfig, train_identity
    from fel.interface_gan import GANConfig, find_boundaries, train_gan
    from fel.interface_gan import load as load_gan
    from fel.interface_gan.recipe import TRAINING as GAN_TRAINING
    from fel.vae import VAEConfig, train_vae
    from fel.vae.recipe import TRAINING as VAE_TRAINING

    if size not in SIZES:
        raise ValueError(f"--size must be one of {SIZES}, got {size}")
    root, out = Path(root), Path(out)
    data = data_fingerprint(root)  # fails early, with what is missing, on a wrong root
    recipe = CourseRecipe.quick() if quick else CourseRecipe.full()
    out.mkdir(parents=True, exist_ok=True)
    report_path = out / "report.json"
    report: dict[str, Any] = json.loads(report_path.read_text()) if report_path.is_file() else {}
    report.update({"data": data, "root": str(root), "size": size, "quick": quick, "seed": seed,
                   "command": command or "fel.course.train_course(...)"})  # fmt: skip
    report.setdefault("stages", {})
    configs = {
        "classifier": (replace(CLASSIFIER_TRAINING, epochs=recipe.epochs["classifier"], seed=seed,
                               num_workers=workers), None),
        "identity": (replace(IDENTITY_TRAINING, epochs=recipe.epochs["identity"], seed=seed,
                             num_workers=workers), IdentityConfig(size=size)),
        "vae": (replace(VAE_TRAINING, epochs=recipe.epochs["vae"], seed=seed, num_workers=workers),
                VAEConfig(size=size)),
        "gan": (replace(GAN_TRAINING, epochs=recipe.epochs["gan"], seed=seed, num_workers=workers),
                GANConfig(size=size, **(GAN_WIDTHS_128 if size == 128 else {}))),
        "glow": (replace(GLOW_TRAINING, epochs=recipe.epochs["glow"], seed=seed, num_workers=workers),
                 GlowConfig(size=size, levels=_glow_levels(size), **recipe.glow)),
    }  # fmt: skip
    for number, stage in enumerate(STAGES, 1):
        file = out / ("boundaries" if stage == "boundaries" else f"{stage}.pt")
        header = f"[{number}/{len(STAGES)}] {stage}"
        done = (
            (file / "report.json").is_file()
            if stage == "boundaries"
            else _trained_on_same_data(file, data["fingerprint"])
        )
        if done:
            print(f"{header}: done already ({file}), skipped", flush=True)
            continue
        if stage == "identity" and not (find_layout(root).base / "identity_CelebA.txt").is_file():
            reason = "no identity_CelebA.txt in this copy (Kaggle's leaves it out)"
            print(f"{header}: skipped: {reason}; the editors and notebook 06 then show no "
                  "identity cosine", flush=True)  # fmt: skip
            report["stages"][stage] = {"file": None, "skipped": reason, "seconds": 0.0}
            continue
        print(f"{header}: training on {describe(data)} at {size} px ...", flush=True)
        start = time.perf_counter()
        run = out / "runs" / stage
        resume = (run / "last.pt").is_file()
        entry: dict[str, Any] = {"file": file.name, "resumed": resume}
        if stage == "boundaries" and _rank() == 0:
            device = fel.device()
            result = find_boundaries(load_gan(out / "gan.pt", device),
                                     load_classifier(out / "classifier.pt", device), file,
                                     n=recipe.boundary_faces, seed=seed,
                                     source=str(out / "gan.pt"))  # fmt: skip
            entry["test"] = {name: {space: a[space]["val_accuracy"] for space in ("z", "w")}
                             for name, a in result["attributes"].items()}  # fmt: skip
        elif stage != "boundaries":
            train_config, model_config = configs[stage]
            steps = recipe.max_steps[stage]
            common = {"resume": resume, "max_steps": steps, "dataset_name": dataset_name}
            if stage == "classifier":
                result = train_classifier(root, run, train_config, size=size,
                                          with_factors=data["dataset"] == "SynthFaces", **common)  # fmt: skip
            elif stage == "identity":
                result = train_identity(root, run, train_config, model_config, **common)
            elif stage == "vae":
                result = train_vae(root, run, train_config, model_config, **common)
            elif stage == "gan":
                classifier = load_classifier(out / "classifier.pt", "cpu")
                result = train_gan(root, run, train_config, model_config, classifier=classifier,
                                   **common)  # fmt: skip
            else:
                result = train_glow(root, run, train_config, model_config, **common)
            result["meta"]["command"] = report["command"] + f"  (stage {stage})"
            entry.update({"train_config": asdict(train_config), "max_steps": steps,
                          "test": result["meta"].get("test")})  # rank 0's alone  # fmt: skip
            if _rank() == 0:
                export_checkpoint(result, file)
        entry["seconds"] = round(time.perf_counter() - start, 1)
        report["stages"][stage] = entry
        print(f"{header}: finished in {entry['seconds']:.0f} s -> {file}", flush=True)
        if _rank() == 0:
            _write_report(out, report)
        _barrier()
    return report


def _write_report(out: Path, report: dict[str, Any]) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    lines = [
        f"# fel course checkpoints: {describe(report['data'])}",
        "",
        f"Trained by `{report['command']}` on `{report['root']}` at {report['size']} px"
        + (" (--quick: a tiny run, for trying the path)" if report["quick"] else "")
        + ".",
        "",
        "Use them: `export FEL_CELEBA_ROOT=" + report["root"] + f" FEL_CHECKPOINTS={out}`, then "
        "`make lab`. A checkpoint is refused on any other data.",
        "",
        "| stage | file | seconds | test |",
        "|---|---|---|---|",
    ]
    for stage, entry in report["stages"].items():
        lines.append(
            f"| {stage} | {entry['file'] or '-'} | {entry['seconds']} | {_summary(stage, entry)} |"
        )
    (out / "README.md").write_text("\n".join(lines) + "\n")


def _summary(stage: str, entry: dict[str, Any]) -> str:
    """A stage's headline test number (the rest is in report.json)."""
    test = entry.get("test", {})
    if "skipped" in entry:
        return f"skipped: {entry['skipped']}"
    if stage == "classifier":
        return f"mean AUC {test.get('mean_auc', float('nan')):.3f}"
    if stage == "identity":
        return f"verification ROC AUC {test.get('auc', float('nan')):.4f} on held-out people"
    if stage in ("vae", "glow"):
        return f"{test.get('bits_per_dim', float('nan')):.3f} bits/dim"
    if stage == "gan":
        return f"Fréchet distance {test.get('fd', float('nan')):.1f} (real vs real {test.get('fd_real', float('nan')):.1f})"
    accuracies = [a for spaces in test.values() for a in spaces.values()]
    return f"mean validation accuracy {sum(accuracies) / max(len(accuracies), 1):.2f} over {len(accuracies)} boundaries"
