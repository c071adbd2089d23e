"""LaunchConfig loading and validation, the DDP environment, the stop flag, reading SLURM job states:
no job is started here."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from vitpose.launch import LaunchConfig, add_launch_args, launch_config_from_args, load_launch_config, run_folder
from vitpose.launch.config import parse_override
from vitpose.launch.ddp import export_ddp_env, master_port
from vitpose.launch.job import StageJob, StopFlag, accepts_should_stop
from vitpose.launch.record import MAY_STILL_RUN, slurm_state
from vitpose.launch.selftest import resumable_train, seeded_value
from vitpose.utils.errors import ConfigError

SITE = """
launcher: slurm
partition: gpu
account: proj
timeout_min: 600
setup: module load cuda
stages:
  finetune: {nodes: 2, gpus_per_node: 8, tasks_per_node: 8, mem_gb: 480}
"""


def _site(tmp_path: Path, text: str = SITE) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def test_defaults_are_local_single_task() -> None:
    cfg = load_launch_config(env={})
    assert cfg == LaunchConfig()
    assert cfg.launcher == "local" and cfg.num_tasks == 1


def test_file_stage_env_and_overrides_in_order(tmp_path: Path) -> None:
    path = _site(tmp_path)
    ft = load_launch_config(path, stage="finetune", env={})
    assert (ft.launcher, ft.partition, ft.account, ft.timeout_min) == ("slurm", "gpu", "proj", 600)
    assert (ft.nodes, ft.gpus_per_node, ft.tasks_per_node, ft.mem_gb, ft.num_tasks) == (2, 8, 8, 480.0, 16)
    assert ft.setup == ("module load cuda",)
    ev = load_launch_config(path, stage="evaluate", env={})  # no section: the file's top level only
    assert (ev.nodes, ev.gpus_per_node) == (1, 0)
    # the file is found through the environment; $VITPOSE_LAUNCH beats the file; overrides beat both
    env = {"VITPOSE_LAUNCH_CONFIG": str(path), "VITPOSE_LAUNCH": "local"}
    cfg = load_launch_config(stage="finetune", env=env, overrides={"nodes": 1, "gpus_per_node": 1})
    assert (cfg.launcher, cfg.nodes, cfg.gpus_per_node, cfg.partition) == ("local", 1, 1, "gpu")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("partitoin: gpu\n", "unknown key(s) partitoin"),
        ("nodes: two\n", "'nodes' expects an integer"),
        ("launcher: pbs\n", "launcher must be one of local, slurm"),
        ("timeout_min: 0\n", "timeout_min must be >= 1"),
        ("- a\n- b\n", "expected a mapping"),
        ("nodes: [\n", "not valid YAML"),
        ("stages:\n  finetune: {gpus: 8}\n", "(stages.finetune): unknown key(s) gpus"),
    ],
)
def test_bad_file_names_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = _site(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_launch_config(path, stage="finetune", env={})
    assert expected in str(err.value) and str(path) in str(err.value)


def test_local_launcher_refuses_several_nodes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="local launcher runs on one node"):
        load_launch_config(_site(tmp_path), stage="finetune", env={"VITPOSE_LAUNCH": "local"})


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.yaml does not exist"):
        load_launch_config(tmp_path / "nope.yaml", env={})


def test_overrides_parse_as_yaml() -> None:
    assert parse_override("gpus_per_node=8") == ("gpus_per_node", 8)
    assert parse_override("partition=null") == ("partition", None)
    assert parse_override("mem_gb=12.5") == ("mem_gb", 12.5)
    for bad, expected in [("gpus", "expected KEY=VALUE"), ("gpu=1", "unknown key 'gpu'")]:
        with pytest.raises(ConfigError, match=expected):
            parse_override(bad)
    with pytest.raises(ConfigError, match="'nodes' expects an integer, got 'x'"):
        load_launch_config(env={}, overrides=dict([parse_override("nodes=x")]))


def test_cli_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VITPOSE_LAUNCH", raising=False)
    parser = argparse.ArgumentParser()
    add_launch_args(parser)
    args = parser.parse_args(["--launch-config", str(_site(tmp_path)), "--launcher", "slurm",
                              "--launch-set", "qos=high", "--launch-set", "gpus_per_node=4"])
    cfg = launch_config_from_args(args, stage="finetune")
    assert (cfg.launcher, cfg.qos, cfg.gpus_per_node, cfg.nodes) == ("slurm", "high", 4, 2)


def test_run_folder_validates_run_key(tmp_path: Path) -> None:
    cfg = LaunchConfig(folder=str(tmp_path))
    assert run_folder(cfg, "smoke/ft-vitpose-b") == tmp_path / "smoke" / "ft-vitpose-b"
    for bad in ["../escape", "a/../b", "/abs", "", "a b"]:
        with pytest.raises(ConfigError, match="run key"):
            run_folder(cfg, bad)


class _FakeJobEnv:
    """What submitit.JobEnvironment() reports inside task 3 of a 2-node x 2-task SLURM job."""

    job_id = "4242"
    global_rank, local_rank, num_tasks = 3, 1, 4
    hostname = "gpu-b"
    hostnames = ["gpu-a", "gpu-b"]


def test_ddp_environment_from_job() -> None:
    environ = {"RANK": "stale", "MASTER_ADDR": "stale"}
    dist = export_ddp_env(_FakeJobEnv(), environ)  # type: ignore[arg-type]
    assert environ == {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "gpu-a",
                       "MASTER_PORT": str(master_port("4242"))}
    assert not dist.is_main and dist.master_port == 20000 + 4242
    assert master_port("17_3") == 20000 + 173 and 20000 <= master_port("999999999") < 40000


def test_stop_flag_without_process_group() -> None:
    flag = StopFlag()
    assert flag() is False and not flag.observed
    flag.request("test")
    flag.request("second reason is ignored")
    assert flag() is True and flag.observed and flag.reason == "test"


def test_should_stop_is_passed_only_where_accepted() -> None:
    assert accepts_should_stop(resumable_train) and not accepts_should_stop(seeded_value)
    with pytest.raises(ValueError, match="should_stop"):
        StageJob(resumable_train, {"should_stop": None})


def test_resumable_train_resumes_to_the_same_weights(tmp_path: Path) -> None:
    """The selftest's save/resume pattern itself, in process: stop at step 7, resume, compare."""
    ref = resumable_train(str(tmp_path / "ref"), steps=20, save_every=5)
    calls = iter([False] * 6 + [True])
    stopped = resumable_train(str(tmp_path / "run"), steps=20, save_every=5, should_stop=lambda: next(calls))
    assert stopped == {"stopped": True, "step": 7}
    done = resumable_train(str(tmp_path / "run"), steps=20, save_every=5)
    assert done["starts"] == [0, 7] and done["digest"] == ref["digest"]


def _fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, squeue: str, sacct: str) -> None:
    """squeue/sacct stand-ins: each a shell snippet (its output and exit status)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("squeue", squeue), ("sacct", sacct)):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


@pytest.mark.parametrize(
    ("squeue", "sacct", "expected"),
    [
        ("echo RUNNING", "exit 1", "RUNNING"),
        # purged from the controller: accounting has the last run ("CANCELLED by 0" → CANCELLED)
        ("echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1",
         "printf 'REQUEUED\\nCANCELLED by 0\\n'", "CANCELLED"),
        ("echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1", "exit 0", "UNKNOWN"),
        ("echo 'Unable to contact slurm controller' >&2; exit 1", "exit 1", "UNREACHABLE"),
    ],
)
def test_slurm_state_tells_gone_from_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, squeue: str, sacct: str, expected: str
) -> None:
    _fake_slurm(tmp_path, monkeypatch, squeue, sacct)
    state = slurm_state("17")
    assert state == expected
    # the launcher keeps waiting on a job it cannot ask about, and only on such or live ones
    assert (state in MAY_STILL_RUN) == (expected in ("RUNNING", "UNREACHABLE"))
