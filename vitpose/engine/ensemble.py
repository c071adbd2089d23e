"""Model ensembles (paper Table 10, the "+" row: "+" means model ensemble): average the heatmaps.

`EnsemblePoseModel` maps images to heatmaps as each member does, so everything after the model
(flip test, DARK-UDP decoding, rescoring, OKS-NMS) applies unchanged. Flip averaging is linear in the
heatmaps (and the resampling below commutes with a horizontal flip), so the flip test of the ensemble
is the average of the members' flip-tested heatmaps:

    flip_test(E, x) = (E(x) + flip_back(E(flip(x)))) / 2 = mean_i flip_test(member_i, x)

Members of different input sizes (ViTPose-G at 576x432 with 256x192 models): the ensemble works at
its *reference* member's geometry, the member with the largest input (the first of equals). The
dataset crops every box once, at that size. Each other member is fed that crop resized to its own
input size, and its heatmaps are resized to the reference's heatmap size, both bilinearly with
corner-aligned sampling (`align_corners=True`). That is UDP's convention: a crop of width w maps the
padded box's left and right edges to pixels 0 and w - 1, and a heatmap of width W_hm maps them to
cells 0 and W_hm - 1 (REFERENCE §3-4: p_img = p_hm * s / (W_hm - 1) + c - s / 2), so under that
resampling a cell of any member's heatmap lands on the same image point as the reference's cell it
is moved to. Every member sees the same box, so a member whose input aspect differs from the
reference's sees the person stretched by the ratio of the aspects (none at paper scale: 576x432 and
256x192 are both 4:3; 3.7% at smoke scale, where 576x432 becomes 288x224); the keypoints still map
to the right image points. Resizing the reference crop instead of warping the image again costs one
more bilinear interpolation, no geometry.

Members must agree on keypoints. Each member is built from its checkpoint (the architecture its
`meta.model_config` names, which our training writes, or the one its weights show), so members may
differ in architecture.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vitpose.utils.errors import ConfigError


def reference_index(input_sizes: Sequence[Sequence[int]]) -> int:
    """The member whose geometry the ensemble works at: the largest input (H x W), the first of equals.
    (workflow.registry's test-dev runs pick the same member for their config's model section.)"""
    return max(range(len(input_sizes)), key=lambda i: input_sizes[i][0] * input_sizes[i][1])


def _resized(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """x (B, C, h, w) at `size` (H, W), corner-aligned bilinear (UDP's convention); x itself when equal."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


class EnsemblePoseModel(nn.Module):
    """images (B, 3, H, W) at the reference member's input -> the members' mean heatmaps (B, K, h, w)
    at the reference's heatmap size."""

    def __init__(self, members: Sequence[nn.Module], names: Sequence[str] | None = None) -> None:
        super().__init__()
        if not members:
            raise ConfigError("ensemble: expected at least one member model, got none")
        names = list(names) if names is not None else [f"member {i + 1}" for i in range(len(members))]
        first = members[0].cfg
        for name, member in zip(names[1:], members[1:]):
            if member.cfg.num_keypoints != first.num_keypoints:
                raise ConfigError(f"ensemble: {name} has num_keypoints {member.cfg.num_keypoints}, but "
                                  f"{names[0]} has {first.num_keypoints}; the members' heatmaps are averaged "
                                  f"joint by joint, so they must predict the same keypoints")
        self.members = nn.ModuleList(members)
        ref = members[reference_index([tuple(m.cfg.input_size) for m in members])].cfg
        self.cfg = ref  # the input and heatmap sizes the datasets feeding the ensemble use
        self.input_size = tuple(ref.input_size)
        self.heatmap_size = tuple(ref.heatmap_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, 3, H, W) -> (B, K, h, w); members run one after another (peak memory of one)."""
        total = None
        for member in self.members:
            heatmaps = _resized(member(_resized(images, member.cfg.input_size)), self.heatmap_size)
            total = heatmaps if total is None else total + heatmaps
        return total / len(self.members)


def load_ensemble(checkpoints: Sequence[str | os.PathLike]) -> EnsemblePoseModel:
    """The ensemble of the checkpoints' models (one checkpoint: that model alone, averaged over one),
    each built as its file says (`vitpose.models.architecture.load_pose_model`)."""
    from vitpose.models.architecture import load_pose_model

    return EnsemblePoseModel([load_pose_model(p)[0] for p in checkpoints], [str(p) for p in checkpoints])
