# Shared helpers: the registry of runs for the requested scale, resolved once from Snakemake's `config`
# (params.yaml plus any --config / --configfile overrides), and input functions.
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from vitpose.utils.errors import UserError
from workflow.kinds import job_kinds
import re

from workflow.registry import DATASET_FILES, PRETRAIN_SOURCES, Registry
from workflow.schema import coerce_overrides, validate_params

# Where jobs run is not science: a profile sets `launch` (workflow/profiles/slurm), params.yaml never does.
LAUNCH = config.pop("launch", None) or {"launcher": "local"}
LAUNCH_ARGS = f"--launcher {LAUNCH.get('launcher', 'local')}" + (
    f" --launch-config {LAUNCH['config']}" if LAUNCH.get("config") else ""
)

# `--config key=value` overrides are merged into `config`. Validate the result, then every run's whole
# resolved configuration (model included), before any job starts.
try:
    import yaml

    _typed = coerce_overrides(config, yaml.safe_load(Path(workflow.basedir, "params.yaml").read_text()))
    config.clear()
    config.update(_typed)
    validate_params(config, "params.yaml (with --config overrides)")
    REG = Registry(config, config["scale"], "params.yaml (with --config overrides)")
    REG.validate_runs()
    KINDS = job_kinds()
except UserError as e:
    raise WorkflowError(f"invalid parameters: {e}") from None
SCALE = REG.scale


def _report_params() -> str:
    """`--params FILE` for the report stages when `--config` changed the parameters (e.g. seeds): the
    report then reads them as resolved here, written once to a file named by their content."""
    import hashlib

    if config == yaml.safe_load(Path(workflow.basedir, "params.yaml").read_text()):
        return ""
    text = yaml.safe_dump(dict(config), sort_keys=False)
    path = Path(".snakemake", "resolved-params", hashlib.sha256(text.encode()).hexdigest()[:16] + ".yaml")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return f" --params {path}"


REPORT_PARAMS = _report_params()
DATA_ROOT = REG.scale_cfg["data_root"]
RUNS = REG.available_runs()
EVALUATED = [r for r in RUNS if r.stage == "finetune"]  # trained runs with a metrics.json and a curve
# COCO test-dev submissions (Table 10): their metrics.json is the server's scores, imported by hand
TESTDEV = [r for r in RUNS if r.stage == "testdev"]
# The authors' released checkpoints: `snakemake released` evaluates them all; `all` and the tables only
# those whose file is in place (at a synthetic scale a person or a test saves them; docs/DEVELOPING.md)
RELEASED = [r for r in RUNS if r.stage == "released"]
RELEASED_IN_PLACE = [r for r in RELEASED if REG.released_in_place(r)]
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


def run_hash(wildcards):
    """The run's config hash: Snakemake re-resolves config.json when it changes (params trigger)."""
    return REG.config_hash(wildcards.run)


def summary(wildcards):
    """One line in the paper's terms, shown for every job (also in dry runs)."""
    return REG.describe(wildcards.run)


def table_metrics(n):
    """The files a table needs that can exist (others show as missing, with why): its runs' metrics.json
    (a test-dev submission's record where no server can score it; released checkpoints' in place)."""
    return REG.table_files(n)


def blocked(n):
    """Tables that exist to study a missing capability fail at once, naming it."""
    reason = REG.table_blocker(n)
    if reason:
        raise WorkflowError(
            f"table{n}: cannot be reproduced: {reason}. "
            "Its reproducible rows are part of other tables' targets."
        )
    return []


def job_rule(kind):
    """(input function, command function) of the rule running `kind` (`python -m <module> --config ...`)."""

    def inputs(wildcards):
        return REG.job_inputs(kind, wildcards.run)

    def command(wildcards):
        return REG.job_command(kind, wildcards.run)

    return inputs, command
