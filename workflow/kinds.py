"""Job kinds: what each kind of job of a run reads and writes. Snakemake's rules and DVC's stages follow.

A run (workflow/registry.py) is executed as a chain of jobs of several kinds. Each kind is declared here
once, as data: the files it writes in the run's result directory, the files of the same run it reads,
the files of *other* runs it consumes (its upstream edges: a student needs its teacher's weights, a
finetune its pre-trained backbone) and whether it reads the run's datasets. `workflow/rules/jobs.smk`
turns every kind into one Snakemake rule and `workflow/dvcgen.py` into one DVC stage per run, so a new
kind of job needs no rule written by hand.

Upstream runs are ordinary runs of the registry: a teacher configuration that several students need is
one run, hence one job, whatever number of rows consume it.

Extensions (and tests) may add kinds without editing this file: modules named in the environment
variable ``VITPOSE_JOB_KINDS`` (comma-separated, importable) are imported by `load_plugins` and call
`register`.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vitpose.config import RUN_FILES
from vitpose.utils.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from workflow.registry import Registry, Run

PLUGINS_ENV = "VITPOSE_JOB_KINDS"


def _always(run: "Run") -> bool:
    return True


def _roles(registry: "Registry", run: "Run") -> dict[str, str]:
    """The run's own upstream runs by role (`Run.upstream`), e.g. {"teacher": "vitpose-l-..."}."""
    return dict(run.upstream)


@dataclass(frozen=True)
class Kind:
    """One kind of job of a run.

    outputs:  file names the job writes in the run's result directory (values of vitpose.config.RUN_FILES).
    module:   the stage command (`python -m MODULE --config <config.json> ...`); None for the kind
              the registry itself executes (`config`).
    needs:    file names of the same run the job reads (`config.json` is always read).
    consumes: {role: file name}: files of upstream runs, the runs being given by `upstream(registry, run)`
              (default: the run's own `upstream` roles; a role the run does not have is no input).
    data:     reads the run's datasets (and its pre-trained weights, if any).
    launcher: runs as a launcher job (local processes or SLURM; one GPU), given the launch options.
    applies:  which runs have a job of this kind.
    args:     extra arguments of the stage command, formatted with the run's file paths by name.
    words:    what the job does, in the paper's terms (`python -m workflow.registry plan`).
    """

    name: str
    outputs: tuple[str, ...]
    module: str | None = None
    needs: tuple[str, ...] = ()
    consumes: dict[str, str] = field(default_factory=dict)
    data: bool = False
    launcher: bool = False
    applies: Callable[["Run"], bool] = _always
    upstream: Callable[["Registry", "Run"], dict[str, str]] = _roles
    args: str = ""
    words: str = ""


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Declare a kind (its name is its Snakemake rule and DVC stage prefix); names are unique."""
    if kind.name in KINDS and KINDS[kind.name] != kind:
        raise ConfigError(f"job kind {kind.name!r} is declared twice")
    produced = {f for k in KINDS.values() if k.name != kind.name for f in k.outputs}
    clash = sorted(set(kind.outputs) & produced)
    if clash:
        raise ConfigError(f"job kind {kind.name!r}: {clash} already produced by another kind")
    KINDS[kind.name] = kind
    return kind


def _finetuning(run: "Run") -> bool:
    return run.stage == "finetune"


def _pretraining(run: "Run") -> bool:
    return run.stage == "pretrain"


def _token_training(run: "Run") -> bool:
    return run.stage == "token"


register(Kind("config", outputs=(RUN_FILES["config"],),
              words="resolve the run's configuration once (config.json, with its hash)"))
register(Kind("pretrain", outputs=(RUN_FILES["mae"],), module="stages.pretrain", data=True, launcher=True,
              applies=_pretraining,
              words="MAE pre-training of the backbone on the set's images, export in MAE's format"))
register(Kind("token", outputs=(RUN_FILES["token"],), module="stages.token", data=True, launcher=True,
              consumes={"teacher": RUN_FILES["checkpoint"]}, applies=_token_training,
              words="train the knowledge token on the frozen teacher (Eq. 5), export the token"))
register(Kind("finetune", outputs=(RUN_FILES["checkpoint"],), module="stages.finetune",
              consumes={"teacher": RUN_FILES["checkpoint"], "pretrain": RUN_FILES["mae"],
                        "token": RUN_FILES["token"]}, data=True,
              launcher=True, applies=_finetuning,
              words="train on the run's datasets, export the weights in the released format"))
register(Kind("benchmark", outputs=(RUN_FILES["benchmark"],), module="stages.benchmark", launcher=True,
              args="--out {benchmark}", applies=_finetuning,
              words="measure inference throughput and training-step memory of the architecture"))
register(Kind("evaluate", outputs=(RUN_FILES["metrics"], RUN_FILES["keypoints"]), module="stages.evaluate",
              needs=(RUN_FILES["checkpoint"], RUN_FILES["benchmark"]), data=True, launcher=True,
              applies=_finetuning,
              words="flip-tested evaluation on the val split (detected boxes), write metrics.json"))


def load_plugins() -> None:
    """Import the modules named in $VITPOSE_JOB_KINDS (each calls `register`)."""
    for name in filter(None, (n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"{PLUGINS_ENV}: cannot import job-kind module {name!r} ({exc})") from None


def job_kinds() -> list[Kind]:
    """Every declared kind, built-in first, in declaration order (the order jobs of a run run in)."""
    load_plugins()
    return list(KINDS.values())
