"""One shared backbone, one decoder per dataset: ViTPose's multi-dataset model (paper §3.3, Fig. 2e).

`MultiDatasetPoseModel` holds the backbone and one decoder (of `ModelConfig.decoder`'s type) per
dataset, decoder ``d`` with ``num_keypoints[d]`` output channels. A mixed batch runs the backbone once
and each row through its own dataset's decoder::

    model = build_multi_model(cfg, num_keypoints=[17, 14], names=["coco", "aic"])
    heatmaps = model(images, dataset_index)   # (B, 3, H, W), (B,) int -> (B, K_max, H/4, W/4)
    coco = model.single(0)                    # a plain TopDownPoseModel sharing the weights

Module names. Decoder 0 keeps the released single-dataset names (`backbone.*`, `keypoint_head.*`), so
the model's state_dict restricted to those keys *is* a released ViTPose-B checkpoint and the optimizer's
layer-wise decay (vitpose/engine/optim.py, which matches `backbone.blocks.{i}.` and the embeddings)
sees the backbone as usual. Decoders 1.. live in `associate_keypoint_heads.{d-1}.*`: the name the
released multi-dataset ViTPose+ checkpoints use for their extra heads; being outside the backbone
they get layer id `depth + 1`, i.e. the decoder's learning rate, like `keypoint_head`.

`model_multi.pth` (`save_multi_checkpoint` / `load_multi_checkpoint`): the released checkpoint layout
(`{"state_dict", "meta"}`) with every decoder's keys, and `meta` naming the datasets (`datasets`,
`keypoints`, `num_keypoints`, `format`); see `save_multi_checkpoint`.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vitpose.models.build import TopDownPoseModel, build_backbone
from vitpose.models.config import ModelConfig
from vitpose.models.decoders import build_decoder
from vitpose.utils.errors import CheckpointError, ConfigError
from vitpose.utils.io import atomic_torch_save

EXTRA_HEADS = "associate_keypoint_heads"  # module name of decoders 1.. (the released ViTPose+ name)
MULTI_FORMAT = "vitpose-multi/1"


class MultiDatasetPoseModel(nn.Module):
    """images (B, 3, H, W) + dataset_index (B,) -> heatmaps (B, K_max, H/4, W/4), one decoder per dataset.

    Attributes:
        cfg: the ModelConfig (its `num_keypoints` is decoder 0's).
        backbone, keypoint_head (decoder 0), associate_keypoint_heads (nn.ModuleList, decoders 1..).
        num_keypoints: K per decoder; max_keypoints: their maximum; names: one label per decoder
            (dataset names, for messages and the checkpoint meta).
    """

    def __init__(self, cfg: ModelConfig, backbone: nn.Module, heads: Sequence[nn.Module],
                 num_keypoints: Sequence[int], names: Sequence[str] | None = None) -> None:
        super().__init__()
        heads, num_keypoints = list(heads), [int(k) for k in num_keypoints]
        if not heads or len(heads) != len(num_keypoints):
            raise ValueError(f"expected one keypoint count per decoder, got {len(heads)} decoders and "
                             f"{len(num_keypoints)} counts")
        self.cfg = cfg
        self.backbone = backbone
        self.keypoint_head = heads[0]
        self.associate_keypoint_heads = nn.ModuleList(heads[1:])
        self.num_keypoints = num_keypoints
        self.max_keypoints = max(num_keypoints)
        self.names = list(names) if names is not None else [str(d) for d in range(len(heads))]
        if len(self.names) != len(heads):
            raise ValueError(f"expected {len(heads)} names, got {self.names}")
        self.heatmap_size = cfg.heatmap_size

    @property
    def num_decoders(self) -> int:
        return 1 + len(self.associate_keypoint_heads)

    def head(self, d: int) -> nn.Module:
        """Decoder `d` (0: `keypoint_head`, d ≥ 1: `associate_keypoint_heads[d - 1]`)."""
        if not 0 <= d < self.num_decoders:
            raise IndexError(f"decoder {d}: the model has decoders 0..{self.num_decoders - 1}")
        return self.keypoint_head if d == 0 else self.associate_keypoint_heads[d - 1]

    def single(self, d: int = 0) -> TopDownPoseModel:
        """Decoder `d` with the backbone as a plain TopDownPoseModel that *shares* the modules (no copy):
        inference, flip test and the released-format export of one dataset. Its cfg has
        `num_keypoints = num_keypoints[d]`; its state_dict keys are `backbone.*`, `keypoint_head.*`."""
        cfg = dataclasses.replace(self.cfg, num_keypoints=self.num_keypoints[d])
        model = TopDownPoseModel(cfg, self.backbone, self.head(d))
        return model.train(self.training)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, 3, H, W) -> features (B, C, H/s, W/s)."""
        return self.backbone(images)

    def forward(self, images: torch.Tensor, dataset_index: torch.Tensor | int | None = None) -> torch.Tensor:
        """Heatmaps of each image by its own dataset's decoder.

        images: (B, 3, H, W). dataset_index: (B,) int tensor of decoder ids -> (B, K_max, H/4, W/4),
        row m from decoder dataset_index[m] in channels [:K_d], the other channels exactly 0; an int
        d -> decoder d on every row, (B, K_d, H/4, W/4); None -> decoder 0 (the model acts as the
        primary dataset's single model, e.g. for benchmarks).

        Each decoder only sees its own rows: a decoder without a row in the batch is not called, so
        it gets no gradient (None) and its BatchNorm statistics only ever describe its own dataset.
        """
        if dataset_index is None or isinstance(dataset_index, int):
            return self.head(int(dataset_index or 0))(self.forward_features(images))
        index = dataset_index.reshape(-1).to(images.device)
        if index.shape[0] != images.shape[0]:
            raise ValueError(f"dataset_index has {index.shape[0]} entries for {images.shape[0]} images")
        features = self.forward_features(images)                          # (B, C, h', w')
        if index.numel() == 0:  # nothing to route; decoder 0 gives the empty output its shape
            out = self.keypoint_head(features)
            return F.pad(out, (0, 0, 0, 0, 0, self.max_keypoints - self.num_keypoints[0]))
        parts, rows = [], []
        for d in range(self.num_decoders):
            sel = torch.nonzero(index == d, as_tuple=False).reshape(-1)    # (n_d,)
            if sel.numel() == 0:
                continue
            out = self.head(d)(features.index_select(0, sel))              # (n_d, K_d, h, w)
            parts.append(F.pad(out, (0, 0, 0, 0, 0, self.max_keypoints - self.num_keypoints[d])))
            rows.append(sel)
        order = torch.cat(rows)
        if order.numel() != index.numel():
            bad = index[(index < 0) | (index >= self.num_decoders)]
            raise ValueError(f"dataset_index {bad[:5].tolist()}: the model has decoders "
                             f"0..{self.num_decoders - 1}")
        # Rows come out grouped by decoder; put them back in batch order (a gather: exact, and
        # its gradient is the scatter back to each decoder's rows).
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel(), device=order.device)
        return torch.cat(parts).index_select(0, inverse)


def build_multi_model(cfg: ModelConfig, num_keypoints: Sequence[int],
                      names: Sequence[str] | None = None) -> MultiDatasetPoseModel:
    """The backbone of `cfg` and one `cfg.decoder` decoder per entry of `num_keypoints`.

    Built in the order backbone, decoder 0, decoder 1, ... so that, from the same torch seed, the
    backbone and decoder 0 start exactly as `build_model(cfg)`'s (num_keypoints[0] = cfg.num_keypoints).
    """
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    num_keypoints = [int(k) for k in num_keypoints]
    if not num_keypoints:
        raise ConfigError("multi-dataset model: expected at least one dataset (decoder)")
    if num_keypoints[0] != cfg.num_keypoints:
        raise ConfigError(f"model.num_keypoints: {cfg.num_keypoints}, but the first dataset (decoder 0, "
                          f"the exported model.pth) has {num_keypoints[0]} keypoints")
    backbone, channels = build_backbone(cfg)
    heads = [build_decoder(cfg.decoder, channels, k, cfg.feature_stride, cfg.decoder_channels)
             for k in num_keypoints]
    return MultiDatasetPoseModel(cfg, backbone, heads, num_keypoints, names)


# ---------------------------------------------------------------------------------------- model_multi.pth
def multi_checkpoint_path(checkpoint: str | os.PathLike) -> Path:
    """Where the all-decoder file of `checkpoint` lives: beside it, `<stem>_multi<suffix>`
    (`model.pth` -> `model_multi.pth`)."""
    path = Path(checkpoint)
    return path.with_name(f"{path.stem}_multi{path.suffix}")


def save_multi_checkpoint(model: MultiDatasetPoseModel, path: str | os.PathLike, meta: dict | None = None,
                          keypoints: Sequence[str] | None = None) -> None:
    """Write every decoder, atomically, as `{"state_dict": ..., "meta": ...}`.

    state_dict: `backbone.*`, `keypoint_head.*` (decoder 0, the released keys) and
    `associate_keypoint_heads.{d-1}.*` (decoder d ≥ 1), CPU tensors.
    meta: `meta`'s entries plus `format` ("vitpose-multi/1"), `datasets` (names, decoder order),
    `num_keypoints` (K per decoder), `keypoints` (keypoint layout names, when given) and
    `model_config` (ModelConfig.to_dict(), decoder 0's num_keypoints) — plain Python values only.
    """
    model = getattr(model, "module", model)  # DDP
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    info = dict(meta or {})
    info.update({"format": MULTI_FORMAT, "datasets": list(model.names),
                 "num_keypoints": list(model.num_keypoints)})
    if keypoints is not None:
        info["keypoints"] = list(keypoints)
    info.setdefault("model_config", model.cfg.to_dict())
    atomic_torch_save(path, {"state_dict": state, "meta": info})


def read_multi_meta(path: str | os.PathLike) -> dict:
    """The `meta` of a model_multi.pth file; CheckpointError (naming the file) if it is not one."""
    from vitpose.models.checkpoint import read_torch_file

    try:
        obj = read_torch_file(path, "multi-dataset checkpoint", mmap=True)  # cheap: only meta is read
    except CheckpointError:
        obj = read_torch_file(path, "multi-dataset checkpoint")  # non-zip files: the real message
    meta = obj.get("meta") if isinstance(obj, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != MULTI_FORMAT or "state_dict" not in obj:
        raise CheckpointError(f"{path}: not a multi-dataset checkpoint (expected 'state_dict' and a "
                              f"'meta' with format {MULTI_FORMAT!r}, written by the multi-dataset training)")
    return meta


def load_multi_checkpoint(model: MultiDatasetPoseModel, path: str | os.PathLike):
    """Load a model_multi.pth into `model` (strict); CheckpointError naming the file when its datasets
    or keypoint counts are not the model's, or any key / shape differs. Returns the LoadReport."""
    from vitpose.models.checkpoint import load_vitpose_checkpoint

    model = getattr(model, "module", model)
    meta = read_multi_meta(path)
    if list(meta.get("num_keypoints", [])) != list(model.num_keypoints):
        raise CheckpointError(
            f"{path}: decoders for datasets {meta.get('datasets')} with {meta.get('num_keypoints')} "
            f"keypoints; the run has {model.names} with {model.num_keypoints}")
    return load_vitpose_checkpoint(model, path, strict=True)
