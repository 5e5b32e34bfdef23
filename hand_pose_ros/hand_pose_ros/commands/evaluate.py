"""``hand-pose eval``: a depth model's accuracy on a labelled set, in seed 002's metrics.

    hand-pose eval --checkpoint PATH --data synth:DIR|msra:PATH|icvl:PATH|nyu:PATH[:test]
                   --out REPORT_DIR [--center truth|localise [--refine-passes N]]
                   [--baseline-data KIND:PATH] [--views single|mirror|turns|six]
    hand-pose eval-real --checkpoint PATH --frames DIR --intrinsics FX FY CX CY
                   --depth-unit-m U --out SHEET.png [--views ...] [--input-noise-mm SIGMA]
                   [--seed S]
    hand-pose eval-real --checkpoint PATH --synthetic COUNT [--config YAML] [--seed S]
                   --out SHEET.png [--views ...] [--input-noise-mm SIGMA]

``--views`` averages the model over turned and mirrored views of each crop
(``inference/depth_views.py``); the default is the single plain view.

``eval --center localise`` scores public frames through the pipeline the tracker runs: the
localiser, then the refinement passes (``inference/refinement.py``), and the model on the
last pass's crop; the cube is the dataset's customary one.

``eval-real`` runs the whole depth pipeline (localiser, crop, model) on unlabelled 16-bit
depth PNGs, prints the share of predicted keypoints that fall on the hand's pixels
(``evaluation/real_frames.py``) and draws the skeletons over the depth images. With
``--synthetic`` it runs the same check on rendered frames and scores the ground truth as
well, which calibrates the check (``evaluation/synthetic_check.py``). ``--input-noise-mm``
adds Gaussian noise to the depth the pipeline sees (``evaluation/input_noise.py``), to probe
how the model depends on the sensor's surface noise; ``--seed`` seeds that noise (and the
synthetic scenes).

Writes REPORT_DIR/report.md, metrics.json and the two figures of the paper (per-joint
mean error; fraction of frames whose worst joint is within a threshold, 0-80 mm) for the
model and for the baseline that predicts the training set's mean pose at each crop centre.
The mean pose is the model's PCA prior mean (the mean of its training poses) unless
``--baseline-data`` names the training set to average.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

from hand_pose_ros.cli import CommandError


def add_evaluate(subparsers: Any) -> None:
    """Register the ``eval`` sub-command."""
    from hand_pose_ros.inference.refinement import DEFAULT_REFINE_PASSES

    parser = subparsers.add_parser("eval", help="a depth model's 3D joint error on a labelled set")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", required=True, metavar="KIND:PATH",
                        help="synth:DIR | msra:PATH | icvl:PATH | nyu:PATH[:test]")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument(
        "--center", choices=("truth", "localise"), default="truth",
        help="public frames: centre the cube on the labelled joints (the usual protocol) or "
             "where the localiser finds the hand (the whole pipeline)",
    )  # fmt: skip
    parser.add_argument("--refine-passes", type=int, metavar="N",
                        help=f"with --center localise: refinement passes after the "
                             f"localiser's crop (default {DEFAULT_REFINE_PASSES})")  # fmt: skip
    parser.add_argument("--baseline-data", metavar="KIND:PATH",
                        help="training set whose mean pose is the baseline")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch")
    parser.add_argument("--title", help="report title")
    _add_views(parser)
    parser.set_defaults(run=_run_evaluate)

    parser = subparsers.add_parser(
        "eval-real", help="the depth pipeline on unlabelled depth PNGs: keypoints on the hand?"
    )
    parser.add_argument("--checkpoint", type=Path, required=True)
    frames = parser.add_mutually_exclusive_group(required=True)
    frames.add_argument("--frames", type=Path, help="folder of 16-bit PNGs")
    frames.add_argument("--synthetic", type=int, metavar="COUNT",
                        help="instead: COUNT synthetic frames, scoring the truth too")  # fmt: skip
    parser.add_argument("--intrinsics", type=float, nargs=4,
                        metavar=("FX", "FY", "CX", "CY"), help="with --frames")  # fmt: skip
    parser.add_argument("--config", type=Path,
                        help="with --synthetic: the world's YAML overrides")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the synthetic scenes and the input noise")  # fmt: skip
    parser.add_argument("--input-noise-mm", type=float, metavar="SIGMA",
                        help="add N(0, SIGMA mm) to every measured depth pixel before the "
                             "pipeline (a probe: is the model used to noisier surfaces?); "
                             "scored against the clean frame")  # fmt: skip
    parser.add_argument("--depth-unit-m", type=float,
                        help="with --frames: metres per PNG unit (default 0.001; "
                             "SR305: 0.000125)")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="contact sheet PNG to write")
    _add_views(parser)
    parser.add_argument("--refine-passes", type=int, default=DEFAULT_REFINE_PASSES, metavar="N",
                        help="re-cut each crop at the prediction's keypoint centroid "
                             "and predict again, N times (default: %(default)s)")  # fmt: skip
    parser.set_defaults(run=_run_evaluate_real)


def _add_views(parser: Any) -> None:
    from hand_pose_ros.inference.depth_views import VIEW_SETS

    parser.add_argument("--views", choices=tuple(VIEW_SETS), default="single",
                        help="test-time views averaged per crop (default: single)")  # fmt: skip


def _run_evaluate(args: argparse.Namespace) -> int:
    from hand_pose_ros.evaluation import pose_metrics, write_report
    from hand_pose_ros.inference import InferenceError, ModelRunner
    from hand_pose_ros.inference.depth_views import view_set
    from hand_pose_ros.inference.refinement import DEFAULT_REFINE_PASSES, MAX_REFINE_PASSES
    from hand_pose_ros.models.checkpoint import CheckpointError, read_metadata
    from hand_pose_ros.training.depth_data import DataError
    from hand_pose_ros.training.sources import open_crop_source

    try:
        runner = ModelRunner.from_checkpoint(args.checkpoint, backend=args.backend)
        metadata = read_metadata(args.checkpoint)
    except (CheckpointError, InferenceError) as error:
        raise CommandError(str(error)) from error
    if runner.spec.input_kind != "depth_cube":
        raise CommandError(f"{runner.architecture} is not a depth model; eval scores those")
    if args.refine_passes is not None and args.center != "localise":
        raise CommandError("--refine-passes: only with --center localise")
    passes = DEFAULT_REFINE_PASSES if args.refine_passes is None else args.refine_passes
    if not 0 <= passes <= MAX_REFINE_PASSES:
        raise CommandError(f"--refine-passes must be in [0, {MAX_REFINE_PASSES}], got {passes}")
    try:
        source = open_crop_source(args.data)
        if args.center == "localise":
            source = _centred_by_pipeline(source, runner, view_set(args.views), passes)
        mean_pose = _mean_pose(args.checkpoint, args.baseline_data)
        predicted, truth, baseline = _predict(
            runner, source.crops, mean_pose, args.batch_size, view_set(args.views)
        )
    except DataError as error:
        raise CommandError(str(error)) from error
    joints = source.evaluation_joints
    results = {
        runner.architecture: pose_metrics(predicted, truth, joints=joints),
        "mean pose (baseline)": pose_metrics(baseline, truth, joints=joints),
    }
    training = metadata.get("training", {})
    notes = [
        f"Command: `hand-pose {shlex.join(sys.argv[1:])}`",
        f"Checkpoint: `{args.checkpoint}` ({runner.architecture}), trained by "
        f"`{training.get('command')}` on {(training.get('data') or {}).get('train')} "
        f"({training.get('train_seconds', 0) / 3600:.2f} h, {training.get('hardware')}).",
        f"Data: `{args.data}`, {len(truth)} crops; cube centre: "
        + (f"the localiser's, then {passes} refinement passes"
           if args.center == "localise" else "the labelled joints' centroid")
        + f"; test-time views: {args.views}.",
        "Baseline: every joint at the training set's mean pose around the crop centre ("
        + ("mean of " + args.baseline_data if args.baseline_data else "the model's PCA prior mean")
        + ").",
    ]
    fallbacks = getattr(source.crops, "fallbacks", 0)
    if fallbacks:
        notes.append(
            f"The localiser found nothing in {fallbacks} frames: those were centred on the joints."
        )
    title = args.title or f"{runner.architecture} on {args.data}"
    paths = write_report(args.out, results, title=title, notes=notes, primary=runner.architecture)
    for name, metrics in results.items():
        print(f"{name}: mean {metrics.mean_mm:.2f} mm, median {metrics.median_mm:.2f} mm over "
              f"{metrics.frames} frames")  # fmt: skip
    print(f"report: {paths['report']}")
    return 0


def _centred_by_pipeline(source: Any, runner: Any, views: Any, passes: int) -> Any:
    """``source`` with each frame's cube where the depth pipeline puts its last crop: the
    localiser's centre, moved by ``passes`` refinement passes. ``_predict`` then runs the
    model on that crop, the pipeline's last pass."""
    from dataclasses import replace

    from hand_pose_ros.inference.depth_hands import DepthHandEstimator
    from hand_pose_ros.inference.refinement import refined_center
    from hand_pose_ros.localise import LocaliserConfig, locate_hands
    from hand_pose_ros.training.depth_data import FrameCrops

    if not isinstance(source.crops, FrameCrops):
        raise CommandError("--center localise needs a public dataset's frames: synthetic "
                           "crops are cut already")  # fmt: skip
    cube_m = source.crops.cube_m
    localiser = LocaliserConfig(cube_m=cube_m)
    # The passes before the last: the estimator's answer gives the last crop's centre.
    estimator = DepthHandEstimator(runner, localiser=localiser, views=views,
                                   refine_passes=max(passes - 1, 0))  # fmt: skip

    def locate(depth: np.ndarray, camera: Any) -> np.ndarray | None:
        if passes == 0:
            found = locate_hands(depth, camera, localiser)
            return found[0].center_xyz if found else None
        hands = estimator.estimate(depth, camera)
        if not hands:
            return None
        hand = hands[0]
        return refined_center(hand.result.xyz, hand.cube.center_xyz,
                              hand.location.center_xyz, cube_m)  # fmt: skip

    return replace(source, crops=FrameCrops(source.crops.frames, locate=locate, cube_m=cube_m))


def _mean_pose(checkpoint: Path, baseline_data: str | None) -> np.ndarray:
    """(21, 3) the training set's mean pose in half-cube units."""
    if baseline_data:
        from hand_pose_ros.training.sources import open_crop_source
        from hand_pose_ros.training.tasks import training_poses

        return training_poses(open_crop_source(baseline_data).crops, limit=50_000).mean(axis=0)
    from safetensors import safe_open

    with safe_open(str(checkpoint), framework="np") as handle:
        if "prior_mean" not in handle.keys():
            raise CommandError("the model has no PCA prior mean: pass --baseline-data")
        return np.asarray(handle.get_tensor("prior_mean"), dtype=np.float64).reshape(21, 3)


def _predict(
    runner: Any, crops: Any, mean_pose: np.ndarray, batch_size: int, views: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted (the mean over ``views``), true and baseline joints (N, 21, 3) in metres,
    camera frame."""
    from tqdm import tqdm

    from hand_pose_ros.inference.depth_views import predict_views

    predicted, truth, baseline = [], [], []
    for start in tqdm(range(0, len(crops), batch_size), desc="eval", unit="batch",
                      file=sys.stderr, mininterval=5.0):  # fmt: skip
        items = [crops.crop(i) for i in range(start, min(start + batch_size, len(crops)))]
        joints, _ = predict_views(runner, np.stack([item[0] for item in items]), views)
        for (_, true_units, cube_m, center), found in zip(items, joints, strict=True):
            half = cube_m / 2.0
            predicted.append(found.reshape(21, 3) * half + center)
            truth.append(np.asarray(true_units, dtype=np.float64) * half + center)
            baseline.append(mean_pose * half + center)
    return np.stack(predicted), np.stack(truth), np.stack(baseline)


def _run_evaluate_real(args: argparse.Namespace) -> int:
    from hand_pose_ros.evaluation.input_noise import NoisyInput
    from hand_pose_ros.evaluation.real_frames import (
        camera_for,
        check_frame,
        keypoints_on_region,
        load_depth_png,
        render_checks,
    )
    from hand_pose_ros.inference import InferenceError
    from hand_pose_ros.inference.depth_hands import DepthEstimator, DepthHandEstimator
    from hand_pose_ros.inference.depth_views import view_set
    from hand_pose_ros.models.checkpoint import CheckpointError

    # Each mode's options are refused in the other rather than silently ignored.
    synthetic_only = {"--config": args.config}
    frames_only = {"--intrinsics": args.intrinsics, "--depth-unit-m": args.depth_unit_m}
    other, options = ("--frames", frames_only) if args.synthetic is not None else (
        "--synthetic", synthetic_only)  # fmt: skip
    wrong = [name for name, value in options.items() if value is not None]
    if wrong:
        raise CommandError(f"{', '.join(wrong)}: only with {other}")
    if args.synthetic is None and args.intrinsics is None:
        raise CommandError("--frames needs --intrinsics FX FY CX CY")
    if args.synthetic is not None and args.synthetic < 1:
        raise CommandError(f"--synthetic must be at least 1, got {args.synthetic}")
    try:
        estimator: DepthEstimator = DepthHandEstimator.from_checkpoint(
            args.checkpoint, views=view_set(args.views), refine_passes=args.refine_passes
        )
        if args.input_noise_mm is not None:
            estimator = NoisyInput(estimator, args.input_noise_mm / 1000.0, args.seed)
    except (CheckpointError, InferenceError, ValueError) as error:
        raise CommandError(str(error)) from error
    if args.synthetic is not None:
        return _run_synthetic_check(args, estimator)
    paths = sorted(args.frames.rglob("*.png"))
    if not paths:
        raise CommandError(f"no .png files under {args.frames}")
    try:
        mean_pose: np.ndarray | None = _mean_pose(args.checkpoint, None)
    except CommandError:
        mean_pose = None
    unit = 0.001 if args.depth_unit_m is None else args.depth_unit_m
    checks, baseline_on = [], []
    for path in paths:
        try:
            depth = load_depth_png(path, unit)
        except ValueError as error:
            raise CommandError(str(error)) from error
        camera = camera_for(depth, tuple(args.intrinsics))
        name = str(path.relative_to(args.frames))
        check = check_frame(name, depth, estimator.estimate(depth, camera))
        checks.append(check)
        if mean_pose is not None:  # the same check for the mean pose at the same centres
            for hand, region in zip(check.hands, check.regions, strict=True):
                xyz = hand.cube.from_cube_units(mean_pose)
                baseline_on.append(keypoints_on_region(camera.project(xyz), region))
        on = np.concatenate(check.on_hand) if check.on_hand else np.zeros(0, bool)
        print(f"{name}: {len(check.hands)} hand(s), {on.sum()}/{on.size} keypoints on the hand")
    on_all = np.concatenate([np.concatenate(c.on_hand) for c in checks if c.on_hand] or [[]])
    found = sum(1 for c in checks if c.hands)
    share = float(np.mean(on_all)) if on_all.size else float("nan")
    print(f"hands found in {found}/{len(checks)} frames; keypoints on the hand: "
          f"{int(on_all.sum())}/{on_all.size} = {100 * share:.1f}%")  # fmt: skip
    _print_breakdown(checks)
    if baseline_on:
        print(f"(the training set's mean pose at the same centres: "
              f"{100 * float(np.mean(np.concatenate(baseline_on))):.1f}% on the hand)")  # fmt: skip
    print(f"sheet: {render_checks(args.out, checks)}")
    return 0


def _print_breakdown(checks: list[Any]) -> None:
    """The share per recording (sub-folder) and the misses per keypoint: which recordings and
    which joints the total hides."""
    by_folder: dict[str, list[np.ndarray]] = {}
    for check in checks:
        by_folder.setdefault(str(Path(check.name).parent), []).extend(check.on_hand)
    hands = [on for on_list in by_folder.values() for on in on_list]
    if not hands:
        return
    if len(by_folder) > 1:
        for folder, on_list in sorted(by_folder.items()):
            on = np.concatenate(on_list) if on_list else np.zeros(0, bool)
            share = f"{100 * float(np.mean(on)):.1f}%" if on.size else "no hands"
            print(f"  {folder}: {int(on.sum())}/{on.size} = {share}")
    misses = np.sum(~np.stack(hands), axis=0)
    print(f"misses per keypoint: {' '.join(map(str, misses))}")


def _run_synthetic_check(args: argparse.Namespace, estimator: Any) -> int:
    from hand_pose_ros.commands.synth import load_config
    from hand_pose_ros.evaluation.real_frames import render_checks
    from hand_pose_ros.evaluation.synthetic_check import check_synthetic_frames

    result = check_synthetic_frames(estimator, load_config(args.config), args.synthetic, args.seed)
    print(f"{result.scored} hands wholly in the image, {result.found} found")
    if result.found:
        truth = 100 * float(np.mean(result.truth_on))
        predicted = 100 * float(np.mean(result.prediction_on))
        print(f"keypoints on the hand: truth {truth:.1f}%, prediction {predicted:.1f}% "
              f"(mean 3D error {1000 * float(np.mean(result.errors_m)):.1f} mm)")  # fmt: skip
        misses = np.sum(~np.stack(result.prediction_on), axis=0)
        print("prediction's misses per keypoint: " + " ".join(str(int(m)) for m in misses))
    print(f"sheet: {render_checks(args.out, result.checks)}")
    return 0
