"""Job kinds (workflow/kinds.py): one producer per file of a run, checked per run; numbered roles."""
from __future__ import annotations

import pytest

from vitpose.config import RUN_FILES
from vitpose.utils.errors import ConfigError
from workflow import kinds
from workflow.kinds import Kind, register, run_kinds
from workflow.registry import PARAMS, Registry
from workflow.schema import load_params


@pytest.fixture
def extra_kinds():
    """Kinds a test registers, removed afterwards (KINDS is the process's one declaration)."""
    added: list[str] = []

    def add(kind: Kind) -> Kind:
        added.append(kind.name)
        return register(kind)

    yield add
    for name in added:
        kinds.KINDS.pop(name, None)


@pytest.fixture(scope="module")
def reg() -> Registry:
    return Registry(load_params(PARAMS), "smoke")


def test_kinds_of_different_runs_may_write_the_same_file_name(reg):
    """metrics.json: the evaluation of a trained run, of a released checkpoint, the test-dev score import."""
    writers = {k.name for k in kinds.job_kinds() if RUN_FILES["metrics"] in k.outputs}
    assert writers == {"evaluate", "evaluate_released", "testdev_scores"}
    reg.validate_runs()  # no run has two of them
    by_stage = {run.stage: [k.name for k in run_kinds(run) if RUN_FILES["metrics"] in k.outputs]
                for run in reg.available_runs() if run.stage in ("finetune", "testdev", "released")}
    assert by_stage == {"finetune": ["evaluate"], "testdev": ["testdev_scores"], "released": ["evaluate_released"]}


def test_two_kinds_writing_one_file_of_a_run_are_refused_naming_both(reg, extra_kinds):
    extra_kinds(Kind("rescore", outputs=(RUN_FILES["metrics"],), module="stages.evaluate",
                     applies=lambda run: run.id == "vitpose-b-classic-256x192"))
    with pytest.raises(ConfigError, match=r"run vitpose-b-classic-256x192: job kinds 'evaluate' and 'rescore' both "
                                          r"write metrics\.json"):
        run_kinds(reg.get("vitpose-b-classic-256x192"))
    with pytest.raises(ConfigError, match="both write metrics.json"):
        reg.validate_runs()  # what Snakemake and `workflow.registry validate` call before any job
    assert [k.name for k in run_kinds(reg.get("vitpose-l-classic-256x192"))] == [
        "config", "finetune", "benchmark", "evaluate"]  # other runs are untouched


def test_a_kind_of_other_runs_may_reuse_a_name(reg, extra_kinds):
    extra_kinds(Kind("summary", outputs=(RUN_FILES["metrics"],), module="stages.evaluate",
                     applies=lambda run: run.stage == "pretrain"))
    reg.validate_runs()
    pretrain = next(r for r in reg.available_runs() if r.stage == "pretrain")
    assert "summary" in [k.name for k in run_kinds(pretrain)]


def test_numbered_roles_are_consumed_in_any_number(reg):
    testdev = kinds.KINDS["testdev"]
    roles = {"member1": "a", "member2": "b", "member10": "c", "teacher": "t", "memberx": "m"}
    assert testdev.consumed(roles) == {r: RUN_FILES["checkpoint"] for r in ("member1", "member2", "member10")}
    run = next(r for r in reg.available_runs() if r.stage == "testdev" and len(r.upstream) == 3)
    inputs = reg.job_inputs(testdev, run.id)
    assert [inputs[f"member{i}"] for i in (1, 2, 3)] == [reg.get(u).checkpoint for u in run.upstream.values()]
    assert inputs["data_coco_testdev"] == "data/smoke/coco-testdev/.complete.json"
    command = reg.job_command(testdev, run.id)
    assert "--det-file data/smoke/coco-testdev/person_detection_results/COCO_test-dev2017_detections_" in command


def test_a_manual_step_says_what_to_do_with_the_runs_files(reg):
    upload = kinds.KINDS["testdev_upload"]
    run = next(r for r in reg.available_runs() if r.stage == "testdev")
    text = reg.manual_instructions(upload, run.id)
    assert f"upload {run.file('testdev_zip')} to the COCO keypoint evaluation server" in text
    assert f"save the scores it returns as {run.file('server_scores')}" in text
    assert "synthetic" in text  # and that at this scale nobody can score it
    paper = Registry(load_params(PARAMS), "paper")
    assert "synthetic" not in paper.manual_instructions(upload, run.id.replace("smoke", "paper"))
