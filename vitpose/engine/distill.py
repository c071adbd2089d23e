"""Knowledge transfer (paper §3.4, Eq. 4-6, Table 8) as two objectives of the one training loop.

`TokenObjective` (Eq. 5): the frozen teacher (a ViTPose-L run's released-format weights) sees its patch
tokens with one learnable knowledge token in front; only the token is trained, against the ground-truth
heatmaps. Exported as a small file: `token` (1, 1, C_teacher) and `meta`.

`DistillObjective` (Eq. 4 and 6): the student (ViTPose-B) trains on the ground truth plus, with
`heatmap`, MSE(student, teacher) on the same augmented batch (teacher in eval mode, no gradient, the
same joint weights as the ground-truth term) weighted by `distill.heatmap_weight`; with `token`, the
frozen token of the token run enters the student through the model's `knowledge_token`
(models/token.py: a linear map from the teacher's width, trained with the student). Exported in the
released format; the token rides in the state_dict under `knowledge_token.*`.

Frozen modules (the teacher) are rebuilt from their files on resume and never saved with the state,
as `Objective`'s contract asks, so resume stays exact.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vitpose.config import RunConfig
from vitpose.engine.loss import keypoint_mse_loss
from vitpose.engine.objective import (
    HeatmapObjective,
    Models,
    TrainModules,
    build_model_for_training,
    export_checkpoint,
    heatmap_batch,
)
from vitpose.utils.errors import CheckpointError, ConfigError
from vitpose.utils.io import atomic_torch_save

TOKEN_FORMAT = "vitpose-knowledge-token/1"


def build_teacher(cfg: RunConfig) -> nn.Module:
    """The teacher's model with its released-format weights (strict: every key must match)."""
    from vitpose.models import build_model
    from vitpose.models.checkpoint import load_vitpose_checkpoint

    d = cfg.distill
    path = d.resolve("teacher_checkpoint")
    if not path.is_file():
        raise CheckpointError(f"{path}: the teacher's checkpoint is missing (distill.teacher_checkpoint); "
                              f"train the teacher run first")
    teacher = build_model(d.teacher())
    load_vitpose_checkpoint(teacher, path)
    return teacher


def save_knowledge_token(token: torch.Tensor, path: str | Path, meta: dict) -> None:
    """Write {"token": (1, 1, C), "meta": {...}} atomically."""
    atomic_torch_save(path, {"token": token.detach().cpu().clone(), "meta": {"format": TOKEN_FORMAT, **meta}})


def load_knowledge_token(path: str | Path) -> torch.Tensor:
    """The (1, 1, C) token of a token run's file; CheckpointError naming the file otherwise."""
    from vitpose.models.checkpoint import read_torch_file

    obj = read_torch_file(path, "knowledge token")
    token = obj.get("token") if isinstance(obj, dict) else None
    if not isinstance(token, torch.Tensor) or token.ndim != 3 or token.shape[:2] != (1, 1):
        raise CheckpointError(f"{path}: expected a knowledge-token file ({TOKEN_FORMAT}: a 'token' tensor "
                              f"of shape (1, 1, C)), found {sorted(obj)[:6] if isinstance(obj, dict) else type(obj).__name__}")
    return token


def _distill(cfg: RunConfig, job: str):
    if cfg.distill is None or cfg.distill.job != job:
        raise ConfigError(f"run {cfg.run}: expected a `distill` section with job {job!r}")
    return cfg.distill


class TokenObjective(HeatmapObjective):
    """Eq. 5: t* = argmin_t MSE(T([t; X]), K_gt), the teacher T frozen (the finetuning data)."""

    name = "knowledge-token"

    def build(self, cfg: RunConfig) -> TrainModules:
        from vitpose.models.token import TeacherToken

        _distill(cfg, "token")
        teacher = build_teacher(cfg)
        return TrainModules(TeacherToken(teacher.backbone.embed_dim), frozen={"teacher": teacher})

    def loss(self, batch: dict, models: Models) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, target, weight = heatmap_batch(batch, models)
        with models.autocast():
            heatmaps = models.net(images, models.frozen["teacher"])  # (B, K, h, w)
        return keypoint_mse_loss(heatmaps, target, weight), {}

    def export(self, model: nn.Module, path: Path, cfg: RunConfig, summary: dict) -> None:
        model = getattr(model, "module", model)
        d = cfg.distill
        save_knowledge_token(model.token, path, {
            "run": cfg.run, "scale": cfg.scale, "config_hash": cfg.hash,
            "teacher_checkpoint": d.teacher_checkpoint, "teacher_model": d.teacher().to_dict(),
            "iterations": summary["iterations"], "epochs": cfg.train.epochs,
            "final_loss": summary["final_loss"], "train_time_s": summary["train_time_s"]})

    def validate(self, model: nn.Module, cfg: RunConfig, out_dir: Path) -> dict[str, float] | None:
        return None  # the trained module is a token, not a pose model: nothing to score on its own


class DistillObjective(HeatmapObjective):
    """Eq. 4 / 6: the student's ground-truth loss, plus the teacher's heatmaps, with or without the token
    (the finetuning data)."""

    name = "distill"
    heatmap_weight: float = 1.0  # set from the run's distill section in `build`

    def build(self, cfg: RunConfig) -> TrainModules:
        d = _distill(cfg, "student")
        self.heatmap_weight = d.heatmap_weight
        model = build_model_for_training(cfg)
        if d.token:
            path = d.resolve("token_file")
            if not path.is_file():
                raise CheckpointError(f"{path}: the knowledge token is missing (distill.token_file); run the "
                                      f"token-training job first")
            try:
                model.knowledge_token.set_token(load_knowledge_token(path))
            except ValueError as exc:
                raise CheckpointError(f"{path}: {exc}") from None
        frozen = {"teacher": build_teacher(cfg)} if d.heatmap else {}
        return TrainModules(model, frozen=frozen)

    def loss(self, batch: dict, models: Models) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, target, weight = heatmap_batch(batch, models)
        with models.autocast():
            heatmaps = models.net(images)                      # (B, K, h, w)
        gt = keypoint_mse_loss(heatmaps, target, weight)
        teacher = models.frozen.get("teacher")
        if teacher is None:
            return gt, {}
        with torch.no_grad(), models.autocast():
            soft = teacher(images)                             # (B, K, h, w), the teacher's K_t
        # Eq. 4 with the same joint weights as the ground truth: joints without a label carry no
        # teacher term either.
        kd = keypoint_mse_loss(heatmaps, soft, weight)
        return gt + self.heatmap_weight * kd, {"gt_loss": gt.detach(), "kd_loss": kd.detach()}

    def export(self, model: nn.Module, path: Path, cfg: RunConfig, summary: dict) -> None:
        d = cfg.distill
        export_checkpoint(model, path, cfg, summary, extra_meta={"distill": {
            "heatmap": d.heatmap, "heatmap_weight": d.heatmap_weight, "token": d.token,
            "teacher_checkpoint": d.teacher_checkpoint, "token_file": d.token_file}})
