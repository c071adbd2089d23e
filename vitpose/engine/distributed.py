"""Process-group helpers: one code path for a single process and for `torchrun` / SLURM jobs.

The launcher (torchrun, or `vitpose.launch` from submitit's job environment) sets the standard
environment variables RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; this module only
reads them, so the engine stays a plain Python function.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vitpose.utils.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}: expected an integer, got {value!r}") from None


def init_from_env(backend: str | None = None) -> DistInfo:
    """Join the process group described by the environment (a no-op when WORLD_SIZE ≤ 1).

    backend: 'nccl' when CUDA is available, else 'gloo' (CPU), unless given.
    Idempotent: a second call returns the existing group's rank and size.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size <= 1:
        return DistInfo(rank=0, world_size=1, local_rank=0)
    if not 0 <= rank < world_size:
        raise ConfigError(f"environment variable RANK: expected 0..{world_size - 1}, got {rank}")
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise ConfigError(f"environment variable {name}: required when WORLD_SIZE={world_size} > 1")
    if not dist.is_initialized():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank)


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0 (or the only process): the one that writes files."""
    return get_rank() == 0


def barrier() -> None:
    if get_world_size() > 1:
        dist.barrier()


def broadcast_object(obj: object, src: int = 0) -> object:
    """Send a picklable object from `src` to every rank (identity in a single process)."""
    if get_world_size() <= 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over ranks (a copy; identity in a single process)."""
    value = value.detach().clone()
    if get_world_size() > 1:
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= get_world_size()
    return value


def cleanup() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
