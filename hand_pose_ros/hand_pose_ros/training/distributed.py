"""Data-parallel training under ``torchrun``: who this process is and how it talks.

``torchrun --nproc_per_node N hand-pose train ...`` starts N copies with RANK, WORLD_SIZE
and LOCAL_RANK set; each joins one process group (gloo on CPU, nccl on GPUs), wraps the
model in DistributedDataParallel and reads its own share of every epoch. Without those
variables (a plain ``hand-pose train``) everything here is a no-op for one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Worker:
    """This process's place: ``rank`` of ``world_size``; ``device`` it trains on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """The process that validates, logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' (a GPU when there is one), 'cpu', 'cuda' or 'cuda:K'."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"--device {name}: no CUDA device is available here")
        if name == "cuda":
            return torch.device("cuda", local_rank)
    return torch.device(name)


def start(device: str = "auto") -> Worker:
    """Join the process group torchrun describes (if any) and pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = pick_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if chosen.type == "cuda" else "gloo"
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
        dist.init_process_group(backend=backend)
    return Worker(rank, world_size, local_rank, chosen)


def barrier(worker: Worker) -> None:
    if worker.distributed:
        dist.barrier()


def broadcast_flag(worker: Worker, flag: bool) -> bool:
    """``flag`` as the main process has it (e.g. "out of time": every rank stops together)."""
    if not worker.distributed:
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int64)
    if worker.device.type == "cuda":
        value = value.to(worker.device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def stop(worker: Worker) -> None:
    if worker.distributed and dist.is_initialized():
        dist.destroy_process_group()
