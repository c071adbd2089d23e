"""params.yaml -> the list of runs. One source of truth for Snakemake, DVC and the report stage.

A *row* of a table is the baseline plus the keys the row changes (its *spec*, in the paper's terms).
A *run* is one distinct spec at one scale: rows of several tables with the same spec are one run
(the ViTPose-B baseline serves Tables 2, 3, 4, 6, 7, 8 and 9). A run's id is derived from its spec, so
it is stable and readable: ``vitpose-b-classic-256x192-r2-window8x8-shift-pool``.

Rows merge *deeply* into the baseline: a row may give part of a nested mapping (`distill: {token:
true, teacher: vitpose-l}`), the rest comes from the baseline.

Each run is resolved once into a `vitpose.config.RunConfig` (validated whole, the model included, before
any job starts); the DAG writes it to `results/<scale>/<run>/config.json` and every job of the run reads
that file. The kinds of job and their edges (which files of this run and of upstream runs each reads)
are declared in workflow/kinds.py.

Command line (used by DVC's stages and for inspection)::

    python -m workflow.registry list     [--scale smoke] [--table 5]   # run ids, one per line
    python -m workflow.registry show     RUN [--scale smoke]           # the resolved run config (JSON)
    python -m workflow.registry resolve  RUN [--scale smoke] --out results/smoke/RUN/config.json
    python -m workflow.registry plan     [--scale smoke] [--table 8]   # the job graph, in the paper's words
    python -m workflow.registry plan --cost [--scale paper] [--gpu a100] [--table 3]
                                             # GPU-hours, disk and missing manual downloads (workflow/cost.py)
    python -m workflow.registry validate [--params FILE]              # params.yaml and every run config

Besides the table rows' runs (and their upstream runs), two kinds of evaluation-only runs:
- `testdev-<member run>[--<member run> ...]` (stage "testdev"): the rows of a `test_dev` table
  (Table 10) are COCO test-dev submissions of their members' models, one member or an ensemble
  (docs/VITPOSE_G.md); the members are ordinary finetuning runs, upstream roles member1, member2, ...
- `released-<spec's run id>` (stage "released"): the authors' released checkpoints of params.yaml
  `released`, evaluated here; they give the "released" value of the rows with their spec in tables
  that `shows_released` (Tables 2 and 9).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from vitpose.config import PRETRAIN_SOURCES, RUN_FILES, RunConfig, RunPaths, run_config_document
from vitpose.models.config import PATCH_SIZE, RESNET_STRIDE
from vitpose.utils.errors import ConfigError, UserError
from vitpose.utils.io import atomic_write_json
from workflow.kinds import Kind, run_kinds
from workflow.schema import load_params

REPO = Path(__file__).resolve().parent.parent
PARAMS = REPO / "params.yaml"

# Capabilities that rows may need, and whether this code base has them yet. A row needing a missing
# capability is never run and never given a number: its table shows "—" with this reason, and a
# table that exists to study the capability fails at once when asked for.
# Figure 3 draws the predictions of this Table 9 row's run (the paper does not say which ViTPose it shows).
FIGURE3_ROW = {"table": 9, "row": "vitpose-b", "label": "ViTPose-B"}

CAPABILITIES: dict[str, tuple[bool, str]] = {
    "finetune": (True, "top-down finetuning and COCO evaluation"),
    "mae_pretraining": (True, "MAE pre-training of the ViT backbone (Table 3)"),
    "multi_dataset": (True, "multi-dataset training with one decoder per dataset (Table 7)"),
    "distillation": (True, "heatmap and knowledge-token distillation (Table 8)"),
    "vitae_g": (True, "the ViTAE-G backbone of ViTPose-G (Table 10)"),
    "resnet_imagenet_weights": (False, "ImageNet-supervised ResNet weights for SimpleBaseline at paper scale"),
}

# Where each dataset lives under a scale's data_root, and its split files (real COCO layout; the
# synthetic data mirrors it).
COCO_FILES = {
    "train_ann": "annotations/person_keypoints_train2017.json",
    "train_images": "train2017",
    "val_ann": "annotations/person_keypoints_val2017.json",
    "val_images": "val2017",
    "det_file": "person_detection_results/COCO_val2017_detections_AP_H_56_person.json",
}
# The other datasets of multi-dataset training (Table 7), in the layouts of docs/DATA.md (OpenMMLab's
# converted annotation files). Their evaluation uses ground-truth boxes (MPII has no detections; for AIC
# and CrowdPose the paper reports no number, so we use the boxes every method is given).
DATASET_FILES = {
    "coco": COCO_FILES,
    "aic": {"train_ann": "annotations/aic_train.json",
            "train_images": "ai_challenger_keypoint_train_20170902/keypoint_train_images_20170902",
            "val_ann": "annotations/aic_val.json",
            "val_images": "ai_challenger_keypoint_validation_20170911/keypoint_validation_images_20170911"},
    "mpii": {"train_ann": "annotations/mpii_train.json", "train_images": "images",
             "val_ann": "annotations/mpii_val.json", "val_images": "images",
             "gt_mat": "annotations/mpii_gt_val.mat"},
    "crowdpose": {"train_ann": "annotations/mmpose_crowdpose_trainval.json", "train_images": "images",
                  "val_ann": "annotations/mmpose_crowdpose_test.json", "val_images": "images"},
    # COCO test-dev (Table 10): the image list, the images and person detections on them (the HRNet
    # authors' boxes, AP 60.9; the paper used BigDet's, which are not public). No keypoints: only the
    # COCO server scores it. The synthetic stand-in has the same layout (vitpose.data.synthetic).
    "coco-testdev": {"image_info": "annotations/image_info_test-dev2017.json", "images": "test2017",
                     "det_file": "person_detection_results/COCO_test-dev2017_detections_AP_H_609_person.json"},
}
IMAGENET_TRAIN = "train"  # ImageNet-1k's class folders under <data_root>/imagenet
# The downloaded backbone weights of imagenet_init `released`, in MAE's file layout: the MAE authors'
# ViTs, and ViTAE-G for ViTPose-G (a manual item: never published by the authors, docs/VITPOSE_G.md).
MAE_CHECKPOINTS = {"vitpose-b": "mae_pretrain_vit_base.pth", "vitpose-l": "mae_pretrain_vit_large.pth",
                   "vitpose-h": "mae_pretrain_vit_huge.pth", "vitpose-g": "vitae_g_pretrain.pth"}
# Run files by name (RUN_FILES' keys): what job inputs and command arguments call them.
FILE_KEYS = {name: key for key, name in RUN_FILES.items()}


def size_tuple(text: str) -> list[int]:
    h, w = text.split("x")
    return [int(h), int(w)]


def scaled_geometry(spec: dict, factor: float, stride: int) -> tuple[list[int], list[int]]:
    """(input [H, W], window [h, w]) of a row at a scale's `input_scale`.

    The input shrinks by `factor`, rounded to the nearest multiple of the backbone's feature stride
    (at least one stride); the window (in tokens) shrinks by the same factor (at least one token),
    so it keeps its relation to the token grid: 8x8 windows on the 32x24 grid of 256x192 at 1/8
    features are 4x4 windows on the 16x12 grid of 128x96 at factor 0.5 (4x3 windows either way).
    """
    if factor == 1:
        return size_tuple(spec["input"]), size_tuple(spec["window"])
    inp = [max(stride, int(s * factor / stride + 0.5) * stride) for s in size_tuple(spec["input"])]
    win = [max(1, int(s * factor + 0.5)) for s in size_tuple(spec["window"])]
    return inp, win


def dvc_param_key(table: str, row: str) -> str:
    """The params.yaml key DVC tracks for a table row. DVC reads keys with dpath, where `*`, `?` and
    `[` are globs: a row named `vitpose-b*` (Table 9's multi-dataset rows) is tracked through its table's
    whole `rows` mapping instead (a change to a sibling row then re-resolves its config.json, which is
    unchanged, so nothing after it re-runs)."""
    return f"tables.{table}.rows" if any(c in row for c in "*?[]") else f"tables.{table}.rows.{row}"


def deep_merge(base: dict, override: dict) -> dict:
    """`base` with `override` applied key by key, recursing into mappings present in both (copies)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class Run:
    """One distinct experiment at one scale.

    stage "finetune": a pose model trained on keypoints (every table row); "pretrain": the MAE
    pre-training of a backbone (Table 3), upstream of the finetuning runs initialised from it, with
    spec {"model", "pretrain" (the set), "datasets" (the set's sources)}; "token": the knowledge-token
    training on a teacher run (Table 8, Eq. 5), with the teacher's spec, upstream of the students
    that distil it with a token; "testdev": a COCO test-dev submission of its members' models (Table
    10), spec {"members": [member specs]}, upstream roles member1, member2, ...; "released": the
    evaluation of an authors' released checkpoint, spec = what it holds plus {"released": item}.
    """

    id: str
    scale: str
    spec: dict                                        # paper terms (baseline + row overrides)
    serves: list[dict] = field(default_factory=list)  # [{"table": 5, "row": "window"}, ...]
    param_keys: list[str] = field(default_factory=list)  # params.yaml keys it depends on (DVC params)
    requires: list[str] = field(default_factory=list)    # capabilities needed
    upstream: dict[str, str] = field(default_factory=dict)  # {role: run id} of runs it consumes
    stage: str = "finetune"                              # finetune | pretrain | token | testdev | released
    seed: int = 0                                        # one of params.yaml `seeds`

    @property
    def missing(self) -> str | None:
        """Why this run cannot be produced yet, or None."""
        gaps = [name for name in self.requires if not CAPABILITIES[name][0]]
        if not gaps:
            return None
        return "; ".join(f"needs {g}: {CAPABILITIES[g][1]}, not implemented yet" for g in gaps)

    # Declared files of the run (relative to the repository root): vitpose.config.RunPaths spells them.
    @property
    def paths(self) -> RunPaths:
        return RunPaths.for_run(self.scale, self.id)

    @property
    def result_dir(self) -> str:
        return self.paths.result_dir

    def file(self, name: str) -> str:
        """A file of the run by its RUN_FILES key or its file name (`file('metrics')`, `file('model.pth')`)."""
        return f"{self.result_dir}/{RUN_FILES.get(name, name)}"

    @property
    def config(self) -> str:
        return self.file("config")

    @property
    def checkpoint(self) -> str:
        return self.file("checkpoint")

    @property
    def benchmark(self) -> str:
        return self.file("benchmark")

    @property
    def metrics(self) -> str:
        return self.file("metrics")

    @property
    def work_dir(self) -> str:
        """Resumable training state; deliberately not a declared output (tools delete those)."""
        return self.paths.work_dir


def run_id(spec: dict, baseline: dict, seed: int | None = None) -> str:
    """Readable, stable id from the spec: model, decoder, input, then what differs from the baseline.

    `seed`: a repeat's seed (params.yaml `seeds` beyond the first) ends the id as `-seed<N>`; the
    first seed's runs keep the plain id."""
    parts = [spec["model"], spec["decoder"], spec["input"]]
    if spec["ratio"] != 1:
        parts.append(f"r{spec['ratio']}")
    if spec["attention"] != "full":
        parts.append(f"{spec['attention']}{spec['window']}")
    parts += [name for name in ("shift", "pool") if spec[name]]
    if spec["freeze"] != "none":
        parts.append(f"freeze-{spec['freeze']}")
    if spec["pretrain"] != baseline["pretrain"]:
        parts.append(f"pt-{spec['pretrain']}")
    if spec["datasets"] != ["coco"]:
        parts.append("+".join(spec["datasets"]))
    d = spec["distill"]
    if d["heatmap"] or d["token"]:
        kinds = "+".join(k for k in ("heatmap", "token") if d[k])
        parts.append(f"kd-{kinds}-{d['teacher']}")
    if spec["precision"] != "auto":
        parts.append(spec["precision"])
    if seed is not None:
        parts.append(f"seed{seed}")
    return "-".join(parts)


def _some(ids: list[str], shown: int = 3) -> str:
    """`a, b, c` or `25 runs: a, b, c, ...` (a readable one-line list of run ids)."""
    if not ids:
        return "no run"
    if len(ids) <= shown:
        return ", ".join(ids)
    return f"{len(ids)} runs: {', '.join(ids[:shown])}, ..."


def pretrain_run_id(model: str, pretrain_set: str) -> str:
    """The MAE pre-training run of a backbone on a set: `mae-vitpose-b-coco+aic-crop`."""
    return f"mae-{model}-{pretrain_set}"


def token_run_id(teacher_id: str) -> str:
    """The knowledge-token training run on a teacher run: `token-vitpose-l-classic-256x192`."""
    return f"token-{teacher_id}"


def required_capabilities(spec: dict, scale_cfg: dict) -> list[str]:
    req = ["finetune"]
    if spec["pretrain"] not in ("imagenet-1k", "none"):
        req.append("mae_pretraining")
    if spec["datasets"] != ["coco"]:
        req.append("multi_dataset")
    if spec["distill"]["heatmap"] or spec["distill"]["token"]:
        req.append("distillation")
    if spec["model"] == "vitpose-g":
        req.append("vitae_g")
    if spec["model"].startswith("resnet") and not scale_cfg["synthetic"]:
        req.append("resnet_imagenet_weights")
    return req


class Registry:
    """All runs of one scale, expanded from a validated params.yaml."""

    def __init__(self, params: dict, scale: str | None = None, params_path: str | Path = PARAMS):
        self.params = params
        self.params_path = Path(params_path)
        self.scale = scale or params["scale"]
        if self.scale not in params["scales"]:
            raise ConfigError(f"{params_path}: scale {self.scale!r} is not defined under 'scales' "
                              f"(expected one of: {', '.join(params['scales'])})")
        self.scale_cfg = params["scales"][self.scale]
        # Seed repeats: every table row runs once per seed; the first seed's runs keep the plain id.
        self.seeds: list[int] = list(params["seeds"])
        self.runs: dict[str, Run] = {}
        self.rows: list[dict] = []  # [{"table": 5, "row": "...", "run": id, "seed": 0}]
        # The released checkpoints' rows: [{"table": 2, "row": "...", "run": "released-...", "seed": None,
        # "released": True, "checkpoint": file}] (a row's "released" value, beside the runs of `rows`).
        self.released_rows: list[dict] = []
        self._released_files: dict[str, str] = {}  # released run id -> its checkpoint file
        self._resolved: dict[str, RunConfig] = {}
        self._expand()

    # -- expansion -----------------------------------------------------------------------------
    def _run_for(self, spec: dict, seed: int) -> Run:
        """The run of `spec` at `seed`, created (serving no row yet) when no table row has them."""
        rid = run_id(spec, self.params["baseline"], None if seed == self.seeds[0] else seed)
        run = self.runs.get(rid)
        if run is None:
            run = Run(rid, self.scale, spec, requires=required_capabilities(spec, self.scale_cfg), seed=seed)
            self.runs[rid] = run
        return run

    def _expand(self) -> None:
        base = self.params["baseline"]
        for tname, table in self.params["tables"].items():
            tnum = int(tname[len("table"):])
            for rname, row in table["rows"].items():
                for seed in self.seeds:
                    if table["test_dev"]:  # a submission of the row's model, or of its members' ensemble
                        members = [deep_merge(base, m) for m in row.get("members", [row])]
                        run = self._testdev_run_for(members, seed, f"tables.{tname}.rows.{rname}")
                    else:
                        run = self._run_for(deep_merge(base, row), seed)
                    run.serves.append({"table": tnum, "row": rname})
                    run.param_keys.append(dvc_param_key(tname, rname))
                    self.rows.append({"table": tnum, "row": rname, "run": run.id, "seed": seed})
        # Upstream runs. A student's teacher is the teacher model's COCO run at the baseline's other
        # settings (paper §3.4: ViTPose-L as trained for Tables 2 and 9) and the student's seed, one
        # run for every student of that seed.
        # Heatmap distillation reads the teacher's weights; token distillation reads the token trained
        # on the teacher (one token run per teacher, whatever number of students use it).
        self._expand_released(base)
        for run in list(self.runs.values()):
            if run.stage != "finetune":
                continue
            d = run.spec["distill"]
            if not (d["heatmap"] or d["token"]):
                continue
            if d["teacher"] == "none":
                rows = ", ".join(f"tables.table{s['table']}.rows.{s['row']}" for s in run.serves)
                raise ConfigError(f"{self.params_path}: {rows}: distill.heatmap / distill.token need a "
                                  f"distill.teacher (a model, e.g. vitpose-l), got none")
            teacher = self._run_for(deep_merge(base, {"model": d["teacher"]}), run.seed)
            if d["heatmap"]:
                run.upstream["teacher"] = teacher.id
            if d["token"]:
                run.upstream["token"] = self._token_run_for(teacher).id
        # A ViT initialised by our own MAE pre-training consumes that pre-training run: one run per
        # (backbone, set), whatever number of finetuning runs (and seeds) start from it. Seed repeats
        # measure the variance of finetuning; the pre-training (hundreds of GPU-hours at paper scale)
        # runs once, with the first seed.
        for run in list(self.runs.values()):
            pset = self.pretrain_set(run)
            if pset is not None:
                run.upstream["pretrain"] = self._pretrain_run_for(run.spec["model"], pset).id
        for run in self.runs.values():
            if run.stage == "pretrain":
                run.param_keys = sorted({"seeds", "pretraining", f"scales.{self.scale}"})
                continue
            if run.stage in ("testdev", "released"):  # evaluations: the model's section, the protocol
                model = (self.reference_member(run) if run.stage == "testdev" else run).spec["model"]
                run.param_keys = sorted(set(run.param_keys) | {
                    "seeds", "baseline", "evaluation", f"scales.{self.scale}", f"hyperparameters.{model}"})
                continue
            models = {run.spec["model"]} | {self.runs[u].spec["model"] for u in run.upstream.values()}
            distils = run.stage == "token" or run.spec["distill"]["heatmap"] or run.spec["distill"]["token"]
            run.param_keys = sorted(set(run.param_keys) | {
                "seeds", "baseline", "schedule", "evaluation", f"scales.{self.scale}",
                *(f"hyperparameters.{m}" for m in models),
                *(["multi_dataset"] if len(run.spec["datasets"]) > 1 else []),
                *(["distillation"] if distils else [])})
        # A run whose upstream run cannot be produced cannot be produced either (through chains:
        # teacher -> token -> student).
        changed = True
        while changed:
            changed = False
            for run in self.runs.values():
                needed = set(run.requires).union(*(self.runs[u].requires for u in run.upstream.values()))
                if needed != set(run.requires):
                    run.requires, changed = sorted(needed), True

    def _testdev_run_for(self, specs: list[dict], seed: int, where: str) -> Run:
        """The test-dev submission of the runs of `specs` at `seed` (one model, or their ensemble)."""
        members = [self._run_for(spec, seed) for spec in specs]
        ids = [m.id for m in members]
        if len(set(ids)) < len(ids):
            raise ConfigError(f"{self.params_path}: {where}.members: the same configuration twice ({ids}); "
                              f"an ensemble's members are distinct models")
        rid = "testdev-" + "--".join(ids)
        run = self.runs.get(rid)
        if run is None:
            run = Run(rid, self.scale, {"members": [copy.deepcopy(m.spec) for m in members]},
                      requires=["finetune"], upstream={f"member{i}": m for i, m in enumerate(ids, 1)},
                      stage="testdev", seed=seed)
            self.runs[rid] = run
        return run

    def _expand_released(self, base: dict) -> None:
        """The runs evaluating params.yaml `released`: one per checkpoint (a manifest item), giving the
        "released" value of the rows with its spec in the tables that `shows_released`."""
        if not self.params["released"]:
            return
        from vitpose.download.manifest import load_manifest

        manifest = load_manifest()
        for item, over in self.params["released"].items():
            if item not in manifest.items:
                raise ConfigError(f"{self.params_path}: released.{item}: not an item of {manifest.path} (the "
                                  f"released checkpoints are its manual weight items, e.g. vitpose-b)")
            spec = deep_merge(base, over)
            rid = f"released-{run_id(spec, base)}"
            if rid in self.runs:
                raise ConfigError(f"{self.params_path}: released.{item}: the same configuration as released."
                                  f"{self.runs[rid].spec['released']} (run {rid})")
            source = manifest.items[item].sources[0]
            self._released_files[rid] = f"{self.scale_cfg['data_root']}/{manifest.items[item].dest}/" \
                                        f"{source.place or source.name}"
            run = Run(rid, self.scale, {**spec, "released": item}, param_keys=[f"released.{item}"],
                      requires=["finetune"], stage="released", seed=self.seeds[0])
            self.runs[rid] = run
            for tname, table in self.params["tables"].items():
                if not table["shows_released"]:
                    continue
                for rname, row in table["rows"].items():
                    if "members" not in row and deep_merge(base, row) == spec:
                        run.serves.append({"table": int(tname[len("table"):]), "row": rname})
                        run.param_keys.append(dvc_param_key(tname, rname))
                        self.released_rows.append({"table": run.serves[-1]["table"], "row": rname, "run": rid,
                                                   "seed": None, "released": True,
                                                   "checkpoint": self._released_files[rid]})

    def released_checkpoint(self, run: Run) -> str | None:
        """The checkpoint file a released run evaluates (its manifest item's place under data_root)."""
        return self._released_files.get(run.id)

    def downloaded_weights(self, run: Run) -> str | None:
        """The weights file under data_root a run reads (a download, or a file placed by hand): a
        finetuning run's released backbone initialisation, or a released run's checkpoint."""
        if run.stage == "released":
            return self.released_checkpoint(run)
        return self.pretrained_checkpoint(run) if "pretrain" not in run.upstream else None

    def released_in_place(self, run: Run) -> bool:
        """Whether a released run's checkpoint is on disk now (`snakemake all` evaluates only those)."""
        from vitpose.config import resolve_path

        return resolve_path(self.released_checkpoint(run)).is_file()

    def weights_command(self, path: str) -> str | None:
        """The command (after `python`) that puts a weights file of `downloaded_weights` in place, or None
        where none can: at a synthetic scale the released checkpoints are files a person (or a test)
        saves there, in the released format."""
        if self.scale_cfg["synthetic"] and path in self._released_files.values():
            return None
        return self.download_command(Path(path).stem)

    def data_items(self, run: Run) -> list[str]:
        """The data items (manifest names) the run's jobs read: its training sets; COCO val for an
        evaluation-only run (a multi-dataset checkpoint is scored on COCO, through its COCO decoder),
        plus test-dev for a submission; a pre-training set's sources."""
        if run.stage == "testdev":
            return ["coco", "coco-testdev"]
        if run.stage == "released":
            return ["coco"]
        return list(run.spec["datasets"])

    def server_scored(self) -> bool:
        """Whether the COCO server can score this scale's test-dev submissions (real test-dev only): the
        Table 10 targets then ask for the imported scores, else they stop at the submission."""
        return not self.scale_cfg["synthetic"]

    def reference_member(self, run: Run) -> Run:
        """The member whose geometry a test-dev ensemble works at: the largest input (the first of
        equals), like vitpose.engine.ensemble.EnsemblePoseModel; the others' heatmaps are resampled."""
        members = [self.get(u) for u in run.upstream.values()]
        sizes = [self.model_config(m.spec)["input_size"] for m in members]
        return members[max(range(len(members)), key=lambda i: sizes[i][0] * sizes[i][1])]

    def pretrain_set(self, run: Run) -> str | None:
        """The MAE pre-training set whose run initialises this finetuning run, or None.

        Table 3's pose sets are always pre-trained here (no released weights exist). ImageNet-1k follows
        the scale's `imagenet_init`: `released` (the MAE authors' weights, as the paper did), `ours`
        (pre-trained here, on the scale's ImageNet: synthetic at smoke) or `none` (random init). MAE
        pre-trains ViTs only: the SimpleBaseline ResNets' ImageNet weights are supervised ones.
        """
        spec = run.spec
        if run.stage != "finetune" or spec["model"].startswith("resnet") or spec["pretrain"] == "none":
            return None
        if spec["pretrain"] == "imagenet-1k" and self.scale_cfg["imagenet_init"] != "ours":
            return None
        return spec["pretrain"]

    def _pretrain_run_for(self, model: str, pretrain_set: str) -> Run:
        rid = pretrain_run_id(model, pretrain_set)
        run = self.runs.get(rid)
        if run is None:
            spec = {"model": model, "pretrain": pretrain_set, "datasets": list(PRETRAIN_SOURCES[pretrain_set])}
            req = ["mae_pretraining"] + (["vitae_g"] if model == "vitpose-g" else [])
            run = Run(rid, self.scale, spec, requires=req, stage="pretrain", seed=self.seeds[0])
            self.runs[rid] = run
        return run

    def _token_run_for(self, teacher: Run) -> Run:
        rid = token_run_id(teacher.id)
        run = self.runs.get(rid)
        if run is None:
            run = Run(rid, self.scale, copy.deepcopy(teacher.spec), requires=["distillation"], stage="token",
                      upstream={"teacher": teacher.id}, seed=teacher.seed)
            self.runs[rid] = run
        return run

    def upstream_chain(self, run: Run) -> list[tuple[str, Run]]:
        """(role, run) of every run this run depends on, depth first (a run before its consumers), once."""
        out: list[tuple[str, Run]] = []
        seen: set[str] = set()

        def visit(r: Run) -> None:
            for role, uid in r.upstream.items():
                up = self.runs[uid]
                visit(up)
                if up.id not in seen:
                    seen.add(up.id)
                    out.append((role, up))

        visit(run)
        return out

    # -- queries -------------------------------------------------------------------------------
    def get(self, rid: str) -> Run:
        try:
            return self.runs[rid]
        except KeyError:
            raise UserError(f"unknown run {rid!r} at scale {self.scale!r}; "
                            f"`python -m workflow.registry list --scale {self.scale}` lists them") from None

    def find(self, **changes) -> Run:
        """The run of the baseline with these changes (paper terms, e.g. `find(model="vitpose-l")`)."""
        spec = deep_merge(self.params["baseline"], changes)
        rid = run_id(spec, self.params["baseline"])
        if rid not in self.runs:
            raise UserError(f"no run of scale {self.scale!r} has the baseline with {changes} (run id {rid}); "
                            "add a table row for it")
        return self.runs[rid]

    def table_runs(self, table: int) -> list[Run]:
        ids = dict.fromkeys(r["run"] for r in self.rows if r["table"] == table)
        return [self.runs[i] for i in ids]

    def table_blocker(self, table: int) -> str | None:
        """Why the table cannot be reproduced at all (the capability it studies is missing)."""
        studies = self.params["tables"][f"table{table}"].get("studies")
        if studies and not CAPABILITIES.get(studies, (False,))[0]:
            desc = CAPABILITIES.get(studies, (False, studies))[1]
            return f"table {table} studies {studies} ({desc}), which is not implemented yet"
        return None

    def available_runs(self) -> list[Run]:
        return [r for r in self.runs.values() if r.missing is None]

    # -- jobs: kinds (workflow/kinds.py) applied to runs ------------------------------------------
    def kind_runs(self, kind: Kind) -> list[Run]:
        """The available runs that have a job of this kind."""
        return [r for r in self.available_runs() if kind in run_kinds(r)]

    def job_inputs(self, kind: Kind, rid: str) -> dict[str, str]:
        """Named input files of the `kind` job of run `rid`: its config, data, own and upstream files."""
        run = self.get(rid)
        inputs: dict[str, str] = {}
        if kind.name != "config":
            inputs["config"] = run.config
        if kind.data and run.stage == "pretrain":
            inputs["pretrain_index"] = self.pretrain_index(run.spec["pretrain"])
        elif kind.data:
            inputs.update({f"data_{d.replace('-', '_')}": self.data_marker(d) for d in self.data_items(run)})
            weights = self.downloaded_weights(run)  # an upstream run's file is consumed below instead
            if weights:
                inputs["pretrained" if run.stage == "finetune" else "weights"] = weights
        for name in kind.needs:
            inputs[FILE_KEYS.get(name, Path(name).stem)] = run.file(name)
        roles = kind.upstream(self, run)
        for role, name in kind.consumed(roles).items():
            inputs[role] = self.get(roles[role]).file(name)
        return inputs

    def job_outputs(self, kind: Kind, rid: str) -> list[str]:
        return [self.get(rid).file(name) for name in kind.outputs]

    def job_command(self, kind: Kind, rid: str) -> str:
        """The job's command after `python` (no launcher options): what DVC runs and Snakemake shows."""
        run = self.get(rid)
        if kind.module is None:
            return f"-m workflow.registry resolve {rid} --scale {self.scale} --out {run.config}"
        extra = kind.args.format(**self.named_paths(run))
        return f"-m {kind.module} --config {run.config}" + (f" {extra}" if extra else "")

    def manual_instructions(self, kind: Kind, rid: str) -> str:
        """What a person does for a manual job of run `rid` (workflow/kinds.py `Kind.manual`)."""
        run = self.get(rid)
        text = kind.manual.format(**self.named_paths(run))
        if run.stage == "testdev" and not self.server_scored():
            text += (f"; but scale {self.scale!r} is synthetic: its test-dev is a generated stand-in that no "
                     f"server can score, so this step exists only at real-data scales")
        return text

    def named_paths(self, run: Run) -> dict[str, str]:
        """The paths a job's arguments name (`Kind.args`, `Kind.manual`): the run's files by RUN_FILES key
        (`{benchmark}`, `{testdev_zip}`), its data items' files as `{<item>_<file>}` (`{coco_testdev_det_file}`)
        and its downloaded weights (`{weights}`)."""
        names = {key: run.file(key) for key in RUN_FILES}
        for item in self.data_items(run):
            names.update({f"{item.replace('-', '_')}_{key}": f"{self.data_dir(item)}/{rel}"
                          for key, rel in DATASET_FILES.get(item, {}).items()})
        weights = self.downloaded_weights(run)
        if weights:
            names["weights"] = weights
        return names

    def jobs(self) -> list[tuple[Kind, Run]]:
        """Every (kind, run) job of the available runs, upstream runs first."""
        return [(k, r) for r in self.available_runs() for k in run_kinds(r)]

    def table_plan(self) -> list[dict]:
        """What every table row needs: for the report stage (missing cells say why). The released
        checkpoints' entries (`"released": True`) give the rows' "released" values."""
        return [dict(row, unavailable=self.runs[row["run"]].missing) for row in self.rows + self.released_rows]

    def figure3_run(self) -> Run | None:
        """The run whose val predictions Figure 3 draws (FIGURE3_ROW, first seed), if it can be produced."""
        rid = next((r["run"] for r in self.rows
                    if (r["table"], r["row"]) == (FIGURE3_ROW["table"], FIGURE3_ROW["row"])), None)
        run = self.runs.get(rid) if rid else None
        return run if run is not None and not run.missing else None

    def table_files(self, table: int) -> list[str]:
        """The files a table's target asks for, of the runs that can be produced: every run's
        metrics.json, except a test-dev submission's where no server can score it (its submission
        record instead), and a released checkpoint's only once the checkpoint is in place."""
        out = []
        for run in self.table_runs(table):
            if run.missing:
                continue
            scored = run.stage != "testdev" or self.server_scored()
            out.append(run.metrics if scored else run.file("testdev_record"))
        out += [self.get(r["run"]).metrics for r in self.released_rows
                if r["table"] == table and self.released_in_place(self.get(r["run"]))]
        return list(dict.fromkeys(out))

    def hyperparameters(self) -> dict:
        """Table 1 as used at this scale: the paper's values with this scale's overrides applied."""
        out = {}
        over = self.scale_cfg.get("train", {})
        for model, hp in self.params["hyperparameters"].items():
            used = {k: v for k, v in hp.items() if k != "multi_dataset"}
            used.update({k: over[k] for k in ("batch_size", "lr", "layer_decay") if k in over})
            used["multi_dataset_batch_size"] = hp["multi_dataset"]["batch_size"]
            used["multi_dataset_lr"] = hp["multi_dataset"]["lr"]
            out[model] = used
        return out

    def describe(self, rid: str) -> str:
        """One line in the paper's terms plus the schedule actually used (shown by Snakemake jobs)."""
        cfg = self.run_config(rid, validate=False)
        spec, tr = cfg["spec"], cfg.get("train")
        if self.get(rid).stage == "pretrain":
            return self._describe_pretrain(rid, cfg)
        if self.get(rid).stage == "token":
            return self._describe_token(rid, cfg)
        if self.get(rid).stage == "testdev":
            return self._describe_testdev(rid, cfg)
        arch = cfg["model"]["arch"]
        model = spec["model"] if arch == spec["model"] else f"{spec['model']} (as {arch})"
        used = "x".join(map(str, cfg["model"]["input_size"]))
        shown = spec["input"] if used == spec["input"] else f"{spec['input']} (as {used} at this scale)"
        bits = [model, f"{spec['decoder']} decoder", shown, f"1/{16 // spec['ratio']} features"]
        if spec["attention"] != "full":
            win = "x".join(map(str, cfg["model"]["window_size"]))
            bits.append(f"{spec['attention']} attention {spec['window']}"
                        + ("" if win == spec["window"] else f" (as {win})")
                        + "".join(f" +{k}" for k in ("shift", "pool") if spec[k]))
        if spec["freeze"] != "none":
            bits.append(f"{spec['freeze']} frozen")
        if "pretrain" in self.get(rid).upstream:
            bits.append(f"pretrain {spec['pretrain']} (our MAE, run {self.get(rid).upstream['pretrain']})")
        elif cfg["pretrained"] or spec["pretrain"] == "none":
            bits.append(f"pretrain {spec['pretrain']}")
        else:
            bits.append(f"pretrain {spec['pretrain']} -> random init at this scale")
        bits.append("data " + "+".join(spec["datasets"]))
        if spec["distill"]["heatmap"] or spec["distill"]["token"]:
            kinds = "+".join(k for k in ("heatmap", "token") if spec["distill"][k])
            up = self.get(rid).upstream
            teacher = up.get("teacher") or self.get(up["token"]).upstream["teacher"]
            bits.append(f"{kinds} distillation from teacher {teacher}"
                        + (f" (token of run {up['token']})" if "token" in up else ""))
        if self.get(rid).stage == "released":
            # What the file holds (as the authors trained it) and what runs here: only the evaluation.
            line = ", ".join(bits[:4] + [f"trained by the authors on {'+'.join(spec['datasets'])}"])
            return (f"the authors' released checkpoint {spec['released']} "
                    f"({self.released_checkpoint(self.get(rid))}): {line}; evaluated here on COCO val (detected "
                    f"boxes, flip test{', its COCO decoder' if len(spec['datasets']) > 1 else ''})")
        bits.append(f"{tr['epochs']} epochs, batch {tr['batch_size']}, lr {tr['lr']:g}, seed {cfg['seed']}")
        line = ", ".join(bits)
        missing = self.get(rid).missing
        return f"{line} [UNAVAILABLE: {missing}]" if missing else line

    def _describe_testdev(self, rid: str, cfg: dict) -> str:
        run = self.get(rid)
        members = list(run.upstream.values())
        size = "x".join(map(str, cfg["model"]["input_size"]))
        what = (f"model of run {members[0]}" if len(members) == 1 else
                f"ensemble of {len(members)} models (runs {', '.join(members)}; each on its own input size, "
                f"heatmaps resampled to the largest member's and averaged)")
        server = ("the COCO server scores it (upload and score import: manual steps)" if self.server_scored()
                  else "synthetic test-dev: no server can score it, the DAG stops at the submission")
        line = (f"COCO test-dev submission of the {what}, crops at {size}, flip test; COCO val scored here; "
                f"{server}")
        return f"{line} [UNAVAILABLE: {run.missing}]" if run.missing else line

    def _describe_token(self, rid: str, cfg: dict) -> str:
        tr, run = cfg["train"], self.get(rid)
        users = sorted(r.id for r in self.runs.values() if r.upstream.get("token") == rid)
        line = (f"knowledge-token training on the frozen teacher {run.upstream['teacher']} "
                f"({cfg['spec']['model']}, data {'+'.join(cfg['spec']['datasets'])}), {tr['epochs']} epochs, "
                f"batch {tr['batch_size']}, lr {tr['lr']:g}, seed {cfg['seed']}; read by {_some(users)}")
        missing = run.missing
        return f"{line} [UNAVAILABLE: {missing}]" if missing else line

    def _describe_pretrain(self, rid: str, cfg: dict) -> str:
        spec, tr = cfg["spec"], cfg["train"]
        arch = cfg["model"]["arch"]
        model = spec["model"] if arch == spec["model"] else f"{spec['model']} (as {arch})"
        users = sorted(r.id for r in self.runs.values() if r.upstream.get("pretrain") == rid)
        pt = cfg.get("pretraining") or {}
        line = (f"MAE pre-training of the {model} backbone on {spec['pretrain']}, "
                f"{'x'.join(map(str, cfg['model']['input_size']))}, mask {pt.get('mask_ratio', '?')}, "
                f"{tr['epochs']} epochs, batch {tr['batch_size']}, lr {tr['lr']:g}, seed {cfg['seed']}; "
                f"initialises {_some(users)}")
        missing = self.get(rid).missing
        return f"{line} [UNAVAILABLE: {missing}]" if missing else line

    # -- resolution of one run into the stages' configuration -----------------------------------
    def data_dir(self, dataset: str) -> str:
        return f"{self.scale_cfg['data_root']}/{dataset}"

    def data_config(self, name: str, num_workers: int, multi: bool = False) -> dict:
        """The data section of one training dataset at this scale (files of DATASET_FILES under data_root).

        `multi`: one of several datasets of a run, sampled by params.yaml `multi_dataset.ratios`."""
        ev, root = self.params["evaluation"], self.data_dir(name)
        ratios = self.params["multi_dataset"]["ratios"] if multi else None
        if ratios is not None and name not in ratios:
            raise ConfigError(f"{self.params_path}: multi_dataset.ratios: no ratio for dataset {name!r} "
                              f"(give one for every dataset a run trains on, or ratios: null)")
        # The target Gaussian is in heatmap pixels: it shrinks with the geometry (scales.<s>.input_scale)
        # so that it keeps its width relative to the person (sigma 2 at 64x48 heatmaps is 1 at 32x24).
        sigma = ev["sigma"] * self.scale_cfg["input_scale"]
        d = {"dataset": name, "root": root, "keypoints": name, "sigma": sigma,
             "use_gt_boxes_for_eval": ev["boxes"] == "gt" if name == "coco" else True,
             "num_workers": num_workers, "ratio": None if ratios is None else ratios[name]}
        d.update({k: f"{root}/{v}" for k, v in DATASET_FILES[name].items()})
        return d

    def download_command(self, item: str) -> str:
        """The stage command that prepares a data item at this scale (same for Snakemake and DVC).

        `synthetic` scales generate the data; the others check the real data under `data_root`,
        downloading what can be downloaded, and compare its counts with the full datasets' only where
        the scale says `exact_counts` (the paper scale). A user's own root (`download: false`) is
        only validated, never downloaded into.
        """
        sc = self.scale_cfg
        mode = "smoke" if sc["synthetic"] else "paper"
        cmd = f"-m stages.download {item} --scale {mode} --data-root {sc['data_root']}"
        synth = sc.get("synthetic_data")
        if sc["synthetic"] and synth:
            counts = {**synth, **(synth.get("datasets") or {}).get(item, {})}
            cmd += f" --seed {synth['seed']} --num-train {counts['num_train']} --num-val {counts['num_val']}"
        if not sc["synthetic"]:
            if not sc["download"]:
                cmd += " --in-place"
            if not sc["exact_counts"]:
                cmd += " --any-counts"
        return cmd

    def data_marker(self, dataset: str) -> str:
        """The file a data rule produces last; runs depend on it."""
        return f"{self.data_dir(dataset)}/.complete.json"

    # -- MAE pre-training data (Table 3): one cached image index per set -------------------------
    def pretrain_sets(self) -> list[str]:
        """The sets the available pre-training runs read."""
        return sorted({r.spec["pretrain"] for r in self.available_runs() if r.stage == "pretrain"})

    def pretrain_index(self, pretrain_set: str) -> str:
        """The set's image index (stages.pretrain_data), under the scale's data root."""
        return f"{self.scale_cfg['data_root']}/pretrain/{pretrain_set}.json"

    def pretrain_index_inputs(self, pretrain_set: str) -> dict[str, str]:
        """The data markers of the datasets a set is built from."""
        return {f"data_{d}": self.data_marker(d) for d in PRETRAIN_SOURCES[pretrain_set]}

    def pretrain_index_command(self, pretrain_set: str) -> str:
        """The command (after `python`) writing the set's index (same for Snakemake and DVC)."""
        cmd = f"-m stages.pretrain_data {pretrain_set} --out {self.pretrain_index(pretrain_set)}"
        for d in PRETRAIN_SOURCES[pretrain_set]:
            if d == "imagenet":
                cmd += f" --imagenet {self.data_dir(d)}/{IMAGENET_TRAIN}"
            else:
                files = DATASET_FILES[d]
                cmd += f" --{d} {self.data_dir(d)}/{files['train_ann']} {self.data_dir(d)}/{files['train_images']}"
        if PRETRAIN_SOURCES[pretrain_set] != ("imagenet",):
            crops = self.params["pretraining"]["crops"]
            cmd += (f" --padding {crops['padding']:g} --aspect-ratio {crops['aspect_ratio']:g}"
                    f" --min-size {crops['min_size']:g}")
        return cmd

    def pretrained_checkpoint(self, run: Run) -> str | None:
        """The file a finetuning run's backbone starts from: its MAE pre-training run's output, the
        released MAE weights (ImageNet-1k at `imagenet_init: released`), or None (random init)."""
        spec = run.spec
        if run.stage != "finetune" or spec["pretrain"] == "none":
            return None
        if "pretrain" in run.upstream:
            return self.get(run.upstream["pretrain"]).file("mae")
        if (spec["pretrain"] == "imagenet-1k" and self.scale_cfg["imagenet_init"] == "released"
                and spec["model"] in MAE_CHECKPOINTS):
            return f"{self.scale_cfg['data_root']}/weights/{MAE_CHECKPOINTS[spec['model']]}"
        return None

    def model_config(self, spec: dict, geometry: bool = True) -> dict:
        """The model section of a run of `spec`; `geometry`: apply the scale's `input_scale` to the
        input and window sizes (table rows; not the MAE pre-training input, which a scale sets itself)."""
        model = spec["model"]
        hp = self.params["hyperparameters"][model]
        standin = self.scale_cfg["models"].get(model, {"arch": model})
        factor = self.scale_cfg["input_scale"] if geometry else 1
        stride = RESNET_STRIDE if model.startswith("resnet") else PATCH_SIZE // spec["ratio"]
        input_size, window_size = scaled_geometry(spec, factor, stride)
        cfg = {
            "arch": standin["arch"],
            "decoder": spec["decoder"],
            "input_size": input_size,
            "ratio": spec["ratio"],
            "attention": spec["attention"],
            "window_size": window_size,
            "shift": spec["shift"],
            "pool": spec["pool"],
            "freeze": None if spec["freeze"] == "none" else spec["freeze"],
            "num_keypoints": 17,
        }
        if not model.startswith("resnet"):  # stochastic depth is a ViT setting (Table 1)
            cfg["drop_path_rate"] = standin.get("drop_path_rate", hp["drop_path_rate"])
        for key in ("embed_dim", "depth", "num_heads", "decoder_channels"):
            if key in standin:
                cfg[key] = standin[key]
        return cfg

    def resolve(self, rid: str) -> RunConfig:
        """The run's validated configuration (model included); ConfigError names the run and key."""
        cached = self._resolved.get(rid)
        if cached is None:
            raw = self._raw_config(rid)
            if raw.get("unavailable"):
                raise UserError(f"run {rid} ({self.scale}) cannot be produced: {raw['unavailable']}")
            try:
                cached = RunConfig.from_dict(raw)
            except ConfigError as exc:
                rows = ", ".join(f"tables.table{s['table']}.rows.{s['row']}" for s in self.get(rid).serves)
                raise ConfigError(f"{self.params_path}: run {rid} ({rows or 'upstream run'}): resolved "
                                  f"config is invalid: {exc}") from None
            self._resolved[rid] = cached
        return cached

    def validate_runs(self) -> None:
        """Resolve every producible run now, so an impossible value fails before any job starts (and
        check that no two of its jobs write one file: `workflow.kinds.run_kinds`)."""
        for run in self.available_runs():
            self.resolve(run.id)
            run_kinds(run)

    def run_config(self, rid: str, validate: bool = True) -> dict:
        """The resolved configuration handed to the stages (canonical form; what config.json holds)."""
        if validate and self.get(rid).missing is None:
            return self.resolve(rid).to_dict()
        return self._raw_config(rid)

    def config_hash(self, rid: str) -> str:
        """The run's identity (the hash in config.json, metrics.json and the training state)."""
        return self.resolve(rid).hash

    def write_config(self, rid: str, out: str | Path) -> dict:
        """Write the run's config.json (config + hash) atomically; returns the document."""
        doc = run_config_document(self.resolve(rid))
        atomic_write_json(out, doc)
        return doc

    def write_unavailable(self, rid: str, out: str | Path) -> dict:
        """Record why a run cannot be produced (`unavailable.json`, read by the report's index)."""
        run = self.get(rid)
        if run.missing is None:
            raise UserError(f"run {run.id} is available; it has no 'unavailable' record")
        record = {"run": run.id, "scale": self.scale, "serves": run.serves, "spec": run.spec,
                  "unavailable": run.missing}
        atomic_write_json(out, record)
        return record

    def pretraining_recipe(self) -> dict:
        """params.yaml `pretraining` with the scale's overrides merged in (deeply)."""
        recipe = deep_merge(self.params["pretraining"], self.scale_cfg["pretraining"])
        recipe.pop("crops", None)  # the index's business (pretrain_index_command), not the run's
        return recipe

    def _raw_pretrain_config(self, run: Run) -> dict:
        """The configuration of an MAE pre-training run (vitpose.config.PretrainConfig)."""
        spec, pt = run.spec, self.pretraining_recipe()
        model = self.model_config(deep_merge(self.params["baseline"], {
            "model": spec["model"], "input": pt["input"], "ratio": 1, "attention": "full",
            "shift": False, "pool": False, "freeze": "none", "decoder": "classic"}), geometry=False)
        model["drop_path_rate"] = pt["drop_path_rate"]
        over = self.scale_cfg["train"]
        cfg = {
            "run": run.id, "scale": self.scale, "synthetic": self.scale_cfg["synthetic"],
            "seed": run.seed, "serves": [], "spec": spec,
            "paths": {"result_dir": run.result_dir, "work_dir": run.work_dir},
            "upstream": {}, "pretrained": None, "model": model,
            "train": {
                "epochs": pt["epochs"],
                "batch_size": pt["batch_size"],
                "lr": pt["blr"] * pt["batch_size"] / 256,  # MAE's scaling rule (He et al. 2022, A.1)
                "weight_decay": pt["weight_decay"],
                "betas": list(pt["betas"]),
                "layer_decay": 1.0,
                "lr_schedule": "cosine",
                "warmup_epochs": pt["warmup_epochs"],
                "warmup_iters": 0,
                "min_lr": pt["min_lr"],
                "grad_clip": None,  # MAE pre-trains without clipping
                "precision": "auto",
                "checkpoint_every_iters": over["checkpoint_every_iters"],
                "image_cache_mb": over["image_cache_mb"],
            },
            "pretraining": {
                "set": spec["pretrain"], "index": self.pretrain_index(spec["pretrain"]),
                "mask_ratio": pt["mask_ratio"], "decoder_dim": pt["decoder"]["dim"],
                "decoder_depth": pt["decoder"]["depth"], "decoder_heads": pt["decoder"]["heads"],
                "norm_pix_loss": pt["norm_pix_loss"], "crop_scale": list(pt["crop_scale"]),
                "hflip": pt["hflip"], "num_workers": over["num_workers"],
            },
        }
        if run.missing:
            cfg["unavailable"] = run.missing
        return cfg

    def distillation_settings(self) -> dict:
        """params.yaml `distillation` with the scale's overrides merged in (deeply)."""
        return deep_merge(self.params["distillation"], self.scale_cfg["distillation"])

    def _distill_section(self, run: Run, job: str) -> dict:
        """The `distill` section of a token run or a student (vitpose.config.DistillConfig)."""
        up, spec = run.upstream, run.spec
        teacher_id = up.get("teacher") or self.get(up["token"]).upstream["teacher"]
        teacher = self.get(teacher_id)
        d = spec["distill"]
        return {
            "job": job,
            "teacher_model": self.model_config(teacher.spec),
            "teacher_checkpoint": teacher.file("checkpoint") if job == "token" or d["heatmap"] else None,
            "heatmap": job == "student" and d["heatmap"],
            "heatmap_weight": self.distillation_settings()["heatmap_weight"],
            "token": job == "student" and d["token"],
            "token_file": self.get(up["token"]).file("token") if job == "student" and d["token"] else None,
        }

    def _raw_token_config(self, run: Run) -> dict:
        """A knowledge-token training run: the teacher's data and architecture, the token's schedule."""
        cfg = self._raw_finetune_config(run)
        tok = self.distillation_settings()["token"]
        cfg["pretrained"] = None  # the teacher's weights come from distill.teacher_checkpoint
        cfg["train"].update({
            "epochs": tok["epochs"], "lr": tok["lr"], "weight_decay": tok["weight_decay"],
            "layer_decay": 1.0, "lr_schedule": "cosine", "warmup_epochs": tok["warmup_epochs"],
            "warmup_iters": 0, "min_lr": 0.0, "milestones": None})
        cfg["distill"] = self._distill_section(run, "token")
        return cfg

    def _raw_config(self, rid: str) -> dict:
        run = self.get(rid)
        if run.stage == "pretrain":
            return self._raw_pretrain_config(run)
        if run.stage == "token":
            return self._raw_token_config(run)
        if run.stage == "testdev":  # the ensemble works at its largest member's geometry
            return self._raw_eval_config(run, self.model_config(self.reference_member(run).spec))
        if run.stage == "released":
            return self._raw_eval_config(run, self.model_config(run.spec))
        cfg = self._raw_finetune_config(run)
        d = run.spec["distill"]
        if d["heatmap"] or d["token"]:
            cfg["distill"] = self._distill_section(run, "student")
            if d["token"]:
                cfg["model"]["knowledge_token"] = self._teacher_width(cfg["distill"]["teacher_model"])
        return cfg

    @staticmethod
    def _teacher_width(teacher_model: dict) -> int:
        from vitpose.models.config import ModelConfig

        return ModelConfig.from_dict(teacher_model).vit_args()["embed_dim"]

    def _raw_finetune_config(self, run: Run) -> dict:
        rid = run.id
        spec, sched = run.spec, self.params["schedule"]
        hp = self.params["hyperparameters"][spec["model"]]
        over = self.scale_cfg["train"]
        epochs = over.get("epochs", sched["epochs"])
        # Milestones keep their place in the schedule when a scale shortens it (170/210, 200/210).
        milestones = [m * epochs / sched["epochs"] for m in sched["milestones"]]
        multi = len(spec["datasets"]) > 1
        datasets = [self.data_config(name, over["num_workers"], multi) for name in spec["datasets"]]
        # Table 1: multi-dataset training uses its own batch size and lr (a scale may override both).
        batch = hp["multi_dataset"]["batch_size"] if multi else hp["batch_size"]
        lr = hp["multi_dataset"]["lr"] if multi else hp["lr"]
        cfg = {
            "run": rid,
            "scale": self.scale,
            "synthetic": self.scale_cfg["synthetic"],
            "seed": run.seed,
            "serves": run.serves,
            "spec": spec,
            "paths": {"result_dir": run.result_dir, "work_dir": run.work_dir},
            "upstream": dict(run.upstream),
            "pretrained": self.pretrained_checkpoint(run),
            "model": self.model_config(spec),
            "data": datasets[0],
            "extra_data": datasets[1:],
            "train": {
                "epochs": epochs,
                "batch_size": over.get("batch_size", batch),
                "lr": over.get("lr", lr),
                "weight_decay": hp["weight_decay"],
                "betas": list(sched["betas"]),
                "layer_decay": over.get("layer_decay", hp["layer_decay"]),
                "warmup_iters": over.get("warmup_iters", sched["warmup_iters"]),
                "warmup_ratio": sched["warmup_ratio"],
                "milestones": milestones,
                "gamma": sched["gamma"],
                "grad_clip": sched["grad_clip"],
                "precision": spec["precision"],
                "checkpoint_every_iters": over["checkpoint_every_iters"],
                "val_every_epochs": self.scale_cfg["eval"]["every_epochs"],
                "activation_checkpointing": over["activation_checkpointing"],
                "image_cache_mb": over["image_cache_mb"],
            },
            "eval": self._eval_section(),
            "benchmark": dict(self.scale_cfg["benchmark"]),
        }
        if run.missing:
            cfg["unavailable"] = run.missing
        return cfg

    def _eval_section(self) -> dict:
        """The evaluation protocol (params.yaml `evaluation`) at this scale's batch size."""
        ev = self.params["evaluation"]
        return {"flip_test": ev["flip_test"], "batch_size": self.scale_cfg["eval"]["batch_size"],
                "nms_threshold": ev["nms_threshold"], "rescore_threshold": ev["rescore_threshold"]}

    def _raw_eval_config(self, run: Run, model: dict) -> dict:
        """An evaluation-only run (a released checkpoint, a test-dev submission): `model` on COCO val
        with the paper's protocol. Nothing is trained: no train, pretrained or benchmark settings."""
        cfg = {
            "run": run.id, "scale": self.scale, "synthetic": self.scale_cfg["synthetic"], "seed": run.seed,
            "serves": run.serves, "spec": run.spec,
            "paths": {"result_dir": run.result_dir, "work_dir": run.work_dir},
            "upstream": dict(run.upstream), "pretrained": None, "model": model,
            "data": self.data_config("coco", self.scale_cfg["train"]["num_workers"]), "extra_data": [],
            "eval": self._eval_section(),
        }
        if run.missing:
            cfg["unavailable"] = run.missing
        return cfg


@lru_cache(maxsize=8)
def _load(params_path: str, scale: str | None, mtime: float) -> Registry:
    return Registry(load_params(params_path), scale, params_path)


def load_registry(params_path: str | Path = PARAMS, scale: str | None = None) -> Registry:
    p = Path(params_path)
    return _load(str(p), scale, p.stat().st_mtime if p.exists() else 0.0)


# Functions the report stage imports (see vitpose/report).
def table_plan(params_path: str | Path = PARAMS, scale: str | None = None) -> list[dict]:
    return load_registry(params_path, scale).table_plan()


def hyperparameters(params_path: str | Path = PARAMS, scale: str | None = None) -> dict:
    return load_registry(params_path, scale).hyperparameters()


def _plan_jobs(reg: Registry, run: Run, indent: str) -> list[str]:
    """The jobs of one run, one line each, with their data and upstream edges."""
    out = []
    for kind in run_kinds(run):
        ins = reg.job_inputs(kind, run.id)
        roles = kind.upstream(reg, run)
        edges = [f"{role} run {roles[role]}" for role in kind.consumed(roles)]
        data = [Path(v).parent.name for k, v in ins.items() if k.startswith("data_")]
        bits = [f"data {'+'.join(data)}"] if data else []
        bits += [f"images {ins['pretrain_index']}"] if "pretrain_index" in ins else []
        bits += ["pre-trained weights " + ins["pretrained"]] if "pretrained" in ins else []
        bits += ["released weights " + ins["weights"]] if "weights" in ins else []
        bits += [f"after {e}" for e in edges]
        tail = f" [{'; '.join(bits)}]" if bits else ""
        out.append(f"{indent}{kind.name}: {kind.words}{tail} -> "
                   + ", ".join(Path(o).name for o in reg.job_outputs(kind, run.id)))
    return out


def plan_text(reg: Registry, table: int | None = None) -> str:
    """The job graph of one table (or of every table), in the paper's words: each row's run, the
    upstream runs it consumes (a pre-training, a teacher) with their own jobs, then its jobs."""
    tables = [table] if table else sorted({r["table"] for r in reg.rows})
    out = []
    for n in tables:
        t = reg.params["tables"][f"table{n}"]
        out.append(f"Table {n} ({reg.scale} scale): {t['title']}")
        blocker = reg.table_blocker(n)
        if blocker:
            out.append(f"  cannot be reproduced yet: {blocker}")
        for row in (r for r in reg.rows if r["table"] == n):
            run = reg.get(row["run"])
            out.append(f"  row {row['row']!r} -> run {run.id}")
            out.append(f"    {reg.describe(run.id)}")
            if run.missing:
                continue
            for role, up in reg.upstream_chain(run):
                out.append(f"    {role}: run {up.id}: {reg.describe(up.id)}")
                if up.stage == "pretrain":
                    pset = up.spec["pretrain"]
                    out.append(f"      pretrain_data: index the {pset} images "
                               f"[data {'+'.join(PRETRAIN_SOURCES[pset])}] -> {reg.pretrain_index(pset)}")
                out += _plan_jobs(reg, up, "      ")
            out += _plan_jobs(reg, run, "    ")
        for row in (r for r in reg.released_rows if r["table"] == n):
            run = reg.get(row["run"])
            out.append(f"  row {row['row']!r}, released value -> run {run.id}")
            out.append(f"    {reg.describe(run.id)}")
            out += _plan_jobs(reg, run, "    ")
        out.append("")
    unserved = [r for r in reg.runs.values() if r.stage == "released" and not r.serves]
    if table is None and unserved:
        out.append(f"Released checkpoints of no table row ({reg.scale} scale; `snakemake released`)")
        for run in unserved:
            out.append(f"  run {run.id}: {reg.describe(run.id)}")
            out += _plan_jobs(reg, run, "    ")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m workflow.registry", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["list", "show", "resolve", "plan", "validate", "unavailable"])
    ap.add_argument("run", nargs="?")
    ap.add_argument("--scale")
    ap.add_argument("--table", type=int)
    ap.add_argument("--params", default=str(PARAMS))
    ap.add_argument("--available", action="store_true", help="list only runs whose capabilities exist")
    ap.add_argument("--json", action="store_true", help="plan: the table plan as JSON (the report's input)")
    ap.add_argument("--out", help="resolve: the config.json to write; unavailable: where to write the record")
    ap.add_argument("--fail", action="store_true", help="unavailable: exit 2 after saying why")
    ap.add_argument("--cost", action="store_true",
                    help="plan: GPU-hours per run and table, disk and missing manual downloads (workflow/cost.py)")
    ap.add_argument("--gpu", default="a100", help="plan --cost: the GPU type of workflow/cost.yaml (default a100)")
    ap.add_argument("--train-images-per-s", type=float, default=None,
                    help="plan --cost: ViTPose-B 256x192 training images/s of one GPU (instead of cost.yaml's)")
    ap.add_argument("--infer-images-per-s", type=float, default=None,
                    help="plan --cost: ViTPose-B 256x192 inference images/s of one GPU (instead of cost.yaml's)")
    args = ap.parse_args(argv)
    try:
        reg = load_registry(args.params, args.scale)
        if args.command == "validate":
            reg.validate_runs()
            print(f"{args.params}: valid; scale {reg.scale}: {len(reg.runs)} runs "
                  f"({len(reg.available_runs())} runnable, every run config valid)")
        elif args.command == "list":
            runs = reg.table_runs(args.table) if args.table else list(reg.runs.values())
            for run in runs:
                if not args.available or run.missing is None:
                    print(run.id)
        elif args.command == "show":
            if not args.run:
                raise UserError("show: which run? (python -m workflow.registry list)")
            print(json.dumps(reg.run_config(args.run), indent=2))
        elif args.command == "resolve":
            if not args.run or not args.out:
                raise UserError("resolve: give RUN and --out results/<scale>/<run>/config.json")
            doc = reg.write_config(args.run, args.out)
            print(f"{args.out}: config {doc['config_hash'][:12]}", file=sys.stderr)
        elif args.command == "unavailable":
            run = reg.get(args.run or "")
            if run.missing is None:
                raise UserError(f"run {run.id} is available; it has no 'unavailable' record")
            if args.fail:
                raise UserError(f"run {run.id} ({reg.scale}) cannot be produced: {run.missing}")
            if args.out:
                reg.write_unavailable(run.id, args.out)
            print(f"{run.id}: {run.missing}", file=sys.stderr)
        elif args.json:
            print(json.dumps(reg.table_plan(), indent=2))
        elif args.cost:
            from workflow.cost import cost_text

            print(cost_text(reg, args.gpu, args.table, args.train_images_per_s, args.infer_images_per_s), end="")
        else:
            print(plan_text(reg, args.table))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
