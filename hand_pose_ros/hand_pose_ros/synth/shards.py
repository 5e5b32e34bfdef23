"""Datasets on disk: training-crop shards and full-frame shards (compressed .npz).

A dataset folder holds ``manifest.json`` (the config, the seed, what each shard holds) and
``shard_00000.npz`` ... Shard ``i`` is generated from the seed sequence ``(seed, i)`` alone,
so a dataset is the same bytes whatever the number of worker processes, and a held-out set
is the same command with another seed.

Crop shard arrays (N samples; a kind not asked for is absent):
    depth          float16 (N, S, S)  seed-002 normalised depth cube crops in [-1, 1]
    cube_center    float32 (N, 3)     cube centres, metres, camera optical frame
    cube_m         float32 (N,)       cube side, metres
    depth_joints   float32 (N, 21, 3) keypoints relative to the centre, half-cube units
    rgb            uint8   (N, R, R, 3) colour crops
    rgb_crop_to_image float32 (N, 2, 3) colour crop pixel -> source image pixel
    rgb_uv         float32 (N, 21, 2) keypoints in colour-crop pixels
    uv             float32 (N, 21, 2) keypoints in source image pixels
    xyz            float32 (N, 21, 3) keypoints, metres, camera optical frame
    visible        bool    (N, 21)    keypoint visible (ray test)
    handedness     uint8   (N,)       1 left, 2 right (hand_pose_msgs/Hand constants)
    gesture        int16   (N,)       index into manifest "gestures", -1 for none
    camera         float32 (N, 4)     fx, fy, cx, cy
    scene          int32   (N,)       which scene of the shard the sample came from
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hand_pose_ros import __version__
from hand_pose_ros.geometry import encode_depth_mm
from hand_pose_ros.synth.config import SynthConfig
from hand_pose_ros.synth.gestures import GESTURES
from hand_pose_ros.synth.scene import sample_scene
from hand_pose_ros.synth.truth import SynthFrame
from hand_pose_ros.synth.workers import worker_pool
from hand_pose_ros.synth.world import CROP_KINDS, CropSample, render_crops, render_frame

MANIFEST = "manifest.json"
MAX_HANDS = 2


class ShardError(RuntimeError):
    """A dataset folder cannot be written or read."""


@dataclass(frozen=True)
class _Job:
    kind: str  # "crops" or "frames"
    seed: int
    shard: int
    count: int
    config: dict[str, Any]
    crop_kinds: tuple[str, ...]
    out_dir: str


def scene_rng(seed: int, shard: int) -> np.random.Generator:
    """The random generator of shard ``shard`` of a dataset made with ``seed``."""
    return np.random.default_rng([seed, shard])


def new_scene(rng: np.random.Generator, config: SynthConfig) -> Any:
    """A random scene drawn with the config's distributions."""
    return sample_scene(
        rng, camera_config=config.camera, shape_config=config.hand,
        placement_config=config.placement, scene_config=config.scene,
        appearance_config=config.appearance,
    )  # fmt: skip


def write_dataset(
    out_dir: str | Path,
    *,
    kind: str,
    count: int,
    seed: int,
    config: SynthConfig,
    shard_size: int = 512,
    workers: int = 1,
    crop_kinds: tuple[str, ...] = CROP_KINDS,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write ``count`` samples (crops or frames) to a new dataset folder; returns the manifest.

    Args:
        kind: "crops" (training crops) or "frames" (full 640x480 RGB-D frames).
        workers: processes (each given one Embree thread when > 1).
        progress: called with (samples done, count) after each shard.
    """
    if kind not in ("crops", "frames"):
        raise ShardError(f"dataset kind must be 'crops' or 'frames', got {kind!r}")
    if count <= 0 or shard_size <= 0 or workers <= 0:
        raise ShardError(f"count, shard_size and workers must be > 0, got {count}, "
                         f"{shard_size}, {workers}")  # fmt: skip
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ShardError(f"{out} exists and is not empty; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    if workers > 1:
        config = _single_threaded(config)
    plain = config.to_dict()
    sizes = [min(shard_size, count - start) for start in range(0, count, shard_size)]
    jobs = [_Job(kind, seed, i, n, plain, tuple(crop_kinds), str(out)) for i, n in enumerate(sizes)]
    started = time.perf_counter()
    shards = []
    done = 0
    for entry in _run(jobs, workers):
        shards.append(entry)
        done += entry["samples"]
        if progress is not None:
            progress(done, count)
    manifest = {
        "kind": kind,
        "count": count,
        "seed": seed,
        "shard_size": shard_size,
        "crop_kinds": list(crop_kinds) if kind == "crops" else [],
        "gestures": list(GESTURES),
        "shards": sorted(shards, key=lambda e: e["file"]),
        "config": plain,
        "version": __version__,
        "seconds": round(time.perf_counter() - started, 2),
        "workers": workers,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def read_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ShardError(f"{folder} is not a dataset folder (no {MANIFEST})")
    return dict(json.loads(path.read_text()))


def load_dataset(
    folders: str | Path | Sequence[str | Path], *, fields: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """All shards of one or more dataset folders, concatenated in order (fits in memory for
    CPU-sized sets). Each array is allocated once and filled shard by shard, so the peak
    memory is the data's own, not twice it.

    Args:
        folders: a dataset folder, or several of the same kind.
        fields: the arrays to load (default: every array of the first shard).

    Raises:
        ShardError: a folder without a manifest, a shard without a wanted array, or an
            array whose length is not the shard's sample count.
    """
    if isinstance(folders, str | Path):
        folders = [folders]
    shards = [
        (Path(folder), entry) for folder in folders for entry in read_manifest(folder)["shards"]
    ]
    total = sum(int(entry["samples"]) for _, entry in shards)
    names = list(fields) if fields is not None else None
    arrays: dict[str, np.ndarray] = {}
    row = 0
    for folder, entry in shards:
        path, count = folder / entry["file"], int(entry["samples"])
        with np.load(path) as shard:
            if names is None:
                names = list(shard.files)  # the first shard says what a shard holds
            for key in names:
                if key not in shard.files:
                    raise ShardError(f"{path}: no array {key!r}")
                value = shard[key]
                if len(value) != count:
                    raise ShardError(f"{path}: {key!r} has {len(value)} rows, not {count}")
                if key not in arrays:
                    arrays[key] = np.empty((total, *value.shape[1:]), dtype=value.dtype)
                arrays[key][row : row + count] = value
        row += count
    return arrays


def _single_threaded(config: SynthConfig) -> SynthConfig:
    copy = SynthConfig.from_dict(config.to_dict())
    copy.render.threads = 1
    return copy


def _run(jobs: list[_Job], workers: int) -> Iterable[dict[str, Any]]:
    if workers == 1:
        return map(_write_shard, jobs)
    pool = worker_pool(workers)
    try:
        return list(pool.imap_unordered(_write_shard, jobs))
    finally:
        pool.close()
        pool.join()


def _write_shard(job: _Job) -> dict[str, Any]:
    config = SynthConfig.from_dict(job.config)
    rng = scene_rng(job.seed, job.shard)
    make = _crop_arrays if job.kind == "crops" else _frame_arrays
    arrays = make(rng, config, job)
    name = f"shard_{job.shard:05d}.npz"
    np.savez_compressed(Path(job.out_dir) / name, **arrays)
    return {"file": name, "samples": job.count}


def _crop_arrays(rng: np.random.Generator, config: SynthConfig, job: _Job) -> dict[str, np.ndarray]:
    samples: list[tuple[int, CropSample]] = []
    scene_index = 0
    while len(samples) < job.count:
        crops = render_crops(new_scene(rng, config), rng, config, kinds=job.crop_kinds)
        samples.extend((scene_index, crop) for crop in crops)
        scene_index += 1
    return crop_arrays(samples[: job.count])


def crop_arrays(samples: list[tuple[int, CropSample]]) -> dict[str, np.ndarray]:
    """Stack ``(scene index, sample)`` pairs into the shard arrays (see module doc)."""
    first = samples[0][1]
    arrays: dict[str, np.ndarray] = {
        "uv": np.stack([s.truth.uv for _, s in samples]).astype(np.float32),
        "xyz": np.stack([s.truth.xyz for _, s in samples]).astype(np.float32),
        "visible": np.stack([s.truth.visible for _, s in samples]),
        "handedness": np.array([int(s.truth.handedness) for _, s in samples], dtype=np.uint8),
        "gesture": np.array([_gesture_index(s.truth.gesture) for _, s in samples], np.int16),
        "camera": np.array(
            [[s.camera.fx, s.camera.fy, s.camera.cx, s.camera.cy] for _, s in samples],
            dtype=np.float32,
        ),
        "scene": np.array([i for i, _ in samples], dtype=np.int32),
    }
    crops = [s for _, s in samples]
    if first.depth is not None:
        arrays["depth"] = _stack(crops, "depth", np.float16)
        arrays["cube_center"] = _stack(crops, "cube_center", np.float32)
        arrays["cube_m"] = np.array([s.cube_m for s in crops], dtype=np.float32)
        arrays["depth_joints"] = _stack(crops, "depth_joints", np.float32)
    if first.rgb is not None:
        arrays["rgb"] = _stack(crops, "rgb", np.uint8)
        arrays["rgb_crop_to_image"] = _stack(crops, "rgb_crop_to_image", np.float32)
        arrays["rgb_uv"] = _stack(crops, "rgb_uv", np.float32)
    return arrays


def _stack(crops: list[CropSample], name: str, dtype: type) -> np.ndarray:
    values = [getattr(crop, name) for crop in crops]
    if any(value is None for value in values):
        raise ShardError(f"some crops lack {name!r}: every crop of a shard has the same kinds")
    return np.stack(values).astype(dtype)


def _frame_arrays(
    rng: np.random.Generator, config: SynthConfig, job: _Job
) -> dict[str, np.ndarray]:
    frames = [render_frame(new_scene(rng, config), rng, config) for _ in range(job.count)]
    return frame_arrays(frames)


def frame_arrays(frames: list[SynthFrame]) -> dict[str, np.ndarray]:
    """Full frames with up to two hands' ground truth (hand slots past ``hand_count`` are
    NaN / False / 0)."""
    n = len(frames)
    uv = np.full((n, MAX_HANDS, 21, 2), np.nan, np.float32)
    xyz = np.full((n, MAX_HANDS, 21, 3), np.nan, np.float32)
    visible = np.zeros((n, MAX_HANDS, 21), bool)
    box = np.full((n, MAX_HANDS, 4), np.nan, np.float32)
    handedness = np.zeros((n, MAX_HANDS), np.uint8)
    gesture = np.full((n, MAX_HANDS), -1, np.int16)
    for i, frame in enumerate(frames):
        for k, hand in enumerate(frame.hands[:MAX_HANDS]):
            uv[i, k], xyz[i, k], visible[i, k] = hand.uv, hand.xyz, hand.visible
            box[i, k] = hand.box
            handedness[i, k] = int(hand.handedness)
            gesture[i, k] = _gesture_index(hand.gesture)
    return {
        "rgb": np.stack([f.rgb for f in frames]),
        "depth_mm": np.stack([encode_depth_mm(f.depth_m) for f in frames]),
        "hand_index": np.stack([f.hand_index for f in frames]),
        "hand_count": np.array([len(f.hands) for f in frames], np.uint8),
        "uv": uv, "xyz": xyz, "visible": visible, "box": box,
        "handedness": handedness, "gesture": gesture,
        "camera": np.array([[f.camera.fx, f.camera.fy, f.camera.cx, f.camera.cy]
                            for f in frames if f.camera is not None], np.float32),
    }  # fmt: skip


def _gesture_index(name: str) -> int:
    return GESTURES.index(name) if name in GESTURES else -1
