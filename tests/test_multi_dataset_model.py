"""The multi-dataset model: one backbone, one decoder per dataset, each decoder trained by its own
samples only; the released names for decoder 0; the loss's per-sample weighting; model_multi.pth."""
from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch

from vitpose.engine.loss import keypoint_mse_loss
from vitpose.engine.multi_dataset import MultiDatasetObjective
from vitpose.engine.objective import Models
from vitpose.engine.optim import param_groups
from vitpose.models import ModelConfig, build_model
from vitpose.models.checkpoint import load_vitpose_checkpoint, save_vitpose_checkpoint
from vitpose.models.multi import (
    MultiDatasetPoseModel,
    build_multi_model,
    load_multi_checkpoint,
    read_multi_meta,
    save_multi_checkpoint,
)
from vitpose.utils.errors import CheckpointError, ConfigError

TINY = {"arch": "vit", "embed_dim": 32, "depth": 2, "num_heads": 2, "input_size": [64, 48],
        "decoder_channels": 16, "drop_path_rate": 0.1}
K = [17, 14]  # COCO, AIC


def _model(decoder: str = "classic", seed: int = 0) -> MultiDatasetPoseModel:
    torch.manual_seed(seed)
    return build_multi_model(ModelConfig.from_dict({**TINY, "decoder": decoder}), K, ["coco", "aic"])


def _batch(index: list[int], seed: int = 1) -> dict:
    """A collated multi-dataset batch: padded targets, weight 0 on each row's padded channels."""
    g = torch.Generator().manual_seed(seed)
    b = len(index)
    weight = (torch.rand(b, max(K), generator=g) > 0.2).float()
    for m, d in enumerate(index):
        weight[m, K[d]:] = 0.0
    target = torch.rand(b, max(K), 16, 12, generator=g) * weight[..., None, None]
    return {"img": torch.randn(b, 3, 64, 48, generator=g), "target": target, "target_weight": weight,
            "dataset_index": torch.tensor(index)}


def _models(model) -> Models:
    return Models(net=model, model=model, frozen={}, device=torch.device("cpu"), autocast=nullcontext)


def _grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Each parameter's gradient, None as zeros (a decoder that was not called has None)."""
    return {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
            for n, p in module.named_parameters()}


def _loss_grads(model, batch) -> tuple[torch.Tensor, dict, dict]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(3)  # the same drop-path draws for every call
    loss, scalars = MultiDatasetObjective().loss(batch, _models(model))
    loss.backward()
    return loss, scalars, _grads(model)


@pytest.mark.parametrize("decoder", ["classic", "simple"])
def test_a_sample_of_one_dataset_gives_no_gradient_to_another_decoder(decoder):
    model = _model(decoder).train()
    # Only COCO samples: the AIC decoder gets exactly zero gradient, COCO's decoder and the backbone not.
    _, _, g = _loss_grads(model, _batch([0, 0, 0]))
    aic = {n: v for n, v in g.items() if n.startswith("associate_keypoint_heads.0.")}
    assert aic and all(torch.count_nonzero(v) == 0 for v in aic.values())
    assert any(torch.count_nonzero(v) for n, v in g.items() if n.startswith("keypoint_head."))
    assert any(torch.count_nonzero(v) for n, v in g.items() if n.startswith("backbone."))
    # Only AIC samples: the other way round.
    _, _, g = _loss_grads(model, _batch([1, 1]))
    assert all(torch.count_nonzero(v) == 0 for n, v in g.items() if n.startswith("keypoint_head."))
    assert any(torch.count_nonzero(v) for n, v in g.items() if n.startswith("associate_keypoint_heads.0."))

    # A mixed batch: changing the COCO sample (image and target) leaves the AIC decoder's gradient
    # bit-identical, and does change the COCO decoder's.
    batch = _batch([0, 1, 1])
    _, _, g1 = _loss_grads(model, batch)
    other = _batch([0, 1, 1], seed=9)
    for key in ("img", "target", "target_weight"):
        batch[key] = batch[key].clone()
        batch[key][0] = other[key][0]
    _, _, g2 = _loss_grads(model, batch)
    for name in g1:
        if name.startswith("associate_keypoint_heads.0."):
            assert torch.equal(g1[name], g2[name]), name
    assert any(not torch.equal(g1[n], g2[n]) for n in g1 if n.startswith("keypoint_head."))


def test_rows_go_through_their_own_decoder_and_padding_is_zero():
    model = _model().eval()  # eval: BatchNorm's running stats, no drop path -> row-independent
    x = torch.randn(5, 3, 64, 48)
    index = torch.tensor([1, 0, 1, 1, 0])
    with torch.no_grad():
        out = model(x, index)
        assert out.shape == (5, max(K), 16, 12)
        coco, aic = model.single(0)(x), model.single(1)(x)
        assert coco.shape == (5, 17, 16, 12) and aic.shape == (5, 14, 16, 12)
        for m, d in enumerate(index.tolist()):
            ref = (coco if d == 0 else aic)[m]
            torch.testing.assert_close(out[m, :K[d]], ref, rtol=1e-5, atol=1e-6)
            assert torch.count_nonzero(out[m, K[d]:]) == 0
        torch.testing.assert_close(model(x), coco)            # no index: decoder 0
        torch.testing.assert_close(model(x, 1), aic)
    with pytest.raises(ValueError, match=r"dataset_index \[2\]"):
        model(x, torch.tensor([0, 1, 2, 0, 0]))


def test_single_model_shares_the_weights_and_has_the_released_names():
    model = _model()
    coco = model.single(0)
    assert coco.backbone is model.backbone and coco.keypoint_head is model.keypoint_head
    aic = model.single(1)
    assert aic.keypoint_head is model.associate_keypoint_heads[0] and aic.cfg.num_keypoints == 14
    plain = build_model(ModelConfig.from_dict(TINY))
    assert list(coco.state_dict()) == list(plain.state_dict())
    prefixes = {n.split(".")[0] for n in model.state_dict()}
    assert prefixes == {"backbone", "keypoint_head", "associate_keypoint_heads"}
    assert model.state_dict()["associate_keypoint_heads.0.final_layer.weight"].shape[0] == 14


def test_backbone_and_decoder_0_start_as_the_single_dataset_model():
    torch.manual_seed(5)
    plain = build_model(ModelConfig.from_dict(TINY))
    torch.manual_seed(5)
    multi = build_multi_model(ModelConfig.from_dict(TINY), K)
    for key, value in plain.state_dict().items():
        assert torch.equal(value, multi.state_dict()[key]), key
    with pytest.raises(ConfigError, match="model.num_keypoints: 17.*14 keypoints"):
        build_multi_model(ModelConfig.from_dict(TINY), [14, 17])


def test_layer_decay_sees_the_backbone_and_gives_every_decoder_the_head_lr():
    multi, plain = _model(), build_model(ModelConfig.from_dict(TINY))
    scale_of = {}
    for group in param_groups(multi, lr=1e-3, weight_decay=0.1, layer_decay=0.5):
        for name in group["param_names"]:
            scale_of[name] = (group["layer_id"], group["lr_scale"])
    plain_scale = {n: (g["layer_id"], g["lr_scale"])
                   for g in param_groups(plain, lr=1e-3, weight_decay=0.1, layer_decay=0.5)
                   for n in g["param_names"]}
    for name, value in plain_scale.items():
        assert scale_of[name] == value, name
    extra = [n for n in scale_of if n.startswith("associate_keypoint_heads.")]
    head_id = TINY["depth"] + 1
    assert extra and all(scale_of[n] == (head_id, 1.0) for n in extra)
    assert scale_of["backbone.blocks.0.attn.qkv.weight"][1] == 0.25  # decayed: blocks were recognised


def test_loss_is_the_per_sample_mean_of_each_decoders_own_mse():
    model = _model().eval()
    index = [0, 1, 1, 0, 1]
    batch = _batch(index)
    with torch.no_grad():
        loss, scalars = MultiDatasetObjective().loss(batch, _models(model))
        heat = model(batch["img"], batch["dataset_index"])
    expected = 0.0
    for d, name in enumerate(["coco", "aic"]):
        rows = [m for m, i in enumerate(index) if i == d]
        mse = keypoint_mse_loss(heat[rows, :K[d]], batch["target"][rows, :K[d]],
                                batch["target_weight"][rows, :K[d]])
        share = mse * len(rows) / len(index)
        torch.testing.assert_close(scalars[f"loss_{name}"], share)
        assert scalars[f"n_{name}"].item() == len(rows)
        expected = expected + share
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(scalars["loss_coco"] + scalars["loss_aic"], loss)
    # With one dataset's rows only it is exactly the single-dataset loss.
    coco = _batch([0, 0, 0])
    with torch.no_grad():
        loss, scalars = MultiDatasetObjective().loss(coco, _models(model))
        ref = keypoint_mse_loss(model.single(0)(coco["img"]), coco["target"][:, :17],
                                coco["target_weight"][:, :17])
    torch.testing.assert_close(loss, ref)
    assert scalars["n_aic"].item() == 0 and scalars["loss_aic"].item() == 0


def test_model_multi_round_trip_and_refusals(tmp_path):
    model, other = _model(seed=0), _model(seed=1)
    path = tmp_path / "model_multi.pth"
    save_multi_checkpoint(model, path, meta={"run": "r"}, keypoints=["coco", "aic"])
    obj = torch.load(path, map_location="cpu", weights_only=True)
    assert set(obj) == {"state_dict", "meta"}
    meta = obj["meta"]
    assert (meta["format"], meta["datasets"], meta["num_keypoints"], meta["keypoints"], meta["run"]) == \
        ("vitpose-multi/1", ["coco", "aic"], [17, 14], ["coco", "aic"], "r")
    assert meta["model_config"]["num_keypoints"] == 17 and read_multi_meta(path) == meta
    load_multi_checkpoint(other, path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, other.state_dict()[key]), key
    # Decoder 0 of the file loads into a plain single-dataset model (extra heads ignored, not strict).
    plain = build_model(ModelConfig.from_dict(TINY))
    report = load_vitpose_checkpoint(plain, path, strict=False)
    assert not report.missing and all(k.startswith("associate_keypoint_heads.") for k in report.unexpected)

    three = build_multi_model(ModelConfig.from_dict(TINY), [17, 14, 16], ["coco", "aic", "mpii"])
    with pytest.raises(CheckpointError, match=r"model_multi\.pth: decoders for datasets \['coco', 'aic'\]"):
        load_multi_checkpoint(three, path)
    single = tmp_path / "model.pth"
    save_vitpose_checkpoint(plain, single)
    with pytest.raises(CheckpointError, match=r"model\.pth: not a multi-dataset checkpoint"):
        load_multi_checkpoint(other, single)
