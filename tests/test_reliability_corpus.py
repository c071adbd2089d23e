"""A corpus of bad inputs, each given to the command that reads it, in a temporary copy of the project.

Every case must end the command with a non-zero status, name its culprit (the file or the key) in the
FIRST `error:` line on stderr, and leave results/, paper_tables/ and work/ of the project exactly as
they were: a bad input is refused before anything is written, or what was written is removed.

Families: params.yaml and run configs, data (images, annotation and detection files), checkpoints,
metrics files given to the report stage, and launch options. The good inputs (tiny synthetic data, a
one-epoch tiny model, its metrics.json) are made once per module, outside the three watched folders.
Stages run with --in-process where the job launcher is not what the case is about (faster).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import pytest

from conftest import copy_project
from engine_support import make_synthetic, tiny_config

WATCHED = ("results", "paper_tables", "work")
PYTHON = sys.executable
WORKERS = 2                          # cases run two at a time, each in its own copy of the project
_ERROR_LINE = re.compile(r"(^|: )error: ")  # `error: ...`, and argparse's `prog: error: ...`


@dataclasses.dataclass
class Project:
    """One case's copy of the project (``root``) and the good inputs shared by all cases (``good``)."""

    root: Path
    good: Path

    def config(self, **sections) -> dict:
        return tiny_config(self.good / "coco", **sections)

    def write_config(self, where: Path, cfg: dict) -> str:
        path = where / "run.json"
        path.write_text(json.dumps(cfg))
        return str(path)

    def data_copy(self, where: Path) -> Path:
        """A copy of the good synthetic dataset, to break."""
        data = where / "coco"
        shutil.copytree(self.good / "coco", data)
        return data


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A copy of the project plus, beside it, the good inputs: tiny data, a trained model, its metrics."""
    top = tmp_path_factory.mktemp("corpus")
    root = copy_project(top / "project")
    good = top / "good"
    data = make_synthetic(good / "coco", num_train=3, num_val=2)
    config = good / "run.json"
    config.write_text(json.dumps(tiny_config(data, train={"epochs": 1})))
    for argv in (
        ["-m", "stages.finetune", "--config", str(config), "--work-dir", str(good / "work"),
         "--out", str(good / "model.pth"), "--in-process", "--no-progress"],
        ["-m", "stages.evaluate", "--config", str(config), "--checkpoint", str(good / "model.pth"),
         "--out-dir", str(good / "results/smoke/tiny"), "--in-process", "--no-progress"],
    ):
        proc = subprocess.run([PYTHON, *argv], cwd=root, env=_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    return top


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VITPOSE_")}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", **extra}


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under the watched folders, with size and modification time."""
    out: dict[str, tuple] = {}
    for name in WATCHED:
        for path in [root / name, *sorted((root / name).rglob("*"))] if (root / name).exists() else []:
            st = path.lstat()
            out[str(path.relative_to(root))] = ("dir",) if path.is_dir() else (st.st_size, st.st_mtime_ns)
    return out


# ---- the cases --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Case:
    """``make(project, case_dir) -> (argv after python, culprit, env)``: sets up the bad input."""

    id: str
    make: Callable[[Project, Path], tuple[list[str], str, dict[str, str]]]
    xfail: str | None = None


CASES: list[Case] = []


def case(case_id: str, xfail: str | None = None):
    def register(fn):
        CASES.append(Case(case_id, fn, xfail))
        return fn
    return register


def _finetune(config: str, *extra: str, in_process: bool = True) -> list[str]:
    return ["-m", "stages.finetune", "--config", config, "--no-progress", *(["--in-process"] if in_process else []),
            *extra]


def _evaluate(config: str, checkpoint: str, *extra: str) -> list[str]:
    return ["-m", "stages.evaluate", "--config", config, "--checkpoint", checkpoint, "--out-dir",
            "results/smoke/tiny", "--in-process", "--no-progress", *extra]


def _rel(p: Project, path: Path) -> str:
    """How a bad file is named on the command line and in the expected message (relative to the copy)."""
    return str(path.relative_to(p.root))


# params.yaml, through `python -m workflow.registry validate --params FILE`

def _params_case(case_id: str, edit: Callable[[str], str], culprit: str | None) -> None:
    @case(f"params-{case_id}")
    def make(p: Project, d: Path):
        text = (p.root / "params.yaml").read_text()
        new = edit(text)
        assert new != text, "the edit did not apply"
        (d / "params.yaml").write_text(new)
        path = _rel(p, d / "params.yaml")
        return ["-m", "workflow.registry", "validate", "--params", path], culprit or path, {}


def _sub(old: str, new: str) -> Callable[[str], str]:
    return lambda text: re.sub(old, new, text, count=1, flags=re.M)


_params_case("unknown-key", lambda t: t + "\nbogus_key: 1\n", "bogus_key")
_params_case("seed-type", _sub(r"^seeds: \[0\]", "seeds: [zero]"), "seeds")
_params_case("scale-value", _sub(r"^scale: smoke", "scale: huge"), "scale")
_params_case("model-value", _sub(r"^  model: vitpose-b", "  model: vitpose-x"), "baseline.model")
_params_case("epochs-value", _sub(r"^  epochs: 210", "  epochs: -3"), "schedule.epochs")
_params_case("input-format", _sub(r"^  input: 256x192", "  input: 256by192"), "baseline.input")
_params_case("yaml-syntax", lambda t: t + "\n  - [unclosed\n", None)


@case("params-missing-file")
def _(p: Project, d: Path):
    return ["-m", "workflow.registry", "validate", "--params", "cases/nothere/params.yaml"], "nothere/params.yaml", {}


# run configs given with --config

@case("runconfig-unknown-key")
def _(p: Project, d: Path):
    cfg = p.config()
    cfg["train"]["lrr"] = 1e-3
    return _finetune(p.write_config(d, cfg)), "train.lrr", {}


@case("runconfig-bad-json")
def _(p: Project, d: Path):
    (d / "run.json").write_text('{"run": "tiny", "model": {')
    return _finetune(str(d / "run.json")), _rel(p, d / "run.json"), {}


# data: images, annotations, detections

def _person_image(ann_file: Path) -> str:
    """The file name of an image with a person the training uses (not crowd, labelled keypoints)."""
    data = json.loads(ann_file.read_text())
    names = {img["id"]: img["file_name"] for img in data["images"]}
    for ann in data["annotations"]:
        if not ann.get("iscrowd") and ann.get("num_keypoints", 0) > 0 and ann["bbox"][2] > 1 and ann["bbox"][3] > 1:
            return names[ann["image_id"]]
    raise AssertionError(f"{ann_file}: no trainable person")



def _image_case(case_id: str, split: str, damage: Callable[[Path], None], xfail: str | None = None) -> None:
    @case(f"data-{split}-{case_id}", xfail=xfail)
    def make(p: Project, d: Path):
        data = p.data_copy(d)
        image = data / f"{split}2017" / _person_image(data / f"annotations/person_keypoints_{split}2017.json")
        damage(image)
        config = p.write_config(d, tiny_config(data, train={"epochs": 1}))
        argv = _finetune(config) if split == "train" else _evaluate(config, str(p.good / "model.pth"))
        return argv, _rel(p, image), {}


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


# Images are read by the val split (evaluate) here: it fails fast and writes nothing until the end. The
# train split reads them the same way (TopDownCocoDataset), once training has started.
_image_case("truncated-jpeg", "val", _truncate)
_image_case("empty-image", "val", lambda path: path.write_bytes(b""))
_image_case("missing-image", "val", lambda path: path.unlink())
_image_case("text-as-jpeg", "val", lambda path: path.write_text("not an image\n"))
_image_case("truncated-jpeg", "train", _truncate)


def _ann_case(case_id: str, split: str, damage: Callable[[dict], object] | str, xfail: str | None = None) -> None:
    @case(f"data-{split}-ann-{case_id}", xfail=xfail)
    def make(p: Project, d: Path):
        data = p.data_copy(d)
        ann = data / f"annotations/person_keypoints_{split}2017.json"
        if isinstance(damage, str):
            ann.write_text(damage)
        else:
            doc = json.loads(ann.read_text())
            new = damage(doc)
            ann.write_text(json.dumps(doc if new is None else new))
        config = p.write_config(d, tiny_config(data, train={"epochs": 1}))
        argv = _finetune(config) if split == "train" else _evaluate(config, str(p.good / "model.pth"))
        return argv, _rel(p, ann), {}


def _bad_keypoints(doc: dict) -> None:
    doc["annotations"][0]["keypoints"] = doc["annotations"][0]["keypoints"][:-3]


def _all_crowd(doc: dict) -> None:
    for ann in doc["annotations"]:
        ann["iscrowd"] = 1


_ann_case("broken-json", "val", '{"images": [{"id": 1, "file_name": "a.jpg"')
_ann_case("not-coco", "val", "[1, 2, 3]")
_ann_case("keypoint-count", "val", _bad_keypoints)
_ann_case("no-person", "val", lambda doc: doc.update(annotations=[]))
_ann_case("all-crowd", "val", _all_crowd)
_ann_case("broken-json", "train", '{"images": [{"id": 1, "file_name": "a.jpg"')


@case("data-val-ann-missing")
def _(p: Project, d: Path):
    cfg = p.config(train={"epochs": 1})
    cfg["data"]["val_ann"] = str(d / "absent_val.json")
    return _evaluate(p.write_config(d, cfg), str(p.good / "model.pth")), "absent_val.json", {}


def _det_case(case_id: str, content: str) -> None:
    @case(f"data-det-{case_id}")
    def make(p: Project, d: Path):
        det = d / "dets.json"
        det.write_text(content)
        cfg = p.config(train={"epochs": 1})
        cfg["data"]["det_file"] = str(det)
        return _evaluate(p.write_config(d, cfg), str(p.good / "model.pth")), _rel(p, det), {}


_det_case("broken-json", '[{"image_id": 1, "bbox": [1, 2')
_det_case("empty-list", "[]")
_det_case("no-bbox", json.dumps([{"image_id": 1, "category_id": 1, "score": 0.9}]))


# checkpoints given to the evaluate stage

class _RunsCode:
    """Unpickling this would create ``marker``: a checkpoint must be loaded without running code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _ckpt_case(case_id: str, write: Callable[[Project, Path], None]) -> None:
    @case(f"ckpt-{case_id}")
    def make(p: Project, d: Path):
        ckpt = d / "model.pth"
        write(p, ckpt)
        return _evaluate(str(p.good / "run.json"), str(ckpt)), _rel(p, ckpt), {}


def _pickle_that_runs_code(p: Project, path: Path) -> None:
    import torch

    torch.save({"state_dict": {}, "meta": _RunsCode(str(path.parent / "MARKER"))}, path)


def _other_model(p: Project, path: Path) -> None:
    from vitpose.config import RunConfig
    from vitpose.models import build_model
    from vitpose.models.checkpoint import save_vitpose_checkpoint

    cfg = RunConfig.from_dict(p.config(model={"embed_dim": 48}))
    save_vitpose_checkpoint(build_model(cfg.model), path)


_ckpt_case("truncated", lambda p, path: path.write_bytes((p.good / "model.pth").read_bytes()[:5000]))
_ckpt_case("empty", lambda p, path: path.write_bytes(b""))
_ckpt_case("text-file", lambda p, path: path.write_text("these are not the weights you are looking for\n"))
_ckpt_case("pickle-runs-code", _pickle_that_runs_code)
_ckpt_case("other-model", _other_model)


@case("ckpt-truncated-training-state")
def _(p: Project, d: Path):
    """finetune resuming from a last.pth cut short (a copy interrupted, a full disk in an older version)."""
    state = p.root / "work/smoke/tiny/last.pth"
    state.parent.mkdir(parents=True)
    state.write_bytes((p.good / "work/last.pth").read_bytes()[:5000])
    return _finetune(str(p.good / "run.json")), "work/smoke/tiny/last.pth", {}


@case("ckpt-missing")
def _(p: Project, d: Path):
    return _evaluate(str(p.good / "run.json"), str(d / "gone.pth")), "gone.pth", {}


# metrics files given to the report stage

def _metrics_case(case_id: str, damage: Callable[[dict], object] | str, culprit: str | None = None) -> None:
    @case(f"metrics-{case_id}")
    def make(p: Project, d: Path):
        results = d / "results"
        shutil.copytree(p.good / "results", results)
        path = results / "smoke/tiny/metrics.json"
        if isinstance(damage, str):
            path.write_text(damage)
        else:
            doc = json.loads(path.read_text())
            damage(doc)
            path.write_text(json.dumps(doc))
        argv = ["-m", "stages.tables", "--scale", "smoke", "--results", _rel(p, results), "--no-pdf", "--quiet"]
        return argv, culprit or _rel(p, path), {}


_metrics_case("broken-json", '{"schema": "vitpose-metrics/1", "run": ')
_metrics_case("empty-file", "")
_metrics_case("not-object", "[]")
_metrics_case("missing-metrics", lambda doc: doc.pop("metrics"), "metrics")
_metrics_case("ap-out-of-range", lambda doc: doc["metrics"].update(AP=7.5), "AP")


# launch options (the finetune stage as a launcher job; each fails before any job is submitted)

def _launch_case(case_id: str, extra: list[str], culprit: str, yaml_text: str | None = None,
                 env: dict[str, str] | None = None) -> None:
    @case(f"launch-{case_id}")
    def make(p: Project, d: Path):
        args = [a.replace("{yaml}", _rel(p, d / "launch.yaml")) for a in extra]
        if yaml_text is not None:
            (d / "launch.yaml").write_text(yaml_text)
        return (_finetune(str(p.good / "run.json"), *args, in_process=False),
                culprit.replace("{yaml}", _rel(p, d / "launch.yaml")), dict(env or {}))


_launch_case("bad-launcher-option", ["--launcher", "cluster"], "--launcher")
_launch_case("bad-launcher-env", [], "launcher", env={"VITPOSE_LAUNCH": "cluster"})
_launch_case("config-yaml-syntax", ["--launch-config", "{yaml}"], "{yaml}", yaml_text="nodes: [1, 2\n")
_launch_case("config-unknown-key", ["--launch-config", "{yaml}"], "gpus", yaml_text="gpus: 2\n")
_launch_case("config-bad-type", ["--launch-config", "{yaml}"], "nodes", yaml_text="nodes: two\n")
_launch_case("config-not-mapping", ["--launch-config", "{yaml}"], "{yaml}", yaml_text="- local\n")
_launch_case("config-missing-file", ["--launch-config", "cases/none/launch.yaml"], "none/launch.yaml")
_launch_case("set-unknown-key", ["--launch-set", "partitions=gpu"], "partitions")
_launch_case("set-local-two-nodes", ["--launch-set", "nodes=2"], "nodes")
# A machine without SLURM: the slurm launcher is refused up front. The case hides SLURM's commands by
# running with only the virtual environment's bin directory on PATH, so it holds whether or not the
# test cluster (tests/conftest.py) has installed and started SLURM by the time it runs.
_launch_case("slurm-unavailable", ["--launcher", "slurm"], "slurm", env={"PATH": str(Path(PYTHON).parent)})


# ---- running the cases ------------------------------------------------------------------------------

@dataclasses.dataclass
class Outcome:
    returncode: int
    stderr: str
    culprit: str
    before: dict
    after: dict
    ran_code: bool


def _run(top: Path, bad: Case) -> Outcome:
    """``bad`` in a fresh copy of the project: the command, and the watched folders before and after."""
    root = top / "cases" / bad.id
    shutil.copytree(top / "project", root, ignore=shutil.ignore_patterns(".git"))
    project = Project(root, top / "good")
    where = root / "bad"  # the case's bad inputs, outside the watched folders
    where.mkdir()
    argv, culprit, env = bad.make(project, where)
    before = _snapshot(root)
    proc = subprocess.run([PYTHON, *argv], cwd=root, env=_env(**env), capture_output=True, text=True,
                          timeout=240)
    return Outcome(proc.returncode, proc.stderr, culprit, before, _snapshot(root), (where / "MARKER").exists())


@pytest.fixture(scope="module")
def outcomes(base: Path, request) -> Iterator[dict[str, Future]]:
    """The selected cases, started in the background WORKERS at a time, in collection order."""
    selected = [item.callspec.params["bad"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_bad_input_is_refused_naming_the_culprit_and_writing_nothing"]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {c.id: pool.submit(_run, base, c) for c in selected}
        yield futures
        for future in futures.values():
            future.cancel()


def _param(c: Case):
    marks = [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []
    return pytest.param(c, id=c.id, marks=marks)


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)
    families = {c.id.split("-")[0] for c in CASES}
    assert families >= {"params", "runconfig", "data", "ckpt", "metrics", "launch"}


@pytest.mark.parametrize("bad", [_param(c) for c in CASES])
def test_bad_input_is_refused_naming_the_culprit_and_writing_nothing(outcomes, bad: Case) -> None:
    out = outcomes[bad.id].result(timeout=600)
    tail = out.stderr[-3000:]
    error_lines = [line for line in out.stderr.splitlines() if _ERROR_LINE.search(line)]
    assert out.returncode != 0, f"exit 0 for a bad input\n{tail}"
    assert error_lines, f"no `error:` line on stderr (exit {out.returncode})\n{tail}"
    assert out.culprit in error_lines[0], f"{out.culprit!r} not in the first error line\n{tail}"
    assert "Traceback" not in out.stderr, tail
    created = sorted(set(out.after) - set(out.before))
    changed = sorted(k for k in out.before if out.after.get(k) != out.before[k])
    assert not created and not changed, f"under results/, paper_tables/, work/: created {created}, changed {changed}"
    assert not out.ran_code, "loading the checkpoint ran code from it"
