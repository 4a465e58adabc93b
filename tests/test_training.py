"""The shared training loop: exact resume after interruption, NaN guard, DDP equals one process."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from fel.checkpoints import DataMismatchError, load_checkpoint
from fel.training import Distributed, StepBatches, TrainConfig, TrainingDiverged, train
from tests.ddp import run_ranks


def _data(n=96):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)
    return TensorDataset(x, y)


def _model():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, 1))


def mse(model, batch):
    x, y = batch
    loss = ((model(x) - y) ** 2).mean()
    return loss, {}


CFG = TrainConfig(epochs=3, batch_size=16, lr=5e-2, warmup_steps=4, checkpoint_every=5, amp=False)
CPU = Distributed(0, 1, torch.device("cpu"))


def test_loss_goes_down_and_checkpoint_holds_everything(tmp_path):
    result = train(
        _model(), mse, _data(), CFG, tmp_path, {"kind": "toy"}, {"dataset": "toy"}, dist_=CPU
    )
    losses = [h["loss"] for h in result["meta"]["history"] if "loss" in h]
    assert losses[-1] < 0.5 * losses[0]
    saved = load_checkpoint(tmp_path / "last.pt")
    assert saved["meta"]["step"] == 18 and saved["config"] == {"kind": "toy"}
    assert {"optimizer", "scheduler", "rng_per_rank"} <= set(
        saved["train"]
    ) and "train" not in result


def test_resume_after_interruption_gives_the_same_weights(tmp_path):
    straight = train(_model(), mse, _data(), CFG, tmp_path / "a", {}, dist_=CPU)

    calls = {"n": 0}

    def crashing(model, batch):
        calls["n"] += 1
        if calls["n"] == 14:
            raise KeyboardInterrupt  # stopped between checkpoints (steps 5, 6, 10, 12 saved)
        return mse(model, batch)

    with pytest.raises(KeyboardInterrupt):
        train(_model(), crashing, _data(), CFG, tmp_path / "b", {}, dist_=CPU)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["meta"]["step"] == 12
    resumed = train(_model(), mse, _data(), CFG, tmp_path / "b", {}, resume=True, dist_=CPU)
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key


def test_max_steps_then_resume_equals_one_run(tmp_path):
    straight = train(_model(), mse, _data(), CFG, tmp_path / "a", {}, dist_=CPU)
    train(_model(), mse, _data(), CFG, tmp_path / "b", {}, dist_=CPU, max_steps=7)
    resumed = train(_model(), mse, _data(), CFG, tmp_path / "b", {}, resume=True, dist_=CPU)
    assert all(torch.equal(v, resumed["model"][k]) for k, v in straight["model"].items())


def test_nan_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def exploding(model, batch):
        calls["n"] += 1
        loss, logs = mse(model, batch)
        return (loss * float("nan") if calls["n"] == 8 else loss), logs

    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 7.*last\.pt"):
        train(_model(), exploding, _data(), CFG, tmp_path, {}, dist_=CPU)
    saved = load_checkpoint(tmp_path / "last.pt")
    assert saved["meta"]["step"] == 6  # end of epoch 1
    assert all(torch.isfinite(v).all() for v in saved["model"].values())


def test_resume_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="last.pt"):
        train(_model(), mse, _data(), CFG, tmp_path, {}, resume=True, dist_=CPU)


def test_a_run_is_not_resumed_on_other_data(tmp_path):
    synth = {"dataset": "SynthFaces", "seed": 0, "images": 30000, "fingerprint": "61134a70d6c1ed03"}
    celeba = {"dataset": "CelebA", "seed": None, "images": 300, "fingerprint": "bd441e46175467ce"}
    train(_model(), mse, _data(), CFG, tmp_path, {}, {"data": synth}, dist_=CPU, max_steps=5)
    with pytest.raises(DataMismatchError, match=r"trained on SynthFaces.*trains on CelebA.*delete"):
        train(_model(), mse, _data(), CFG, tmp_path, {}, {"data": celeba}, resume=True, dist_=CPU)
    train(_model(), mse, _data(), CFG, tmp_path, {}, {"data": synth}, resume=True, dist_=CPU)


def test_step_batches_split_each_global_batch_across_processes():
    one = list(StepBatches(50, 8, seed=3, start_step=0, total_steps=12, dist_=Distributed(0, 1)))
    two = [list(StepBatches(50, 8, 3, 0, 12, Distributed(r, 2))) for r in range(2)]
    for step, batch in enumerate(one):
        assert sorted(two[0][step] + two[1][step]) == sorted(batch)
    assert len(one) == 12 and all(len(b) == 8 for b in one)
    assert one[6:] != one[:6]  # a new permutation each epoch (6 full batches per epoch)
    assert list(StepBatches(50, 8, 3, 4, 12, Distributed(0, 1))) == one[4:]  # resume mid-epoch
    with pytest.raises(ValueError, match="divisible"):
        StepBatches(50, 9, 3, 0, 12, Distributed(0, 2))


def _ddp_worker(rank, out):
    cfg = TrainConfig(
        epochs=2, batch_size=16, lr=1e-2, warmup_steps=2, amp=False, checkpoint_every=100
    )
    from fel.training import setup_distributed

    d = setup_distributed(torch.device("cpu"))
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 1))
    torch.manual_seed(1)
    for p in model.parameters():
        nn.init.normal_(p, std=0.3)
    result = train(model, mse, _data(), cfg, out, {}, dist_=d)
    return [h["loss"] for h in result["meta"]["history"]]


def test_two_processes_follow_the_one_process_loss_curve(tmp_path):
    """torchrun-style DDP on gloo: same global batches, averaged gradients, BatchNorm statistics
    over the global batch (GlobalBatchNorm), hence the same losses as one process."""
    ddp_losses = run_ranks(_ddp_worker, tmp_path / "ddp", timeout=120)[0]

    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 1))
    torch.manual_seed(1)
    for p in model.parameters():
        nn.init.normal_(p, std=0.3)
    cfg = TrainConfig(
        epochs=2, batch_size=16, lr=1e-2, warmup_steps=2, amp=False, checkpoint_every=100
    )
    single = train(model, mse, _data(), cfg, tmp_path / "one", {}, dist_=CPU)
    one_losses = [h["loss"] for h in single["meta"]["history"]]
    assert len(ddp_losses) == len(one_losses) > 0
    assert torch.allclose(torch.tensor(ddp_losses), torch.tensor(one_losses), rtol=1e-4, atol=1e-6)


def _one_rank_fails(rank):
    torch.distributed.init_process_group("gloo")
    if rank == 1:
        raise ValueError("rank 1 breaks before the collective")
    torch.distributed.barrier()  # rank 0 would wait here for gloo's 30-minute timeout


def test_a_failing_rank_fails_the_test_with_its_traceback_and_leaves_no_process():
    import torch.multiprocessing as mp

    with pytest.raises(AssertionError, match="(?s)rank 1 failed.*breaks before the collective"):
        run_ranks(_one_rank_fails, timeout=60)
    assert mp.active_children() == []  # rank 0, blocked in the barrier, was terminated


def _bn_worker(rank):
    torch.distributed.init_process_group("gloo")
    from fel.training import GlobalBatchNorm

    x = torch.randn(8, 4, 5, 5, generator=torch.Generator().manual_seed(0)) * 3 + 1
    bn = GlobalBatchNorm(4).train()
    y = bn(x[rank * 4 : (rank + 1) * 4].bfloat16())  # what autocast hands a norm layer on GPUs
    return y.dtype, y.detach().float(), bn.running_mean.dtype, bn.running_mean.clone()


def test_global_batchnorm_takes_low_precision_inputs():
    results = run_ranks(_bn_worker, timeout=120)
    x = torch.randn(8, 4, 5, 5, generator=torch.Generator().manual_seed(0)) * 3 + 1
    ref = nn.BatchNorm2d(4).train()
    expected = ref(x.bfloat16().float())
    got = torch.cat([results[0][1], results[1][1]])
    assert results[0][0] == torch.bfloat16 and results[0][2] == torch.float32
    assert torch.allclose(got, expected, atol=0.03)  # bf16 output rounding
    assert torch.allclose(results[0][3], ref.running_mean, atol=1e-5)


# ----------------------------------------------------------------------------- torchrun safety

NOISE_CFG = TrainConfig(epochs=1, batch_size=8, lr=1e-2, warmup_steps=0, checkpoint_every=100,
                        amp=False)  # fmt: skip


def _noisy_run(out, d, max_steps=None, resume=False) -> list[float]:
    """Train 12 steps (96 items, batch 8) with a loss that draws noise; return the draws."""
    draws = []

    def noisy(model, batch):
        x, y = batch
        draws.append(torch.rand(()).item())  # the stream dequantisation noise would come from
        return ((model(x) - y) ** 2).mean(), {}

    torch.manual_seed(1)  # a model without dropout: the loss's draws are the only ones
    train(nn.Linear(8, 1), noisy, _data(), NOISE_CFG, out, {}, dist_=d, max_steps=max_steps,
          resume=resume)  # fmt: skip
    return draws


def _noise_worker(rank, out):
    from fel.training import setup_distributed

    d = setup_distributed(torch.device("cpu"))
    whole = _noisy_run(out / "whole", d)
    first = _noisy_run(out / "parts", d, max_steps=5)
    rest = _noisy_run(out / "parts", d, resume=True)
    return whole, first + rest


def test_each_process_draws_its_own_noise_and_resumes_exactly_that(tmp_path):
    """Two processes draw different noise (not one stream twice); rank 0's is a plain run's;
    interrupted and resumed, each process goes on with its own stream."""
    ranks = run_ranks(_noise_worker, tmp_path, timeout=180)
    assert ranks[0][0] != ranks[1][0]
    assert ranks[0][0] == _noisy_run(tmp_path / "plain", CPU)
    for whole, resumed in ranks.values():
        assert len(whole) == 12 and resumed == whole


def _model_bn():
    torch.manual_seed(1)  # no bias before BatchNorm: its gradient is rounding noise, which Adam
    # would blow up to full-size steps that differ between any two ways of summing the batch
    model = nn.Sequential(
        nn.Linear(8, 16, bias=False), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 1)
    )
    for p in model.parameters():
        nn.init.normal_(p, std=0.3)
    return model


BN_CFG = TrainConfig(epochs=2, batch_size=16, lr=1e-2, warmup_steps=2, checkpoint_every=100,
                     amp=False)  # fmt: skip


def _switch_worker(rank, out):
    from fel.training import setup_distributed

    d = setup_distributed(torch.device("cpu"))
    # a two-process start, to be finished by one process (in the parent) ...
    train(_model_bn(), mse, _data(), BN_CFG, out / "two_then_one", {}, dist_=d, max_steps=6)
    # ... and a one-process start (the parent's), finished by two
    return train(_model_bn(), mse, _data(), BN_CFG, out / "one_then_two", {}, dist_=d,
                 resume=True)["model"]  # fmt: skip


def test_a_run_resumes_on_another_number_of_processes(tmp_path, capsys):
    """Checkpoints written by two processes resume in one and the other way round, and end
    where an uninterrupted run ends (the batches are the same whatever the process count)."""
    whole = train(_model_bn(), mse, _data(), BN_CFG, tmp_path / "whole", {}, dist_=CPU)["model"]
    train(_model_bn(), mse, _data(), BN_CFG, tmp_path / "one_then_two", {}, dist_=CPU, max_steps=6)
    finished_by_two = run_ranks(_switch_worker, tmp_path, timeout=180)[0]
    finished_by_one = train(_model_bn(), mse, _data(), BN_CFG, tmp_path / "two_then_one", {},
                            dist_=CPU, resume=True)["model"]  # fmt: skip
    assert "written by 2 process(es), this run has 1" in capsys.readouterr().out
    for name, value in whole.items():
        assert torch.allclose(finished_by_one[name], value, rtol=1e-4, atol=1e-5), name
        assert torch.allclose(finished_by_two[name], value, rtol=1e-4, atol=1e-5), name


def _fresh_folder_worker(rank, root, run):
    import os

    import torch.distributed as dist

    from fel.data import CelebA
    from fel.data.synthfaces import write_synthfaces
    from fel.vae import VAEConfig, train_vae

    dist.init_process_group("gloo")
    write_synthfaces(root, n=120, seed=5, workers=1, progress=False)
    folder = os.stat(root).st_ino
    faces = CelebA(root, split="train", size=32)
    cache = os.stat(faces.images.filename).st_ino
    dist.barrier()  # both ranks are done: a second rendering or decoding would show now
    same = (folder == os.stat(root).st_ino, cache == os.stat(faces.images.filename).st_ino)
    result = train_vae(root, run, TrainConfig(epochs=1, batch_size=8, amp=False), VAEConfig(size=32),
                       max_steps=2)  # fmt: skip
    return folder, cache, same, "test" in result["meta"]


def test_ranks_on_a_fresh_folder_render_decode_and_evaluate_once(tmp_path):
    """torchrun on a fresh clone: every rank asks for SynthFaces and its image cache at once;
    one process renders and one decodes while the other waits (the folder and the cache file
    are the very same for both, not replaced by a second copy); only rank 0 scores the test
    split after training."""
    root = tmp_path / "synthfaces"
    ranks = run_ranks(_fresh_folder_worker, root, tmp_path / "vae", timeout=300)
    assert ranks[0][:2] == ranks[1][:2]
    assert ranks[0][2] == ranks[1][2] == (True, True)
    assert ranks[0][3] and not ranks[1][3]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    cache = sorted(p.name for p in (root / ".fel_cache").iterdir())
    caches = [name for name in cache if name.endswith(".npy")]  # one per split read
    assert leftovers == [] and cache == sorted(caches + [f".{c}.lock" for c in caches]), cache
