"""MAE pre-training model (vitpose/models/mae.py): masking, loss, patches, sin-cos, training, file format."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from timm.models.vision_transformer import Block as TimmBlock
from torch import nn

from vitpose.engine.optim import param_groups
from vitpose.models import ModelConfig, build_model
from vitpose.models.checkpoint import load_mae_checkpoint, load_pretrained
from vitpose.models.mae import (
    MaskedAutoencoder,
    load_mae_into_autoencoder,
    mae_checkpoint_state,
    mae_loss,
    patchify,
    random_masking,
    save_mae_checkpoint,
    sincos_pos_embed_2d,
    unpatchify,
)
from vitpose.models.presets import VIT_PRESETS
from vitpose.models.vit import ViTPoseBackbone
from vitpose.utils.errors import CheckpointError

TINY_VIT = dict(embed_dim=32, depth=2, num_heads=2)
TINY_DECODER = dict(decoder_dim=32, decoder_depth=2, decoder_heads=2)


def tiny_mae(seed: int = 0, img_size=(64, 48), **kwargs) -> MaskedAutoencoder:
    torch.manual_seed(seed)
    backbone = ViTPoseBackbone(img_size=img_size, **TINY_VIT)
    return MaskedAutoencoder(backbone, **{**TINY_DECODER, **kwargs})


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------- masking
def test_masking_keeps_a_quarter_per_sample_and_restores_the_order():
    b, n, c = 4, 196, 8
    x = torch.randn(b, n, c)
    kept, mask, ids_restore = random_masking(x, 0.75, generator=gen(0))
    k = n // 4
    assert kept.shape == (b, k, c) and mask.shape == (b, n) and ids_restore.shape == (b, n)
    assert mask.dtype == torch.float32 and ids_restore.dtype == torch.long
    assert torch.equal(mask.sum(1), torch.full((b,), float(n - k)))
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert len({tuple(row.tolist()) for row in mask}) == b  # every sample its own mask

    # The same noise (same generator seed) gives the shuffle; check it against the outputs.
    ids_shuffle = torch.argsort(torch.rand(b, n, generator=gen(0)), dim=1)
    assert torch.equal(ids_restore, torch.argsort(ids_shuffle, dim=1))
    assert torch.equal(torch.gather(ids_restore, 1, ids_shuffle), torch.arange(n).expand(b, n))
    for i in range(b):
        keep = ids_shuffle[i, :k]
        assert torch.equal(kept[i], x[i, keep])  # kept tokens are x at the kept indices
        assert torch.equal(mask[i, keep], torch.zeros(k))  # and exactly those are marked kept
    # [kept; anything] gathered with ids_restore: the kept tokens return to their places, and the
    # whole shuffled sequence comes back to x exactly.
    shuffled = torch.gather(x, 1, ids_shuffle[..., None].expand(-1, -1, c))
    assert torch.equal(torch.gather(shuffled, 1, ids_restore[..., None].expand(-1, -1, c)), x)
    filled = torch.cat([kept, torch.zeros(b, n - k, c)], dim=1)
    restored = torch.gather(filled, 1, ids_restore[..., None].expand(-1, -1, c))
    assert torch.equal(restored * (1 - mask[..., None]), x * (1 - mask[..., None]))
    assert torch.equal(restored[mask.bool()], torch.zeros(b * (n - k), c))


def test_masking_generator_and_edge_ratios():
    x = torch.randn(2, 12, 4)
    a = random_masking(x, 0.75, generator=gen(3))
    b = random_masking(x, 0.75, generator=gen(3))
    c = random_masking(x, 0.75, generator=gen(4))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[1], c[1])
    assert random_masking(x, 0.99, generator=gen(0))[0].shape == (2, 1, 4)  # at least one token
    assert random_masking(x, 0.0, generator=gen(0))[1].sum() == 0
    with pytest.raises(ValueError, match="mask_ratio"):
        random_masking(x, 1.0)


# ---------------------------------------------------------------------------------------- loss
def hand_loss(pred: np.ndarray, target: np.ndarray, mask: np.ndarray, norm_pix: bool) -> float:
    total, count = 0.0, 0.0
    b, n, p = pred.shape
    for i in range(b):
        for j in range(n):
            t = target[i, j].astype(np.float64)
            if norm_pix:
                mean = sum(t) / p
                var = sum((v - mean) ** 2 for v in t) / (p - 1)  # unbiased, as the MAE release
                t = [(v - mean) / math.sqrt(var + 1e-6) for v in t]
            err = sum((float(pred[i, j, q]) - t[q]) ** 2 for q in range(p)) / p
            total += err * mask[i, j]
            count += mask[i, j]
    return total / count


@pytest.mark.parametrize("norm_pix", [False, True])
def test_loss_equals_hand_computation(norm_pix):
    g = gen(0)
    pred, target = torch.randn(2, 5, 6, generator=g), torch.randn(2, 5, 6, generator=g) * 3 + 1
    mask = torch.tensor([[1, 0, 1, 1, 0], [0, 0, 1, 0, 1]], dtype=torch.float32)
    got = mae_loss(pred, target, mask, norm_pix=norm_pix)
    assert got.ndim == 0
    assert got.item() == pytest.approx(hand_loss(pred.numpy(), target.numpy(), mask.numpy(), norm_pix), rel=1e-5)


def test_norm_pix_uses_the_unbiased_variance():
    # One patch, target [0, 2]: mean 1, unbiased var 2 -> normalised [-1/sqrt2, 1/sqrt2]; pred 0.
    loss = mae_loss(torch.zeros(1, 1, 2), torch.tensor([[[0.0, 2.0]]]), torch.ones(1, 1))
    assert loss.item() == pytest.approx(1 / (2 + 1e-6), rel=1e-6)  # the biased var would give ~1


def test_loss_counts_masked_patches_only():
    g = gen(1)
    pred, target = torch.randn(2, 8, 12, generator=g), torch.randn(2, 8, 12, generator=g)
    mask = (torch.rand(2, 8, generator=g) > 0.5).float()
    mask[0, 0], mask[1, 1] = 0, 1
    base = mae_loss(pred, target, mask)
    changed = pred.clone()
    changed[mask == 0] += 5.0
    assert torch.equal(mae_loss(changed, target, mask), base)
    changed = pred.clone()
    changed[1, 1] += 0.5  # a masked patch
    assert not torch.allclose(mae_loss(changed, target, mask), base)


def test_loss_is_float32_under_low_precision_inputs():
    pred, target = torch.randn(1, 300, 4).bfloat16(), torch.randn(1, 300, 4).bfloat16()
    mask = torch.ones(1, 300, dtype=torch.bfloat16)  # 300 is not a bf16 integer
    loss = mae_loss(pred, target, mask, norm_pix=False)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(((pred.float() - target.float()) ** 2).mean().item(), rel=1e-6)


# ---------------------------------------------------------------------------------------- patches
def test_patchify_layout_and_round_trip():
    imgs = torch.randn(2, 3, 64, 48)
    x = patchify(imgs)
    assert x.shape == (2, 12, 768)
    assert torch.equal(unpatchify(x, (4, 3)), imgs)
    for r, c, ch in [(0, 0, 0), (17, 5, 1), (63, 47, 2), (31, 32, 0), (40, 20, 2)]:
        patch = (r // 16) * 3 + c // 16
        offset = ((r % 16) * 16 + c % 16) * 3 + ch
        assert x[1, patch, offset] == imgs[1, ch, r, c]
    small = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    assert torch.equal(unpatchify(patchify(small, 2), (2, 2), 2), small)


def test_patchify_refuses_sizes_that_are_not_multiples_of_the_patch():
    with pytest.raises(ValueError, match="250x192"):
        patchify(torch.zeros(1, 3, 250, 192))
    with pytest.raises(ValueError, match="patches"):
        unpatchify(torch.zeros(1, 12, 768), (4, 4))


# ---------------------------------------------------------------------------------------- sin-cos
def test_sincos_values_and_shape():
    dim, grid = 16, (3, 5)
    emb = sincos_pos_embed_2d(dim, grid)
    assert emb.shape == (1, 15, 16) and emb.dtype == torch.float32
    omega = 1.0 / 10000 ** (np.arange(4) / 4)
    for y in range(3):
        for x in range(5):
            expected = np.concatenate([np.sin(x * omega), np.cos(x * omega), np.sin(y * omega), np.cos(y * omega)])
            np.testing.assert_allclose(emb[0, y * 5 + x].numpy(), expected, atol=1e-6)
    flat = emb[0]
    assert torch.cdist(flat, flat).add(torch.eye(15) * 10).min() > 0.1  # all positions differ
    with pytest.raises(ValueError, match="multiple of 4"):
        sincos_pos_embed_2d(30, (2, 2))


def test_position_embeddings_are_fixed_sincos_in_the_model():
    model = tiny_mae(0)
    pos, dec = model.backbone.pos_embed, model.decoder_pos_embed
    assert not pos.requires_grad and not dec.requires_grad
    assert torch.equal(pos[:, :1], torch.zeros(1, 1, 32))
    assert torch.equal(pos[:, 1:], sincos_pos_embed_2d(32, (4, 3)))
    assert torch.equal(dec, sincos_pos_embed_2d(32, (4, 3)))
    assert not torch.equal(pos[0, 1], pos[0, 2])
    grouped = {id(p) for g in param_groups(model, 1e-3, 0.05) for p in g["params"]}
    assert id(pos) not in grouped and id(dec) not in grouped and id(model.mask_token) in grouped
    state = mae_checkpoint_state(model)
    assert torch.equal(state["pos_embed"][:, 0], torch.zeros(1, 32))
    assert torch.equal(state["decoder_pos_embed"][:, 0], torch.zeros(1, 32))


# ---------------------------------------------------------------------------------------- model
def test_forward_shapes_and_init():
    model = tiny_mae(0)
    loss, pred, mask = model(torch.randn(2, 3, 64, 48), generator=gen(0))
    assert loss.ndim == 0 and pred.shape == (2, 12, 768) and mask.shape == (2, 12)
    assert torch.equal(mask.sum(1), torch.tensor([9.0, 9.0]))  # K = int(12 * 0.25) = 3 kept
    assert (model.mask_ratio, model.norm_pix_loss, model.grid_size, model.patch_size) == (0.75, True, (4, 3), 16)
    assert isinstance(model.decoder_blocks[0], TimmBlock)
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            bound = math.sqrt(6 / (m.in_features + m.out_features))  # xavier uniform
            assert m.weight.abs().max() <= bound and m.weight.abs().max() > 0.8 * bound, name
            assert torch.equal(m.bias, torch.zeros_like(m.bias)), name
        elif isinstance(m, nn.LayerNorm):
            assert torch.equal(m.weight, torch.ones_like(m.weight)) and torch.equal(m.bias, torch.zeros_like(m.bias))
    w = model.backbone.patch_embed.proj.weight
    bound = math.sqrt(6 / (3 * 16 * 16 + 32))
    assert w.abs().max() <= bound and w.abs().max() > 0.8 * bound
    assert 0 < model.mask_token.abs().max() < 0.1
    assert set(dict(model.named_parameters())) >= {"backbone.blocks.1.attn.qkv.weight", "mask_token",
                                                   "decoder_blocks.1.mlp.fc2.weight", "decoder_pred.bias"}


def test_encoder_sees_kept_patches_only():
    # Pixels of masked patches must not reach the encoder (padding-0 patch embedding): changing them
    # leaves the latent of the kept tokens unchanged.
    model = tiny_mae(0).eval()
    imgs = torch.randn(1, 3, 64, 48)
    latent, mask, _ = model.forward_encoder(imgs, generator=gen(5))
    masked_pixels = unpatchify(mask[..., None].expand(-1, -1, 768), (4, 3)).bool()
    other = imgs + 10.0 * masked_pixels
    latent2, mask2, _ = model.forward_encoder(other, generator=gen(5))
    assert torch.equal(mask, mask2)
    torch.testing.assert_close(latent2, latent, atol=1e-5, rtol=1e-5)
    latent3, _, _ = model.forward_encoder(imgs + 10.0 * ~masked_pixels, generator=gen(5))
    assert not torch.allclose(latent3, latent)


def test_model_trains_on_a_fixed_batch():
    model = tiny_mae(0)
    imgs = torch.randn(4, 3, 64, 48, generator=gen(1))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    pos_before = model.backbone.pos_embed.clone()
    losses = []
    for _ in range(30):
        loss, _, _ = model(imgs, generator=gen(7))  # the same masks every step
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # Predicting zeros scores ~1 against unit-variance (norm-pix) targets; fitting must beat that.
    assert losses[-1] < 0.85 * losses[0] and losses[-1] < 0.9, losses
    assert torch.equal(model.backbone.pos_embed, pos_before)  # frozen


def test_same_seed_same_model_and_loss():
    a, b, c = tiny_mae(3), tiny_mae(3), tiny_mae(4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["decoder_pred.weight"], sc["decoder_pred.weight"])
    imgs = torch.randn(2, 3, 64, 48, generator=gen(0))
    la, lb, lc = a(imgs, generator=gen(1))[0], b(imgs, generator=gen(1))[0], c(imgs, generator=gen(1))[0]
    assert torch.equal(la, lb) and not torch.equal(la, lc)


@pytest.mark.parametrize("kwargs, img_size, message", [
    (dict(attention="window", window_size=(2, 2)), (64, 48), "full attention.*window"),
    # ViTDet at depth 8: full attention in blocks 1, 3, 5, 7 only
    (dict(attention="vitdet", window_size=(2, 2), depth=8), (64, 48), r"block\(s\) \[0, 2, 4, 6\]"),
    (dict(ratio=2), (64, 48), "ratio 2"),
    ({}, (250, 192), "250x192 is not a multiple of the patch size 16"),
])
def test_refuses_backbones_mae_cannot_pretrain(kwargs, img_size, message):
    backbone = ViTPoseBackbone(img_size=img_size, **{**TINY_VIT, **kwargs})
    with pytest.raises(ValueError, match=message):
        MaskedAutoencoder(backbone, **TINY_DECODER)


def test_refuses_images_of_another_size():
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 48\)"):
        tiny_mae(0)(torch.zeros(1, 3, 64, 64))


# ---------------------------------------------------------------------------------------- files
def test_save_load_round_trip_and_file_layout(tmp_path):
    source = tiny_mae(0, img_size=(64, 64))
    with torch.no_grad():  # move away from the init so that the round trip carries real values
        for p in source.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.01)
    path = tmp_path / "mae.pth"
    save_mae_checkpoint(source, path, meta={"epoch": 3})
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert set(raw) == {"model", "meta"} and raw["meta"] == {"epoch": 3}
    sd = raw["model"]
    assert not any(k.startswith("backbone.") or k.startswith("last_norm") for k in sd)
    for key in ("cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "norm.weight",
                "norm.bias", "mask_token", "decoder_embed.weight", "decoder_pos_embed", "decoder_norm.bias",
                "decoder_pred.weight", "blocks.1.attn.qkv.weight", "blocks.0.mlp.fc2.bias",
                "decoder_blocks.1.attn.proj.weight", "decoder_blocks.0.norm2.weight"):
        assert key in sd, key
    assert torch.equal(sd["cls_token"], torch.zeros(1, 1, 32))
    assert sd["pos_embed"].shape == (1, 17, 32) and sd["decoder_pos_embed"].shape == (1, 17, 32)
    assert torch.equal(sd["norm.weight"], source.backbone.last_norm.weight.detach())
    assert len(sd) == len(source.state_dict()) + 1  # + cls_token

    target = tiny_mae(1, img_size=(64, 64))
    load_mae_into_autoencoder(target, path)
    imgs = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out_s, out_t = source(imgs, generator=gen(2)), target(imgs, generator=gen(2))
    assert all(torch.equal(a, b) for a, b in zip(out_s, out_t))
    assert not target.backbone.pos_embed.requires_grad

    # The same file initialises a pose backbone at another input (4x4 grid resized to 4x3).
    backbone = ViTPoseBackbone(img_size=(64, 48), **TINY_VIT)
    report = load_mae_checkpoint(backbone, path)
    assert report.missing == ["last_norm.weight", "last_norm.bias"]
    assert torch.equal(backbone.blocks[1].mlp.fc1.weight, source.backbone.blocks[1].mlp.fc1.weight)
    assert torch.equal(backbone.patch_embed.proj.weight, source.backbone.patch_embed.proj.weight)


@pytest.mark.parametrize("damage, message", [
    ("drop", "missing keys \\['decoder_pred.bias'\\]"),
    ("extra", "unexpected keys \\['decoder_extra'\\]"),
    ("shape", "decoder_pos_embed has shape \\[1, 16, 32\\] in the file but \\[1, 17, 32\\]"),
    ("no_model", "'model' entry"),
])
def test_damaged_files_are_refused_with_path_and_key(tmp_path, damage, message):
    source = tiny_mae(0, img_size=(64, 64))
    sd = mae_checkpoint_state(source)
    obj = {"model": sd}
    if damage == "drop":
        sd.pop("decoder_pred.bias")
    elif damage == "extra":
        sd["decoder_extra"] = torch.zeros(1)
    elif damage == "shape":
        sd["decoder_pos_embed"] = sd["decoder_pos_embed"][:, 1:]
    else:
        obj = {"state_dict": sd}
    path = tmp_path / "bad.pth"
    torch.save(obj, path)
    target = tiny_mae(1, img_size=(64, 64))
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointError, match=f"^{path}: .*{message}"):
        load_mae_into_autoencoder(target, path)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())  # untouched


# ---------------------------------------------------------------------------------------- every size
def cheap_materialise(model: nn.Module) -> nn.Module:
    """A meta-built model made real at almost no cost: every parameter becomes ONE number (distinct
    per parameter) broadcast to its shape, so a checkpoint of ViT-H takes kilobytes, not 2.6 GB."""
    for i, (name, p) in enumerate(list(model.named_parameters())):
        owner_name, _, attr = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        value = torch.full((), float(i + 1)).expand(p.shape)
        setattr(owner, attr, nn.Parameter(value, requires_grad=p.requires_grad))
    return model


def write_preset_file(arch: str, path) -> None:
    with torch.device("meta"):
        mae = MaskedAutoencoder(ViTPoseBackbone(img_size=(224, 224), **VIT_PRESETS[arch]))
    save_mae_checkpoint(cheap_materialise(mae), path)


@pytest.mark.parametrize("arch", sorted(VIT_PRESETS))
def test_checkpoint_loads_into_every_vitpose_size(tmp_path, arch):
    path = tmp_path / f"mae-{arch}.pth"
    write_preset_file(arch, path)
    sd = torch.load(path, map_location="cpu", weights_only=True)["model"]
    c = VIT_PRESETS[arch]["embed_dim"]
    assert sd["pos_embed"].shape == (1, 197, c) and sd["decoder_pos_embed"].shape == (1, 197, 512)

    with torch.device("meta"):
        backbone = ViTPoseBackbone(img_size=(256, 192), **VIT_PRESETS[arch])
    backbone = backbone.to_empty(device="cpu")  # uninitialised: every checked value comes from the file
    report = load_mae_checkpoint(backbone, path)
    assert report.missing == ["last_norm.weight", "last_norm.bias"]
    assert sorted(report.ignored) == ["cls_token", "norm.bias", "norm.weight"]
    assert any("14x14 -> 16x12" in note for note in report.converted)
    assert set(report.unexpected) == {k for k in sd if k.startswith("decoder") or k == "mask_token"}
    assert backbone.pos_embed.shape == (1, 193, c)
    for key, tensor in backbone.state_dict().items():
        if key.startswith(("blocks.", "patch_embed.")):
            assert torch.equal(tensor, sd[key]), key


def test_finetuning_model_loads_the_file_via_load_pretrained(tmp_path):
    path = tmp_path / "mae-b.pth"
    write_preset_file("vitpose-b", path)
    sd = torch.load(path, map_location="cpu", weights_only=True)["model"]
    with torch.device("meta"):
        model = build_model(ModelConfig(arch="vitpose-b", input_size=(256, 192)))
    model = model.to_empty(device="cpu")
    report = load_pretrained(model, path)
    assert "backbone.last_norm.weight" in report.missing
    assert any(k.startswith("keypoint_head.") for k in report.missing)
    assert not any(k.startswith(("backbone.blocks", "backbone.patch_embed")) for k in report.missing)
    assert torch.equal(model.backbone.blocks[11].attn.qkv.weight, sd["blocks.11.attn.qkv.weight"])
    assert torch.equal(model.backbone.patch_embed.proj.bias, sd["patch_embed.proj.bias"])
