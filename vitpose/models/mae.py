"""Masked autoencoder (MAE, He et al. 2022) for pre-training the ViTPose backbone (paper Table 3).

    backbone = ViTPoseBackbone(img_size=(224, 224), **VIT_PRESETS["vitpose-b"])
    mae = MaskedAutoencoder(backbone)               # decoder 512 wide, 8 blocks, 16 heads, 75 % masked
    loss, pred, mask = mae(images)                  # images (B, 3, 224, 224), normalised as for training
    save_mae_checkpoint(mae, "mae.pth")             # the MAE release's file layout ...
    load_mae_checkpoint(pose_model, "mae.pth")      # ... which vitpose.models.checkpoint reads

Design
------
The encoder IS the ViTPoseBackbone that finetuning uses (`self.backbone`, parameter names
`backbone.*`), so nothing has to be converted between pre-training and finetuning except the file's
key names, and the project's layer-wise lr decay (keyed on `backbone.blocks.N`) applies unchanged.

    imgs (B, 3, H, W)
      -> patch embedding (backbone.patch_embed.proj, see "patch embedding" below)   (B, N, C)
      -> + fixed 2-D sin-cos position embedding (backbone.pos_embed[:, 1:])           (B, N, C)
      -> random_masking: keep K = int(N * (1 - mask_ratio)) tokens per sample         (B, K, C)
      -> backbone.blocks (full attention) -> backbone.last_norm                      (B, K, C)
      -> decoder_embed                                                               (B, K, D)
      -> append N - K mask tokens, unshuffle with ids_restore                        (B, N, D)
      -> + fixed sin-cos decoder_pos_embed -> decoder_blocks -> decoder_norm          (B, N, D)
      -> decoder_pred: pixels of every patch                                         (B, N, 16*16*3)
    loss: per-patch MSE against the (per-patch normalised) pixels, masked patches only.

Choices the MAE paper leaves to us (and why)
-------------------------------------------
- **No class token.** The MAE paper reports that the class token is not needed for reconstruction
  (its encoder works as well with average pooling), and the ViTPose backbone has no class token to
  transfer it to. The encoder therefore sees patch tokens only. The backbone's (1, N+1, C) position
  embedding keeps its class slot (the released layout) set to zero; ViTPoseBackbone's forward adds
  that slot to every token, so a zero slot adds nothing there either. The decoder has no class
  token either. The saved file still carries a `cls_token` key (zeros, never trained) so that tools
  expecting MAE's key set find it; our loader drops it, as it drops the official one.
- **Patch embedding without padding during pre-training.** ViTPose's patch conv has padding 2
  (kernel 16, stride 16), so token (i, j) sees pixels [16i-2, 16i+14) x [16j-2, 16j+14): 2 rows and
  columns of the patches above and to the left. Under masking, that would hand the encoder a 2-pixel
  border of masked patches (a leak the MAE objective does not have) and misalign each token with the
  patch it is scored on. We apply the SAME conv weights with padding 0 (`F.conv2d(..., stride 16)`),
  i.e. non-overlapping aligned 16x16 patches exactly as in MAE; the weights are unchanged, so the
  file loads as is, and finetuning then runs them with padding 2 — exactly what ViTPose did with the
  official MAE weights, which were also trained without padding. For H, W multiples of 16 both
  paddings give the same (H/16, W/16) grid.
- **Position embeddings.** Fixed 2-D sin-cos (MAE), for any H x W grid (MAE handles square grids
  only). Channel layout as in the MAE release: [sin(x w), cos(x w), sin(y w), cos(y w)], each quarter
  dim/4 wide, x = column, y = row, w_k = 10000^(-k / (dim/4)); tokens row-major. The encoder's is
  written into `backbone.pos_embed` (class slot 0 = zeros) and frozen; the decoder's is a frozen
  (1, N, D) Parameter (a Parameter, like MAE's, rather than a buffer: DDP does not re-broadcast it
  every step, and `param_groups` skips it because it does not require grad).
- **Masking.** Per-sample uniform noise (`torch.rand`, optionally from a given generator, so tests
  and resumed runs can fix the masks), argsort ascending, keep the first K = max(1, int(N (1 - r)))
  (int() as in the release; at least one token so the encoder never sees an empty sequence).
- **Loss.** MSE per patch, averaged over masked patches only. With `norm_pix_loss` each target patch
  is normalised by its own mean and variance, (t - mean) / sqrt(var + 1e-6), where var is torch's
  default `.var()`, the UNBIASED estimator (divides by P - 1), as in the MAE release. The loss is
  computed in (at least) float32: under bf16 autocast the sums over B * N patches would lose
  precision, and a bf16 mask could not even count more than 256 masked patches exactly.
- **Initialisation** (as in the MAE release, applied in `__init__` so a fixed seed gives a fixed
  model): xavier-uniform for every Linear weight (encoder and decoder) and for the patch conv weight
  viewed as a (C, 3*16*16) matrix, zero Linear biases, LayerNorm (1, 0), mask_token normal(0, 0.02).
  The patch conv bias keeps PyTorch's default init (the release only re-initialises its weight).
- **Decoder blocks** are timm's `vision_transformer.Block(D, heads, mlp_ratio=4, qkv_bias=True,
  norm_layer=LayerNorm(eps=1e-6))`, the block MAE's decoder is built from, so decoder keys equal the
  release's (`decoder_blocks.i.norm1 / attn.qkv / attn.proj / norm2 / mlp.fc1 / mlp.fc2`). Only
  arguments timm >= 0.9 knows are passed.
- **What the encoder refuses**: windowed attention (masking removes tokens, so the kept ones no
  longer form a grid that windows could partition), ratio != 1 (overlapping stride-8 patches do
  not correspond to the non-overlapping pixel patches MAE reconstructs), and an input size that is
  not a multiple of 16. Drop path is whatever the backbone was built with (MAE pre-trains with 0).
- **Input size.** MAE pre-trains at 224x224 (a 14x14 grid); `load_mae_checkpoint` resizes a SQUARE
  n x n grid to the finetuning grid, so pre-train at a square input if the file is to be loaded
  into a pose model. Other inputs work here (tests use 64x48) but give files that loader refuses.

File layout (`mae_checkpoint_state`): `{"model": {...}}` with the release's timm names — encoder keys
without `backbone.`: `cls_token` (zeros), `pos_embed` (1, 1+N, C), `patch_embed.proj.*`, `blocks.*`,
`norm.*` (our `last_norm`); decoder keys `mask_token`, `decoder_embed.*`, `decoder_pos_embed`
(1, 1+N, D) with a zero class slot (the release's layout), `decoder_blocks.*`, `decoder_norm.*`,
`decoder_pred.*`.
"""
from __future__ import annotations

import os
from functools import partial

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block as TimmBlock
from torch import nn

from vitpose.models.checkpoint import read_torch_file
from vitpose.models.vit import LN_EPS, PATCH_SIZE, ViTPoseBackbone
from vitpose.utils.errors import CheckpointError
from vitpose.utils.io import atomic_torch_save

SINCOS_TEMPERATURE = 10000.0
NORM_PIX_EPS = 1e-6
BACKBONE_PREFIX = "backbone."


# ---------------------------------------------------------------------------------------- helpers
def sincos_pos_embed_2d(dim: int, grid: tuple[int, int]) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding: (1, H*W, dim), tokens row-major over grid (H, W).

    Token (y, x) gets [sin(x w), cos(x w), sin(y w), cos(y w)] with w_k = 10000^(-k / (dim/4)),
    k = 0 .. dim/4 - 1 (the MAE release's order: the column half first). Float32, on the default
    device. ValueError unless dim is divisible by 4 (two axes x sin/cos).
    """
    if dim <= 0 or dim % 4:
        raise ValueError(f"sincos_pos_embed_2d: dim must be a positive multiple of 4, got {dim}")
    h, w = int(grid[0]), int(grid[1])
    quarter = dim // 4
    omega = 1.0 / SINCOS_TEMPERATURE ** (torch.arange(quarter, dtype=torch.float64) / quarter)  # (dim/4,)
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                indexing="ij")  # (H, W) each
    # float64 for the angles: at large positions x frequencies float32 would round the phase.
    ang_x = cols.reshape(-1, 1) * omega  # (H*W, dim/4)
    ang_y = rows.reshape(-1, 1) * omega
    emb = torch.cat([ang_x.sin(), ang_x.cos(), ang_y.sin(), ang_y.cos()], dim=1)  # (H*W, dim)
    return emb.float().unsqueeze(0)


def _check_patch_multiple(h: int, w: int, patch: int, what: str) -> None:
    if h % patch or w % patch:
        raise ValueError(f"{what}: image size {h}x{w} is not a multiple of the patch size {patch} "
                         f"(expected H and W divisible by {patch})")


def patchify(imgs: torch.Tensor, patch: int = PATCH_SIZE) -> torch.Tensor:
    """(B, Ch, H, W) -> (B, N, patch*patch*Ch), N = (H/p)(W/p) row-major over the patch grid.

    Inside a patch the values are ordered (row in patch, column in patch, channel), the MAE layout:
    pixel (r, c, ch) lands in patch (r // p) * (W/p) + c // p at ((r % p) * p + c % p) * Ch + ch.
    """
    b, ch, h, w = imgs.shape
    _check_patch_multiple(h, w, patch, "patchify")
    gh, gw = h // patch, w // patch
    x = imgs.reshape(b, ch, gh, patch, gw, patch)
    x = x.permute(0, 2, 4, 3, 5, 1)  # (B, gh, gw, p, p, Ch)
    return x.reshape(b, gh * gw, patch * patch * ch)


def unpatchify(x: torch.Tensor, grid: tuple[int, int], patch: int = PATCH_SIZE) -> torch.Tensor:
    """Inverse of `patchify`: (B, N, patch*patch*Ch) with N = grid[0]*grid[1] -> (B, Ch, H, W)."""
    b, n, d = x.shape
    gh, gw = int(grid[0]), int(grid[1])
    if n != gh * gw or d % (patch * patch):
        raise ValueError(f"unpatchify: got {n} patches of {d} values; expected {gh}x{gw} = {gh * gw} "
                         f"patches of patch*patch*channels = {patch}*{patch}*Ch values")
    ch = d // (patch * patch)
    x = x.reshape(b, gh, gw, patch, patch, ch).permute(0, 5, 1, 3, 2, 4)  # (B, Ch, gh, p, gw, p)
    return x.reshape(b, ch, gh * patch, gw * patch)


def num_kept(num_tokens: int, mask_ratio: float) -> int:
    """K = int(N * (1 - mask_ratio)), at least 1."""
    return max(1, int(num_tokens * (1.0 - mask_ratio)))


def _check_mask_ratio(mask_ratio: float) -> None:
    if isinstance(mask_ratio, bool) or not isinstance(mask_ratio, (int, float)) or not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio: expected a number in [0, 1), got {mask_ratio!r}")


def random_masking(
    x: torch.Tensor, mask_ratio: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep a uniformly random subset of K = max(1, int(N (1 - mask_ratio))) tokens per sample.

    x: (B, N, C) -> x_kept (B, K, C) (in shuffled order), mask (B, N) float32 with 1 = masked,
    0 = kept (original order), ids_restore (B, N) long: gathering [x_kept; N - K mask tokens] with
    ids_restore puts every token back at its original position.
    generator: the source of the noise (its own device; the noise is then moved to x's), else the
    global RNG.
    """
    _check_mask_ratio(mask_ratio)
    b, n, c = x.shape
    k = num_kept(n, mask_ratio)
    noise_device = generator.device if generator is not None else x.device
    noise = torch.rand(b, n, generator=generator, device=noise_device).to(x.device)  # (B, N)
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: the K smallest noises are kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # the inverse permutation
    ids_keep = ids_shuffle[:, :k]
    x_kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, c))
    # float32 whatever x's dtype: a bf16 mask could not count the masked patches exactly.
    mask = torch.ones(b, n, device=x.device, dtype=torch.float32)
    mask[:, :k] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return x_kept, mask, ids_restore


def mae_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, norm_pix: bool = True) -> torch.Tensor:
    """Mean over masked patches of the per-patch MSE: sum(l * mask) / sum(mask), l = mean_P (pred - t)^2.

    pred, target: (B, N, P); mask: (B, N), 1 = masked. norm_pix: t = (target - mean) / sqrt(var + 1e-6)
    per patch, var = target.var(-1) — torch's default, the unbiased estimator, as the MAE release
    uses. Computed in at least float32 (see the module docstring). Returns a scalar.
    """
    dtype = torch.promote_types(torch.promote_types(pred.dtype, target.dtype), torch.float32)
    pred, target, mask = pred.to(dtype), target.to(dtype), mask.to(dtype)
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)  # unbiased (divides by P - 1), as released
        target = (target - mean) / (var + NORM_PIX_EPS) ** 0.5
    loss = ((pred - target) ** 2).mean(dim=-1)  # (B, N)
    return (loss * mask).sum() / mask.sum()


# ---------------------------------------------------------------------------------------- the model
def _check_backbone(backbone: nn.Module) -> None:
    if not isinstance(backbone, ViTPoseBackbone):
        raise TypeError(f"MaskedAutoencoder: expected a ViTPoseBackbone, got {type(backbone).__name__}")
    windowed = [i for i, b in enumerate(backbone.blocks) if b.attn.window_size is not None]
    if windowed:
        raise ValueError(
            f"MaskedAutoencoder needs full attention in every block, but block(s) {windowed} use window "
            f"attention: masking removes 75% of the tokens, so the kept ones no longer form a grid "
            f"that windows could partition; pre-train with attention 'full'")
    proj = backbone.patch_embed.proj
    if tuple(proj.stride) != (PATCH_SIZE, PATCH_SIZE) or tuple(proj.kernel_size) != (PATCH_SIZE, PATCH_SIZE):
        ratio = PATCH_SIZE // proj.stride[0]
        raise ValueError(
            f"MaskedAutoencoder needs non-overlapping 16x16 patches (ratio 1), but the backbone has "
            f"ratio {ratio} (kernel {tuple(proj.kernel_size)}, stride {tuple(proj.stride)}): overlapping "
            f"patches do not match the pixel patches MAE reconstructs; pre-train with ratio 1")
    h, w = backbone.patch_embed.img_size
    if h % PATCH_SIZE or w % PATCH_SIZE:
        raise ValueError(
            f"MaskedAutoencoder: input size {h}x{w} is not a multiple of the patch size {PATCH_SIZE}; "
            f"expected H and W divisible by {PATCH_SIZE} (MAE uses 224x224)")


class MaskedAutoencoder(nn.Module):
    """MAE around a ViTPoseBackbone: imgs (B, 3, H, W) -> (loss, pred (B, N, 768), mask (B, N)).

    backbone: full attention, ratio 1, input H, W multiples of 16; its pos_embed is overwritten with
    the fixed sin-cos embedding and frozen, and all its weights are re-initialised MAE's way.
    decoder_dim / decoder_depth / decoder_heads: MAE's defaults (512, 8, 16).
    """

    def __init__(
        self,
        backbone: ViTPoseBackbone,
        decoder_dim: int = 512,
        decoder_depth: int = 8,
        decoder_heads: int = 16,
        mask_ratio: float = 0.75,
        norm_pix_loss: bool = True,
    ) -> None:
        super().__init__()
        _check_backbone(backbone)
        _check_mask_ratio(mask_ratio)
        if decoder_dim % 4:
            raise ValueError(f"decoder_dim: expected a multiple of 4 (sin-cos embedding), got {decoder_dim}")
        if backbone.embed_dim % 4:
            raise ValueError(f"backbone embed_dim: expected a multiple of 4 (sin-cos embedding), "
                             f"got {backbone.embed_dim}")
        self.backbone = backbone
        self.mask_ratio = float(mask_ratio)
        self.norm_pix_loss = bool(norm_pix_loss)
        self.patch_size = PATCH_SIZE
        self.grid_size: tuple[int, int] = tuple(backbone.patch_embed.img_size[i] // PATCH_SIZE for i in (0, 1))
        assert self.grid_size == tuple(backbone.grid_size)  # padding 2 and 0 agree on multiples of 16
        n = self.grid_size[0] * self.grid_size[1]
        embed_dim = backbone.embed_dim
        device = backbone.pos_embed.device  # meta-built backbones get a meta decoder

        self.decoder_embed = nn.Linear(embed_dim, decoder_dim, device=device)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim, device=device))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, n, decoder_dim, device=device), requires_grad=False)
        norm = partial(nn.LayerNorm, eps=LN_EPS)
        with torch.device(device):
            self.decoder_blocks = nn.ModuleList(
                TimmBlock(decoder_dim, decoder_heads, mlp_ratio=4.0, qkv_bias=True, norm_layer=norm)
                for _ in range(decoder_depth)
            )
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=LN_EPS, device=device)
        self.decoder_pred = nn.Linear(decoder_dim, PATCH_SIZE * PATCH_SIZE * 3, device=device)
        self._init_weights()

    # ------------------------------------------------------------------ init
    def reset_fixed_embeddings(self) -> None:
        """Write the sin-cos embeddings (encoder: class slot zero) and freeze them."""
        pos = self.backbone.pos_embed
        with torch.no_grad():
            grid = sincos_pos_embed_2d(pos.shape[2], self.grid_size).to(pos.device, pos.dtype)
            pos[:, :1].zero_()
            pos[:, 1:].copy_(grid)
            dec = self.decoder_pos_embed
            dec.copy_(sincos_pos_embed_2d(dec.shape[2], self.grid_size).to(dec.device, dec.dtype))
        pos.requires_grad_(False)
        dec.requires_grad_(False)

    def _init_weights(self) -> None:
        # The release's order (patch conv, tokens, then every Linear / LayerNorm), so that the RNG
        # stream is consumed in a fixed order.
        self.reset_fixed_embeddings()
        w = self.backbone.patch_embed.proj.weight
        with torch.no_grad():
            # Treated as the Linear it is on flattened patches: fan_in 3*16*16, fan_out C.
            nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # ------------------------------------------------------------------ forward
    def _check_input(self, imgs: torch.Tensor) -> None:
        expected = tuple(self.backbone.patch_embed.img_size)
        if imgs.ndim != 4 or imgs.shape[1] != 3 or tuple(imgs.shape[-2:]) != expected:
            raise ValueError(f"MaskedAutoencoder: expected images (B, 3, {expected[0]}, {expected[1]}), "
                             f"got {tuple(imgs.shape)} (the position embeddings are fixed at construction)")

    def embed_patches(self, imgs: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, N, C): the backbone's patch conv on non-overlapping patches (padding 0,
        see the module docstring) plus the fixed position embedding."""
        self._check_input(imgs)
        proj = self.backbone.patch_embed.proj
        x = F.conv2d(imgs, proj.weight, proj.bias, stride=proj.stride)  # (B, C, H/16, W/16)
        x = x.flatten(2).transpose(1, 2)
        # The class slot (zero, frozen) is left out: there is no class token to carry it.
        return x + self.backbone.pos_embed[:, 1:]

    def forward_encoder(
        self, imgs: torch.Tensor, mask_ratio: float | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) -> latent (B, K, C), mask (B, N), ids_restore (B, N)."""
        x = self.embed_patches(imgs)
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        x, mask, ids_restore = random_masking(x, ratio, generator)
        grid = self.backbone.grid_size  # unused by full attention; the block API takes it
        for block in self.backbone.blocks:
            x = block(x, grid)
        return self.backbone.last_norm(x), mask, ids_restore

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """latent (B, K, C), ids_restore (B, N) -> pred (B, N, 16*16*3)."""
        x = self.decoder_embed(latent)  # (B, K, D)
        b, k, d = x.shape
        n = ids_restore.shape[1]
        x = torch.cat([x, self.mask_token.to(x.dtype).expand(b, n - k, d)], dim=1)  # (B, N, D) shuffled
        x = torch.gather(x, 1, ids_restore.unsqueeze(-1).expand(-1, -1, d))  # original order
        x = x + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))

    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Scalar loss of pred (B, N, 768) against the pixels of imgs (B, 3, H, W), masked patches only."""
        return mae_loss(pred, patchify(imgs, self.patch_size), mask, self.norm_pix_loss)

    def forward(
        self, imgs: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """imgs (B, 3, H, W) -> loss (scalar), pred (B, N, 768), mask (B, N) float, 1 = masked."""
        latent, mask, ids_restore = self.forward_encoder(imgs, generator=generator)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(imgs, pred, mask), pred, mask


# ---------------------------------------------------------------------------------------- file format
def _file_key(model_key: str) -> str:
    """Our state_dict key -> the MAE release's key."""
    if model_key.startswith(BACKBONE_PREFIX):
        key = model_key[len(BACKBONE_PREFIX):]
        if key.startswith("last_norm."):
            return "norm." + key[len("last_norm."):]
        return key
    return model_key


def _expected_file_shapes(model: MaskedAutoencoder) -> dict[str, tuple[int, ...]]:
    """File key -> shape, in the file's order (no data touched: works for models on any device)."""
    shapes = {"cls_token": (1, 1, model.backbone.embed_dim)}
    for key, tensor in model.state_dict().items():
        shape = tuple(tensor.shape)
        if key == "decoder_pos_embed":
            shape = (shape[0], shape[1] + 1, shape[2])
        shapes[_file_key(key)] = shape
    return shapes


def mae_checkpoint_state(model: MaskedAutoencoder) -> dict[str, torch.Tensor]:
    """The weights in the MAE release's layout (the `model` entry of the file); detached CPU tensors.

    Keys (see the module docstring): `cls_token` (1, 1, C) zeros — never trained, present only so
    that MAE tooling finds its key set; `pos_embed` (1, 1+N, C) with our zero class slot;
    `patch_embed.proj.*`, `blocks.*`, `norm.*` (= last_norm); `mask_token`, `decoder_embed.*`,
    `decoder_pos_embed` (1, 1+N, D) with a zero class slot, `decoder_blocks.*`, `decoder_norm.*`,
    `decoder_pred.*`. CPU tensors of a CPU model share its memory (as `state_dict` does).
    """
    model = getattr(model, "module", model)  # DDP
    sd = model.state_dict()
    pos = sd["backbone.pos_embed"]
    state = {"cls_token": torch.zeros(1, 1, pos.shape[2], dtype=pos.dtype)}
    for key, tensor in sd.items():
        tensor = tensor.detach().cpu()
        if key == "decoder_pos_embed":
            tensor = torch.cat([tensor.new_zeros(1, 1, tensor.shape[2]), tensor], dim=1)
        state[_file_key(key)] = tensor
    return state


def save_mae_checkpoint(model: MaskedAutoencoder, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Write `{"model": mae_checkpoint_state(model), "meta": meta or {}}` atomically (plain values in meta)."""
    model = getattr(model, "module", model)
    atomic_torch_save(path, {"model": mae_checkpoint_state(model), "meta": dict(meta or {})})


def load_mae_into_autoencoder(model: MaskedAutoencoder, path: str | os.PathLike) -> None:
    """Inverse of `save_mae_checkpoint`, strict: every key of the layout, no others, the same shapes.

    Also reads the official MAE pre-training files (with decoder) of the same grid. The file's
    `cls_token` is checked for presence and shape but not used (we have no class token), and the
    decoder position embedding's class slot is dropped. Every check runs before any weight is
    copied. CheckpointError messages start with the path.
    """
    model = getattr(model, "module", model)
    obj = read_torch_file(path, "MAE checkpoint")
    source = obj.get("model") if isinstance(obj, dict) else None
    if not isinstance(source, dict):
        found = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{path}: expected an MAE checkpoint with a 'model' entry holding the weights, "
                              f"found {found}")
    expected = _expected_file_shapes(model)
    missing = [k for k in expected if k not in source]
    unexpected = [k for k in source if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: does not match the masked autoencoder: missing keys {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected keys {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''}")
    for key, shape in expected.items():
        if not isinstance(source[key], torch.Tensor) or tuple(source[key].shape) != shape:
            got = list(source[key].shape) if isinstance(source[key], torch.Tensor) else type(source[key]).__name__
            raise CheckpointError(f"{path}: {key} has shape {got} in the file but {list(shape)} in the model "
                                  f"(an MAE of another size, decoder or input resolution?)")
    state = {}
    for key in model.state_dict():
        tensor = source[_file_key(key)]
        state[key] = tensor[:, 1:] if key == "decoder_pos_embed" else tensor
    model.load_state_dict(state, strict=True)
