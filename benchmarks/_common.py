"""What every benchmark prints first: where and on what it ran (device, threads, load, versions, commit).

These machines are shared and noisy: absolute times move between runs, ratios measured side by side in
one run hold. So every benchmark times its reference in the same process, alternating, and prints both.
"""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/x.py` puts benchmarks/ first on the path, not the root
    sys.path.insert(0, str(ROOT))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    """HEAD's hash, with "+dirty" when the working tree has changes; "unknown" outside a checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def header(title: str, **extra: object) -> None:
    """Print the run's context: date, host CPU, cores, torch threads, load average, versions, commit."""
    import torch

    print(f"== {title}")
    print(f"date        {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"cpu         {cpu_name()} ({os.cpu_count()} logical cores; torch threads "
          f"{torch.get_num_threads()})")
    if torch.cuda.is_available():
        print(f"gpu         {torch.cuda.get_device_name()} (driver {gpu_driver()})")
    print(f"load avg    {load_average()} (1, 5, 15 min)")
    print(f"versions    python {platform.python_version()}, torch {torch.__version__}, commit {git_commit()}")
    for key, value in extra.items():
        print(f"{key:<11s} {value}")


def gpu_driver() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, check=True, timeout=30).stdout
        return out.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def ratio(reference_s: float, new_s: float) -> str:
    return f"{reference_s / new_s:.2f}x" if new_s > 0 else "n/a"
