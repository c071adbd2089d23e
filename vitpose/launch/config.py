"""Where and with what resources a stage's job runs: `LaunchConfig`, loaded from a site file, env and overrides.

Resources are runtime facts of a site (partition, account, GPUs, time limit), never part of the science:
they come from a YAML file named by ``$VITPOSE_LAUNCH_CONFIG`` (or ``--launch-config``), optionally refined
per stage, then from ``$VITPOSE_LAUNCH`` (the launcher alone) and from explicit overrides (``--launch-set``
or a Snakemake profile's resources). Later sources win::

    launcher: slurm              # local | slurm
    folder: work/submitit        # submitit logs, pickles and job records; one sub-folder per run
    partition: gpu
    account: myproject
    timeout_min: 4320
    stages:                      # optional: per-stage resources, keyed by the stage name
      finetune: {nodes: 2, gpus_per_node: 8, tasks_per_node: 8, cpus_per_task: 10, mem_gb: 480}
      evaluate: {gpus_per_node: 1}
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from vitpose.utils.errors import ConfigError

ENV_LAUNCHER = "VITPOSE_LAUNCH"
ENV_CONFIG = "VITPOSE_LAUNCH_CONFIG"
LAUNCHERS = ("local", "slurm")


@dataclasses.dataclass(frozen=True)
class LaunchConfig:
    """How one job is launched. Field names follow submitit's generic executor parameters.

    launcher: ``local`` runs the job as local processes through submitit's LocalExecutor (one node);
        ``slurm`` submits it with sbatch through submitit's SlurmExecutor.
    folder: root of submitit's files; the job of run ``R`` keeps its logs in ``folder/R/``.
    nodes, tasks_per_node: the job runs ``nodes * tasks_per_node`` processes, one DDP rank each.
    gpus_per_node: GPUs requested per node (``local``: the GPUs made visible; 0 hides them all).
    cpus_per_task, mem_gb: ``None`` leaves them to the partition's defaults.
    timeout_min: the job's time limit; submitit sends the requeue signal ``signal_delay_s`` before it.
    max_requeue: how many times a job that hits its time limit is requeued (submitit's
        ``max_num_timeout``); preempted jobs are always requeued.
    partition, account, qos, constraint: sbatch's options of the same names.
    setup: shell lines run in the sbatch script before the tasks start (``module load ...``).
    slurm_extra: further sbatch options, e.g. ``{"exclusive": true, "gres": "gpu:a100:8"}``.
    poll_s: how often the orchestrator asks the scheduler (sacct) about a job that has not written its result.
    """

    launcher: str = "local"
    folder: str = "work/submitit"
    nodes: int = 1
    tasks_per_node: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    timeout_min: int = 1440
    max_requeue: int = 3
    signal_delay_s: int = 120
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: tuple[str, ...] = ()
    slurm_extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    poll_s: float = 60.0

    def __post_init__(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise ConfigError(f"launcher must be one of {', '.join(LAUNCHERS)}, got {self.launcher!r}")
        for key in ("nodes", "tasks_per_node", "timeout_min"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        for key in ("gpus_per_node", "max_requeue", "signal_delay_s"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)}")
        for key in ("cpus_per_task", "mem_gb"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ConfigError(f"{key} must be > 0 or null, got {value}")
        if self.poll_s <= 0:
            raise ConfigError(f"poll_s must be > 0, got {self.poll_s}")
        if self.launcher == "local" and self.nodes != 1:
            raise ConfigError(f"the local launcher runs on one node, got nodes={self.nodes}")

    @property
    def num_tasks(self) -> int:
        """World size of the job: one process per task."""
        return self.nodes * self.tasks_per_node

    def replace(self, **overrides: Any) -> "LaunchConfig":
        """A copy with ``overrides`` applied, validated like a file's keys."""
        return _build({**dataclasses.asdict(self), **overrides}, source="overrides")


_FIELDS = {f.name: f for f in dataclasses.fields(LaunchConfig)}


def _coerce(key: str, value: Any, source: str) -> Any:
    """Check ``value`` against the field's type; YAML's ints are accepted where floats are expected."""
    annotation = str(_FIELDS[key].type)
    optional = "None" in annotation
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{source}: key {key!r} must not be null")

    def fail(expected: str) -> ConfigError:
        return ConfigError(f"{source}: key {key!r} expects {expected}, got {value!r}")

    if annotation.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("an integer")
        return value
    if annotation.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail("a number")
        return float(value)
    if annotation.startswith("str"):
        if not isinstance(value, str):
            raise fail("a string")
        return value
    if annotation.startswith("tuple"):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise fail("a list of shell lines")
        return tuple(value)
    if not isinstance(value, Mapping):  # slurm_extra
        raise fail("a mapping of sbatch options")
    return dict(value)


def _coerce_all(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; expected some of: {', '.join(_FIELDS)}")
    return {k: _coerce(k, v, source) for k, v in values.items()}


def _build(values: Mapping[str, Any], source: str) -> LaunchConfig:
    try:
        return LaunchConfig(**_coerce_all(values, source))
    except ConfigError as exc:
        if str(exc).startswith(source):
            raise
        raise ConfigError(f"{source}: {exc}") from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"launch config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"launch config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"launch config file {path}: expected a mapping of keys, got {type(data).__name__}")
    return data


def parse_override(item: str) -> tuple[str, Any]:
    """``"key=value"`` → ``(key, value)``, the value read as YAML (``4`` is an int, ``null`` is None)."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"launch override {item!r}: expected KEY=VALUE")
    if key not in _FIELDS:
        raise ConfigError(f"launch override {item!r}: unknown key {key!r}; expected one of: {', '.join(_FIELDS)}")
    try:
        return key, yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"launch override {item!r}: value is not valid YAML: {exc}") from None


def load_launch_config(
    path: str | os.PathLike | None = None,
    stage: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> LaunchConfig:
    """Resolve the launch configuration of one stage.

    Order (later wins): defaults; the file ``path`` (else ``$VITPOSE_LAUNCH_CONFIG``, if set), its top-level
    keys then its ``stages.<stage>`` section; ``$VITPOSE_LAUNCH`` (launcher); ``overrides``.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    source = "launch config"
    path = path if path is not None else env.get(ENV_CONFIG) or None
    if path is not None:
        source = f"launch config file {path}"
        data = _read_file(Path(path))
        stages = data.pop("stages", None) or {}
        if not isinstance(stages, dict):
            raise ConfigError(f"{source}: 'stages' must map stage names to mappings of keys")
        values.update(_coerce_all(data, source))
        if stage is not None and stage in stages:
            section = stages[stage]
            if not isinstance(section, dict):
                raise ConfigError(f"{source}: stages.{stage} must be a mapping of keys")
            values.update(_coerce_all(section, f"{source} (stages.{stage})"))
    if env.get(ENV_LAUNCHER):
        values["launcher"] = env[ENV_LAUNCHER]
        source += f" + ${ENV_LAUNCHER}"
    if overrides:
        values.update(_coerce_all(overrides, "launch overrides"))
        source += " + overrides"
    return _build(values, source)
