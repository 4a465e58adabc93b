"""Worker processes for fel's data passes: rendering SynthFaces and decoding an image cache.

Both passes split their images into chunks and map a worker function over them with
:func:`map_chunks`. Each worker process runs one torch thread (the processes already use every
core) and keeps the memory it frees (:func:`keep_freed_memory`).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import platform
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(mmap_threshold: int = 256 << 20, trim_threshold: int = 512 << 20) -> bool:
    """Make this process's malloc keep freed memory for reuse instead of handing it to the OS.

    The renderer's NumPy temporaries are megabytes each. By default glibc serves blocks that
    large with ``mmap`` and unmaps them when they are freed (or trims the heap), so the next one
    page-faults its memory in again: a fifth of the renderer's CPU time went to the kernel. With
    blocks up to ``mmap_threshold`` bytes taken from the heap, and the heap trimmed only when
    more than ``trim_threshold`` bytes at its top are free, they are reused. The pixels are
    unchanged. Meant for worker processes, which exit when their pass is done.

    Returns:
        whether the setting was made (only with glibc; elsewhere nothing is done).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)  # the C library this process already runs on
    return bool(
        libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
        and libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )


def _start_worker() -> None:
    import torch

    torch.set_num_threads(1)
    keep_freed_memory()


@contextmanager
def process_pool(workers: int):
    """A pool of ``workers`` processes (forked where the platform can, else spawned), each with
    one torch thread and :func:`keep_freed_memory`.

    On leaving, the pool waits for its processes to exit (what is still queued after a failure
    is cancelled): processes left to exit in the background only pass their cost on to whatever
    runs next.
    """
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context(method), initializer=_start_worker
    )
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


def default_workers() -> int:
    """Worker processes for a data pass: one per CPU, at most 8."""
    return min(os.cpu_count() or 1, 8)


def map_chunks(
    fn: Callable[[Any], T], jobs: Sequence[Any], workers: int | None = None
) -> Iterator[T]:
    """``fn(job)`` for each job, in order: in this process when ``workers`` is 1 or there is one
    job, else in a :func:`process_pool` of ``workers`` (default :func:`default_workers`)."""
    workers = workers or default_workers()
    if workers <= 1 or len(jobs) <= 1:
        yield from map(fn, jobs)
        return
    with process_pool(workers) as pool:
        yield from pool.map(fn, jobs)
