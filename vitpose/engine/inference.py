"""Top-down inference and COCO evaluation of a trained model.

predict: crops → heatmaps (optionally flip-averaged) → DARK-UDP decode → image coordinates →
rescoring + OKS-NMS → COCO keypoint results (`predict_keypoints` stops before rescoring: one row
per crop, what MPII's PCKh takes). evaluate: the same on the configured val split, scored by
pycocotools, results written to `out_dir/results_keypoints.json`.

A multi-dataset run (`cfg.extra_data`, engine/multi_dataset.py) is evaluated on every dataset's val
split, each with its own decoder (from `model_multi.pth` beside the checkpoint) and its own protocol
(`vitpose.evaluation.evaluate_dataset`: COCO / AIC / CrowdPose AP, MPII PCKh); see `evaluate`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from vitpose.config import RunConfig
from vitpose.data.codec import heatmap_to_image, udp_decode
from vitpose.data.dataset import TopDownCocoDataset, TopDownDataset
from vitpose.data.keypoints import get_meta
from vitpose.data.multi import build_topdown_dataset, dataset_format
from vitpose.engine.multi_dataset import data_key, dataset_keypoints, dataset_names, resolve_data_path
from vitpose.evaluation.coco_eval import evaluate_coco, require_evaluable
from vitpose.evaluation.datasets import RESULT_KIND, check_evaluation_inputs, evaluate_dataset
from vitpose.evaluation.flip_test import flip_test as flip_average
from vitpose.evaluation.postprocess import topdown_results
from vitpose.models import build_model
from vitpose.models.checkpoint import read_torch_file
from vitpose.models.multi import (
    MultiDatasetPoseModel,
    build_multi_model,
    load_multi_checkpoint,
    multi_checkpoint_path,
    read_multi_meta,
)
from vitpose.utils.errors import CheckpointError, ConfigError

from vitpose.engine.results_files import DATASET_RESULTS_FILE, RESULTS_FILE, dataset_results_file  # noqa: F401


def build_val_dataset(cfg: RunConfig) -> TopDownCocoDataset:
    """Val crops from detected boxes (the paper's protocol) or ground-truth boxes, no augmentation."""
    data = cfg.data
    use_gt = data.use_gt_boxes_for_eval
    return TopDownCocoDataset(
        ann_file=data.resolve("val_ann"),
        img_dir=data.resolve("val_images"),
        meta=get_meta(data.keypoints),
        input_size=tuple(cfg.model.input_size),
        heatmap_size=tuple(cfg.model.heatmap_size),
        train=False,
        det_file=None if use_gt else data.resolve("det_file"),
        use_gt_boxes=use_gt,
        sigma=data.sigma,
    )


@torch.no_grad()
def predict_keypoints(
    model: torch.nn.Module,
    dataset: TopDownDataset,
    batch_size: int,
    flip_test: bool,
    device: torch.device | str,
    *,
    num_workers: int = 0,
    progress: bool = True,
) -> dict[str, np.ndarray] | None:
    """Decoded keypoints of every crop of `dataset`, in dataset order (None for an empty dataset).

    Returns coords (N, K, 2) image px, scores (N, K), centers (N, 2), scales (N, 2), box_scores (N,),
    image_ids (N,). dataset items carry img (3, H, W), center (2,), scale (2,), image_id and
    bbox_score; the dataset provides `meta` (flip indices) and `heatmap_size` (h, w).
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    coords, scores, centers, scales, box_scores, image_ids = [], [], [], [], [], []
    for batch in tqdm(loader, desc="predict", unit="batch", disable=not progress, dynamic_ncols=True):
        images = batch["img"].to(device, non_blocking=True)                      # (B, 3, H, W)
        if flip_test:
            heatmaps = flip_average(model, images, dataset.meta.flip_indices)    # (B, K, h, w)
        else:
            heatmaps = model(images)
        # Decoded where the model ran (GPU: only coordinates and scores cross to the host).
        xy, s = udp_decode(heatmaps.float())                                     # (B, K, 2), (B, K)
        coords.append(heatmap_to_image(xy, batch["center"].numpy(), batch["scale"].numpy(),
                                       dataset.heatmap_size))
        scores.append(s)
        centers.append(batch["center"].numpy())
        scales.append(batch["scale"].numpy())
        box_scores.append(batch["bbox_score"].numpy())
        image_ids.append(batch["image_id"].numpy())
    model.train(was_training)
    if not coords:
        return None
    return {"coords": np.concatenate(coords), "scores": np.concatenate(scores),
            "centers": np.concatenate(centers), "scales": np.concatenate(scales),
            "box_scores": np.concatenate(box_scores), "image_ids": np.concatenate(image_ids)}


def predict(
    model: torch.nn.Module,
    dataset: TopDownCocoDataset,
    batch_size: int,
    flip_test: bool,
    device: torch.device | str,
    *,
    nms_threshold: float | None = 0.9,
    rescore_threshold: float = 0.2,
    num_workers: int = 0,
    progress: bool = True,
) -> list[dict]:
    """COCO keypoint results (`image_id`, `category_id`, flat `keypoints`, `score`) of every box.

    `predict_keypoints` then rescoring + OKS-NMS with the dataset's `meta.sigmas`.
    """
    out = predict_keypoints(model, dataset, batch_size, flip_test, device, num_workers=num_workers,
                            progress=progress)
    if out is None:
        return []
    return topdown_results(
        out["coords"], out["scores"], out["centers"], out["scales"], out["box_scores"], out["image_ids"],
        sigmas=dataset.meta.sigmas, nms_threshold=nms_threshold, score_threshold=rescore_threshold,
    )


def inference_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def load_model(cfg: RunConfig, checkpoint: str | os.PathLike | None) -> torch.nn.Module:
    """The configured model with weights from a released-format checkpoint (None: as initialised)."""
    model = build_model(cfg.model)
    if checkpoint is not None:
        from vitpose.models.checkpoint import load_vitpose_checkpoint

        load_vitpose_checkpoint(model, Path(checkpoint))
    return model


def evaluate(
    cfg: RunConfig,
    checkpoint: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    progress: bool = True,
    model: torch.nn.Module | None = None,
    results_file: str = RESULTS_FILE,
) -> dict[str, float]:
    """COCO AP / AR of the checkpoint on the configured val split (flip test per `cfg.eval`).

    Writes `out_dir/results_file` (atomically, after a successful evaluation) and returns
    {"AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL"}. `model` may be given
    instead of `checkpoint` (e.g. an untrained model, or an ensemble: engine/ensemble.py).

    A multi-dataset run (`cfg.extra_data`): see `evaluate_datasets` — the same top-level metrics of
    the primary dataset plus `per_dataset`.
    """
    if cfg.extra_data:
        return evaluate_datasets(cfg, checkpoint, out_dir, progress=progress, model=model)
    device = inference_device()
    if model is None:
        model = load_model(cfg, checkpoint)
    model.to(device)
    dataset = build_val_dataset(cfg)
    # Before the inference, not after it: a val split without scorable persons is a data error.
    require_evaluable(dataset.coco, cfg.data.resolve("val_ann"))
    ev = cfg.eval
    results = predict(model, dataset, ev.batch_size, ev.flip_test, device,
                      nms_threshold=ev.nms_threshold, rescore_threshold=ev.rescore_threshold,
                      num_workers=cfg.data.num_workers, progress=progress)
    return evaluate_coco(results, cfg.data.resolve("val_ann"), Path(out_dir) / results_file,
                         sigmas=dataset.meta.sigmas)


# ---------------------------------------------------------------------------------------- multi-dataset
def build_eval_dataset(cfg: RunConfig, d: int) -> TopDownDataset:
    """Val crops of dataset d (0 = `data`, i + 1 = `extra_data[i]`), no augmentation: ground-truth
    boxes when its `use_gt_boxes_for_eval` (AIC, MPII, CrowdPose), else its detections."""
    dc = cfg.datasets[d]
    use_gt = dc.use_gt_boxes_for_eval
    if dataset_format(dc.dataset) == "mpii" and not use_gt:
        raise ConfigError(f"{data_key(d)}.use_gt_boxes_for_eval: MPII is evaluated on its annotated "
                          f"people (no detections); set it to true")
    return build_topdown_dataset(
        dc.dataset, resolve_data_path(dc, d, "val_ann"), resolve_data_path(dc, d, "val_images"),
        input_size=tuple(cfg.model.input_size), heatmap_size=tuple(cfg.model.heatmap_size),
        train=False, det_file=None if use_gt else resolve_data_path(dc, d, "det_file"),
        use_gt_boxes=use_gt, sigma=dc.sigma, meta=get_meta(dc.keypoints))


def _config_hash_of(checkpoint: str | os.PathLike) -> str | None:
    """`meta.config_hash` of a released-format checkpoint (None when it has none)."""
    try:
        obj = read_torch_file(checkpoint, mmap=True)  # mapped: only the meta is looked at
    except CheckpointError:
        obj = read_torch_file(checkpoint)  # non-zip files cannot be mapped; this gives the real error
    meta = obj.get("meta") if isinstance(obj, dict) else None
    return meta.get("config_hash") if isinstance(meta, dict) else None


def load_multi_model(cfg: RunConfig, checkpoint: str | os.PathLike | None) -> torch.nn.Module:
    """The run's MultiDatasetPoseModel with every decoder from `model_multi.pth` beside `checkpoint`
    (None: as initialised). CheckpointError naming the file when it is missing, is not one, has other
    datasets, or belongs to another training than `checkpoint` (config hashes differ)."""
    model = build_multi_model(cfg.model, dataset_keypoints(cfg), dataset_names(cfg))
    if checkpoint is None:
        return model
    multi = multi_checkpoint_path(checkpoint)
    if not multi.is_file():
        raise CheckpointError(f"{multi}: no such file; a multi-dataset run ({', '.join(dataset_names(cfg))}) "
                              f"is evaluated with every decoder, which its training writes beside "
                              f"{Path(checkpoint).name}")
    single_hash = _config_hash_of(checkpoint)
    multi_hash = read_multi_meta(multi).get("config_hash")
    if single_hash is not None and multi_hash is not None and single_hash != multi_hash:
        raise CheckpointError(f"{multi}: written by another training (config hash {multi_hash[:12]}) than "
                              f"{checkpoint} ({single_hash[:12]}); re-run the training")
    load_multi_checkpoint(model, multi)
    return model


def evaluate_datasets(
    cfg: RunConfig,
    checkpoint: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    progress: bool = True,
    model: torch.nn.Module | None = None,
) -> dict:
    """Every dataset of a multi-dataset run on its val split, each with its own decoder.

    Dataset d is `cfg.datasets[d]`, scored by `evaluate_dataset(name, ...)` (COCO-style datasets:
    COCO results after rescoring + OKS-NMS; MPII: one prediction per person of mpii_val.json in file
    order, (N, 16, 3), against `gt_mat` or mpii_gt_val.mat beside the annotations). Results go to
    `out_dir/results_keypoints.json` (the primary dataset) and `out_dir/results_keypoints_<name>.json`.
    Every dataset's files are checked before any inference. `model`: a MultiDatasetPoseModel instead
    of loading `model_multi.pth` beside `checkpoint`.

    Returns the primary dataset's metrics at the top level (for COCO exactly today's single-dataset
    keys, AP ... ARL) plus `per_dataset`: {dataset name: {metric: value}} for every dataset in decoder
    order, the primary included (metric keys: vitpose.evaluation.datasets.METRICS[name]).
    """
    # Before the inference, not after it: a val split without scorable persons is a data error.
    gt_mats = []
    for d, dc in enumerate(cfg.datasets):
        gt_mat = resolve_data_path(dc, d, "gt_mat") if dc.gt_mat else None
        check_evaluation_inputs(dc.dataset, resolve_data_path(dc, d, "val_ann"), gt_mat)
        gt_mats.append(gt_mat)
    datasets = [build_eval_dataset(cfg, d) for d in range(len(cfg.datasets))]
    if model is None:
        model = load_multi_model(cfg, checkpoint)
    if not isinstance(getattr(model, "module", model), MultiDatasetPoseModel):
        raise ConfigError(f"run {cfg.run}: extra_data is set, so the model must have one decoder per "
                          f"dataset (a MultiDatasetPoseModel), got {type(model).__name__}")
    model = getattr(model, "module", model)
    device = inference_device()
    model.to(device)
    ev, out_dir = cfg.eval, Path(out_dir)
    per_dataset: dict[str, dict[str, float]] = {}
    for d, (dc, dataset) in enumerate(zip(cfg.datasets, datasets)):
        head = model.single(d)
        results_file = out_dir / dataset_results_file(cfg, d)
        ann = resolve_data_path(dc, d, "val_ann")
        if RESULT_KIND[dc.dataset.lower()] == "per_instance":
            out = predict_keypoints(head, dataset, ev.batch_size, ev.flip_test, device,
                                    num_workers=dc.num_workers, progress=progress)
            k = get_meta(dc.keypoints).num_keypoints
            predictions = (np.zeros((0, k, 3), np.float32) if out is None else
                           np.concatenate([out["coords"], out["scores"][..., None]], axis=-1))
        else:
            predictions = predict(head, dataset, ev.batch_size, ev.flip_test, device,
                                  nms_threshold=ev.nms_threshold, rescore_threshold=ev.rescore_threshold,
                                  num_workers=dc.num_workers, progress=progress)
        per_dataset[dc.dataset] = evaluate_dataset(dc.dataset, predictions, ann, results_file,
                                                   gt_mat=gt_mats[d])
    return {**per_dataset[cfg.data.dataset], "per_dataset": per_dataset}
