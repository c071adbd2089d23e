"""Shared helpers of the engine / stage tests: tiny synthetic data and tiny run configs."""
from __future__ import annotations

import copy
from pathlib import Path

from vitpose.data.synthetic import DET_FILE, generate_synthetic_coco


def make_synthetic(root: Path, num_train: int, num_val: int, image_size=(96, 128), seed: int = 0) -> Path:
    generate_synthetic_coco(root, seed=seed, num_train=num_train, num_val=num_val,
                            image_size=image_size, max_people=3, progress=False)
    return root


def data_section(root: Path, num_workers: int = 0) -> dict:
    return {
        "root": str(root),
        "train_ann": str(root / "annotations/person_keypoints_train2017.json"),
        "train_images": str(root / "train2017"),
        "val_ann": str(root / "annotations/person_keypoints_val2017.json"),
        "val_images": str(root / "val2017"),
        "det_file": str(root / "person_detection_results" / DET_FILE),
        "num_workers": num_workers,
    }


def tiny_config(root: Path, run: str = "tiny", **sections) -> dict:
    """A seconds-long run: 2-block ViT of width 32 at 64×48, drop path on (so RNG state matters)."""
    cfg = {
        "run": run,
        "scale": "smoke",
        "synthetic": True,  # generated data (make_synthetic)
        "seed": 7,
        "serves": [{"table": 2, "row": "vitpose-b/classic"}],
        "model": {"arch": "vit", "embed_dim": 32, "depth": 2, "num_heads": 2, "input_size": [64, 48],
                  "decoder_channels": 16, "drop_path_rate": 0.1},
        "data": data_section(root),
        "train": {"epochs": 3, "batch_size": 4, "lr": 1e-3, "warmup_iters": 3,
                  "layer_decay": 0.8, "log_every_iters": 1},
        "eval": {"batch_size": 8},
    }
    for name, values in sections.items():
        cfg[name] = {**cfg.get(name, {}), **copy.deepcopy(values)} if isinstance(values, dict) else values
    return cfg


def weights(path: Path) -> dict:
    """The `state_dict` of an exported released-format checkpoint."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def assert_same_weights(a: dict, b: dict) -> None:
    """Bit-identical tensors under identical keys."""
    import torch

    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def log_rows(work: Path, keys=("iter", "loss", "lr")) -> list[tuple]:
    """The comparable fields of every record of `work/train_log.jsonl` (not `time`)."""
    import json

    return [tuple(r.get(k) for k in keys) for r in map(json.loads, (work / "train_log.jsonl").read_text().splitlines())]


def temp_files(directory: Path) -> list[str]:
    """Leftover temporary files of atomic writes (`.<name>.XXXX.tmp`) in `directory`."""
    return sorted(p.name for p in Path(directory).glob(".*.tmp")) if Path(directory).is_dir() else []


# ---------------------------------------------------------------- multi-dataset runs (AIC, MPII)
def make_synthetic_other(dataset: str, root: Path, num_train: int, num_val: int, image_size=(96, 128),
                         seed: int = 0) -> Path:
    """Synthetic AIC / MPII / CrowdPose data in the dataset's native layout under `root`."""
    from vitpose.data.synthetic import GENERATORS

    GENERATORS[dataset](root, seed=seed, num_train=num_train, num_val=num_val, image_size=image_size,
                        max_people=3, progress=False)
    return root


def other_data_section(dataset: str, root: Path, num_workers: int = 0, **extra) -> dict:
    """A `data` / `extra_data` entry for the synthetic layout of `dataset` (ground-truth eval boxes)."""
    from vitpose.data.synthetic import AIC_LAYOUT, CROWDPOSE_LAYOUT, MPII_GT_FILE, MPII_LAYOUT

    if dataset == "aic":
        (train_ann, train_img), (val_ann, val_img) = AIC_LAYOUT["train"], AIC_LAYOUT["val"]
    elif dataset == "mpii":
        train_ann, val_ann = MPII_LAYOUT["train"], MPII_LAYOUT["val"]
        train_img = val_img = "images"
    elif dataset == "crowdpose":
        train_ann, val_ann = CROWDPOSE_LAYOUT["train"], CROWDPOSE_LAYOUT["val"]
        train_img = val_img = "images"
    else:
        raise ValueError(dataset)
    section = {"root": str(root), "dataset": dataset, "keypoints": dataset,
               "train_ann": str(root / train_ann), "train_images": str(root / train_img),
               "val_ann": str(root / val_ann), "val_images": str(root / val_img),
               "use_gt_boxes_for_eval": True, "num_workers": num_workers}
    if dataset == "mpii":
        section["gt_mat"] = str(root / MPII_GT_FILE)
    return {**section, **extra}


# ---------------------------------------------------------------- MAE pre-training runs (Table 3)
def make_crop_index(coco_root: Path, out: Path) -> Path:
    """The coco-crop pre-training index of a synthetic COCO tree (stages.pretrain_data's output)."""
    from vitpose.data.pretrain import build_index, write_index

    doc = build_index("coco-crop", {"coco": {"ann": str(coco_root / "annotations/person_keypoints_train2017.json"),
                                              "images": str(coco_root / "train2017")}})
    write_index(doc, out)
    return out


def mae_config(index: Path, run: str = "mae-tiny", **sections) -> dict:
    """A seconds-long MAE pre-training run: the 2-block ViT of `tiny_config` at 64x64 (4x4 patches,
    4 kept at mask ratio 0.75), a 1-block decoder of width 16, drop path on (so RNG state matters)."""
    cfg = {
        "run": run,
        "scale": "smoke",
        "synthetic": True,
        "seed": 3,
        "model": {"arch": "vit", "embed_dim": 32, "depth": 2, "num_heads": 2, "input_size": [64, 64],
                  "decoder_channels": 16, "drop_path_rate": 0.1},
        "train": {"epochs": 3, "batch_size": 4, "lr": 1e-3, "weight_decay": 0.05, "betas": [0.9, 0.95],
                  "layer_decay": 1.0, "lr_schedule": "cosine", "warmup_epochs": 1, "grad_clip": None,
                  "log_every_iters": 1},
        "pretraining": {"set": "coco-crop", "index": str(index), "decoder_dim": 16, "decoder_depth": 1,
                        "decoder_heads": 2, "num_workers": 0},
    }
    for name, values in sections.items():
        cfg[name] = {**cfg.get(name, {}), **copy.deepcopy(values)} if isinstance(values, dict) else values
    return cfg
