"""``hand-pose train``: train a model with the shared trainer.

    hand-pose train --model residual_attention_3d --data synth:DIR [--val-data synth:DIR]
                    --out runs/NAME [--epochs 70 --batch-size 128 --lr 1e-4 ...]
                    [--budget-minutes M] [--max-steps N] [--resume] [--device auto]
                    [--init-from CHECKPOINT [--reinit REGEX]]
                    [--optimizer adam|adamw] [--lr-schedule step|cosine] [--warmup-steps N]

The defaults are seed 002's recipe. ``--resume`` continues the run in ``--out``;
``--init-from`` starts a new run from a checkpoint's weights (fine-tuning). Under
``torchrun --nproc_per_node N`` every process runs this command and trains its share
(DistributedDataParallel; gloo on CPU, nccl on GPU).
Without ``--val-data`` the last 5 % of a synthetic set is held out for validation.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hand_pose_ros.cli import CommandError

if TYPE_CHECKING:
    from torch import nn

# The model families the trainer has a task for (the RGB models' tasks come later).
_DEPTH_INPUT = "depth_cube"


def add_train(subparsers: Any) -> None:
    """Register the ``train`` sub-command."""
    parser = subparsers.add_parser("train", help="train a model (seed 002 recipe by default)")
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument("--model-config", type=json.loads, default={}, metavar="JSON",
                        help='constructor overrides, e.g. \'{"embedding": 24}\'; with --init-from, '
                             'on top of its config (\'{"loss": "joint_distance"}\')')  # fmt: skip
    parser.add_argument("--data", required=True, metavar="KIND:PATH",
                        help="synth:DIR | msra:PATH | icvl:PATH | nyu:PATH")  # fmt: skip
    parser.add_argument(
        "--val-data", metavar="KIND:PATH",
        help="validation set (default: the last 5%% of a synthetic --data)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--epochs", type=int, default=70)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--weight-decay", type=float, default=3e-4, help="L2 penalty")
    parser.add_argument("--lr-drop-epochs", type=float, nargs="*", default=[30.0],
                        help="epochs after which the learning rate is divided by 10")  # fmt: skip
    parser.add_argument("--lr-schedule", choices=("step", "cosine"), default="step",
                        help="step: the drops above; cosine: to 0 over --epochs")  # fmt: skip
    parser.add_argument("--warmup-steps", type=int, default=0,
                        help="raise the learning rate linearly over this many steps")  # fmt: skip
    parser.add_argument("--optimizer", choices=("adam", "adamw"), default="adam",
                        help="adam: L2 in the gradient (paper); adamw: decoupled")  # fmt: skip
    parser.add_argument("--init-from", type=Path, metavar="CHECKPOINT",
                        help="start from these weights (a new run, not --resume)")  # fmt: skip
    parser.add_argument("--reinit", metavar="REGEX",
                        help="with --init-from: tensors matching it start fresh")  # fmt: skip
    parser.add_argument("--budget-minutes", type=float, help="stop after this much training")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps")
    parser.add_argument("--val-every", type=int, default=0, metavar="STEPS",
                        help="validate every STEPS steps (default: every epoch)")  # fmt: skip
    parser.add_argument("--no-augment", action="store_true",
                        help="no rotation, scale or shift of the crops")  # fmt: skip
    parser.add_argument("--rotation-deg", type=float, metavar="DEG",
                        help="in-plane rotation of the crops, drawn from +-DEG (default 30; "
                             "180: every way round)")  # fmt: skip
    parser.add_argument("--surface-noise-mm", type=float, default=0.0, metavar="MM",
                        help="extra noise on the crops' measured pixels, its standard "
                             "deviation drawn per crop from [0, MM] (default: none)")  # fmt: skip
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: autocast forward (faster with AVX-512 BF16)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0, help="data loader processes")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:K")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=_run_train)


def _augment_config(rotation_deg: float | None, surface_noise_mm: float) -> Any:
    from hand_pose_ros.training.augment import DepthAugmentConfig

    ranges: dict[str, float] = {"surface_noise_m": surface_noise_mm / 1000.0}
    if rotation_deg is not None:
        ranges["rotation_deg"] = rotation_deg
    return DepthAugmentConfig(**ranges)


def _run_train(args: argparse.Namespace) -> int:
    from hand_pose_ros.models.registry import ModelError
    from hand_pose_ros.training import distributed
    from hand_pose_ros.training.augment import AugmentError
    from hand_pose_ros.training.depth_data import DataError, DepthCropSet
    from hand_pose_ros.training.sources import open_crop_source, split_off
    from hand_pose_ros.training.tasks import DepthPoseTask
    from hand_pose_ros.training.trainer import TrainConfig, Trainer, TrainError

    try:
        config = TrainConfig(
            epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
            weight_decay=args.weight_decay, lr_drop_epochs=tuple(args.lr_drop_epochs),
            budget_minutes=args.budget_minutes, max_steps=args.max_steps,
            val_every_steps=args.val_every, seed=args.seed, num_workers=args.workers,
            precision=args.precision, optimizer=args.optimizer, lr_schedule=args.lr_schedule,
            warmup_steps=args.warmup_steps,
        )  # fmt: skip
        if args.no_augment and (args.rotation_deg is not None or args.surface_noise_mm):
            raise CommandError("--no-augment takes no --rotation-deg or --surface-noise-mm")
        augment = (
            None if args.no_augment else _augment_config(args.rotation_deg, args.surface_noise_mm)
        )
        model, started_from = _initial_model(args)
    except (TrainError, ModelError, AugmentError, TypeError) as error:
        raise CommandError(str(error)) from error
    if model.spec.input_kind != _DEPTH_INPUT:  # type: ignore[union-attr]
        raise CommandError(
            f"{args.model} takes {model.spec.input_kind} input; `hand-pose train` trains the "  # type: ignore[union-attr]
            "depth models so far"
        )
    if args.out.exists() and any(args.out.iterdir()) and not args.resume:
        raise CommandError(f"{args.out} is not empty: pick a new --out, or pass --resume")
    try:
        source = open_crop_source(args.data)
        if args.val_data:
            train_crops, val_crops = source.crops, open_crop_source(args.val_data).crops
        elif args.data.startswith("synth:"):
            train_crops, val_crops = split_off(source.crops, 0.05)  # type: ignore[arg-type]
        else:
            raise CommandError("--val-data is needed for a public dataset (e.g. its test split)")
    except DataError as error:
        raise CommandError(str(error)) from error
    train_set = DepthCropSet(train_crops, augment=augment, seed=args.seed)
    val_set = DepthCropSet(val_crops)

    worker = distributed.start(args.device)
    describe = {
        "command": "hand-pose " + shlex.join(sys.argv[1:]) if sys.argv else None,
        "data": {"train": args.data, "validation": args.val_data or "last 5% of --data",
                 "train_samples": len(train_set), "validation_samples": len(val_set),
                 "augment": None if augment is None else augment.__dict__,
                 "synth": _synth_manifest(args.data)},
    }  # fmt: skip
    if started_from is not None:
        describe["init_from"] = started_from
    try:
        trainer = Trainer(model, DepthPoseTask(), train_set, val_set, config, args.out,
                          worker=worker, describe=describe, progress=not args.quiet)  # fmt: skip
        result = trainer.fit(resume=args.resume, prepare=started_from is None)
    except (TrainError, DataError) as error:
        raise CommandError(str(error)) from error
    finally:
        distributed.stop(worker)
    if worker.is_main:
        print(
            f"trained {result.steps} steps ({result.epochs_done:.2f} epochs) in "
            f"{result.seconds / 60:.1f} min; best validation {DepthPoseTask.metric} "
            f"{result.best_metric:.2f}: {result.best_path}"
        )
    return 0


def _initial_model(args: argparse.Namespace) -> tuple[nn.Module, dict[str, Any] | None]:
    """The model with its seeded initial weights, or those of ``--init-from`` (whose config
    it takes, ``--model-config``'s keys on top); and what the warm start records. With
    ``--resume`` as well, the run's own weights replace them later, and ``--init-from`` only
    keeps the record of where the run began."""
    import torch

    from hand_pose_ros.models import build_model
    from hand_pose_ros.models.checkpoint import CheckpointError, read_metadata
    from hand_pose_ros.training.warm_start import WarmStartError, warm_start, warm_start_record

    if args.reinit and not args.init_from:
        raise CommandError("--reinit needs --init-from")
    config = dict(args.model_config)
    if args.init_from:  # the checkpoint's config, with --model-config's keys on top
        try:
            config = {**read_metadata(args.init_from)["config"], **config}
        except CheckpointError as error:
            raise CommandError(str(error)) from error
    torch.manual_seed(args.seed)  # the initial weights
    model = build_model(args.model, **config)
    if not args.init_from:
        return model, None
    try:
        if args.resume:  # the weights come from the run; the record still says where it began
            return model, warm_start_record(model, args.init_from, reinit=args.reinit)
        return model, warm_start(model, args.init_from, reinit=args.reinit)
    except WarmStartError as error:
        raise CommandError(str(error)) from error


def _synth_manifest(spec: str) -> dict[str, Any] | None:
    """A synthetic set's generation settings (seed, count, the whole SynthConfig), so the
    checkpoint says what world its training data came from."""
    if not spec.startswith("synth:"):
        return None
    from hand_pose_ros.synth.shards import read_manifest

    keep = ("kind", "count", "seed", "crop_kinds", "version", "config")
    folders = spec.partition(":")[2].split(",")
    manifests = [read_manifest(folder) for folder in folders]
    described = {key: manifests[0].get(key) for key in keep}
    if len(manifests) > 1:  # several sets of one world: their seeds and counts
        described["seed"] = [m.get("seed") for m in manifests]
        described["count"] = [m.get("count") for m in manifests]
        configs = {json.dumps(m.get("config"), sort_keys=True) for m in manifests}
        if len(configs) > 1:
            described["config"] = [m.get("config") for m in manifests]
    return described
