"""Model ensembles (paper Table 10, the "+" row: "+" means model ensemble): average the heatmaps.

`EnsemblePoseModel` maps images to heatmaps as each member does, so everything after the model
(flip test, DARK-UDP decoding, rescoring, OKS-NMS) applies unchanged. Flip averaging is linear in the
heatmaps, so the flip test of the ensemble is the average of the members' flip-tested heatmaps:

    flip_test(E, x) = (E(x) + flip_back(E(flip(x)))) / 2 = mean_i flip_test(member_i, x)

The paper says only that three models were ensembled. Members must agree on input size, heatmap size
and keypoints; others are refused, since averaging heatmaps of different grids would need a
resampling the paper does not describe. Each member is built from its checkpoint (the architecture
its `meta.model_config` names, which our training writes), so members may differ in architecture.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from vitpose.utils.errors import ConfigError


class EnsemblePoseModel(nn.Module):
    """images (B, 3, H, W) -> the members' mean heatmaps (B, K, H/4, W/4)."""

    def __init__(self, members: Sequence[nn.Module], names: Sequence[str] | None = None) -> None:
        super().__init__()
        if not members:
            raise ConfigError("ensemble: expected at least one member model, got none")
        names = list(names) if names is not None else [f"member {i + 1}" for i in range(len(members))]
        first = members[0].cfg
        for name, member in zip(names[1:], members[1:]):
            cfg = member.cfg
            for key, ours, theirs in (("input_size", first.input_size, cfg.input_size),
                                      ("heatmap_size", first.heatmap_size, cfg.heatmap_size),
                                      ("num_keypoints", first.num_keypoints, cfg.num_keypoints)):
                if theirs != ours:
                    raise ConfigError(f"ensemble: {name} has {key} {theirs}, but {names[0]} has {ours}; "
                                      f"the members' heatmaps are averaged cell by cell, so they must agree")
        self.members = nn.ModuleList(members)
        self.cfg = first  # input and heatmap sizes, for the datasets that feed the ensemble
        self.heatmap_size = first.heatmap_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, 3, H, W) -> (B, K, h, w); members run one after another (peak memory of one)."""
        total = self.members[0](images)
        for member in self.members[1:]:
            total = total + member(images)
        return total / len(self.members)


def load_ensemble(checkpoints: Sequence[str | os.PathLike]) -> EnsemblePoseModel:
    """The ensemble of the checkpoints' models (one checkpoint: that model alone, averaged over one),
    each built as its file says (`vitpose.models.architecture.load_pose_model`)."""
    from vitpose.models.architecture import load_pose_model

    return EnsemblePoseModel([load_pose_model(p)[0] for p in checkpoints], [str(p) for p in checkpoints])
