"""One training loop for every fel model: progress, checkpoints, exact resume, NaN guard, DDP.

A model family supplies a ``loss_fn(model, batch) -> (loss, {name: float})``; this module does the
rest. Batches are drawn from a seeded permutation per epoch and identified by their global step,
so that ``resume=True`` continues exactly where a run stopped, and a run on several processes
(``torchrun --nproc_per_node N``) sees the same global batches as a run on one.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

import fel
from fel.checkpoints import load_checkpoint, load_state, save_checkpoint

LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, dict[str, float]]]


class TrainingDiverged(RuntimeError):
    """The loss or the gradient became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    """Optimisation settings shared by every recipe (a model's own config is separate)."""

    epochs: int = 10
    batch_size: int = 128  # global: split across processes under torchrun
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    schedule: str = "cosine"  # or "constant" after warm-up
    grad_clip: float | None = 5.0
    amp: bool = True  # bf16 (or fp16) autocast on CUDA; ignored on CPU
    num_workers: int = 0
    checkpoint_every: int = 500  # steps; also at the end of every epoch
    seed: int = 0


@dataclass
class Distributed:
    """Where this process sits in a torchrun job (rank 0 of 1 when run plainly)."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def is_main_process() -> bool:
    """True in a plain run and on torchrun's rank 0, where evaluation, exports and reports run
    (the other ranks' copies are the same model, so their work would be repeated)."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


#: Process r of a torchrun job seeds its random streams (dropout, dequantisation and sampling
#: noise) with ``seed + r * RANK_SEED_STRIDE``: each draws its own noise, and rank 0's are those
#: of a plain run. (Batches do not depend on these streams: see :class:`StepBatches`.)
RANK_SEED_STRIDE = 1_000_003


def _random_streams(d: Distributed) -> list[dict[str, torch.Tensor | None]]:
    """Every process's random stream states (CPU, and CUDA on its own device), by rank."""
    mine = {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(d.device) if d.device.type == "cuda" else None}  # fmt: skip
    if d.world == 1:
        return [mine]
    states: list[Any] = [None] * d.world
    dist.all_gather_object(states, mine)
    return states


def _restore_streams(train_state: dict[str, Any], d: Distributed, seed: int, step: int) -> None:
    """Put this process's random streams back where the checkpoint left them. A run resumed
    on another number of processes cannot: each process's streams start afresh from
    (seed, rank, step), and the batches stay those of the uninterrupted run."""
    saved = train_state.get("rng_per_rank")
    if saved is None:  # checkpoints before fel 0.1's per-rank states: rank 0's CPU stream
        saved = [{"cpu": train_state["rng"], "cuda": None}]
    if len(saved) != d.world:
        torch.manual_seed(seed + d.rank * RANK_SEED_STRIDE + step)
        if d.main:
            print(f"the checkpoint was written by {len(saved)} process(es), this run has "
                  f"{d.world}: each process's random streams start afresh at step {step} "
                  "(the batches are unchanged)")  # fmt: skip
        return
    torch.set_rng_state(saved[d.rank]["cpu"].cpu())
    if saved[d.rank]["cuda"] is not None and d.device.type == "cuda":
        torch.cuda.set_rng_state(saved[d.rank]["cuda"].cpu(), d.device)


def check_same_data(trained: dict | None, now: dict | None, source: Path, doing: str = "resuming",
                    advice: str | None = None) -> None:  # fmt: skip
    """Refuse to go on from ``source`` (a run trained on ``trained``) on other data (``now``):
    both are :func:`fel.data.fingerprint.data_fingerprint` records, or None where unknown.
    ``doing`` names what would mix the two, ``advice`` what to do instead."""
    if not trained or not now or trained.get("fingerprint") == now.get("fingerprint"):
        return
    from fel.checkpoints import DataMismatchError
    from fel.data.fingerprint import describe

    advice = advice or (
        f"Train into another output folder, or delete {source.parent} to start this one afresh."
    )
    raise DataMismatchError(
        f"{source} was trained on {describe(trained)}, and this run trains on {describe(now)}: "
        f"{doing} would mix the two. {advice}"
    )


def setup_distributed(device: torch.device | None = None) -> Distributed:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1 (NCCL on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = device or fel.device()
    if world <= 1:
        return Distributed(0, 1, device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank, local = dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    return Distributed(rank, world, device)


class StepBatches(Sampler[list[int]]):
    """This process's share of each global batch, from ``start_step`` on.

    Epoch e uses a permutation seeded by (seed, e); global step s takes batch s mod
    steps_per_epoch of that epoch; process r of w takes every w-th index of it. The last partial
    batch of an epoch is dropped.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        start_step: int,
        total_steps: int,
        dist_: Distributed,
    ):
        if batch_size % dist_.world:
            raise ValueError(
                f"batch size {batch_size} must be divisible by the {dist_.world} processes"
            )
        self.n, self.batch, self.seed = n, batch_size, seed
        self.start, self.total, self.dist = start_step, total_steps, dist_
        self.per_epoch = n // batch_size
        if self.per_epoch == 0:
            raise ValueError(f"batch size {batch_size} is larger than the dataset ({n} items)")

    def __iter__(self) -> Iterator[list[int]]:
        perm, epoch = None, -1
        for step in range(self.start, self.total):
            e, k = divmod(step, self.per_epoch)
            if e != epoch:
                g = torch.Generator().manual_seed(self.seed * 100_003 + e)
                perm, epoch = torch.randperm(self.n, generator=g), e
            batch = perm[k * self.batch : (k + 1) * self.batch]
            yield batch[self.dist.rank :: self.dist.world].tolist()

    def __len__(self) -> int:
        return self.total - self.start


class _AllReduceSum(torch.autograd.Function):
    """Sum a tensor over all processes; the gradient is summed the same way."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose batch statistics span every process (any device, gloo or NCCL).

    Each process sums x and x^2 per channel; one differentiable all-reduce makes them global, so
    the forward pass and the gradients equal those of one process on the whole global batch.
    (PyTorch's SyncBatchNorm does the same on GPUs only.)
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (
            self.training
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size() > 1
        ):
            return super().forward(x)
        out_dtype = x.dtype
        x = (
            x.float()
        )  # statistics in float32, also under bf16/fp16 autocast (x^2 sums overflow fp16)
        dims = [0, *range(2, x.dim())]
        count = torch.tensor([x.numel() / x.shape[1]], device=x.device, dtype=x.dtype)
        stats = _AllReduceSum.apply(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 0.1
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1), m)
                self.num_batches_tracked += 1
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(out_dtype)


def sync_batchnorm(model: nn.Module) -> nn.Module:
    """Swap every BatchNorm layer for :class:`GlobalBatchNorm`, keeping its weights and statistics."""
    for name, child in model.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
            child, GlobalBatchNorm
        ):
            new = GlobalBatchNorm(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
            )
            new.load_state_dict(child.state_dict())
            setattr(model, name, new.to(child.weight.device if child.affine else "cpu"))
        else:
            sync_batchnorm(child)
    return model


def data_meta(
    dataset: str, root: str | os.PathLike, resolution: int, train_images: int
) -> dict[str, Any]:
    """What every recipe records about its training data in the checkpoint's metadata, with the
    data's fingerprint (``data``: :func:`fel.data.fingerprint.data_fingerprint`), which
    ``load_pretrained`` compares with the data in use."""
    from fel.data.fingerprint import data_fingerprint

    return {"dataset": dataset, "root": str(root), "resolution": resolution,
            "train_images": train_images, "data": data_fingerprint(root)}  # fmt: skip


def _lr_factor(step: int, total: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _to(batch: Any, device: torch.device) -> Any:
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device) for b in batch)
    return batch


def train(
    model: nn.Module,
    loss_fn: LossFn,
    dataset: Dataset,
    config: TrainConfig,
    out: str | os.PathLike,
    model_config: dict[str, Any],
    meta: dict[str, Any] | None = None,
    resume: bool = False,
    on_epoch_end: Callable[[nn.Module, int], dict[str, float]] | None = None,
    dist_: Distributed | None = None,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """Train ``model`` on ``dataset`` and keep ``out/last.pt`` up to date.

    Args:
        model: the network (moved to the device here; wrapped in DDP under torchrun).
        loss_fn: ``(model, batch) -> (scalar loss, {name: float} to log)``.
        dataset: items collated by the default collate function.
        config: optimisation settings.
        out: run folder; ``last.pt`` holds model, optimiser, step and history.
        model_config: the model's constructor arguments, saved with the weights.
        meta: extra metadata (data, command) saved in the checkpoint.
        resume: continue from ``out/last.pt`` (which must exist) instead of starting anew.
        on_epoch_end: ``(model, epoch) -> metrics``, run on rank 0 after each epoch (eval, grids).
        dist_: process placement (default: from the torchrun environment).
        max_steps: stop after this many steps in total (for demos and tests).

    Returns:
        the final checkpoint payload (without optimiser state): model, config, meta with history.

    Raises:
        TrainingDiverged: the loss or gradient norm became NaN or infinite.
    """
    d = dist_ or setup_distributed()
    out = Path(out)
    last = out / "last.pt"
    torch.manual_seed(config.seed + d.rank * RANK_SEED_STRIDE)  # each process its own noise
    if d.world > 1:
        sync_batchnorm(
            model
        )  # per-process statistics would make the run depend on the process count
    model.to(d.device)
    if d.device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )
    steps_per_epoch = len(dataset) // config.batch_size
    planned = config.epochs * steps_per_epoch  # the schedule's length, whatever max_steps says
    total = planned if max_steps is None else min(planned, max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _lr_factor(s, planned, config)
    )
    step, history = 0, []
    meta = dict(meta or {})
    if resume:
        state = load_checkpoint(last, map_location=d.device)
        check_same_data(state["meta"].get("data"), meta.get("data"), last)
        load_state(model, state["model"], str(last))
        optimizer.load_state_dict(state["train"]["optimizer"])
        scheduler.load_state_dict(state["train"]["scheduler"])
        step, history = state["meta"]["step"], state["meta"]["history"]
        _restore_streams(state["train"], d, config.seed, step)
        meta.setdefault("train_seconds", state["meta"].get("train_seconds", 0.0))
        if d.main:
            print(f"resuming {last} at step {step} of {total}")
    ddp = d.world > 1
    if ddp:
        net: nn.Module = nn.parallel.DistributedDataParallel(
            model, device_ids=[d.device.index] if d.device.type == "cuda" else None
        )
    else:
        net = model
    use_amp = config.amp and d.device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    if resume and state["train"].get("scaler"):
        scaler.load_state_dict(state["train"]["scaler"])
    sampler = StepBatches(len(dataset), config.batch_size, config.seed, step, total, d)
    # The loader gets its own generator: drawing worker seeds must not move the global RNG
    # (dropout, noise), or a resumed run would not repeat the uninterrupted one.
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=config.num_workers,
                        pin_memory=d.device.type == "cuda",
                        generator=torch.Generator().manual_seed(config.seed + step))  # fmt: skip

    prior_seconds, t0 = float(meta.get("train_seconds", 0.0)), time.perf_counter()

    def snapshot() -> dict[str, Any]:
        """The checkpoint payload without the optimiser state."""
        return {
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "config": model_config,
            "meta": {
                **meta,
                "fel": fel.__version__,
                "step": step,
                "history": history,
                "train_config": asdict(config),
                "world_size": d.world,
                "train_seconds": prior_seconds + time.perf_counter() - t0,
            },  # fmt: skip
        }

    def save() -> None:
        """Write ``last.pt`` with everything needed to resume (rank 0 writes; every process
        sends its random streams)."""
        streams = _random_streams(d)
        if d.main:
            train_state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                           "rng_per_rank": streams, "scaler": scaler.state_dict()}  # fmt: skip
            save_checkpoint(last, {**snapshot(), "train": train_state})
        if d.world > 1:
            dist.barrier()  # no process goes on (or returns) before the checkpoint is there

    model.train()
    bar = tqdm(total=total, initial=step, desc="training", unit="step", disable=not d.main)
    running, counted = {}, 0
    try:
        for batch in loader:
            batch = _to(batch, d.device)
            autocast = torch.autocast("cuda", dtype=amp_dtype) if use_amp else nullcontext()
            with autocast:
                loss, logs = loss_fn(net, batch)
            check = loss.detach().float().clone()
            if ddp:
                dist.all_reduce(check)
                check /= d.world
            if not torch.isfinite(check):
                raise TrainingDiverged(
                    f"loss became {check.item()} at step {step}; training stopped. The last good "
                    f"checkpoint is {last}{'' if last.exists() else ' (none was written yet)'}: lower "
                    "the learning rate or lengthen the warm-up, then resume with --resume."
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip:
                scaler.unscale_(optimizer)
                norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                if not torch.isfinite(norm) and not scaler.is_enabled():
                    raise TrainingDiverged(
                        f"gradient norm became {norm.item()} at step {step}; the last good checkpoint is {last}"
                    )
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            for k, v in {"loss": check.item(), **logs}.items():
                running[k] = running.get(k, 0.0) + float(v)
            counted += 1
            bar.update(1)
            if step % 10 == 0 or step == total:
                means = {k: v / counted for k, v in running.items()}
                bar.set_postfix({k: f"{v:.4g}" for k, v in means.items()})
                history.append({"step": step, "epoch": step / steps_per_epoch, **means})
                running, counted = {}, 0
            end_of_epoch = step % steps_per_epoch == 0
            if end_of_epoch and on_epoch_end is not None and d.main:
                model.eval()
                with torch.no_grad():
                    metrics = on_epoch_end(model, step // steps_per_epoch)
                model.train()
                history.append({"step": step, "epoch": step / steps_per_epoch, **metrics})
                bar.write(
                    f"epoch {step // steps_per_epoch}: "
                    + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
                )
            if step % config.checkpoint_every == 0 or end_of_epoch or step == total:
                save()
    finally:
        bar.close()
    model.eval()
    return snapshot()
