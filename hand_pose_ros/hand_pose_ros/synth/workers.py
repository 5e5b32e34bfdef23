"""Worker processes for the synthetic world: one thread each, all the way down.

Each worker already gives Embree one thread (``render.threads = 1``), but numpy's BLAS
(OpenBLAS, through OpenMP) and OpenCV start a thread per core of their own in every
process. Two workers on two cores then run four busy threads: measured, depth crops went
from 263 to 315 a second (``hand-pose synth bench --workers 2``) with one BLAS thread a
worker. The limits are environment variables read when a library loads, so they are set
in the parent while the pool spawns its children (which copy the environment).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Iterator
from multiprocessing.pool import Pool

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _one_thread_environment() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(_THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _single_threaded_worker() -> None:
    import cv2

    cv2.setNumThreads(1)


def worker_pool(workers: int) -> Pool:
    """A pool of ``workers`` spawned processes, each with one thread per thread pool.

    Spawn, not fork: Embree's thread pool does not survive a fork of a process using it.
    """
    with _one_thread_environment():
        return multiprocessing.get_context("spawn").Pool(
            workers, initializer=_single_threaded_worker
        )
