"""Write dvc.yaml from the registry, so DVC runs exactly the runs Snakemake runs, with the same commands.

    python -m workflow.dvcgen            # (re)write dvc.yaml (default scale) and workflow/dvc/paper/dvc.yaml
    python -m workflow.dvcgen --check    # exit 1 when a checked-in file differs from what the registry gives
    python -m workflow.dvcgen --record   # record outputs Snakemake already produced in dvc.lock (no re-run)

The default scale's pipeline is the repository's ``dvc.yaml`` (``dvc repro``). Every other scale gets
``workflow/dvc/<scale>/dvc.yaml`` with ``wdir`` pointing back at the repository root
(``dvc repro workflow/dvc/paper/dvc.yaml``). Runs that need a capability that does not exist yet are left
out (listed in a comment): the report shows them as missing, with the reason. Manual steps (workflow/kinds.py
`Kind.manual`: the upload of a test-dev submission) have no stage, nor have the jobs reading what a person
places (the import of the COCO server's scores: `python -m stages.testdev_scores`, or Snakemake). At a
synthetic scale the released checkpoints' evaluations are left out too: their files are ones a person (or a
test) saves, so a generated pipeline cannot depend on them (`snakemake released` evaluates them).

DVC params are the exact params.yaml keys each run depends on, so changing one table row's parameter
re-runs only that run and what depends on it; metrics.json files are DVC metrics; the Pareto data of
Figure 1 is a DVC plot.
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

import yaml

from vitpose.utils.io import atomic_write_text
from vitpose.config import RUN_FILES
from workflow.kinds import run_kinds
from workflow.registry import PARAMS, REPO, Registry
from workflow.schema import load_params

PY = "python"
CODE = {
    "config": ["workflow/registry.py", "workflow/kinds.py", "workflow/schema.py", "vitpose/config.py"],
    "plugin": ["stages", "vitpose"],  # a kind registered by an extension: any code may matter
    "data": ["stages/download.py", "vitpose/download", "vitpose/data/synthetic.py"],
    "pretrain_data": ["stages/pretrain_data.py", "vitpose/data/pretrain.py"],
    "pretrain": ["stages/pretrain.py", "stages/finetune.py", "vitpose/models", "vitpose/data", "vitpose/engine",
                 "vitpose/config.py"],
    "token": ["stages/token.py", "stages/finetune.py", "vitpose/models", "vitpose/data", "vitpose/engine",
              "vitpose/config.py"],
    "finetune": ["stages/finetune.py", "vitpose/models", "vitpose/data", "vitpose/engine", "vitpose/config.py"],
    "benchmark": ["stages/benchmark.py", "vitpose/models"],
    "evaluate": ["stages/evaluate.py", "vitpose/models", "vitpose/data", "vitpose/engine",
                 "vitpose/evaluation"],
    "evaluate_released": ["stages/evaluate.py", "vitpose/models", "vitpose/data", "vitpose/engine",
                          "vitpose/evaluation"],
    "testdev": ["stages/testdev.py", "stages/evaluate.py", "vitpose/models", "vitpose/data", "vitpose/engine",
                "vitpose/evaluation"],
    "report": ["stages/tables.py", "vitpose/report"],
}


def stage_name(kind: str, rid: str) -> str:
    # DVC stage names allow letters, digits, '-' and '_'.
    return f"{kind}-{re.sub(r'[^A-Za-z0-9_-]', '_', rid)}"


def _params(keys: list[str]) -> list:
    return [{"params.yaml": sorted(keys)}]


def _staged(reg: Registry, kind, run) -> bool:
    """Whether the (kind, run) job is a DVC stage: not a manual step, not a job reading what a person
    places, not a released checkpoint's evaluation at a synthetic scale."""
    placed = {o for k in run_kinds(run) if k.manual for o in k.outputs}
    if kind.manual or placed & set(kind.needs):
        return False
    return not (run.stage == "released" and reg.scale_cfg["synthetic"])


def pipeline(reg: Registry, wdir: str | None) -> dict:
    """The dvc.yaml content for one scale."""
    scale = reg.scale
    stages: dict[str, dict] = {}

    def add(name: str, body: dict) -> None:
        if wdir:
            body = {"wdir": wdir, **body}
        stages[name] = body

    jobs = [(kind, run) for kind, run in reg.jobs() if _staged(reg, kind, run)]
    runs = list({run.id: run for _, run in jobs}.values())
    datasets = sorted({d for r in runs for d in reg.data_items(r)})  # pre-training sources included
    for ds in datasets:
        # Real datasets are tens of GB: keep them out of DVC's cache and never delete them before a
        # re-run (the download stage itself verifies, resumes and skips what is complete).
        real = {"cache": False, "persist": True}
        add(f"data-{ds}", {
            "cmd": f"{PY} {reg.download_command(ds)}",
            "deps": CODE["data"],
            "params": _params([f"scales.{scale}.synthetic_data" if reg.scale_cfg["synthetic"]
                               else f"scales.{scale}.data_root"]),
            "outs": [reg.data_dir(ds) if reg.scale_cfg["synthetic"] else {reg.data_dir(ds): real}],
        })
    weights = sorted({w for r in runs if (w := reg.downloaded_weights(r))})
    for w in weights:
        name = Path(w).stem
        add(f"weights-{name}", {
            "cmd": f"{PY} {reg.weights_command(w)}",
            "deps": CODE["data"][:2],
            "outs": [{w: {"persist": True}}],
        })
    for pset in reg.pretrain_sets():
        index = reg.pretrain_index(pset)
        add(f"pretrain-data-{re.sub(r'[^A-Za-z0-9_-]', '_', pset)}", {
            "cmd": f"{PY} {reg.pretrain_index_command(pset)}",
            "deps": CODE["pretrain_data"] + [reg.data_dir(Path(v).parent.name)
                                             for v in reg.pretrain_index_inputs(pset).values()],
            "params": _params(["pretraining.crops"]),
            "outs": [{index: {"cache": False}}],
        })
    # One stage per job of every run, from the job kinds (workflow/kinds.py), with the same inputs and
    # commands as Snakemake's rules. Only a run's `config` stage depends on params.yaml (the run's own
    # keys); every later job depends on the config.json it writes, so `dvc exp run -S seed=1` re-resolves
    # the configs, and only runs whose config changed re-run.
    for kind, run in jobs:
        inputs = reg.job_inputs(kind, run.id)
        deps = CODE.get(kind.name, CODE["plugin"]) + [
            reg.data_dir(Path(v).parent.name) if k.startswith("data_") else v for k, v in inputs.items()]
        body: dict = {"cmd": f"{PY} {reg.job_command(kind, run.id)}", "deps": deps}
        if kind.name == "config":
            body["params"] = _params(run.param_keys)
        outs = reg.job_outputs(kind, run.id)
        metrics = [o for o in outs if Path(o).name in (RUN_FILES["metrics"], RUN_FILES["val_metrics"])]
        if metrics:
            body["outs"] = [{o: {"cache": False}} for o in outs if o not in metrics]
            body["metrics"] = [{m: {"cache": False}} for m in metrics]
        else:
            # Weights go to DVC's cache; small JSON records stay plain files in results/.
            body["outs"] = [o if o.endswith(".pth") else {o: {"cache": False}} for o in outs]
        add(stage_name(kind.name, run.id), body)
    out_dir = f"paper_tables/{scale}"
    add("report", {
        "cmd": f"{PY} -m stages.tables --scale {scale}",
        "deps": CODE["report"] + [f for r in runs if r.stage == "finetune" for f in (r.metrics, r.file("curve"))]
        + [r.metrics for r in runs if r.stage == "released"] + [r.file("val_metrics") for r in runs if r.stage == "testdev"]
        + ([reg.figure3_run().file("keypoints")] if reg.figure3_run() else []),  # Figure 3's predictions
        "params": _params(["hyperparameters", "tables", f"scales.{scale}"]),
        "outs": [{out_dir: {"cache": False}}],
    })
    # Training curves: every training job's loss (and lr) per logged iteration (`dvc plots show`).
    curves = [{out: {"x": "iter", "y": ["loss", "lr"], "title": f"{run.id}: training curve"}}
              for kind, run in jobs for out in reg.job_outputs(kind, run.id) if out.endswith("_curve.csv")]
    doc = {"stages": stages,
           "plots": [{f"{out_dir}/figure1_pareto.csv": {"x": "images_per_s", "y": "AP",
                                                      "title": f"Figure 1 ({scale}): throughput vs AP"}},
                     *curves]}
    return doc


def render(reg: Registry, wdir: str | None) -> str:
    missing = [r for r in reg.runs.values() if r.missing]
    head = [
        "# GENERATED by `python -m workflow.dvcgen` from params.yaml: do not edit by hand.",
        f"# Scale: {reg.scale}. Runs left out because a capability is missing ({len(missing)}):",
    ]
    head += [f"#   {r.id}: {r.missing}" for r in missing]
    body = yaml.safe_dump(pipeline(reg, wdir), sort_keys=False, width=110)
    return "\n".join(head) + "\n" + body


def targets(params_path: Path = PARAMS) -> dict[Path, str]:
    """Every generated file and its content."""
    params = load_params(params_path)
    out = {}
    for scale in params["scales"]:
        reg = Registry(params, scale, params_path)
        if scale == params["scale"]:
            out[REPO / "dvc.yaml"] = render(reg, None)
        else:
            out[REPO / "workflow" / "dvc" / scale / "dvc.yaml"] = render(reg, "../../..")
    return out


def produced_stages(dvc_file: Path = REPO / "dvc.yaml") -> tuple[list[str], int]:
    """Stages of a generated dvc.yaml whose every output and dependency exists (e.g. made by Snakemake),
    and how many stages the file has."""
    doc = yaml.safe_load(dvc_file.read_text())
    root = dvc_file.parent
    done = []
    for name, stage in doc["stages"].items():
        wdir = root / stage.get("wdir", ".")
        outs = [next(iter(o)) if isinstance(o, dict) else o
                for key in ("outs", "metrics") for o in stage.get(key, [])]
        deps = stage.get("deps", [])
        if outs and all((wdir / p).exists() for p in [*outs, *deps]):
            done.append(name)
    return done, len(doc["stages"])


def record(dvc_file: Path = REPO / "dvc.yaml") -> int:
    """`dvc commit -f` the stages whose outputs exist: DVC then treats them as done (no re-run)."""
    import shutil
    import subprocess

    stages, total = produced_stages(dvc_file)
    if not stages:
        print("nothing to record: no stage of dvc.yaml has all its outputs yet")
        return 0
    dvc = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")
    if len(stages) == total:
        # The file as one target: DVC collects its stages and rewrites dvc.lock once. Given stage by
        # stage it re-reads dvc.yaml and dvc.lock for each (measured: 238 s for 75 stages, 6 parses each).
        stages_arg = [str(dvc_file)]
    elif dvc_file != REPO / "dvc.yaml":
        # Stages of the root dvc.yaml are named plainly; those of another file as `FILE:STAGE`.
        stages_arg = [f"{dvc_file}:{s}" for s in stages]
    else:
        stages_arg = stages
    proc = subprocess.run([dvc, "commit", "-f", *stages_arg], cwd=REPO)
    if proc.returncode == 0:
        print(f"recorded {len(stages)} stages in dvc.lock")
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m workflow.dvcgen", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if a generated file is stale")
    ap.add_argument("--params", default=str(PARAMS))
    ap.add_argument("--record", nargs="?", const=str(REPO / "dvc.yaml"), metavar="DVC_YAML",
                    help="dvc commit the stages whose outputs already exist (default: dvc.yaml)")
    args = ap.parse_args(argv)
    if args.record:
        return record(Path(args.record).resolve())
    stale = []
    for path, text in targets(Path(args.params)).items():
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        if args.check:
            stale.append(path)
            diff = difflib.unified_diff(current.splitlines(), text.splitlines(), str(path), "expected",
                                        lineterm="", n=1)
            print("\n".join(list(diff)[:40]), file=sys.stderr)
        else:
            atomic_write_text(path, text)
            print(f"wrote {path.relative_to(REPO)}")
    if stale:
        print("error: stale: " + ", ".join(str(p.relative_to(REPO)) for p in stale)
              + "; run `python -m workflow.dvcgen`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
