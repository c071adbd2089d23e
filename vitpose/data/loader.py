"""DataLoader construction: deterministic order and augmentation from (seed, epoch).

The sampler is always a ``DistributedSampler`` (one replica when not distributed), so the shuffled
order is ``randperm(n)`` seeded with ``seed + epoch`` on every rank count. For datasets that accept
:class:`~vitpose.data.dataset.SampleKey` items the sampler also hands out the (seed, epoch) with each
index: a sample's augmentation then depends only on (seed, epoch, index), not on the worker that draws
it, and a run resumed at epoch ``e`` sees exactly the batches it would have seen.

A concatenation of datasets with per-dataset shares (multi-dataset training with ratios: ``ratios=``,
or a dataset carrying a ``sampling_ratios`` attribute, one weight per entry of its ``datasets``) gets a
:class:`~vitpose.data.sampler.RatioSampler` in place of the permutation: same epoch length, the same
(seed, epoch) determinism and rank split; the k-th repeat of an instance within an epoch is keyed with
seed ``seed + k · REPEAT_SEED_STRIDE``, so that up-sampled instances are not the same crop twice.

Call ``loader.sampler.set_epoch(e)`` before iterating epoch ``e`` (the usual PyTorch idiom).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import cv2
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from vitpose.data.dataset import SampleKey
from vitpose.data.sampler import REPEAT_SEED_STRIDE, RatioSampler
from vitpose.utils.errors import ConfigError


class EpochKeySampler(Sampler):
    """Wraps a ``DistributedSampler`` or a :class:`RatioSampler`; yields :class:`SampleKey` (or plain
    indices if ``keyed`` is False) and forwards :meth:`set_epoch`."""

    def __init__(self, base: DistributedSampler | RatioSampler, seed: int, epoch: int = 0,
                 keyed: bool = True) -> None:
        self.base = base
        self.seed = int(seed)
        self.keyed = keyed
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.base.set_epoch(self.epoch)

    def __iter__(self) -> Iterator[SampleKey | int]:
        if self.keyed and isinstance(self.base, RatioSampler):
            # An instance repeated within the epoch (up-sampled dataset) gets a fresh augmentation.
            for index, repeat in self.base.keys():
                yield SampleKey(index, self.epoch, self.seed + repeat * REPEAT_SEED_STRIDE)
            return
        for index in self.base:
            yield SampleKey(index, self.epoch, self.seed) if self.keyed else index

    def __len__(self) -> int:
        return len(self.base)


def _worker_init(_worker_id: int) -> None:
    # Each worker is one process per core already; OpenCV's own thread pool would oversubscribe.
    cv2.setNumThreads(0)


def build_dataloader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int,
    seed: int,
    drop_last: bool,
    distributed: bool = False,
    epoch: int = 0,
    ratios: Sequence[float] | None = None,
) -> DataLoader:
    """A DataLoader over ``dataset`` (workers persistent when ``num_workers > 0``).

    With ``distributed`` the process group must be initialised; each rank gets its own
    ``1 / world_size`` share of the (identically shuffled) indices.
    ratios: per-dataset shares of a concatenation (``dataset.datasets``); default the dataset's
    ``sampling_ratios`` attribute; None samples uniformly from all indices.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size}: expected a positive integer")
    if num_workers < 0:
        raise ConfigError(f"num_workers={num_workers}: expected 0 or more")
    if distributed:
        if not (dist.is_available() and dist.is_initialized()):
            raise ConfigError("distributed=True but torch.distributed is not initialised")
        replicas, rank = dist.get_world_size(), dist.get_rank()
    else:
        replicas, rank = 1, 0
    if ratios is None:
        ratios = getattr(dataset, "sampling_ratios", None)
    if ratios is None:
        base = DistributedSampler(dataset, num_replicas=replicas, rank=rank, shuffle=shuffle,
                                  seed=seed, drop_last=drop_last)
    else:
        parts = getattr(dataset, "datasets", None)
        if parts is None:
            raise ConfigError(f"ratios={list(ratios)}: the dataset ({type(dataset).__name__}) is not a "
                              f"concatenation of datasets (no 'datasets' attribute)")
        base = RatioSampler([len(d) for d in parts], ratios, num_replicas=replicas, rank=rank,
                            seed=seed, shuffle=shuffle, drop_last=drop_last)
    keyed = bool(getattr(dataset, "accepts_sample_keys", False))
    sampler = EpochKeySampler(base, seed=seed, epoch=epoch, keyed=keyed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available(),
        worker_init_fn=_worker_init if num_workers > 0 else None,
        generator=torch.Generator().manual_seed(int(seed)),
    )
