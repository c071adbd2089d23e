"""Top-down inference and COCO evaluation of a trained model.

predict: crops → heatmaps (optionally flip-averaged) → DARK-UDP decode → image coordinates →
rescoring + OKS-NMS → COCO keypoint results. evaluate: the same on the configured val split, scored
by pycocotools, results written to `out_dir/results_keypoints.json`.
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
from vitpose.data.dataset import TopDownCocoDataset
from vitpose.data.keypoints import get_meta
from vitpose.evaluation.coco_eval import evaluate_coco, require_evaluable
from vitpose.evaluation.flip_test import flip_test as flip_average
from vitpose.evaluation.postprocess import topdown_results
from vitpose.models import build_model

RESULTS_FILE = "results_keypoints.json"


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

    dataset items carry img (3, H, W), center (2,), scale (2,), image_id and bbox_score; the dataset
    provides `meta` (flip indices, OKS sigmas) and `heatmap_size` (h, w).
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
        xy, s = udp_decode(heatmaps.float().cpu().numpy())                       # (B, K, 2), (B, K)
        coords.append(heatmap_to_image(xy, batch["center"].numpy(), batch["scale"].numpy(),
                                       dataset.heatmap_size))
        scores.append(s)
        centers.append(batch["center"].numpy())
        scales.append(batch["scale"].numpy())
        box_scores.append(batch["bbox_score"].numpy())
        image_ids.append(batch["image_id"].numpy())
    model.train(was_training)
    if not coords:
        return []
    return topdown_results(
        np.concatenate(coords), np.concatenate(scores), np.concatenate(centers),
        np.concatenate(scales), np.concatenate(box_scores), np.concatenate(image_ids),
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
) -> dict[str, float]:
    """COCO AP / AR of the checkpoint on the configured val split (flip test per `cfg.eval`).

    Writes `out_dir/results_keypoints.json` (atomically, after a successful evaluation) and returns
    {"AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL"}. `model` may be given
    instead of `checkpoint` (e.g. an untrained model).
    """
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
    return evaluate_coco(results, cfg.data.resolve("val_ann"), Path(out_dir) / RESULTS_FILE,
                         sigmas=dataset.meta.sigmas)
