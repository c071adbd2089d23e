"""Top-down datasets by name, and the concatenation a multi-dataset run trains on.

:func:`build_topdown_dataset` reads any of the four datasets in its native format (COCO-style JSON for
``coco``, ``aic`` and ``crowdpose``; OpenMMLab's MPII JSON list for ``mpii``) and returns a dataset
whose samples are those of :class:`~vitpose.data.dataset.TopDownCocoDataset`.

:class:`MultiTopDownDataset` concatenates several (one per decoder, as ViTPose's multi-dataset training:
a shared backbone, one head per dataset, batches drawn from all datasets, each head's loss over its own
samples; REFERENCE §6). Its samples add ``dataset_index`` (the dataset's position, i.e. its decoder) and
pad ``target`` / ``target_weight`` with zeros to the largest keypoint count, so that the default
collate stacks a mixed batch. Head ``d`` with ``K_d`` keypoints takes ``target[m, :K_d]`` and
``target_weight[m, :K_d]`` for the rows ``m = batch["dataset_index"] == d``; the padded channels have
weight 0.
"""
from __future__ import annotations

import bisect
import os
from typing import Sequence

import torch
from torch.utils.data import Dataset

from vitpose.data.dataset import SampleKey, TopDownCocoDataset, TopDownDataset
from vitpose.data.keypoints import KeypointMeta, get_meta
from vitpose.data.mpii import TopDownMpiiDataset
from vitpose.data.transforms import AugmentConfig
from vitpose.utils.errors import ConfigError

# Dataset name -> annotation format.
DATASET_FORMATS = {"coco": "coco", "aic": "coco", "crowdpose": "coco", "mpii": "mpii"}


def dataset_format(dataset_name: str) -> str:
    """``"coco"`` (COCO-style JSON) or ``"mpii"`` (OpenMMLab MPII list); ConfigError for other names."""
    fmt = DATASET_FORMATS.get(str(dataset_name).lower())
    if fmt is None:
        raise ConfigError(f"unknown dataset {dataset_name!r}; expected one of "
                          f"{', '.join(sorted(DATASET_FORMATS))}")
    return fmt


def build_topdown_dataset(
    dataset_name: str,
    ann_file: str | os.PathLike,
    img_dir: str | os.PathLike,
    *,
    input_size: tuple[int, int] = (256, 192),
    heatmap_size: tuple[int, int] = (64, 48),
    train: bool = True,
    det_file: str | os.PathLike | None = None,
    use_gt_boxes: bool | None = None,
    sigma: float = 2.0,
    aug: AugmentConfig | None = None,
    det_score_thr: float = 0.0,
    dataset_index: int | None = None,
    meta: KeypointMeta | None = None,
) -> TopDownDataset:
    """The top-down dataset of ``dataset_name`` (``coco``, ``aic``, ``mpii``, ``crowdpose``).

    Args:
        ann_file / img_dir: the split's annotation file and image directory (docs/DATA.md layouts).
        meta: keypoint layout; default ``get_meta(dataset_name)``.
        det_file / use_gt_boxes / det_score_thr: evaluation boxes of the COCO-style datasets (see
            :class:`TopDownCocoDataset`). MPII has no detections: its boxes come from center / scale.
        dataset_index: stamped on every sample as ``dataset_index`` when not None.
        Other arguments as :class:`TopDownCocoDataset`.
    """
    fmt = dataset_format(dataset_name)
    meta = meta or get_meta(dataset_name)
    if fmt == "mpii":
        if det_file is not None or use_gt_boxes is False:
            raise ConfigError(f"det_file={det_file}: MPII is evaluated on its annotated people (boxes from "
                              f"center/scale, as mmpose); detections are not supported for mpii")
        return TopDownMpiiDataset(ann_file, img_dir, meta, input_size, heatmap_size, train=train,
                                  sigma=sigma, aug=aug, dataset_index=dataset_index)
    return TopDownCocoDataset(ann_file, img_dir, meta, input_size, heatmap_size, train=train,
                              det_file=det_file, use_gt_boxes=use_gt_boxes, sigma=sigma, aug=aug,
                              det_score_thr=det_score_thr, dataset_index=dataset_index)


class MultiTopDownDataset(Dataset):
    """Several top-down datasets as one, for a shared backbone with one decoder per dataset.

    Index ``i`` runs over the datasets in order (the first ``len(datasets[0])`` indices are the first
    dataset's, ...). A shuffling sampler therefore mixes every batch in proportion to the dataset sizes.
    The augmentation of global index ``i`` is drawn from ``sample_rng(seed, epoch, i)``, so the first
    dataset's samples equal those it gives on its own.

    Each sample is the dataset's sample plus ``dataset_index`` (int64, the dataset's position here —
    whatever index the dataset itself was built with) with ``target`` (K_max, h, w) and
    ``target_weight`` (K_max,) zero-padded to ``K_max = max(num_keypoints)``.

    Attributes:
        datasets, names (dataset names), num_keypoints (K per dataset), max_keypoints, metas.
    """

    accepts_sample_keys = True

    def __init__(self, datasets: Sequence[TopDownDataset]) -> None:
        datasets = list(datasets)
        if not datasets:
            raise ConfigError("MultiTopDownDataset: expected at least one dataset, got none")
        first = datasets[0]
        for i, ds in enumerate(datasets):
            for attr in ("input_size", "heatmap_size"):
                if getattr(ds, attr) != getattr(first, attr):
                    raise ConfigError(
                        f"MultiTopDownDataset: dataset #{i} ({ds.name}, {ds.ann_file}) has {attr} "
                        f"{getattr(ds, attr)}; expected {getattr(first, attr)} like dataset #0 ({first.name})")
        self.datasets = datasets
        self.names = [ds.name for ds in datasets]
        self.metas = [ds.meta for ds in datasets]
        self.num_keypoints = [ds.meta.num_keypoints for ds in datasets]
        self.max_keypoints = max(self.num_keypoints)
        self.input_size = first.input_size
        self.heatmap_size = first.heatmap_size
        self._ends: list[int] = []
        total = 0
        for ds in datasets:
            total += len(ds)
            self._ends.append(total)

    def __len__(self) -> int:
        return self._ends[-1]

    def locate(self, index: int) -> tuple[int, int]:
        """``(dataset position, index within that dataset)`` of global ``index``."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        d = bisect.bisect_right(self._ends, index)
        return d, index - (self._ends[d - 1] if d else 0)

    def __getitem__(self, key: int | SampleKey) -> dict[str, torch.Tensor]:
        key = SampleKey(int(key)) if not isinstance(key, tuple) else SampleKey(*key)
        index = key.index + len(self) if key.index < 0 else key.index
        d, local = self.locate(index)
        sample = self.datasets[d].sample(local, key.epoch, key.seed, rng_index=index)
        pad = self.max_keypoints - self.num_keypoints[d]
        if pad:
            target = sample["target"]
            sample["target"] = torch.cat([target, target.new_zeros((pad, *target.shape[1:]))])
            sample["target_weight"] = torch.cat([sample["target_weight"],
                                                 sample["target_weight"].new_zeros(pad)])
        sample["dataset_index"] = torch.tensor(d, dtype=torch.int64)
        return sample
