# Shared helpers: the registry of runs for the requested scale, and input functions.
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from vitpose.utils.errors import UserError
from workflow.registry import Registry, config_hash
from workflow.schema import validate_params

# Where jobs run is not science: a profile sets `launch` (workflow/profiles/slurm), params.yaml never does.
LAUNCH = config.pop("launch", None) or {"launcher": "local"}
LAUNCH_ARGS = f"--launcher {LAUNCH.get('launcher', 'local')}" + (
    f" --launch-config {LAUNCH['config']}" if LAUNCH.get("config") else ""
)

# `--config key=value` overrides are merged into `config`; validate the result before any job starts.
try:
    validate_params(config, "params.yaml (with --config overrides)")
    REG = Registry(config, config["scale"])
except UserError as e:
    raise WorkflowError(f"invalid parameters: {e}") from None
SCALE = REG.scale
DATA_ROOT = REG.scale_cfg["data_root"]
RUNS = REG.available_runs()
UNAVAILABLE = [r for r in REG.runs.values() if r.missing]
PY = sys.executable
TABLES = list(range(1, 11))
CONDA_ENV = "../envs/vitpose.yaml"


def _alternatives(runs):
    """A regex matching exactly these run ids (ids contain '+', which must be escaped)."""
    import re

    return "|".join(re.escape(r.id) for r in sorted(runs, key=lambda r: r.id)) or "NO_RUNS"


AVAILABLE_RE = _alternatives(RUNS)
UNAVAILABLE_RE = _alternatives(UNAVAILABLE)


wildcard_constraints:
    scale=SCALE,


def run_of(wildcards):
    return REG.get(wildcards.run)


def run_hash(wildcards):
    """Parameters of the run: Snakemake re-runs a job when they change (params rerun trigger)."""
    return config_hash(REG.run_config(wildcards.run))


def summary(wildcards):
    """One line in the paper's terms, shown for every job (also in dry runs)."""
    return REG.describe(wildcards.run)


def finetune_inputs(wildcards):
    run = run_of(wildcards)
    inputs = {"data": REG.data_marker(d) for d in run.spec["datasets"]}
    pretrained = REG.pretrained_checkpoint(run)
    if pretrained:
        inputs["pretrained"] = pretrained
    return inputs


def table_metrics(n):
    """metrics.json of the runs a table needs that can exist (others show as missing, with why)."""
    return [r.metrics for r in REG.table_runs(n) if r.missing is None]


def blocked(n):
    """Tables that exist to study a missing capability fail at once, naming it."""
    reason = REG.table_blocker(n)
    if reason:
        raise WorkflowError(
            f"table{n}: cannot be reproduced: {reason}. "
            "Its reproducible rows are part of other tables' targets."
        )
    return []
