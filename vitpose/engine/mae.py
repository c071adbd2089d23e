"""MAE pre-training as an objective of the one training loop (paper §3.3, Table 3; He et al. 2022).

What differs from finetuning is only what `Objective` lets vary: the module (the project's own
`ViTPoseBackbone` inside a `MaskedAutoencoder`, so the encoder's weights need no conversion), the data
(the images of a pre-training set's index, with MAE's RandomResizedCrop + flip), the loss (normalised-pixel
MSE over the masked patches), the optimiser's settings (AdamW, betas (0.9, 0.95), no layer decay, none of
the weight decay on norms and biases — the run's `train` section says so) and the export (MAE's file
format, a `model` key, which `vitpose.models.checkpoint.load_mae_checkpoint` reads when a finetuning
run's `pretrained` names it). Resume, DDP, gradient accumulation, requeue, logging: the loop's.

Masks are drawn from the global torch RNG inside `loss`, which the loop saves with the state and
restores after replaying a resumed epoch's batches; the crops are keyed by (seed, epoch, index). So a
pre-training run interrupted mid-epoch ends with the weights of an uninterrupted one (on CPU, bit-exact).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vitpose.config import RunConfig
from vitpose.engine.objective import Models, Objective, TrainModules
from vitpose.utils.errors import ConfigError

MAE_FORMAT = "vitpose-mae/1"


class MAEObjective(Objective):
    """Masked-autoencoder pre-training of the run's ViT backbone on `cfg.pretraining`'s images."""

    name = "mae"
    empty_data_reason = "no image in the pre-training index"

    def _settings(self, cfg: RunConfig):
        if cfg.pretraining is None:
            raise ConfigError(f"run {cfg.run}: MAE pre-training needs a `pretraining` section")
        return cfg.pretraining

    def build(self, cfg: RunConfig) -> TrainModules:
        from vitpose.models.build import build_backbone
        from vitpose.models.mae import MaskedAutoencoder

        p = self._settings(cfg)
        backbone, _ = build_backbone(cfg.model)
        model = MaskedAutoencoder(backbone, decoder_dim=p.decoder_dim, decoder_depth=p.decoder_depth,
                                  decoder_heads=p.decoder_heads, mask_ratio=p.mask_ratio,
                                  norm_pix_loss=p.norm_pix_loss)
        return TrainModules(model)

    def build_dataset(self, cfg: RunConfig):
        from vitpose.data.pretrain import PretrainImageDataset

        p = self._settings(cfg)
        return PretrainImageDataset(p.resolve("index"), input_size=tuple(cfg.model.input_size),
                                    scale=tuple(p.crop_scale), hflip=p.hflip)

    def describe_data(self, cfg: RunConfig) -> str:
        return str(self._settings(cfg).resolve("index"))

    def num_workers(self, cfg: RunConfig) -> int:
        return self._settings(cfg).num_workers

    def loss(self, batch: dict, models: Models) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        from vitpose.models.mae import mae_loss, patchify

        images = models.to_device(batch["img"])                 # (B, 3, H, W), normalised
        with models.autocast():
            _, pred, mask = models.net(images)                  # (B, N, 768), (B, N)
        # The loss outside autocast: in float32 whatever the forward's precision.
        model = models.model
        target = patchify(images, model.patch_size)
        return mae_loss(pred.float(), target, mask, norm_pix=model.norm_pix_loss), {}

    def export(self, model: nn.Module, path: Path, cfg: RunConfig, summary: dict) -> None:
        from vitpose.models.mae import save_mae_checkpoint

        p = self._settings(cfg)
        meta = {"format": MAE_FORMAT, "run": cfg.run, "scale": cfg.scale, "config_hash": cfg.hash,
                "set": p.set, "images": summary["train_samples"],
                "input_size": list(cfg.model.input_size), "mask_ratio": p.mask_ratio,
                "iterations": summary["iterations"], "epochs": cfg.train.epochs,
                "final_loss": summary["final_loss"], "train_time_s": summary["train_time_s"],
                "model_config": cfg.model.to_dict()}
        save_mae_checkpoint(model, path, meta=meta)
