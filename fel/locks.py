"""One process at a time: a file lock around work that several processes may start at once.

The torchrun ranks of one job, or two notebooks opened before ``make data``, all find the same
dataset missing or the same image cache unbuilt. Each such builder runs under
:func:`one_at_a_time`: the first process does the work; the others wait, then find it done.
The lock is the operating system's (``filelock``, a dependency of torch), so a process that
dies releases it, and it works on every platform fel supports.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout


@contextmanager
def one_at_a_time(lock_path: str | os.PathLike, doing: str) -> Iterator[None]:
    """Hold the lock at ``lock_path`` (created, with its folder, if missing) for the block.

    Args:
        lock_path: the lock file; it stays behind, empty, and is harmless.
        doing: what the holder does, for the waiting process's message ("rendering SynthFaces
            into data/synthfaces").

    When the lock is taken, prints once that this process waits, and for what; then waits as
    long as the other process needs.
    """
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"waiting for another process that is {doing} (lock: {lock_path})", flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
