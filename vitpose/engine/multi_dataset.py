"""Multi-dataset training (paper §3.3 "Task flexibility", Fig. 2e, Table 7, Table 9's * rows).

One shared backbone, one decoder per dataset (vitpose/models/multi.py). A run's datasets are
`cfg.datasets` = [`data`, *`extra_data`]: decoder d is dataset d's, decoder 0 the primary (COCO)
one. Every batch mixes instances of all datasets (vitpose/data/multi.py `MultiTopDownDataset`):
drawn uniformly from the union by default (datasets in proportion to their sizes), or with fixed
shares when the datasets give `ratio`s (vitpose/data/sampler.py `RatioSampler`). Each row of the
batch goes through its own dataset's decoder only.

Loss. The paper does not say how the decoders' losses combine. Here each decoder's loss is the
released masked MSE (`keypoint_mse_loss`) over its own rows and its own K_d channels, and the total
is their mean over the batch's samples, weighted by the number of rows n_d of each dataset:

    loss = Σ_d (n_d / B) · mse_d        (B = rows of the batch; mse_d = 0 when n_d = 0)

i.e. every sample counts the same, whichever dataset it comes from (each sample's term being its
mean over its own joints and pixels), so the sampling — not a loss weight — decides how much each
dataset drives the shared backbone, and a one-dataset run has exactly the single-dataset loss. (The
alternative, a plain sum of per-decoder means, would give a small dataset's few rows the weight of
the large dataset's many.)

Logged with the loss (averaged over each log interval like it, vitpose/engine/trainer.py):
`loss_<name>` = (n_d / B) · mse_d, dataset d's share of `loss` (they sum to it), and `n_<name>` = n_d,
its instances per batch and process. The interval's per-sample mean loss of dataset d is therefore
`loss_<name> · B / n_<name>`.

Export. `model.pth` is decoder 0 with the backbone in the released single-dataset format (keys
`backbone.*`, `keypoint_head.*`; loads wherever a ViTPose-B checkpoint loads, e.g. `build_model(cfg.model)`
+ `load_vitpose_checkpoint`); beside it `model_multi.pth` (`vitpose.models.multi.multi_checkpoint_path`)
holds every decoder (`save_multi_checkpoint`: `associate_keypoint_heads.{d-1}.*` for d ≥ 1, and
`meta.datasets` / `num_keypoints` / `keypoints`). Both atomic; model_multi.pth is written first, so a
model.pth on disk always has its companion.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vitpose.config import DataConfig, RunConfig, resolve_path
from vitpose.engine.loss import keypoint_mse_loss
from vitpose.engine.objective import Models, Objective, TrainModules
from vitpose.models.multi import (
    MultiDatasetPoseModel,
    build_multi_model,
    multi_checkpoint_path,
    save_multi_checkpoint,
)
from vitpose.utils.errors import ConfigError, DataError


def data_key(d: int) -> str:
    """The config key of dataset d: `data` for decoder 0, `extra_data[i]` for decoder i + 1."""
    return "data" if d == 0 else f"extra_data[{d - 1}]"


def resolve_data_path(dc: DataConfig, d: int, name: str) -> Path:
    """Absolute path of field `name` of dataset d; ConfigError naming its key when unset."""
    value = getattr(dc, name)
    if value is None:
        raise ConfigError(f"{data_key(d)}.{name}: not set")
    return resolve_path(value)


def dataset_names(cfg: RunConfig) -> list[str]:
    """Dataset names in decoder order (unique: the config refuses a dataset twice)."""
    return [dc.dataset for dc in cfg.datasets]


def dataset_keypoints(cfg: RunConfig) -> list[int]:
    """Keypoints per decoder, from each dataset's keypoint layout."""
    from vitpose.data.keypoints import get_meta

    return [get_meta(dc.keypoints).num_keypoints for dc in cfg.datasets]


def sampling_ratios(cfg: RunConfig) -> list[float] | None:
    """The datasets' `ratio`s in decoder order, or None (uniform over the union) when none is set."""
    ratios = [dc.ratio for dc in cfg.datasets]
    if all(r is None for r in ratios):
        return None
    if any(r is None for r in ratios):  # RunConfig.validate refuses this; kept for hand-built configs
        missing = next(d for d, r in enumerate(ratios) if r is None)
        raise ConfigError(f"{data_key(missing)}.ratio: not set; give a ratio for every dataset or for none")
    return [float(r) for r in ratios]


def build_multi_model_for_training(cfg: RunConfig) -> MultiDatasetPoseModel:
    """The shared backbone + one decoder per dataset, initialised from `cfg.pretrained` when given
    (an MAE file sets the backbone; a ViTPose file every matching weight: a released single-dataset
    checkpoint the backbone and decoder 0, a model_multi.pth every decoder); activation checkpointing
    as `train.activation_checkpointing` says."""
    from vitpose.engine.objective import apply_activation_checkpointing, init_from_pretrained

    model = init_from_pretrained(build_multi_model(cfg.model, dataset_keypoints(cfg), dataset_names(cfg)), cfg)
    return apply_activation_checkpointing(model, cfg)


def build_multi_train_dataset(cfg: RunConfig):
    """Every dataset's training split as one MultiTopDownDataset (dataset d = decoder d), with the
    datasets' ratios as its `sampling_ratios` (read by vitpose.data.loader.build_dataloader)."""
    from vitpose.data.keypoints import get_meta
    from vitpose.data.multi import MultiTopDownDataset, build_topdown_dataset

    parts = []
    for d, dc in enumerate(cfg.datasets):
        ann = resolve_data_path(dc, d, "train_ann")
        ds = build_topdown_dataset(
            dc.dataset, ann, resolve_data_path(dc, d, "train_images"),
            input_size=tuple(cfg.model.input_size), heatmap_size=tuple(cfg.model.heatmap_size),
            train=True, sigma=dc.sigma, dataset_index=d, meta=get_meta(dc.keypoints))
        # Checked per dataset: an empty one would silently get no decoder training at all.
        if len(ds) == 0:
            raise DataError(f"{ann}: the dataset has no training instance ({data_key(d)}, "
                            f"{dc.dataset}); nothing to train its decoder on")
        parts.append(ds)
    dataset = MultiTopDownDataset(parts)
    dataset.sampling_ratios = sampling_ratios(cfg)
    return dataset


def export_meta(cfg: RunConfig, summary: dict) -> dict:
    """The checkpoint meta of a finished run (as the single-dataset export) plus its datasets."""
    return {"run": cfg.run, "scale": cfg.scale, "config_hash": cfg.hash,
            "iterations": summary["iterations"], "epochs": cfg.train.epochs,
            "train_time_s": summary["train_time_s"], "datasets": dataset_names(cfg)}


class MultiDatasetObjective(Objective):
    """Shared backbone, one decoder per dataset, each decoder's MSE over its own samples (module doc)."""

    name = "multi-dataset"
    # A batch (or one rank's share of it) may hold no sample of some dataset: that decoder is not
    # called and DDP must not wait for its gradients.
    find_unused_parameters = True

    def build(self, cfg: RunConfig) -> TrainModules:
        return TrainModules(build_multi_model_for_training(cfg))

    def build_dataset(self, cfg: RunConfig):
        return build_multi_train_dataset(cfg)

    def describe_data(self, cfg: RunConfig) -> str:
        return " + ".join(str(resolve_data_path(dc, d, "train_ann")) for d, dc in enumerate(cfg.datasets))

    def loss(self, batch: dict, models: Models) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images = models.to_device(batch["img"])                 # (B, 3, H, W)
        target = models.to_device(batch["target"])              # (B, K_max, h, w), zero-padded
        weight = models.to_device(batch["target_weight"])       # (B, K_max), 0 on padded channels
        index = models.to_device(batch["dataset_index"])        # (B,) decoder of each row
        model = models.model
        with models.autocast():
            heatmaps = models.net(images, index)                # (B, K_max, h, w)
        batch_size = images.shape[0]
        total = heatmaps.new_zeros((), dtype=torch.float32)
        scalars: dict[str, torch.Tensor] = {}
        # outside autocast: the loss is computed in float32 whatever the forward's precision
        for d, name in enumerate(model.names):
            rows = torch.nonzero(index == d, as_tuple=False).reshape(-1)   # (n_d,)
            n = rows.numel()
            if n:
                k = model.num_keypoints[d]
                mse = keypoint_mse_loss(heatmaps[rows, :k], target[rows, :k], weight[rows, :k])
                share = mse * (n / batch_size)
                total = total + share
            else:
                share = total.new_zeros(())
            scalars[f"loss_{name}"] = share.detach()
            scalars[f"n_{name}"] = torch.tensor(float(n), device=total.device)
        return total, scalars

    def export(self, model: nn.Module, path: Path, cfg: RunConfig, summary: dict) -> None:
        from vitpose.models.checkpoint import save_vitpose_checkpoint
        from vitpose.utils.io import remove_stale_temps

        model = getattr(model, "module", model)
        meta = export_meta(cfg, summary)
        multi = multi_checkpoint_path(path)
        remove_stale_temps(multi)  # the loop cleans model.pth's leftovers of killed writes, not this one's
        save_multi_checkpoint(model, multi, meta=meta, keypoints=[dc.keypoints for dc in cfg.datasets])
        save_vitpose_checkpoint(model.single(0), path, meta={**meta, "multi_checkpoint": multi.name})
