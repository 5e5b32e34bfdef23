"""``hand-pose synth``: make synthetic data and measure how fast it is made.

    hand-pose synth crops    --out DIR --count N [--seed S] [--kinds depth rgb] [--workers 2]
    hand-pose synth frames   --out DIR --count N [--seed S] [--workers 2]
    hand-pose synth sequence --out BAG [--seconds 10] [--fps 30] [--hands 1] [--seed S]
    hand-pose synth sheet    [--out docs/synth.png] [--seed S]
    hand-pose synth bench    [--seconds 10] [--workers 1 2]
    hand-pose synth config   [--out synth.yaml]     (every distribution parameter)

Every command takes ``--config YAML`` (a subset of ``hand-pose synth config``'s output).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hand_pose_ros.cli import CommandError


def add_synth(subparsers: Any) -> None:
    parser = subparsers.add_parser("synth", help="synthetic hands: datasets, bags, sheet, speed")
    commands = parser.add_subparsers(dest="synth_command", required=True, metavar="SUBCOMMAND")

    def command(name: str, help_text: str, run: Any) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--config", type=Path, help="YAML with config overrides")
        sub.add_argument("--seed", type=int, default=0)
        sub.set_defaults(run=run)
        return sub

    for kind in ("crops", "frames"):
        sub = command(kind, f"write a dataset of training {kind}" if kind == "crops"
                      else "write a dataset of full RGB-D frames", _run_dataset)  # fmt: skip
        sub.add_argument("--out", type=Path, required=True, help="new (or empty) folder")
        sub.add_argument("--count", type=int, required=True)
        sub.add_argument("--shard-size", type=int, default=512)
        sub.add_argument("--workers", type=int, default=1)
        if kind == "crops":
            sub.add_argument("--kinds", nargs="+", choices=("depth", "rgb"),
                             default=["depth", "rgb"])  # fmt: skip
        sub.set_defaults(kind=kind)

    sub = command("sequence", "write a ROS 2 bag of hands moving through gestures",
                  _run_sequence)  # fmt: skip
    sub.add_argument("--out", type=Path, required=True, help="new bag folder")
    sub.add_argument("--seconds", type=float, default=10.0)
    sub.add_argument("--fps", type=float, default=30.0)
    sub.add_argument("--hands", type=int, choices=(1, 2), default=1)
    sub.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")

    sub = command("sheet", "render a contact sheet of samples", _run_sheet)
    sub.add_argument("--out", type=Path, default=Path("docs/synth.png"))
    sub.add_argument("--frames", type=int, default=6)

    sub = command("bench", "measure frames/s and crops/s", _run_bench)
    sub.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    sub.add_argument("--workers", type=int, nargs="+", default=[1, 2])

    sub = command("config", "print (or write) the full default config", _run_config)
    sub.add_argument("--out", type=Path)


def load_config(path: Path | None) -> Any:
    """The SynthConfig of a YAML file of overrides (the default world for None)."""
    from hand_pose_ros.synth.config import ConfigError, SynthConfig

    if path is None:
        return SynthConfig()
    if not path.is_file():
        raise CommandError(f"config file not found: {path}")
    try:
        return SynthConfig.from_yaml(path)
    except ConfigError as error:
        raise CommandError(str(error)) from error


def _run_dataset(args: argparse.Namespace) -> int:
    from hand_pose_ros.synth.shards import ShardError, write_dataset

    config = load_config(args.config)

    def progress(done: int, total: int) -> None:
        print(f"\r{args.kind}: {done}/{total}", end="", file=sys.stderr, flush=True)

    try:
        manifest = write_dataset(
            args.out, kind=args.kind, count=args.count, seed=args.seed, config=config,
            shard_size=args.shard_size, workers=args.workers,
            crop_kinds=tuple(getattr(args, "kinds", ("depth", "rgb"))), progress=progress,
        )  # fmt: skip
    except ShardError as error:
        raise CommandError(str(error)) from error
    print(file=sys.stderr)
    rate = manifest["count"] / max(manifest["seconds"], 1e-9)
    print(f"wrote {manifest['count']} {args.kind} in {len(manifest['shards'])} shards to "
          f"{args.out} ({manifest['seconds']:.1f} s, {rate:.1f}/s)")  # fmt: skip
    return 0


def _run_sequence(args: argparse.Namespace) -> int:
    from hand_pose_ros.io.bag_writer import BagWriterError
    from hand_pose_ros.synth.sequence import generate_sequence
    from hand_pose_ros.synth.sequence_bag import write_sequence_bag

    config = load_config(args.config)
    if args.seconds <= 0 or args.fps <= 0:
        raise CommandError(f"--seconds and --fps must be > 0, got {args.seconds}, {args.fps}")
    frames = generate_sequence(config, seed=args.seed, seconds=args.seconds, fps=args.fps,
                               hands=args.hands)  # fmt: skip
    try:
        count = write_sequence_bag(args.out, frames, storage=args.storage)
    except BagWriterError as error:
        raise CommandError(str(error)) from error
    print(f"wrote {count} frames ({args.seconds:g} s at {args.fps:g} fps) to {args.out}")
    return 0


def _run_sheet(args: argparse.Namespace) -> int:
    from hand_pose_ros.synth.contact_sheet import render_sheet

    path = render_sheet(
        args.out, seed=args.seed, frames=args.frames, config=load_config(args.config)
    )
    print(f"wrote {path}")
    return 0


def _run_bench(args: argparse.Namespace) -> int:
    from hand_pose_ros.synth.bench import measure

    config = load_config(args.config)
    print("| what | workers | items | rate |")
    print("|---|---|---|---|")
    for what in ("frames", "depth crops", "colour crops", "crop pairs"):
        for workers in args.workers:
            result = measure(what, workers=workers, seconds=args.seconds, config=config)
            unit = "crops/s" if "crop" in what else "frames/s"
            print(f"| {what} | {workers} | {result.items} | {result.rate:.1f} {unit} |",
                  flush=True)  # fmt: skip
    return 0


def _run_config(args: argparse.Namespace) -> int:
    import yaml

    config = load_config(args.config)
    if args.out is not None:
        config.to_yaml(args.out)
        print(f"wrote {args.out}")
    else:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
    return 0
