"""fel.processes: the worker pool of the data passes."""

import os
import platform
import subprocess
import sys

import pytest

from fel import processes
from fel.processes import keep_freed_memory, map_chunks, process_pool


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _worker_settings(_: int) -> tuple[int, int]:
    """A worker's torch threads, and the MiB handed back to the OS when it frees a 48 MiB block
    (what its initializer's keep_freed_memory decides)."""
    import numpy as np
    import torch

    block = np.ones(48 << 20, np.uint8)
    before = _rss()
    del block
    return torch.get_num_threads(), (before - _rss()) >> 20


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's"
)
def test_workers_run_one_torch_thread_and_keep_freed_memory():
    with process_pool(2) as pool:
        settings = list(pool.map(_worker_settings, range(4)))
    assert [threads for threads, _ in settings] == [1] * 4
    assert all(returned <= 8 for _, returned in settings)  # kept: glibc would unmap 48 MiB


_RSS_AFTER_FREE = """
import os
import sys
import numpy as np
from fel.processes import keep_freed_memory
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
if sys.argv[1] == "keep":
    assert keep_freed_memory()
block = np.ones(48 << 20, np.uint8)  # 48 MiB, touched
before = rss()
del block
print((before - rss()) >> 20)  # MiB handed back to the OS by the free
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's"
)
def test_keep_freed_memory_keeps_a_freed_block_in_the_process():
    def returned_mib(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", _RSS_AFTER_FREE, mode], capture_output=True,
                             text=True, check=True)  # fmt: skip
        return int(run.stdout)

    assert returned_mib("default") >= 40  # glibc maps such a block and unmaps it when freed
    assert returned_mib("keep") <= 8  # kept on the heap, for the next one


def test_keep_freed_memory_does_nothing_off_glibc(monkeypatch):
    monkeypatch.setattr(processes.platform, "libc_ver", lambda: ("", ""))
    assert keep_freed_memory() is False


def _fail(i: int) -> int:
    if i == 2:
        raise ValueError("chunk 2 is broken")
    return i


def test_a_failing_chunk_raises_in_the_caller():
    with pytest.raises(ValueError, match="chunk 2 is broken"), process_pool(2) as pool:
        list(pool.map(_fail, range(4)))


def _pid_and_job(job: int) -> tuple[int, int]:
    import os

    return os.getpid(), job


def test_map_chunks_keeps_order_and_runs_in_place_for_one_worker_or_one_job():
    import os

    here = os.getpid()
    in_place = list(map_chunks(_pid_and_job, range(5), workers=1))
    assert in_place == [(here, j) for j in range(5)]
    assert list(map_chunks(_pid_and_job, [7], workers=2)) == [(here, 7)]
    pooled = list(map_chunks(_pid_and_job, range(6), workers=2))
    assert [j for _, j in pooled] == list(range(6))
    assert here not in {pid for pid, _ in pooled}
