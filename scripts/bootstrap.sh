#!/usr/bin/env bash
# Install what the project needs into ./.venv (idempotent; a no-op when everything is there).
#   bash scripts/bootstrap.sh          # the library, Snakemake, DVC, submitit and the test tools
# Python >= 3.10 with venv is the only prerequisite. On a machine without a CUDA driver the PyPI torch
# wheel still runs on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
# Skip pip entirely when the installed project is current (keeps repeated runs to a second).
stamp=.venv/.vitpose-installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && .venv/bin/python -c "import vitpose, torch, timm, snakemake, dvc, submitit, pycocotools, pytest" 2>/dev/null; then
  exit 0
fi
echo "bootstrap: installing the project and its dependencies into .venv (first time: a few minutes)"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
touch "$stamp"
echo "bootstrap: done"
