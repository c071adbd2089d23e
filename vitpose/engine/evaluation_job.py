"""The evaluate stage's job (stages/evaluate.py): everything of an evaluation that needs torch.

The stage launches `evaluation_job` by name ("vitpose.engine.evaluation_job:evaluation_job"), so the
process that submits the job and writes metrics.json never imports torch; the job returns the COCO
statistics together with the model's costs, the training time in the checkpoint's meta and the
pre-training record, all plain JSON values.
"""
from __future__ import annotations

from pathlib import Path

import torch

from vitpose.utils.errors import CheckpointError


def evaluation_job(cfg, checkpoint: Path, out_dir: Path, progress: bool = True, released: bool = False) -> dict:
    """Evaluate ``checkpoint`` (an authors' released file when ``released``) on the run's val split and
    write its results file(s) into ``out_dir``. Returns ``{"stats": ..., "costs": ..., "train_time_s": ...,
    "pretraining": ...}`` (see `model_costs`, `checkpoint_train_time`, `pretraining_record`)."""
    if released:
        stats = evaluate_released(cfg, checkpoint, out_dir, progress=progress)
    else:
        from vitpose.engine.inference import evaluate

        stats = evaluate(cfg, checkpoint, out_dir, progress=progress)
    return {"stats": stats, "costs": model_costs(cfg.model), "train_time_s": checkpoint_train_time(checkpoint),
            "pretraining": pretraining_record(cfg)}


def model_costs(model_cfg) -> dict[str, float | None]:
    """params_M, backbone_params_M, gflops, trainable_gflops of the configured model."""
    from vitpose.models.info import model_info

    info = model_info(model_cfg)
    get = info.get if isinstance(info, dict) else lambda k: getattr(info, k, None)
    return {k: (None if get(k) is None else float(get(k)))
            for k in ("params_M", "backbone_params_M", "gflops", "trainable_gflops")}


def checkpoint_train_time(checkpoint: Path) -> float | None:
    """Training wall time recorded by the trainer in the checkpoint's meta (None if absent)."""
    try:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception:  # the evaluation's own loader reports unreadable files with their name
        return None
    meta = ckpt.get("meta") if isinstance(ckpt, dict) else None
    value = meta.get("train_time_s") if isinstance(meta, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


# What a released file must agree on with the run's model section (the rest, e.g. the drop-path rate,
# does not change an evaluation).
ARCHITECTURE_KEYS = ("arch", "decoder", "input_size", "ratio", "num_keypoints", "embed_dim", "depth", "num_heads",
                     "decoder_channels", "knowledge_token")


def evaluate_released(cfg, checkpoint: Path, out_dir: Path, progress: bool = True) -> dict:
    """`evaluate` of an authors' released file (the launched job of `--released`): the model the file
    holds (`load_pose_model`: its COCO decoder where it has several), refused unless it is the run's
    architecture. Returns the metrics and the decoders left out (`ignored`)."""
    from vitpose.engine.inference import evaluate
    from vitpose.models.architecture import EXTRA_HEADS_PREFIX, load_pose_model

    model, found, report = load_pose_model(checkpoint)
    ours, theirs = cfg.model.to_dict(), found.to_dict()
    for key in ARCHITECTURE_KEYS:
        if ours.get(key) != theirs.get(key):
            raise CheckpointError(f"{checkpoint}: holds a model of {key} {theirs.get(key)!r}, but run {cfg.run} "
                                  f"evaluates {key} {ours.get(key)!r} (params.yaml `released` says what the file "
                                  f"holds); is it the right file?")
    stats = evaluate(cfg, None, out_dir, progress=progress, model=model)
    heads = sorted({".".join(k.split(".")[:2]) for k in report.ignored if k.startswith(EXTRA_HEADS_PREFIX)})
    return {**stats, "ignored": heads}


def pretraining_record(cfg) -> dict | None:
    """What the run's backbone was pre-trained on, from its MAE pre-training run's file (the meta our
    MAE export writes): the set, its image count, the schedule and the final reconstruction loss."""
    up = cfg.upstream.get("pretrain")
    if not up or not cfg.pretrained:
        return None
    from vitpose.models.checkpoint import read_torch_file
    from vitpose.config import resolve_path

    meta = read_torch_file(resolve_path(cfg.pretrained), "pretrained checkpoint", mmap=True).get("meta") or {}
    keys = ("set", "images", "epochs", "iterations", "final_loss", "train_time_s", "config_hash")
    return {"run": up, **{k: meta.get(k) for k in keys}}
