"""The torch.distributed environment of a job, derived from submitit's view of it.

submitit knows each task's place in the job (SLURM_PROCID/SLURM_LOCALID/SLURM_NTASKS on SLURM, its own
variables for the local executor); torch's ``env://`` rendezvous wants RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT. ``export_ddp_env`` translates one into the other, so the engine's
``init_from_env()`` works the same under both launchers.
"""
from __future__ import annotations

import dataclasses
import os
from typing import MutableMapping

import submitit

# Ports 20000-39999 stay clear of the well-known and ephemeral ranges; the port is a function of the job
# id so that every task of the job computes the same one without talking to the others.
_PORT_BASE = 20000
_PORT_SPAN = 20000


@dataclasses.dataclass(frozen=True)
class DistEnv:
    """One task's place in its job."""

    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes outputs."""
        return self.rank == 0


def master_port(job_id: str) -> int:
    """A rendezvous port every task of job ``job_id`` agrees on (array jobs: ``123_4``)."""
    digits = "".join(c for c in job_id if c.isdigit()) or "0"
    return _PORT_BASE + int(digits) % _PORT_SPAN


def export_ddp_env(
    job_env: submitit.JobEnvironment | None = None,
    environ: MutableMapping[str, str] | None = None,
) -> DistEnv:
    """Set RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT from the running submitit job.

    The master is the first host of the job's node list (``SLURM_JOB_NODELIST`` expanded by submitit;
    this host for the local executor). Values left by the submitting shell are overwritten: inside a job
    only the job's own layout is true.
    """
    job_env = submitit.JobEnvironment() if job_env is None else job_env
    environ = os.environ if environ is None else environ
    dist = DistEnv(
        rank=job_env.global_rank,
        world_size=job_env.num_tasks,
        local_rank=job_env.local_rank,
        master_addr=job_env.hostnames[0],
        master_port=master_port(job_env.job_id),
    )
    environ.update(
        RANK=str(dist.rank),
        WORLD_SIZE=str(dist.world_size),
        LOCAL_RANK=str(dist.local_rank),
        MASTER_ADDR=dist.master_addr,
        MASTER_PORT=str(dist.master_port),
    )
    return dist


def default_backend() -> str:
    """NCCL when the task sees a GPU, gloo on CPU."""
    import torch  # here: launching a job must not import torch (see job.StopFlag)

    return "nccl" if torch.cuda.is_available() else "gloo"
