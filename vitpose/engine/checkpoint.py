"""Resumable training state: everything needed to continue a run bit-identically.

The state file lives in the run's *work directory* (`work/<scale>/<run>/last.pth`), which is not a
declared output, so Snakemake / DVC deleting outputs before a re-run does not lose progress. The
released-format weights (the declared output) are exported separately by the trainer through
`vitpose.models.checkpoint.save_vitpose_checkpoint`.

Contents: model, optimizer and scheduler state, the fp16 gradient scaler's state (when one is used),
the epoch and global iteration reached, the RNG states of python / numpy / torch (and CUDA), and
`extra` (data seed, config hash, ...). Everything is stored as tensors or plain Python values so it
loads with `torch.load(weights_only=True)`.

Writes go through `atomic_torch_save` (temporary file + fsync + rename: a kill or a full disk leaves
the previous state intact, and a refused write is an OutputError naming `last.pth`); reads through
`read_torch_file`, so a truncated file or one holding pickled code gets a message naming it and
what to do (`RESUME_HINT`).
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vitpose.models.checkpoint import read_torch_file
from vitpose.utils.errors import CheckpointError
from vitpose.utils.io import atomic_torch_save

STATE_FORMAT = "vitpose-train-state/1"
# What to do about an unusable state; `--no-resume` is the finetune stage's flag (stages/finetune.py).
RESUME_HINT = "start over with --no-resume (python -m stages.finetune) or delete {work_dir}"


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DDP / DataParallel wrappers."""
    return model.module if hasattr(model, "module") else model


def capture_rng_state() -> dict[str, Any]:
    """RNG states of python `random`, numpy's global generator, torch CPU (and CUDA, if used)."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": np_state["bit_generator"],
            "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
            "has_gauss": np_state["has_gauss"],
            "gauss": np_state["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    epoch: int,
    iteration: int,
    extra: dict[str, Any] | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> None:
    """Write the training state atomically (a crash mid-write leaves the previous file intact).

    epoch: the epoch in progress (== completed epochs when saved at an epoch boundary);
    iteration: optimizer steps completed since the start of training;
    scaler: the fp16 loss scaler, saved when enabled (its scale is part of exact resume).
    Raises OutputError naming `path` when the file system refuses the write.
    """
    state = {
        "format": STATE_FORMAT,
        "epoch": int(epoch),
        "iteration": int(iteration),
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": capture_rng_state(),
        "extra": dict(extra or {}),
    }
    if scaler is not None and scaler.is_enabled():
        state["scaler"] = scaler.state_dict()
    atomic_torch_save(path, state)


def load_state(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    restore_rng: bool = True,
    map_location: str | torch.device = "cpu",
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, Any]:
    """Load a state written by `save_state` into the given objects.

    Returns {"epoch", "iteration", "extra", "rng"}. Raises CheckpointError naming the file when it
    is missing, truncated or corrupt, holds pickled code, is not a training state or does not fit
    the model; the unreadable cases say how to start over.
    """
    path = Path(path)
    hint = RESUME_HINT.format(work_dir=path.parent)
    if not path.is_file():
        raise CheckpointError(f"{path}: training state not found")
    state = read_torch_file(path, "training state", hint=hint, map_location=map_location)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: expected a training state with format {STATE_FORMAT!r}; {hint}")
    try:
        unwrap(model).load_state_dict(state["model"], strict=True)
    except RuntimeError as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines()[1:3])[:300]  # after the title
        raise CheckpointError(f"{path}: model weights do not match the configured model ({detail}); "
                              f"{hint}") from exc
    if optimizer is not None:
        try:
            optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as exc:  # another parameter grouping (model or optimizer rule)
            raise CheckpointError(f"{path}: optimizer state does not match the configured optimizer "
                                  f"({exc}); {hint}") from exc
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    if restore_rng:
        restore_rng_state(state["rng"])
    return {k: state[k] for k in ("epoch", "iteration", "extra", "rng")}
