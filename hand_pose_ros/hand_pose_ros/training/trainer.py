"""One trainer for every model: Adam or AdamW, step drops or a cosine learning rate,
periodic validation, the best checkpoint kept, resumable, deterministic for a seed, and
data-parallel under torchrun.

What is model- or data-specific comes from a ``Task`` (``training/tasks.py``): how a batch
becomes the model's targets, how the model is prepared from the training set (e.g. the PCA
prior), and the validation metric the best checkpoint is chosen by.

Files in the output folder:
    best.safetensors     the checkpoint with the best validation metric (``load_model``)
    last.safetensors     the latest validated checkpoint
    resume.safetensors   everything needed to continue (``--resume``), no pickle
    history.json         one entry per validation: step, epoch, losses, metric, lr, time
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from hand_pose_ros.models.checkpoint import save_checkpoint
from hand_pose_ros.training import distributed
from hand_pose_ros.training.distributed import Worker
from hand_pose_ros.training.resume import load_resume, save_resume
from hand_pose_ros.training.tasks import Task

PRECISIONS = ("fp32", "bf16")
OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("step", "cosine")


class TrainError(RuntimeError):
    """Training settings or files that do not work; the message says why."""


@dataclass
class TrainConfig:
    """The recipe. Defaults are seed 002's: Adam 1e-4, batch 128, L2 3e-4, learning rate / 10
    after 30 epochs, 70 epochs.

    Attributes:
        budget_minutes, max_steps: stop early (whichever comes first); the schedule stays
            the one of ``epochs``, so shorten ``epochs`` and ``lr_drop_epochs`` with them.
        val_every_steps: validate every so many steps (0: at the end of each epoch).
        resume_every_steps: write the resume file this often (and at every validation).
        num_workers: data loader processes (0: load in the training process).
        precision: "fp32", or "bf16" autocast for the forward pass (weights, optimiser and
            validation stay fp32): faster on CPUs with AVX-512 BF16.
        channels_last: image models in NHWC memory layout (oneDNN's fast path on CPU:
            faster than NCHW for residual_attention_3d); the numbers are the same.
        optimizer: "adam" adds the L2 penalty to the gradient (the paper's recipe); "adamw"
            decays the weights apart from the gradient (Loshchilov and Hutter). Under Adam an
            L2 gradient larger than a weight's loss gradient moves it towards zero by about
            the learning rate every step, whatever its size; that silenced the attention
            masks of residual_attention_3d (docs/eval/residual_attention_3d.md).
        lr_schedule: "step" divides by ``lr_drop_factor`` at each of ``lr_drop_epochs``;
            "cosine" falls from ``learning_rate`` to 0 over ``epochs``.
        warmup_steps: the learning rate rises linearly from 0 over this many steps (e.g.
            when fine-tuning with a fresh optimiser state).
    """

    epochs: int = 70
    batch_size: int = 128
    learning_rate: float = 1e-4
    weight_decay: float = 3e-4
    lr_drop_epochs: tuple[float, ...] = (30.0,)
    lr_drop_factor: float = 0.1
    budget_minutes: float | None = None
    max_steps: int | None = None
    val_every_steps: int = 0
    resume_every_steps: int = 200
    seed: int = 0
    num_workers: int = 0
    precision: str = "fp32"
    channels_last: bool = True
    optimizer: str = "adam"
    lr_schedule: str = "step"
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise TrainError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.optimizer not in OPTIMIZERS:
            raise TrainError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise TrainError(
                f"learning-rate schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}"
            )
        if self.warmup_steps < 0:
            raise TrainError(f"warm-up steps must be >= 0, got {self.warmup_steps}")
        if self.epochs < 1 or self.batch_size < 1:
            raise TrainError(
                f"epochs and batch size must be >= 1: {self.epochs}, {self.batch_size}"
            )
        if not self.learning_rate > 0 or self.weight_decay < 0:
            raise TrainError("learning rate must be > 0 and weight decay >= 0")
        if self.budget_minutes is not None and not self.budget_minutes > 0:
            raise TrainError(f"budget must be > 0 minutes, got {self.budget_minutes}")
        if self.max_steps is not None and self.max_steps < 1:
            raise TrainError(f"max steps must be >= 1, got {self.max_steps}")


@dataclass
class TrainResult:
    """What a run left behind."""

    out_dir: Path
    steps: int
    epochs_done: float
    seconds: float
    best_metric: float
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best_path(self) -> Path:
        return self.out_dir / "best.safetensors"


def learning_rate_at(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The schedule as a pure function of the step (so resuming needs no state)."""
    epoch = step / max(steps_per_epoch, 1)
    if config.lr_schedule == "cosine":
        done = min(epoch / config.epochs, 1.0)
        rate = config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * done))
    else:
        drops = sum(1 for milestone in config.lr_drop_epochs if epoch >= milestone)
        rate = config.learning_rate * config.lr_drop_factor**drops
    if step < config.warmup_steps:
        rate *= (step + 1) / config.warmup_steps
    return rate


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Adam with an L2 penalty in the gradient, or AdamW with decoupled weight decay."""
    kind = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return kind(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)


class _EpochSampler(Sampler[int]):
    """Exactly these indices, in this order (``Trainer._train_loader`` picks the rank's share
    of a seeded permutation and drops the batches a resumed epoch has done)."""

    def __init__(self, indices: Sequence[int]) -> None:
        self.indices = list(indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class Trainer:
    """Train ``model`` on ``train_set``, validating on ``val_set``; see the module doc.

    Args:
        describe: what the checkpoints' metadata records under ``training``: the command,
            the data, anything else JSON-able (the trainer adds the recipe, seed, time and
            hardware).
    """

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        train_set: Dataset,
        val_set: Dataset,
        config: TrainConfig,
        out_dir: str | Path,
        *,
        worker: Worker | None = None,
        describe: dict[str, Any] | None = None,
        progress: bool = True,
    ) -> None:
        self.model = model
        self.task = task
        self.train_set = train_set
        self.val_set = val_set
        self.config = config
        self.out_dir = Path(out_dir)
        self.worker = worker or Worker(0, 1, 0, torch.device("cpu"))
        self.describe = dict(describe or {})
        self.progress = progress
        if len(train_set) < self.worker.world_size * config.batch_size:  # type: ignore[arg-type]
            raise TrainError(
                f"{len(train_set)} training samples are fewer than one batch of "  # type: ignore[arg-type]
                f"{config.batch_size} per process ({self.worker.world_size} processes)"
            )

    # ------------------------------------------------------------------ the loop

    def fit(self, *, resume: bool = False, prepare: bool = True) -> TrainResult:
        """Train until the epochs or the budget run out.

        Args:
            resume: continue the run in ``out_dir`` (weights, optimiser, progress).
            prepare: let the task set the model up from the training set first (e.g. the
                PCA prior); off for a model that starts from trained weights.
        """
        config, worker = self.config, self.worker
        torch.manual_seed(config.seed)
        model = self.model.to(worker.device)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        optimizer = make_optimizer(config, model)
        progress: dict[str, Any] = {
            "step": 0, "epoch": 0, "batches_done": 0, "best_metric": math.inf,
            "history": [], "seconds": 0.0,
        }  # fmt: skip
        resume_path = self.out_dir / "resume.safetensors"
        if resume:
            if not resume_path.is_file():
                raise TrainError(f"--resume: {resume_path} does not exist")
            progress.update(load_resume(resume_path, model, optimizer))
        elif prepare:
            self.task.prepare(model, self.train_set)
        trained: nn.Module = model
        if worker.distributed:
            ids = [worker.device.index] if worker.device.type == "cuda" else None
            trained = nn.parallel.DistributedDataParallel(model, device_ids=ids)

        per_rank = len(self.train_set) // worker.world_size  # type: ignore[arg-type]
        steps_per_epoch = per_rank // config.batch_size  # drop the last partial batch
        started = time.monotonic() - float(progress["seconds"])
        running: list[float] = []
        stop = False
        while progress["epoch"] < config.epochs and not stop:
            loader = self._train_loader(progress["epoch"], progress["batches_done"])
            bar = self._bar(progress, steps_per_epoch)
            for batch in loader:
                lr = learning_rate_at(config, progress["step"], steps_per_epoch)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                trained.train()
                inputs = self._inputs(batch)
                targets = self.task.targets(model, batch, worker.device)
                with torch.autocast(worker.device.type, dtype=torch.bfloat16,
                                    enabled=config.precision == "bf16"):  # fmt: skip
                    output = trained(inputs)
                loss = model.loss(output.float(), targets)  # type: ignore[operator]
                if not torch.isfinite(loss):
                    raise TrainError(f"loss became {loss.item()} at step {progress['step']}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                running.append(float(loss.item()))
                progress["step"] += 1
                progress["batches_done"] += 1
                progress["seconds"] = time.monotonic() - started
                if bar is not None:
                    bar.update(1)
                    loss_text = f"{np.mean(running[-20:]):.4g}"
                    bar.set_postfix(loss=loss_text, lr=f"{lr:.1e}", refresh=False)
                out_of_time = self._out_of_budget(progress)
                stop = distributed.broadcast_flag(worker, out_of_time)
                due = config.val_every_steps and progress["step"] % config.val_every_steps == 0
                if due or stop:
                    self._validate(model, optimizer, progress, running, steps_per_epoch)
                    running = []
                elif progress["step"] % config.resume_every_steps == 0:
                    self._save_resume(model, optimizer, progress)
                if stop:
                    break
            if bar is not None:
                bar.close()
            if not stop:
                progress["epoch"] += 1
                progress["batches_done"] = 0
                if not config.val_every_steps or progress["epoch"] == config.epochs:
                    self._validate(model, optimizer, progress, running, steps_per_epoch)
                    running = []
        distributed.barrier(worker)
        epochs_done = progress["epoch"] + progress["batches_done"] / max(steps_per_epoch, 1)
        return TrainResult(self.out_dir, progress["step"], epochs_done, progress["seconds"],
                           progress["best_metric"], progress["history"])  # fmt: skip

    def _train_loader(self, epoch: int, skip_batches: int) -> DataLoader:
        """This rank's share of a seeded permutation of the epoch, minus batches done."""
        count = len(self.train_set)  # type: ignore[arg-type]
        generator = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        order = torch.randperm(count, generator=generator).tolist()
        world = self.worker.world_size
        per_rank = count // world
        mine = order[self.worker.rank : per_rank * world : world]
        mine = mine[skip_batches * self.config.batch_size :]
        set_epoch = getattr(self.train_set, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)
        return DataLoader(
            self.train_set,
            batch_size=self.config.batch_size,
            sampler=_EpochSampler(mine),
            drop_last=True,
            num_workers=self.config.num_workers,
            pin_memory=self.worker.device.type == "cuda",
        )

    def _inputs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = batch["input"].to(self.worker.device, non_blocking=True)
        if self.config.channels_last and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return inputs

    def _bar(self, progress: dict[str, Any], steps_per_epoch: int) -> Any:
        if not (self.progress and self.worker.is_main):
            return None
        from tqdm import tqdm

        return tqdm(
            total=steps_per_epoch,
            initial=progress["batches_done"],
            desc=f"epoch {progress['epoch'] + 1}/{self.config.epochs}",
            unit="step",
            file=sys.stderr,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,
            dynamic_ncols=True,
        )

    def _out_of_budget(self, progress: dict[str, Any]) -> bool:
        config = self.config
        if config.max_steps is not None and progress["step"] >= config.max_steps:
            return True
        minutes = progress["seconds"] / 60.0
        return config.budget_minutes is not None and minutes >= config.budget_minutes

    # ------------------------------------------------------------------ validation, files

    def _validate(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        progress: dict[str, Any],
        running: list[float],
        steps_per_epoch: int,
    ) -> None:
        if self.worker.is_main:
            metrics = self.evaluate(model)
            entry = {
                "step": progress["step"],
                "epoch": round(progress["epoch"] + progress["batches_done"] / steps_per_epoch, 3),
                "train_loss": float(np.mean(running)) if running else None,
                **metrics,
                "lr": learning_rate_at(self.config, max(progress["step"] - 1, 0), steps_per_epoch),
                "seconds": round(progress["seconds"], 1),
            }
            progress["history"].append(entry)
            metric = float(metrics[self.task.metric])
            improved = metric < progress["best_metric"]
            if improved:
                progress["best_metric"] = metric
            self._save_checkpoints(model, progress, metrics, improved)
            self._save_resume(model, optimizer, progress)
            print(
                f"step {entry['step']} (epoch {entry['epoch']}): "
                + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
                + (" (best)" if improved else ""),
                file=sys.stderr,
            )
        distributed.barrier(self.worker)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Validation loss and the task's metrics over the whole validation set."""
        was_training = model.training
        model.eval()
        loader = DataLoader(self.val_set, batch_size=self.config.batch_size,
                            num_workers=self.config.num_workers)  # fmt: skip
        totals: dict[str, float] = {}
        count = 0
        for batch in loader:
            inputs = self._inputs(batch)
            output = model(inputs)
            targets = self.task.targets(model, batch, self.worker.device)
            size = len(inputs)
            loss = float(model.loss(output, targets))  # type: ignore[operator]
            totals["val_loss"] = totals.get("val_loss", 0.0) + loss * size
            for name, value in self.task.batch_metrics(model, output, batch).items():
                totals[name] = totals.get(name, 0.0) + value * size
            count += size
        model.train(was_training)
        return {name: total / max(count, 1) for name, total in totals.items()}

    def _save_checkpoints(
        self, model: nn.Module, progress: dict[str, Any], metrics: dict[str, float], best: bool
    ) -> None:
        training = {
            **self.describe,
            "seed": self.config.seed,
            "recipe": asdict(self.config),
            "step": progress["step"],
            "epochs_done": progress["epoch"],
            "train_seconds": round(progress["seconds"], 1),
            "hardware": hardware_description(self.worker),
            "processes": self.worker.world_size,
        }
        save_checkpoint(
            self.out_dir / "last.safetensors", model, training=training, metrics=metrics
        )
        if best:
            save_checkpoint(self.out_dir / "best.safetensors", model, training=training,
                            metrics=metrics)  # fmt: skip
        (self.out_dir / "history.json").write_text(json.dumps(progress["history"], indent=1))

    def _save_resume(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, progress: dict[str, Any]
    ) -> None:
        if self.worker.is_main:
            save_resume(self.out_dir / "resume.safetensors", model, optimizer,
                        dict(progress, recipe=asdict(self.config)))  # fmt: skip


def hardware_description(worker: Worker) -> str:
    """A line naming the processor or GPU and the thread count, for the checkpoint."""
    if worker.device.type == "cuda":
        return f"{torch.cuda.get_device_name(worker.device)} (CUDA), x{worker.world_size}"
    return f"CPU {_cpu_name()}, {torch.get_num_threads()} threads, x{worker.world_size} processes"


def _cpu_name() -> str:
    """The processor's model name (Linux /proc/cpuinfo), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
