"""A test-only job kind with an upstream edge: `probe` of a ViTPose-B Table 2 run reads the ViTPose-L
teacher's weights (as a distillation student would). Loaded through $VITPOSE_JOB_KINDS.

The tests only dry-run it; run as a stage (`python -m job_kind_probe --config results/S/RUN/config.json`)
it writes probe.json naming the run.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workflow.kinds import Kind, register


def _applies(run) -> bool:
    # Only trained runs have a spec with a model (a test-dev run's spec is its members').
    return run.stage == "finetune" and run.spec["model"] == "vitpose-b" and any(s["table"] == 2 for s in run.serves)


def _teacher(registry, run) -> dict[str, str]:
    return {"teacher": registry.find(model="vitpose-l").id}


PROBE = register(Kind("probe", outputs=("probe.json",), module="job_kind_probe",
                      consumes={"teacher": "model.pth"}, applies=_applies, upstream=_teacher,
                      words="read the teacher's weights (test-only kind)"))


def main(argv=None) -> int:
    from vitpose.config import load_run_config_file

    ap = argparse.ArgumentParser()
    ap.add_argument("--config", type=Path, required=True)
    args = ap.parse_args(argv)
    cfg = load_run_config_file(args.config)
    out = Path(cfg.paths.result_dir) / "probe.json"
    out.write_text(json.dumps({"run": cfg.run}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
