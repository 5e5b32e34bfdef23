"""The hand-pose command: one sub-command per task, each a thin call into the core.

    hand-pose info BAG     what a bag holds and how its colour and depth pair up
    hand-pose synth ...    the synthetic hand world: datasets, sequences, contact sheet, speed
    hand-pose models       the model zoo's table (parameters, FLOPs, paper figures)
    hand-pose export       ONNX files of the models, checked against PyTorch
    hand-pose train        train a model (the seed-002 recipe by default), resumable
    hand-pose eval         a depth model's 3D joint error on a labelled set, with plots
    hand-pose eval-real    the depth pipeline on unlabelled depth PNGs, drawn

Later sub-commands (demo, bag, synth, train, eval, bench, export) plug in the same way:
``_add_<name>(subparsers)`` registers the arguments and the function that runs it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hand_pose_ros import __version__, topics


class CommandError(RuntimeError):
    """A sub-command failed for a reason the user can fix; printed without a traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hand-pose`` command; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="hand-pose", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hand-pose {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_info(subparsers)
    from hand_pose_ros.commands.evaluate import add_evaluate
    from hand_pose_ros.commands.models import add_models
    from hand_pose_ros.commands.synth import add_synth
    from hand_pose_ros.commands.train import add_train

    add_synth(subparsers)
    add_models(subparsers)
    add_train(subparsers)
    add_evaluate(subparsers)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except CommandError as error:
        print(f"hand-pose {args.command}: error: {error}", file=sys.stderr)
        return 1


def _add_topic_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--color-topic", default=topics.COLOR_TOPIC)
    parser.add_argument(
        "--depth-topic", default=topics.DEPTH_TOPIC, help="'' for a colour-only bag"
    )
    parser.add_argument("--info-topic", default=topics.CAMERA_INFO_TOPIC)
    parser.add_argument(
        "--slop-ms", type=float, default=10.0,
        help="largest colour/depth stamp difference that still pairs them (ms)",
    )  # fmt: skip


def _add_info(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="what a bag holds and how its frames pair up")
    parser.add_argument("bag", help="ROS 2 bag folder (sqlite3 or MCAP)")
    _add_topic_options(parser)
    parser.set_defaults(run=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    from hand_pose_ros.io.bag_reader import BagError, open_rgbd_bag

    if args.slop_ms <= 0:
        raise CommandError(f"--slop-ms must be > 0, got {args.slop_ms}")
    try:
        with open_rgbd_bag(
            args.bag,
            color_topic=args.color_topic,
            depth_topic=args.depth_topic or None,
            info_topic=args.info_topic or None,
        ) as reader:
            print(f"bag: {args.bag}")
            for name, msgtype in sorted(reader.topics.items()):
                print(f"  {name}  [{msgtype}]")
            sizes = sorted({
                f"{frame.rgb.shape[1]}x{frame.rgb.shape[0]}"
                for frame in reader.frames(slop_ns=round(args.slop_ms * 1e6))
            })  # fmt: skip
            stats = reader.stats
    except BagError as error:
        raise CommandError(str(error)) from error
    print(f"colour frames: {stats.color_frames} ({', '.join(sizes) or 'none'})")
    print(f"  with depth: {stats.with_depth}, without depth: {stats.without_depth}")
    print(f"depth messages: {stats.depth_messages} (unpaired: {stats.depth_unmatched})")
    print(f"camera_info messages: {stats.camera_infos}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
