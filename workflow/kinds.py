"""Job kinds: what each kind of job of a run reads and writes. Snakemake's rules and DVC's stages follow.

A run (workflow/registry.py) is executed as a chain of jobs of several kinds. Each kind is declared here
once, as data: the files it writes in the run's result directory, the files of the same run it reads,
the files of *other* runs it consumes (its upstream edges: a student needs its teacher's weights, a
finetune its pre-trained backbone) and whether it reads the run's datasets. `workflow/rules/jobs.smk`
turns every kind into one Snakemake rule and `workflow/dvcgen.py` into one DVC stage per run, so a new
kind of job needs no rule written by hand.

Upstream runs are ordinary runs of the registry: a teacher configuration that several students need is
one run, hence one job, whatever number of rows consume it.

Two kinds may write the same file name (`metrics.json` of `evaluate`, of a released checkpoint's
evaluation and of the test-dev score import) as long as no run has jobs of both: a file of a run has
one producer. `register` cannot know which runs a kind applies to; `run_kinds` checks it per run.

A *manual* kind is a step a person does (uploading a test-dev submission to the COCO server and
saving what it returns): its rule fails with the instructions until the person has placed its output,
and DVC gets no stage for it nor for the jobs reading its output.

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
    args:     extra arguments of the stage command, formatted with the run's file paths by name
              (`Registry.named_paths`: its RUN_FILES by key, its data files, its released weights).
    words:    what the job does, in the paper's terms (`python -m workflow.registry plan`).
    manual:   instructions of a step a person does (formatted like `args`); empty for commands.

    A `consumes` role ending in `*` stands for the numbered roles of that prefix (`member*`:
    member1, member2, ... of an ensemble), as many as the run has.
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
    manual: str = ""

    def consumed(self, roles: dict[str, str]) -> dict[str, str]:
        """{role: file name} of the run's upstream `roles` this kind reads (see `consumes`)."""
        out = {}
        for role, name in self.consumes.items():
            if role.endswith("*"):
                out.update({r: name for r in roles if _numbered(r, role[:-1])})
            elif role in roles:
                out[role] = name
        return out


def _numbered(role: str, prefix: str) -> bool:
    return role.startswith(prefix) and role[len(prefix):].isdigit()


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Declare a kind (its name is its Snakemake rule and DVC stage prefix); names are unique.

    Output names may repeat across kinds: whether two kinds write one file of one run is a property of
    the runs they apply to, checked by `run_kinds`."""
    if kind.name in KINDS and KINDS[kind.name] != kind:
        raise ConfigError(f"job kind {kind.name!r} is declared twice")
    KINDS[kind.name] = kind
    return kind


def run_kinds(run: "Run") -> list[Kind]:
    """The kinds of the run's jobs, in declaration order; ConfigError when two write the same file of
    the run (the run's file would have two producers: Snakemake and DVC both refuse such a graph)."""
    kinds = [k for k in job_kinds() if k.applies(run)]
    producer: dict[str, str] = {}
    for kind in kinds:
        for name in kind.outputs:
            if name in producer:
                raise ConfigError(f"run {run.id}: job kinds {producer[name]!r} and {kind.name!r} both write "
                                  f"{name}; a file of a run has one producer (narrow one kind's `applies`)")
            producer[name] = kind.name
    return kinds


def _finetuning(run: "Run") -> bool:
    return run.stage == "finetune"


def _pretraining(run: "Run") -> bool:
    return run.stage == "pretrain"


def _token_training(run: "Run") -> bool:
    return run.stage == "token"


def _test_dev(run: "Run") -> bool:
    return run.stage == "testdev"


def _released(run: "Run") -> bool:
    return run.stage == "released"


TESTDEV_OUTPUTS = tuple(RUN_FILES[k] for k in ("testdev_results", "testdev_zip", "val_keypoints", "val_metrics",
                                               "testdev_record"))


register(Kind("config", outputs=(RUN_FILES["config"],),
              words="resolve the run's configuration once (config.json, with its hash)"))
register(Kind("pretrain", outputs=(RUN_FILES["mae"], RUN_FILES["mae_curve"]), module="stages.pretrain", data=True, launcher=True,
              applies=_pretraining,
              words="MAE pre-training of the backbone on the set's images, export in MAE's format"))
register(Kind("token", outputs=(RUN_FILES["token"], RUN_FILES["token_curve"]), module="stages.token", data=True, launcher=True,
              consumes={"teacher": RUN_FILES["checkpoint"]}, applies=_token_training,
              words="train the knowledge token on the frozen teacher (Eq. 5), export the token"))
register(Kind("finetune", outputs=(RUN_FILES["checkpoint"], RUN_FILES["curve"]), module="stages.finetune",
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
# The authors' released checkpoints (Tables 2 and 9 "released"): the same evaluation, of a downloaded file.
register(Kind("evaluate_released", outputs=(RUN_FILES["metrics"], RUN_FILES["keypoints"]), module="stages.evaluate",
              data=True, launcher=True, applies=_released, args="--checkpoint {weights} --released",
              words="evaluate the authors' released checkpoint on COCO val (detected boxes, flip test), "
                    "write metrics.json"))
# COCO test-dev (Table 10, docs/VITPOSE_G.md): the submission, then two steps outside this machine.
register(Kind("testdev", outputs=TESTDEV_OUTPUTS, module="stages.testdev",
              consumes={"member*": RUN_FILES["checkpoint"]}, data=True, launcher=True, applies=_test_dev,
              args="--image-info {coco_testdev_image_info} --images {coco_testdev_images} "
                   "--det-file {coco_testdev_det_file}",
              words="flip-tested heatmaps of the member model(s), averaged for an ensemble: COCO val scored "
                    "here, the test-dev results zipped for the COCO server"))
register(Kind("testdev_upload", outputs=(RUN_FILES["server_scores"],),
              needs=(RUN_FILES["testdev_zip"], RUN_FILES["testdev_record"]), applies=_test_dev,
              words="MANUAL: upload the zip to the COCO keypoint evaluation server (test-dev), save its scores",
              manual="upload {testdev_zip} to the COCO keypoint evaluation server, test-dev2017 "
                     "(https://cocodataset.org/#upload), and save the scores it returns as "
                     "{server_scores} (a JSON object of AP, AP50, ... with \"date\": \"YYYY-MM-DD\", "
                     "or COCOeval's printed summary: docs/VITPOSE_G.md); then run the same command again"))
register(Kind("testdev_scores", outputs=(RUN_FILES["metrics"],), module="stages.testdev_scores",
              needs=(RUN_FILES["testdev_record"], RUN_FILES["val_metrics"], RUN_FILES["server_scores"]),
              applies=_test_dev, args="--scores {server_scores}",
              words="import the COCO server's test-dev scores into metrics.json (\"scored by the COCO server "
                    "on DATE\")"))


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
