"""The cost plan: what a scale's runs will take before `snakemake all` starts them.

    python -m workflow.registry plan --scale paper --cost [--gpu a100] [--table 3]
        [--train-images-per-s N] [--infer-images-per-s N]

Per table and in total: single-GPU hours of every job (training, validation during training, final
evaluation, benchmark), the disk for data, downloaded weights and checkpoints, and the manual
downloads still missing under the scale's data root. A run serving several tables (the ViTPose-B
baseline) is costed once, under the first table that lists it; upstream runs (MAE pre-training, a
teacher, a knowledge token) with the first row that needs them.

How a job's time is estimated (an estimate, and the plan says so): samples / throughput, where
samples = epochs x the instances an epoch visits (training; MAE: the set's images), or the crops an
evaluation scores (x 2 with the flip test), and throughput is the GPU's stated ViTPose-B figure
(workflow/cost.yaml) scaled by the ratio of multiply-adds per image (vitpose.models.info): a training
sample of a run with twice ViTPose-B's multiply-adds takes twice as long. A distillation student adds
its teacher's forward pass (1/3 of a training step of the teacher); the knowledge token the teacher's
forward and backward to its input (2/3); MAE the encoder on the kept patches and the decoder on all.
A test-dev submission (Table 10) runs every member on COCO val's and test-dev's crops; a released
checkpoint's evaluation (not part of any table's total) is one evaluation.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from vitpose.utils.errors import ConfigError

COST_FILE = Path(__file__).with_name("cost.yaml")
SCHEMA = "vitpose-cost/1"
ANCHOR = {"arch": "vitpose-b", "decoder": "classic", "input_size": [256, 192]}
CHECKPOINT_COPIES = 4  # model.pth + the resumable state (weights and AdamW's two moments)


@dataclass
class JobCost:
    run: str
    job: str          # pretrain | token | finetune | validation | evaluate | benchmark
    samples: float    # images through the model
    images_per_s: float
    what: str         # how the samples were counted

    @property
    def gpu_hours(self) -> float:
        return self.samples / self.images_per_s / 3600.0


def load_cost_file(path: str | Path = COST_FILE) -> dict:
    """workflow/cost.yaml, shape-checked (ConfigError naming the file and key)."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the cost figures ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ConfigError(f"{path}: schema: expected {SCHEMA!r}")
    for key in ("gpus", "datasets", "pretrain_sets", "weights_GB"):
        if not isinstance(doc.get(key), dict):
            raise ConfigError(f"{path}: {key}: expected a mapping")
    return doc


@lru_cache(maxsize=None)
def _gflops(model_json: str) -> float:
    """Multiply-adds (G, backbone + head) per image of a model section (cached: the meta-device count
    takes a moment and many runs share a model)."""
    from vitpose.models.info import model_info

    return model_info(json.loads(model_json))["total_gflops"]


def gflops(model: dict) -> float:
    return _gflops(json.dumps(model, sort_keys=True))


class CostModel:
    """The stated figures of one GPU type, and the counts of the scale's data."""

    def __init__(self, reg, cost: dict, gpu: str, train_ips: float | None = None,
                 infer_ips: float | None = None, cost_path: str | Path = COST_FILE) -> None:
        self.reg, self.cost = reg, cost
        if gpu not in cost["gpus"]:
            raise ConfigError(f"{cost_path}: gpus: no GPU type {gpu!r} (expected one of {', '.join(cost['gpus'])})")
        entry = cost["gpus"][gpu]
        self.gpu_name = entry.get("name", gpu)
        self.train_ips = train_ips or entry.get("train_images_per_s")
        self.infer_ips = infer_ips or entry.get("infer_images_per_s")
        self.source = entry.get("source", "") if not (train_ips or infer_ips) else "given on the command line"
        for key, value in (("train_images_per_s", self.train_ips), ("infer_images_per_s", self.infer_ips)):
            if not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"{cost_path}: gpus.{gpu}.{key}: no figure for {self.gpu_name} ({value!r}); "
                                  f"measure it (benchmarks/gpu_suite.py) and record it there, or pass "
                                  f"--{key.replace('_', '-')}")
        anchor = dict(reg.model_config(reg.params["baseline"], geometry=False), **ANCHOR)
        for key in ("embed_dim", "depth", "num_heads", "decoder_channels"):
            anchor.pop(key, None)  # the real ViTPose-B, whatever the scale's stand-in
        self.anchor_gflops = gflops(anchor)

    # -- counts ---------------------------------------------------------------------------------
    def _marker_counts(self, dataset: str) -> dict:
        marker = Path(self.reg.data_marker(dataset))
        try:
            return json.loads(marker.read_text()).get("counts") or {}
        except (OSError, ValueError):
            return {}

    def train_instances(self, dataset: str) -> tuple[float, str]:
        measured = self._marker_counts(dataset).get("train_instances")
        if measured:
            return float(measured), "measured"
        return float(self.cost["datasets"][dataset]["train_instances"]), "stated"

    def eval_crops(self, dataset: str, gt_boxes: bool) -> float:
        counts = self._marker_counts(dataset)
        if gt_boxes and counts.get("val_instances"):
            return float(counts["val_instances"])
        if not gt_boxes and counts.get("detection_boxes"):
            return float(counts["detection_boxes"])
        return float(self.cost["datasets"][dataset]["eval_crops"])

    def pretrain_images(self, pset: str) -> tuple[float, str]:
        index = Path(self.reg.pretrain_index(pset))
        try:
            return float(json.loads(index.read_text())["count"]), "measured"
        except (OSError, ValueError, KeyError, TypeError):
            return float(self.cost["pretrain_sets"][pset]), "stated"

    # -- throughput ---------------------------------------------------------------------------------
    def train_rate(self, gflops_per_sample: float) -> float:
        return self.train_ips * self.anchor_gflops / gflops_per_sample

    def infer_rate(self, gflops_per_sample: float) -> float:
        return self.infer_ips * self.anchor_gflops / gflops_per_sample

    # -- jobs ---------------------------------------------------------------------------------------
    def run_jobs(self, run) -> list[JobCost]:
        cfg = self.reg.run_config(run.id)
        if run.stage == "pretrain":
            return self._pretrain_jobs(run, cfg)
        flips = 2 if cfg["eval"]["flip_test"] else 1
        if run.stage in ("testdev", "released"):
            # Every member runs on every crop (an ensemble's cost is its members' summed).
            members = [self.reg.run_config(u)["model"] for u in run.upstream.values()] or [cfg["model"]]
            val = self.eval_crops("coco", cfg["data"]["use_gt_boxes_for_eval"])
            testdev = self.eval_crops("coco-testdev", False) if run.stage == "testdev" else 0.0
            crops = (val + testdev) * flips
            return [JobCost(run.id, run.stage, crops, self.infer_rate(sum(gflops(m) for m in members)),
                            f"{crops:,.0f} crops x {len(members)} model(s)")]
        if run.stage == "token":
            teacher = gflops(cfg["distill"]["teacher_model"])
            n, how = self.train_instances(cfg["data"]["dataset"])
            return [JobCost(run.id, "token", cfg["train"]["epochs"] * n, self.train_rate(teacher * 2 / 3),
                            f"{cfg['train']['epochs']} epochs x {n:,.0f} {how} instances")]
        model = gflops(cfg["model"])
        per_sample = model
        if cfg.get("distill") and cfg["distill"]["heatmap"]:
            per_sample += gflops(cfg["distill"]["teacher_model"]) / 3
        datasets = [cfg["data"], *cfg["extra_data"]]
        counts = [self.train_instances(d["dataset"]) for d in datasets]
        epochs = cfg["train"]["epochs"]
        jobs = [JobCost(run.id, "finetune", epochs * sum(n for n, _ in counts), self.train_rate(per_sample),
                        f"{epochs} epochs x " + " + ".join(f"{n:,.0f} {d['dataset']}" for (n, _), d
                                                          in zip(counts, datasets)))]
        crops = sum(self.eval_crops(d["dataset"], d["use_gt_boxes_for_eval"]) for d in datasets) * flips
        coco_crops = self.eval_crops(cfg["data"]["dataset"], cfg["data"]["use_gt_boxes_for_eval"]) * flips
        every = cfg["train"].get("val_every_epochs")
        validations = (epochs - 1) // every if every else 0
        if validations:
            jobs.append(JobCost(run.id, "validation", validations * coco_crops, self.infer_rate(model),
                                f"{validations} validations x {coco_crops:,.0f} crops"))
        jobs.append(JobCost(run.id, "evaluate", crops, self.infer_rate(model), f"{crops:,.0f} crops"))
        b = cfg["benchmark"]
        jobs.append(JobCost(run.id, "benchmark", 2 * b["batch"] * (b["iters"] + b["warmup"]),
                            self.infer_rate(model) / 3, "inference and training steps"))
        return jobs

    def _pretrain_jobs(self, run, cfg) -> list[JobCost]:
        pt = cfg["pretraining"]
        encoder = gflops(cfg["model"]) * (1 - pt["mask_ratio"])
        decoder = gflops({"arch": "vit", "embed_dim": pt["decoder_dim"], "depth": pt["decoder_depth"],
                          "num_heads": pt["decoder_heads"], "input_size": cfg["model"]["input_size"],
                          "decoder": "simple", "decoder_channels": 1})
        n, how = self.pretrain_images(pt["set"])
        epochs = cfg["train"]["epochs"]
        return [JobCost(run.id, "pretrain", epochs * n, self.train_rate(encoder + decoder),
                        f"{epochs} epochs x {n:,.0f} {how} images of {pt['set']}")]

    # -- disk ---------------------------------------------------------------------------------------
    def checkpoint_GB(self, run) -> float:
        """model.pth (+ model_multi.pth) and the resumable state of a run, in GB (fp32)."""
        if run.stage in ("token", "testdev", "released"):  # nothing trained (a token is tiny)
            return 0.0
        cfg = self.reg.run_config(run.id)
        from vitpose.models.info import model_info

        params = model_info(cfg["model"])["params_M"] * 1e6
        if run.stage == "pretrain":
            pt = cfg["pretraining"]
            params += 12 * pt["decoder_dim"] ** 2 * pt["decoder_depth"]
        copies = CHECKPOINT_COPIES + (1 if cfg.get("extra_data") else 0)
        return params * 4 * copies / 1e9


def _table_runs(reg, table: int | None) -> dict[int, list]:
    """Runs to cost per table (each run once, under the first table needing it), upstream runs first."""
    seen: set[str] = set()
    out: dict[int, list] = {}
    tables = [table] if table else sorted({r["table"] for r in reg.rows})
    for n in tables:
        runs = []
        for run in reg.table_runs(n):
            if run.missing:
                continue
            for _, up in reg.upstream_chain(run):
                if up.id not in seen:
                    seen.add(up.id)
                    runs.append(up)
            if run.id not in seen:
                seen.add(run.id)
                runs.append(run)
        out[n] = runs
    return out


def manual_missing(reg) -> list[str]:
    """The manual sources of the data the scale's runs read that are not in place under its data root."""
    if reg.scale_cfg["synthetic"]:
        return []
    from vitpose.download.manifest import load_manifest
    from vitpose.download.prepare import marker_path

    manifest = load_manifest()
    runs = reg.available_runs()
    names = sorted({d for r in runs for d in reg.data_items(r)}
                   | {Path(w).stem for r in runs if (w := reg.downloaded_weights(r))}
                   | {"imagenet" for r in runs if r.stage == "pretrain" and r.spec["pretrain"] == "imagenet-1k"})
    out = []
    root = Path(reg.scale_cfg["data_root"])
    for item in manifest.resolve(names):
        if marker_path(root, item).exists():
            continue
        for source in item.sources:
            if source.manual:
                out.append(f"{item.name}: {source.name} ({' '.join(str(source.where or '').split())})")
    return out


def cost_text(reg, gpu: str = "a100", table: int | None = None, train_ips: float | None = None,
              infer_ips: float | None = None, cost_path: str | Path = COST_FILE) -> str:
    model = CostModel(reg, load_cost_file(cost_path), gpu, train_ips, infer_ips, cost_path)
    lines = [f"Cost plan: scale {reg.scale}, on {model.gpu_name}",
             f"  anchor: ViTPose-B 256x192 trains at {model.train_ips:,.0f} images/s and infers at "
             f"{model.infer_ips:,.0f} images/s on one GPU ({model.source}).",
             "  Other runs are scaled from it by multiply-adds per image: estimates, excluding queueing, "
             "start-up and data loading stalls.", ""]
    total_h = total_ckpt = 0.0
    by_table = _table_runs(reg, table)
    for n, runs in by_table.items():
        t = reg.params["tables"][f"table{n}"]
        lines.append(f"Table {n}: {t['title']}")
        if not runs:
            why = reg.table_blocker(n) or "no producible run, or every run is costed under an earlier table"
            lines.append(f"  nothing to cost here ({why})")
        table_h = 0.0
        for run in runs:
            jobs = model.run_jobs(run)
            hours = sum(j.gpu_hours for j in jobs)
            table_h += hours
            total_ckpt += model.checkpoint_GB(run)
            parts = ", ".join(f"{j.job} {j.gpu_hours:,.1f} h" for j in jobs if j.gpu_hours >= 0.05)
            lines.append(f"  {run.id:58s} {hours:9,.1f} GPU-h   ({parts or 'under 0.1 h'}; "
                         f"{jobs[0].what})")
        missing = [r.id for r in reg.table_runs(n) if r.missing]
        if missing:
            lines.append(f"  not costed (cannot be produced yet): {', '.join(missing)}")
        lines.append(f"  table {n}: {table_h:,.1f} GPU-hours")
        lines.append("")
        total_h += table_h
    lines.append(f"Total: {total_h:,.1f} GPU-hours on {model.gpu_name} "
                 f"({total_h / 8 / 24:,.1f} days on 8 GPUs)")
    released = [r for r in reg.available_runs() if r.stage == "released"]
    if released and table is None:
        hours = sum(j.gpu_hours for r in released for j in model.run_jobs(r))
        lines.append(f"Released checkpoints (`snakemake released`, not in the total): {len(released)} evaluations, "
                     f"{hours:,.1f} GPU-hours")
    cost = model.cost
    used = sorted({d for runs in by_table.values() for r in runs for d in reg.data_items(r)})
    data = {d: cost["datasets"][d]["disk_GB"] for d in used if d in cost["datasets"]}
    weights = {Path(w).name: cost["weights_GB"].get(Path(w).name, 0.0)
               for runs in by_table.values() for r in runs if (w := reg.downloaded_weights(r))}
    disk = sum(data.values()) + sum(weights.values()) + total_ckpt
    lines.append(f"Disk: {disk:,.1f} GB = data {sum(data.values()):,.1f} GB ("
                 + ", ".join(f"{d} {gb:g}" for d, gb in data.items()) + f"), downloaded weights "
                 f"{sum(weights.values()):,.1f} GB, checkpoints and resumable states {total_ckpt:,.1f} GB")
    missing = manual_missing(reg)
    root = reg.scale_cfg["data_root"]
    if reg.scale_cfg["synthetic"]:
        lines.append("Manual downloads: none (synthetic data is generated)")
    elif missing:
        lines.append(f"Manual downloads still missing under {root}/ ({len(missing)}; docs/DATA.md):")
        lines += [f"  - {m}" for m in missing]
    else:
        lines.append(f"Manual downloads: every one needed is in place under {root}/")
    return "\n".join(lines) + "\n"
