"""Throughput of the synthetic world on this machine: full RGB-D frames with ground truth
per second, and training crops per second, with one or more worker processes.

Each worker renders one warm-up item, then counts what it makes in ``seconds`` of steady
work; the rate is the sum over workers. Workers get one thread each (Embree, BLAS, OpenCV)
when there are several (the cores are shared out), all cores when alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from hand_pose_ros.synth.config import SynthConfig
from hand_pose_ros.synth.shards import new_scene
from hand_pose_ros.synth.workers import worker_pool
from hand_pose_ros.synth.world import render_crops, render_frame


@dataclass(frozen=True)
class BenchResult:
    """One measured rate."""

    what: str
    workers: int
    items: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.items / self.seconds


def _work(args: tuple[str, int, float, dict]) -> tuple[int, float]:
    what, worker, seconds, plain = args
    config = SynthConfig.from_dict(plain)
    rng = np.random.default_rng([12345, worker])

    def one() -> int:
        scene = new_scene(rng, config)
        if what == "frames":
            render_frame(scene, rng, config)
            return 1
        kinds = {"depth crops": ("depth",), "colour crops": ("rgb",)}.get(what, ("depth", "rgb"))
        return len(render_crops(scene, rng, config, kinds=kinds))

    one()  # warm-up: caches, Embree start-up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        count += one()
    return count, time.perf_counter() - start


def measure(
    what: str, *, workers: int, seconds: float, config: SynthConfig | None = None
) -> BenchResult:
    """Rate of ``what`` ('frames', 'depth crops', 'colour crops', 'crop pairs')."""
    config = SynthConfig.from_dict((config or SynthConfig()).to_dict())
    if workers > 1:
        config.render.threads = 1
    jobs = [(what, worker, seconds, config.to_dict()) for worker in range(workers)]
    if workers == 1:
        results = [_work(jobs[0])]
    else:
        with worker_pool(workers) as pool:
            results = pool.map(_work, jobs)
    items = sum(count for count, _ in results)
    rate = sum(count / elapsed for count, elapsed in results)
    return BenchResult(what, workers, items, items / rate)
