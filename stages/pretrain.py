"""MAE pre-training of a ViT backbone (Table 3): `python -m stages.pretrain --config results/S/mae-RUN/config.json`.

The run's configuration (an MAE pre-training run of the registry, e.g. `mae-vitpose-b-coco-crop`) holds
the encoder (`model`), the images (`pretraining.index`, written by stages.pretrain_data), the masking,
the decoder and the recipe (`train`: 1,600 epochs, effective batch 4,096, AdamW (0.9, 0.95), cosine
schedule after a 40-epoch warm-up at paper scale). Training is the same loop as finetuning
(vitpose/engine/trainer.py with vitpose/engine/mae.py's objective): it runs as a launcher job
(`--launcher local|slurm`, docs/SLURM.md), resumes from `work/<scale>/<run>/last.pth`, saves every
`train.checkpoint_every_iters` iterations and on the requeue signal, and accumulates gradients when a
process's share of the batch exceeds `$VITPOSE_MICRO_BATCH`.

Output (atomically, once training has finished): `results/<scale>/<run>/mae_pretrain.pth` in MAE's file
format (`model`: the encoder with timm's key names plus the decoder; `meta`: run, set, hash, loss), which
finetuning runs initialised from this pre-training load as their `pretrained` weights.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from stages import finetune
from stages._cli import run_main


def main(argv: Sequence[str] | None = None) -> int:
    parser = finetune.build_parser("python -m stages.pretrain", __doc__.splitlines()[0], "mae_pretrain.pth")
    return finetune.main(argv, stage="pretrain", parser=parser)


if __name__ == "__main__":
    sys.exit(run_main(main))
