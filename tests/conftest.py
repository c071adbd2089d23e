"""Shared fixtures: a copy of the project for end-to-end runs, and the single-node SLURM cluster."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SLURM_SCRIPT = REPO / "scripts" / "slurm_cluster.sh"



def ensure_tool(tool: str, packages: list[str]) -> str:
    """The path of `tool`, installed with apt-get from Debian's `packages` when missing (the tests run as
    root); skips where neither the tool nor apt-get exists."""
    found = shutil.which(tool)
    if found:
        return found
    if shutil.which("apt-get") is None:
        pytest.skip(f"{tool} is missing and apt-get is unavailable to install {' '.join(packages)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600", *packages]
    done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:  # stale or absent package lists: refresh once and retry
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
    found = shutil.which(tool)
    assert found, f"apt-get could not install {packages}: {done.stderr[-2000:]}"
    return found


def copy_project(dest: Path) -> Path:
    """The repository's committed and working-tree files (no data, results, tables or venv) as a new git repo."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    for name in filter(None, files):
        if name.startswith(("results/", "paper_tables/")):
            continue  # browsable outputs checked into the repository: the copy makes its own
        src = REPO / name
        if src.is_file() or src.is_symlink():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target, follow_symlinks=False)
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        subprocess.run(["git", *args], cwd=dest, check=True, capture_output=True)
    return dest


@pytest.fixture(scope="session")
def slurm_cluster() -> Any:
    """A real single-node SLURM cluster (scripts/slurm_cluster.sh), always torn down at the end."""
    if os.geteuid() != 0:
        pytest.skip("the single-node test cluster needs root (scripts/slurm_cluster.sh)")
    try:
        # The first start may apt-get install slurm-wlm, slurmdbd, munge and mariadb: minutes, once.
        subprocess.run(["bash", str(SLURM_SCRIPT), "start"], check=True, timeout=1800)
        yield
    finally:
        subprocess.run(["bash", str(SLURM_SCRIPT), "stop"], timeout=600)
