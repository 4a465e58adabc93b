"""Run a test function in torchrun-style gloo processes, and leave nothing behind.

The parent hosts the rendezvous store on a port the OS picks (no free-port race), as torchrun's
agent does, and tells the children with the same environment variables torchrun sets
(``TORCHELASTIC_USE_AGENT_STORE`` makes them clients of that store). Each child sends its result
pickled by value, so nothing depends on the sender still being alive when the parent reads it
(torch's shared-memory tensor passing does). A rank that raises or dies fails the test at once
with its traceback, and every child is terminated on the way out: a rank blocked in a gloo
collective would otherwise keep pytest waiting for gloo's 30-minute timeout.
"""

from __future__ import annotations

import os
import pickle
import queue as queue_module
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _child(fn: Callable, rank: int, world: int, port: int, results, args: tuple) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        TORCHELASTIC_USE_AGENT_STORE="True",
    )
    torch.set_num_threads(1)
    try:
        value = fn(rank, *args)
        results.put(("ok", rank, pickle.dumps(value)))
    except BaseException:  # reported to the parent, which fails the test with it
        results.put(("error", rank, traceback.format_exc()))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _next(results, timeout: float) -> tuple | None:
    try:
        return results.get(timeout=timeout)
    except queue_module.Empty:
        return None


def run_ranks(fn: Callable, *args: Any, world: int = 2, timeout: float = 180) -> dict[int, Any]:
    """``{rank: fn(rank, *args)}`` from ``world`` spawned processes joined by ``env://``.

    ``fn`` must be importable (a module-level function) and may return anything picklable.
    """
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_child, args=(fn, r, world, store.port, results, args))
        for r in range(world)
    ]
    values: dict[int, Any] = {}
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            p.start()
        while len(values) < world:
            message = _next(results, 1)
            if message is None:
                gone = [
                    r for r, p in enumerate(procs) if p.exitcode is not None and r not in values
                ]
                if gone:  # its last message was written before it exited: one more look
                    message = _next(results, 2)
                    if message is None:
                        codes = {r: procs[r].exitcode for r in gone}
                        raise AssertionError(f"ranks {codes} (exit codes) died without a result")
                elif time.monotonic() > deadline:
                    missing = sorted(set(range(world)) - set(values))
                    raise TimeoutError(f"ranks {missing} sent nothing within {timeout:.0f} s")
                else:
                    continue
            status, rank, payload = message
            if status == "error":
                raise AssertionError(f"rank {rank} failed:\n{payload}")
            values[rank] = pickle.loads(payload)
        for p in procs:
            p.join(60)
            assert p.exitcode == 0, f"a rank exited with code {p.exitcode} after its result"
        return values
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()
        results.close()
