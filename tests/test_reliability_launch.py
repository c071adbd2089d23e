"""Reliability of the launcher's failure reports: what a failed or killed job tells the user.

Faults tried from outside: a multi-line UserError raised inside a job (its first line, the culprit, used to
be lost and the exit status was 1 instead of 2), and a job process killed by SIGKILL (it used to be
reported as "ended (FINISHED) without a result").
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stages._cli import run_main
from vitpose.launch import JobFailed, LaunchConfig, run_job
from vitpose.launch.ended import describe_end, parse_job_error
from vitpose.launch.selftest import die, fail_input

REPO = Path(__file__).resolve().parents[1]
FIRST = "/data/coco/annotations/person_keypoints_val2017.json: not a valid annotation file"


def _cfg(tmp_path: Path, **kw: Any) -> LaunchConfig:
    return LaunchConfig(launcher="local", folder=str(tmp_path / "submitit"), timeout_min=10, **kw)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_multiline_user_error_in_a_job_keeps_type_and_whole_message(tmp_path: Path) -> None:
    path = FIRST.split(":")[0]
    with pytest.raises(JobFailed) as err:
        run_job(fail_input, {"path": path}, "t/input", _cfg(tmp_path), progress=False)
    exc = err.value
    assert exc.user_error and exc.error_type == "vitpose.utils.errors.DataError"
    lines = exc.error_message.splitlines()
    assert lines[0] == FIRST and len(lines) == 3 and "'images' and 'annotations'" in lines[1]
    assert exc.error == f"vitpose.utils.errors.DataError: {FIRST}"
    assert str(exc).splitlines()[0] == FIRST  # the culprit leads, as when the stage runs in-process
    assert f"log: {exc.log_path}" in str(exc) and exc.log_path.exists()


def test_run_main_exits_2_with_the_culprit_first_for_a_user_error_in_a_job(tmp_path: Path, capsys) -> None:
    def main(argv):
        run_job(fail_input, {"path": FIRST.split(":")[0]}, "t/main", _cfg(tmp_path), progress=False)

    assert run_main(main, []) == 2
    err = capsys.readouterr().err
    assert _error_lines(err)[0] == f"error: {FIRST}"
    after = err.split(f"error: {FIRST}", 1)[1]
    assert "'images' and 'annotations'" in after and "(check the file, then rerun)" in after


def test_selftest_cli_user_error_exits_2_naming_the_file_first(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vitpose.launch.selftest", "fail", "--user-error", "bad/ann.json", "--no-progress",
         "--launch-set", f"folder={tmp_path / 'submitit'}", "--launch-set", "timeout_min=10"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert _error_lines(proc.stderr)[0] == "error: bad/ann.json: not a valid annotation file"
    assert "Traceback" not in proc.stderr  # bad input: the message, not the job's traceback


def test_killed_job_names_the_signal_and_how_to_rerun(tmp_path: Path) -> None:
    with pytest.raises(JobFailed) as err:
        run_job(die, {"signal_name": "SIGKILL"}, "t/kill", _cfg(tmp_path), progress=False)
    exc = err.value
    first = str(exc).splitlines()[0]
    assert "killed by SIGKILL (signal 9)" in first and "t/kill" in first and "FINISHED" not in str(exc)
    assert "rerun the same command" in str(exc) and "out-of-memory killer" in str(exc)
    assert not exc.user_error and exc.error_type is None


def test_killed_job_cli_exits_1(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vitpose.launch.selftest", "kill", "--signal", "SIGKILL", "--no-progress",
         "--launch-set", f"folder={tmp_path / 'submitit'}", "--launch-set", "timeout_min=10"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "killed by SIGKILL (signal 9)" in _error_lines(proc.stderr)[0]


@pytest.mark.parametrize("state, words", [
    ("CANCELLED", ["was cancelled", "ended (CANCELLED) without a result"]),
    ("OUT_OF_MEMORY", ["ran out of memory", "mem_gb"]),
    ("TIMEOUT", ["time limit (timeout_min=10)", "timeout_min"]),
    ("NODE_FAIL", ["lost its node"]),
])
def test_slurm_job_without_result_is_described_by_its_state(state: str, words: list[str]) -> None:
    cfg = LaunchConfig(launcher="slurm", timeout_min=10)
    what, advice = describe_end("slurm job 7 of run 'r'", 0, cfg, state, "unknown")
    text = f"{what}\n{advice}"
    assert what.startswith("slurm job 7 of run 'r' ") and all(w in text for w in words)
    assert "rerun the same command" in advice


def test_plain_traceback_keeps_all_lines_of_the_last_exception() -> None:
    """A job error without the StageJob's record (another wrapper, an older job) is still read whole."""
    text = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n    f()\n"
            "vitpose.utils.errors.DataError: a.json: broken\n  second line\n")
    err = parse_job_error(text)
    assert (err.type, err.message, err.user_error) == ("vitpose.utils.errors.DataError",
                                                       "a.json: broken\n  second line", True)
    err = parse_job_error("Traceback (most recent call last):\n  File \"x\", line 2\nKeyError: 'k'\n")
    assert (err.type, err.message, err.user_error) == ("KeyError", "'k'", False)
