"""Mixed batches: per-dataset counts of an epoch follow the configured ratios (sizes by default),
deterministically from (seed, epoch), split over ranks like the single-dataset sampler."""
from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.utils.data import Dataset

import vitpose.data.loader as loader_mod
from vitpose.data.dataset import SampleKey
from vitpose.data.loader import build_dataloader
from vitpose.data.sampler import REPEAT_SEED_STRIDE, RatioSampler, apportion
from vitpose.utils.errors import ConfigError

SIZES = [30, 10, 5]


class Part(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


class Concat(Dataset):
    """Stands for MultiTopDownDataset: `datasets` in order, global index = offset + local index."""

    accepts_sample_keys = True

    def __init__(self, sizes, ratios=None) -> None:
        self.datasets = [Part(n) for n in sizes]
        self.sampling_ratios = ratios

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, key: SampleKey) -> int:
        return key.index


def _dataset_of(index: int, sizes=SIZES) -> int:
    for d, end in enumerate(torch.tensor(sizes).cumsum(0).tolist()):
        if index < end:
            return d
    raise IndexError(index)


def _counts(indices, sizes=SIZES) -> list[int]:
    c = Counter(_dataset_of(i, sizes) for i in indices)
    return [c[d] for d in range(len(sizes))]


def test_apportion_is_proportional_and_exact():
    assert apportion(10, [1, 1, 1]) == [4, 3, 3]
    assert apportion(45, [1, 2, 1]) == [11, 23, 11]
    assert apportion(7, [0, 1]) == [0, 7]
    for total, weights in [(101, [0.3, 0.5, 0.2]), (9, [5, 1]), (1000, [1, 2, 3, 4])]:
        counts = apportion(total, weights)
        assert sum(counts) == total
        assert all(abs(c - total * w / sum(weights)) < 1 for c, w in zip(counts, weights))
    with pytest.raises(ConfigError, match="ratios"):
        apportion(10, [0, 0])


def test_epoch_counts_follow_the_ratios_and_the_epoch_keeps_the_unions_length():
    sampler = RatioSampler(SIZES, [1, 2, 1], seed=3)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        indices = list(sampler)
        assert len(indices) == len(sampler) == sum(SIZES)
        assert _counts(indices) == sampler.counts == [11, 23, 11]
        per = Counter(indices)
        # down-sampled: a subset, each instance at most once; up-sampled: every instance, evenly
        assert all(per[i] == 1 for i in per if _dataset_of(i) == 0)
        assert {per[i] for i in range(30, 40)} == {2, 3}
        assert {per[i] for i in range(40, 45)} == {2, 3}
    # Deterministic from (seed, epoch): the same epoch again gives the same order; others differ.
    sampler.set_epoch(1)
    first = list(sampler)
    again = RatioSampler(SIZES, [1, 2, 1], seed=3)
    again.set_epoch(1)
    assert list(again) == first
    again.set_epoch(2)
    assert list(again) != first
    other_seed = RatioSampler(SIZES, [1, 2, 1], seed=4)
    other_seed.set_epoch(1)
    assert list(other_seed) != first


def test_the_loader_uses_the_datasets_ratios_and_the_union_by_default():
    with_ratios = build_dataloader(Concat(SIZES, [1, 2, 1]), 5, shuffle=True, num_workers=0, seed=0,
                                   drop_last=True)
    with_ratios.sampler.set_epoch(2)
    keys = [k.index for k in with_ratios.sampler]
    assert _counts(keys) == [11, 23, 11]
    assert all(k.epoch == 2 for k in with_ratios.sampler)  # the augmentation key is kept
    assert _counts(torch.cat(list(with_ratios)).tolist()) == [11, 23, 11]  # 45 = 9 full batches

    # Default: a permutation of every index (uniform over the union: datasets by their sizes), the
    # order of the single-dataset sampler.
    uniform = build_dataloader(Concat(SIZES), 5, shuffle=True, num_workers=0, seed=0, drop_last=True)
    uniform.sampler.set_epoch(2)
    keys = [k.index for k in uniform.sampler]
    assert sorted(keys) == list(range(sum(SIZES))) and _counts(keys) == SIZES
    g = torch.Generator().manual_seed(0 + 2)
    assert keys == torch.randperm(sum(SIZES), generator=g).tolist()
    # An explicit argument wins over the dataset's attribute.
    explicit = build_dataloader(Concat(SIZES), 5, shuffle=True, num_workers=0, seed=0, drop_last=True,
                                ratios=[1, 1, 1])
    assert _counts(k.index for k in explicit.sampler) == [15, 15, 15]


def test_repeats_of_an_up_sampled_instance_get_their_own_augmentation_key():
    loader = build_dataloader(Concat(SIZES, [1, 2, 1]), 5, shuffle=True, num_workers=0, seed=7,
                              drop_last=True)
    loader.sampler.set_epoch(1)
    keys = list(loader.sampler)
    assert len(set(keys)) == len(keys)  # no (index, epoch, seed) twice: no identical crop twice
    seeds: dict[int, list[int]] = {}
    for k in keys:
        seeds.setdefault(k.index, []).append(k.seed)
    for index, got in seeds.items():
        assert sorted(got) == [7 + r * REPEAT_SEED_STRIDE for r in range(len(got))], index
    assert max(len(v) for v in seeds.values()) == 3  # the 5-instance dataset: 11 draws, up to 3 each


@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_share_the_epoch(monkeypatch, drop_last):
    sizes, ratios = [13, 4], [1, 1]   # 17 indices over 2 ranks: padded to 18 or truncated to 16
    epoch = RatioSampler(sizes, ratios, seed=1)
    epoch.set_epoch(5)
    whole = list(epoch)
    shares = []
    for rank in (0, 1):
        monkeypatch.setattr(loader_mod.dist, "is_initialized", lambda: True)
        monkeypatch.setattr(loader_mod.dist, "get_world_size", lambda: 2)
        monkeypatch.setattr(loader_mod.dist, "get_rank", lambda r=rank: r)
        loader = build_dataloader(Concat(sizes, ratios), 2, shuffle=True, num_workers=0, seed=1,
                                  drop_last=drop_last, distributed=True)
        loader.sampler.set_epoch(5)
        shares.append([k.index for k in loader.sampler])
    n = 8 if drop_last else 9
    assert len(shares[0]) == len(shares[1]) == n
    interleaved = [i for pair in zip(*shares) for i in pair]
    assert interleaved == (whole[:16] if drop_last else whole + whole[:1])


def test_bad_ratios_are_refused():
    with pytest.raises(ConfigError, match="dataset #1 has no instance"):
        RatioSampler([5, 0], [1, 1])
    with pytest.raises(ConfigError, match="one per dataset"):
        RatioSampler([5, 5], [1])

    class Flat(Dataset):
        def __len__(self):
            return 4

    with pytest.raises(ConfigError, match="not a concatenation"):
        build_dataloader(Flat(), 2, shuffle=True, num_workers=0, seed=0, drop_last=True, ratios=[1])
