"""Small, deterministic jobs that check a launcher end to end, and a stage-like command that runs them.

    python -m vitpose.launch.selftest value --seed 3 --launcher slurm      # same result as --launcher local
    python -m vitpose.launch.selftest ddp --work-dir W --launch-set tasks_per_node=2
    python -m vitpose.launch.selftest resume --work-dir W --steps 40       # survives scontrol requeue
    python -m vitpose.launch.selftest fail --message boom                   # exits 1 with the error and log
    python -m vitpose.launch.selftest fail --user-error data/ann.json        # exits 2, naming the file first
    python -m vitpose.launch.selftest kill --signal SIGKILL                  # exits 1: "killed by SIGKILL"

Each prints its result as JSON. On a new site, run them with the site's launch config before paper-scale
jobs. The functions are module-level so that submitit can pickle them by reference.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from vitpose.launch.cli import add_launch_args, guarded_main, launch_config_from_args
from vitpose.launch.ddp import default_backend
from vitpose.launch.runner import run_job
from vitpose.utils.errors import DataError
from vitpose.utils.io import atomic_save, atomic_write_json


def _tiny_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))


def _batch(seed: int, step: int, rank: int = 0, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch that depends only on (seed, step, rank), never on RNG state: resumed runs see the same data.

    Returns x: (size, 8), y: (size, 1).
    """
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step * 101 + rank)
    x = torch.randn(size, 8, generator=gen)
    return x, torch.sin(x.sum(dim=1, keepdim=True))


def weights(model: nn.Module) -> list[list[float]]:
    return [p.detach().flatten().tolist() for p in model.parameters()]


def digest(model: nn.Module) -> str:
    """sha256 of the parameters' bytes: equal digests mean bit-identical weights."""
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def seeded_value(seed: int, steps: int = 20) -> dict[str, Any]:
    """Train the tiny model ``steps`` SGD steps from ``seed``; the result depends on nothing else."""
    torch.set_num_threads(1)  # the same kernels whatever CPUs the job was given
    model = _tiny_model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = torch.zeros(())
    for step in range(steps):
        x, y = _batch(seed, step)
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"seed": seed, "loss": loss.item(), "digest": digest(model)}


def ddp_reference(seed: int, steps: int, world_size: int) -> list[list[float]]:
    """What ``ddp_train`` must reach: one process training on the union of all ranks' batches."""
    torch.set_num_threads(1)
    model = _tiny_model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(steps):
        xs, ys = zip(*(_batch(seed, step, rank) for rank in range(world_size)))
        loss = nn.functional.mse_loss(model(torch.cat(xs)), torch.cat(ys))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return weights(model)


def ddp_train(work_dir: str, seed: int = 0, steps: int = 10) -> dict[str, Any]:
    """Train the tiny model under DDP, one shard per rank; rank 0 writes the weights.

    Ranks start from different seeds on purpose: DDP must broadcast rank 0's parameters and average the
    gradients, or the ranks end with different weights.
    """
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group(backend=default_backend(), init_method="env://")
    try:
        rank, world_size = dist.get_rank(), dist.get_world_size()
        model = DistributedDataParallel(_tiny_model(seed + 1000 * rank))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for step in range(steps):
            x, y = _batch(seed, step, rank)
            loss = nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        digests: list[Any] = [None] * world_size
        dist.all_gather_object(digests, digest(model.module))
        if rank == 0:
            atomic_save(Path(work_dir) / "weights.pt", lambda p: torch.save(model.module.state_dict(), p))
        return {"rank": rank, "world_size": world_size, "backend": dist.get_backend(),
                "digests": digests, "weights": weights(model.module)}
    finally:
        dist.destroy_process_group()


def resumable_train(
    work_dir: str,
    seed: int = 0,
    steps: int = 40,
    save_every: int = 10,
    step_sleep_s: float = 0.0,
    distributed: bool = False,
    shards: int = 1,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Train with the engine's save/resume pattern: state saved atomically in ``work_dir`` every
    ``save_every`` steps and whenever ``should_stop()`` turns True (then return); resume from it on start.

    distributed: DDP over the job's tasks, rank r training on shard r; rank 0 alone writes. Without it, each
        step trains on the union of ``shards`` shards, which DDP over ``shards`` ranks reproduces up to
        floating-point rounding.
    ``work_dir/starts.txt`` gets the step each start resumed from; ``progress.json`` the last step done.
    """
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    rank = 0
    if distributed:
        dist.init_process_group(backend=default_backend(), init_method="env://")
        rank = dist.get_rank()
    try:
        work = Path(work_dir)
        state_path = work / "state.pt"
        model = _tiny_model(seed)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)  # momentum: optimizer state matters
        step = 0
        if state_path.exists():
            state = torch.load(state_path)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            step = state["step"]
        net = DistributedDataParallel(model) if distributed else model
        if rank == 0:
            work.mkdir(parents=True, exist_ok=True)
            with open(work / "starts.txt", "a") as f:
                f.write(f"{step}\n")

        def save() -> None:
            if rank == 0:
                state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step}
                atomic_save(state_path, lambda p: torch.save(state, p))

        while step < steps:
            my_shards = [rank] if distributed else range(shards)
            xs, ys = zip(*(_batch(seed, step, r) for r in my_shards))
            loss = nn.functional.mse_loss(net(torch.cat(xs)), torch.cat(ys))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if rank == 0:
                atomic_write_json(work / "progress.json", {"step": step, "pid": os.getpid()})
            if step % save_every == 0:
                save()
            if should_stop is not None and should_stop():  # a collective under DDP: every rank calls it
                save()
                if distributed:
                    dist.barrier()  # no rank leaves before the state is on disk
                return {"stopped": True, "step": step}
            time.sleep(step_sleep_s)
        starts = [int(s) for s in (work / "starts.txt").read_text().split()] if rank == 0 else []
        return {"stopped": False, "step": step, "digest": digest(model), "weights": weights(model),
                "starts": starts}
    finally:
        if distributed:
            dist.destroy_process_group()


def fail(message: str) -> None:
    """A job that fails with ``message``."""
    raise RuntimeError(message)


def fail_input(path: str, detail: str = "expected a JSON object with 'images' and 'annotations'") -> None:
    """A job that finds bad input: a multi-line UserError whose first line names the file (exit 2)."""
    raise DataError(f"{path}: not a valid annotation file\n  {detail}\n  (check the file, then rerun)")


def die(signal_name: str = "SIGKILL") -> None:
    """A job whose process is killed by a signal, as the kernel's out-of-memory killer does."""
    os.kill(os.getpid(), getattr(signal, signal_name))
    time.sleep(60)  # a signal that does not kill at once (handled, ignored) must still end the job
    raise RuntimeError(f"{signal_name} did not end the process")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vitpose.launch.selftest", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {
        "value": "seeded tiny training; the result depends on the seed only",
        "ddp": "tiny DDP training (set tasks_per_node>1); all ranks must end equal",
        "resume": "resumable tiny training; requeue it and it resumes",
        "fail": "a job that raises",
        "kill": "a job whose process is killed by a signal",
    }
    for name, help_text in commands.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--run-key", default=f"selftest/{name}", help="names the run (its log folder and job record)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar while waiting")
        add_launch_args(p)
        if name in ("value", "ddp", "resume"):
            p.add_argument("--seed", type=int, default=0)
        if name in ("ddp", "resume"):
            p.add_argument("--work-dir", required=True)
            p.add_argument("--steps", type=int, default=10 if name == "ddp" else 40)
        if name == "resume":
            p.add_argument("--distributed", action="store_true", help="DDP over the job's tasks")
            p.add_argument("--step-sleep", type=float, default=0.0, help="seconds between steps (to be interrupted)")
        if name == "fail":
            p.add_argument("--message", default="selftest failure")
            p.add_argument("--user-error", metavar="PATH",
                           help="raise a multi-line DataError naming PATH instead (bad input: exit 2)")
        if name == "kill":
            p.add_argument("--signal", default="SIGKILL", help="signal name (default: SIGKILL)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    def run() -> None:
        cfg = launch_config_from_args(args)
        fn: Callable[..., Any]
        if args.command == "value":
            fn, kwargs = seeded_value, {"seed": args.seed}
        elif args.command == "ddp":
            fn, kwargs = ddp_train, {"work_dir": args.work_dir, "seed": args.seed, "steps": args.steps}
        elif args.command == "resume":
            fn, kwargs = resumable_train, {"work_dir": args.work_dir, "seed": args.seed, "steps": args.steps,
                                           "step_sleep_s": args.step_sleep, "distributed": args.distributed}
        elif args.command == "kill":
            fn, kwargs = die, {"signal_name": args.signal}
        elif args.user_error:
            fn, kwargs = fail_input, {"path": args.user_error}
        else:
            fn, kwargs = fail, {"message": args.message}
        result = run_job(fn, kwargs, args.run_key, cfg, progress=not args.no_progress)
        print(json.dumps(result))

    return guarded_main(run)


if __name__ == "__main__":
    sys.exit(main())
