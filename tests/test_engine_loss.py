"""The masked heatmap MSE and the precision rule of the trainer."""
from __future__ import annotations

import pytest
import torch

from vitpose.engine.loss import keypoint_mse_loss
from vitpose.engine.trainer import resolve_precision


def test_masked_mse_matches_definition_and_ignores_masked_joints():
    torch.manual_seed(0)
    pred = torch.rand(2, 3, 4, 5, requires_grad=True)
    target = torch.rand(2, 3, 4, 5)
    weight = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    loss = keypoint_mse_loss(pred, target, weight)
    manual = sum(((pred[b, k] - target[b, k]) ** 2).sum() * weight[b, k] for b in range(2) for k in range(3))
    # mean over batch, joints and pixels, masked joints included in the denominator (released loss)
    assert loss.item() == pytest.approx(manual.item() / (2 * 3 * 4 * 5))
    loss.backward()
    assert torch.all(pred.grad[0, 1] == 0) and torch.all(pred.grad[1, 0] == 0)
    assert pred.grad[0, 0].abs().sum() > 0
    # (B, K, 1) weights as some loaders give them
    assert keypoint_mse_loss(pred, target, weight[..., None]).item() == pytest.approx(loss.item())
    with pytest.raises(ValueError, match="differ"):
        keypoint_mse_loss(pred, target[:, :2], weight)


def test_precision_auto_is_bf16_on_gpu_fp32_on_cpu():
    assert resolve_precision("auto", torch.device("cpu")) is None
    assert resolve_precision("auto", torch.device("cuda", 0)) is torch.bfloat16
    assert resolve_precision("fp32", torch.device("cuda", 0)) is None
    assert resolve_precision("bf16", torch.device("cpu")) is torch.bfloat16
    assert resolve_precision("fp16", torch.device("cuda", 0)) is torch.float16
    assert resolve_precision("fp16", torch.device("cpu")) is None  # CPU fp16 autocast: slow, no gain
