"""Mixed batches with a fixed share per dataset: the sampler of multi-dataset training with `ratio`s.

By default a multi-dataset run samples instances uniformly from the union of its datasets (the
loader's plain permutation of every index: datasets in proportion to their sizes, paper §3.3 "we
randomly sample instances from multiple training datasets"). With ratios, :class:`RatioSampler` fixes
how many instances of each dataset an epoch holds instead:

- the epoch keeps the union's length ``N = sum(sizes)``; dataset ``d`` contributes
  ``counts[d] = apportion(N, ratios)[d]`` instances, the largest-remainder rounding of
  ``N * ratios[d] / sum(ratios)`` (so the counts are proportional to within one instance and sum to N);
- which instances: dataset ``d``'s indices in random order, as many full passes as ``counts[d]``
  needs and then the start of one more (down-sampling takes a random subset, up-sampling repeats
  every instance as evenly as possible);
- an instance repeated within an epoch must not repeat its crop: augmentation is keyed by
  (seed, epoch, index), so the loader (``EpochKeySampler``) hands the k-th repeat (k ≥ 1) the seed
  ``seed + k · REPEAT_SEED_STRIDE`` (a seed no run uses: a fresh augmentation stream);
- then the whole epoch is shuffled. Everything is drawn from one generator seeded with
  ``seed + epoch`` (as ``DistributedSampler``), so an epoch's order depends on nothing else: exact
  resume replays it;
- distributed: the epoch is padded (or truncated with ``drop_last``) to a multiple of the rank count
  and rank ``r`` takes positions ``r, r + R, ...`` — ``DistributedSampler``'s rule.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from vitpose.utils.errors import ConfigError

# Seed offset of the k-th repeat of an instance within an epoch (module docstring): above any
# 32-bit run seed, so a repeat's augmentation never coincides with another run's or epoch's.
REPEAT_SEED_STRIDE = 1 << 32


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split into integers proportional to ``weights`` (largest remainder; ties to the first).

    ``apportion(10, [1, 1, 1]) == [4, 3, 3]``; the result always sums to ``total``.
    """
    weights = [float(w) for w in weights]
    if not weights or any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ConfigError(f"ratios {weights}: expected non-negative numbers with a positive sum")
    norm = sum(weights)
    exact = [total * w / norm for w in weights]
    counts = [math.floor(x) for x in exact]
    # Python's sort is stable: equal remainders go to the earlier dataset.
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


class RatioSampler(Sampler[int]):
    """Indices of a concatenation of datasets (``sizes``, in order) with per-dataset shares ``ratios``.

    Args:
        sizes: number of instances of each dataset; global index ``offset[d] + i`` is dataset d's i-th
            (the order of :class:`~vitpose.data.multi.MultiTopDownDataset`).
        ratios: one non-negative weight per dataset (normalised here).
        num_replicas, rank: the distributed split (1, 0 when not distributed).
        seed: the epoch's generator is seeded with ``seed + epoch``.
        shuffle: False keeps the epoch grouped by dataset, each dataset's indices in order.
        drop_last: truncate (rather than pad) the epoch to a multiple of ``num_replicas``.

    Attributes:
        counts: instances per dataset in one epoch, before the distributed split (the same every epoch).
    """

    def __init__(self, sizes: Sequence[int], ratios: Sequence[float], *, num_replicas: int = 1,
                 rank: int = 0, seed: int = 0, shuffle: bool = True, drop_last: bool = False) -> None:
        self.sizes = [int(n) for n in sizes]
        if len(ratios) != len(self.sizes):
            raise ConfigError(f"ratios {list(ratios)}: expected one per dataset ({len(self.sizes)})")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.ratios = [float(r) for r in ratios]
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.seed, self.shuffle, self.drop_last = int(seed), bool(shuffle), bool(drop_last)
        self.epoch = 0
        total = sum(self.sizes)
        self.counts = apportion(total, self.ratios)
        empty = [d for d, (n, c) in enumerate(zip(self.sizes, self.counts)) if c and not n]
        if empty:
            raise ConfigError(f"dataset #{empty[0]} has no instance but ratio {self.ratios[empty[0]]}: "
                              f"nothing to draw its share from")
        self.offsets = [sum(self.sizes[:d]) for d in range(len(self.sizes))]
        # DistributedSampler's split: every rank the same number of indices.
        if self.drop_last and total % self.num_replicas:
            self.num_samples = total // self.num_replicas
        else:
            self.num_samples = math.ceil(total / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def epoch_order(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole epoch (every rank's, before the split): indices (sum(sizes),) int64 and, for
        each, its repeat number within the epoch (0 for an instance's first pass) (sum(sizes),)."""
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        parts, repeats = [], []
        for size, count, offset in zip(self.sizes, self.counts, self.offsets):
            if not count:
                continue
            passes = -(-count // size)
            order = [torch.randperm(size, generator=g) if self.shuffle else torch.arange(size)
                     for _ in range(passes)]
            parts.append(torch.cat(order)[:count] + offset)
            repeats.append((torch.arange(passes * size) // size)[:count])
        indices, repeat = torch.cat(parts), torch.cat(repeats)
        if self.shuffle:
            perm = torch.randperm(len(indices), generator=g)
            indices, repeat = indices[perm], repeat[perm]
        return indices, repeat

    def epoch_indices(self) -> torch.Tensor:
        """The whole epoch's indices (every rank's, before the split): (sum(sizes),) int64."""
        return self.epoch_order()[0]

    def keys(self) -> Iterator[tuple[int, int]]:
        """This rank's (index, repeat number) pairs of the epoch; `iter` gives just the indices."""
        indices, repeat = (t.tolist() for t in self.epoch_order())
        pairs = list(zip(indices, repeat))
        if len(pairs) < self.total_size:  # pad by repeating the start, as DistributedSampler
            pad = self.total_size - len(pairs)
            pairs += (pairs * math.ceil(pad / len(pairs)))[:pad]
        else:
            pairs = pairs[: self.total_size]
        return iter(pairs[self.rank: self.total_size: self.num_replicas])

    def __iter__(self) -> Iterator[int]:
        return (index for index, _ in self.keys())

    def __len__(self) -> int:
        return self.num_samples
