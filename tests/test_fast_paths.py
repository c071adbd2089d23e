"""Issue 17's fast paths give the results of the straightforward ones they replace.

Decoding (batched neighbourhood blur, whole-map fallback, the GPU code paths run on the CPU) against
the per-map reference decoder; OKS matrix and array NMS against the released per-instance loop;
training samples (windowed targets, scipy-free truncated normal, lookup-table normalisation, cv2 flip,
BGR crop conversion) against the plain pipeline, bit for bit; bf16-safe decoder convolutions;
activation checkpointing; the fused-optimizer switch.
"""
import copy
import importlib.util
from pathlib import Path
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import truncnorm

from vitpose.data import codec
from vitpose.data.codec import udp_decode, udp_decode_reference, udp_decode_tensor, udp_encode
from vitpose.data.dataset import TopDownCocoDataset
from vitpose.data.keypoints import COCO
from vitpose.data.synthetic import generate_synthetic_coco
from vitpose.data.transforms import (IMAGENET_MEAN, IMAGENET_STD, flip_horizontal, normalize_image,
                                     truncated_normal)
from vitpose.evaluation.nms import oks_iou, oks_matrix, oks_nms_arrays
from vitpose.evaluation.postprocess import topdown_results
from vitpose.models import ModelConfig, build_model, cpu_bf16
from vitpose.utils.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

SIGMAS = np.asarray(COCO.sigmas)


def _heatmaps(rng, n, k=17, h=64, w=48, amp=(0.3, 1.0), noise=0.004, reach=3):
    """Gaussian peaks (σ = 2) anywhere up to `reach` px outside the map, amplitudes in `amp`, noise."""
    mu = rng.uniform([-reach, -reach], [w - 1 + reach, h - 1 + reach], size=(n, k, 2))
    a = rng.uniform(*amp, size=(n, k, 1, 1))
    gx = np.exp(-(np.arange(w) - mu[..., 0:1]) ** 2 / 8)
    gy = np.exp(-(np.arange(h) - mu[..., 1:2]) ** 2 / 8)
    return (a * gy[..., :, None] * gx[..., None, :] + noise * rng.standard_normal((n, k, h, w))).astype(np.float32)


def _assert_decodes_alike(heatmaps, dxy="udp"):
    want_xy, want_s = udp_decode_reference(heatmaps, dxy=dxy)
    got_xy, got_s = udp_decode(heatmaps, dxy=dxy)
    np.testing.assert_array_equal(got_s, want_s)
    np.testing.assert_allclose(got_xy, want_xy, rtol=0, atol=1e-4)
    return got_xy


@pytest.mark.parametrize("dxy", ["udp", "dark"])
def test_decode_equals_reference_on_peaked_noisy_and_negative_maps(dxy):
    rng = np.random.default_rng(0)
    peaked = _heatmaps(rng, 40)
    faint = _heatmaps(rng, 40, amp=(0.0002, 0.02))              # the clip at 1e-3 is active
    noise = rng.standard_normal((10, 17, 64, 48)).astype(np.float32)
    negative = peaked[:5] - 2.0                                  # no positive maximum: (-1, -1)
    xy = _assert_decodes_alike(np.concatenate([peaked, faint, noise, negative]), dxy)
    assert np.all(xy[-5:] == -1)


def test_decode_equals_reference_at_borders_small_maps_and_float64():
    rng = np.random.default_rng(1)
    border = np.zeros((4, 4, 64, 48), np.float32)
    for j, (y, x) in enumerate([(0, 0), (63, 47), (0, 30), (40, 47)]):
        border[:, j, y, x] = 1.0
        border[:, j] += _heatmaps(rng, 4, k=1, amp=(0.1, 0.2))[:, 0]
    _assert_decodes_alike(border)
    for shape in [(3, 2, 5, 4), (2, 3, 1, 7), (2, 2, 16, 12), (1, 2, 13, 13)]:   # torch path: < 13 px
        _assert_decodes_alike(rng.standard_normal(shape).astype(np.float32))
    _assert_decodes_alike(_heatmaps(rng, 6).astype(np.float64))


def test_fallback_blur_is_exercised_and_exact(monkeypatch):
    calls = []
    real = codec._blurred_max

    def counting(maps, peak, taps):
        calls.append(maps.shape[0])
        return real(maps, peak, taps)

    monkeypatch.setattr(codec, "_blurred_max", counting)
    _assert_decodes_alike(_heatmaps(np.random.default_rng(2), 30, amp=(0.0002, 0.01)))
    assert sum(calls) > 50                                       # many maps needed the whole blur


def test_gpu_code_paths_equal_the_cpu_ones():
    """The torch neighbourhood blur and banded whole-map blur (what CUDA runs) on the CPU."""
    rng = np.random.default_rng(3)
    maps = torch.from_numpy(_heatmaps(rng, 20, amp=(0.001, 1.0)).reshape(-1, 64, 48))
    taps = torch.from_numpy(codec._gaussian_taps(11))
    score, x, y = codec._argmax_2d(maps)
    np.testing.assert_allclose(codec._blur_neighbourhood_torch(maps, x, y, taps).numpy(),
                               codec._blur_neighbourhood(maps, x, y, taps).numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(codec._blurred_max_banded(maps, taps).numpy(),
                               codec._blurred_max(maps, score.double(), taps).numpy(), rtol=1e-12)
    # torch argmax (GPU) = numpy argmax (CPU), ties included: first maximum in row-major order
    ties = torch.zeros(3, 8, 6)
    ties[:, 2, 3] = ties[:, 5, 1] = ties[:, 2, 5] = 1.0
    s, tx, ty = codec._argmax_2d(ties)
    assert tx.tolist() == [3, 3, 3] and ty.tolist() == [2, 2, 2]
    s2, tx2, ty2 = codec._argmax_2d(ties.to(torch.bfloat16))    # torch path
    assert tx2.tolist() == [3, 3, 3] and ty2.tolist() == [2, 2, 2]


def test_tensor_and_low_precision_inputs():
    rng = np.random.default_rng(4)
    hm = _heatmaps(rng, 8)
    xy, s = udp_decode_tensor(torch.from_numpy(hm))
    assert xy.dtype == torch.float32 and xy.shape == (8, 17, 2) and s.shape == (8, 17)
    np.testing.assert_allclose(xy.numpy(), udp_decode_reference(hm)[0], atol=1e-4)
    half = torch.from_numpy(hm).to(torch.bfloat16)
    want = udp_decode_reference(half.float().numpy())
    got = udp_decode(half)
    np.testing.assert_allclose(got[0], want[0], atol=1e-4)
    np.testing.assert_array_equal(got[1], want[1])


def test_chunked_threaded_decode_equals_one_chunk(monkeypatch):
    hm = _heatmaps(np.random.default_rng(5), 12)
    whole = udp_decode(hm)
    monkeypatch.setattr(codec, "_DECODE_CHUNK", 7)               # 30 chunks, decoded by a thread pool
    parts = udp_decode(hm)
    np.testing.assert_array_equal(parts[0], whole[0])
    np.testing.assert_array_equal(parts[1], whole[1])


# ------------------------------------------------------------------------------------------- NMS
def _instances(rng, n, k=17):
    base = rng.uniform(0, 200, size=(3, k, 2))
    xy = base[rng.integers(3, size=n)] + rng.normal(0, rng.choice([0.5, 3.0, 20.0], size=(n, 1, 1)), (n, k, 2))
    return np.concatenate([xy, rng.uniform(0, 1, (n, k, 1))], -1), rng.uniform(1000, 20000, n)


@pytest.mark.parametrize("vis_thr", [None, 0.3])
def test_oks_matrix_rows_are_oks_iou_bit_for_bit(vis_thr):
    kp, areas = _instances(np.random.default_rng(6), 25)
    matrix = oks_matrix(kp, areas, SIGMAS, vis_thr)
    for i in range(len(kp)):
        np.testing.assert_array_equal(matrix[i], oks_iou(kp[i], kp, areas[i], areas, SIGMAS, vis_thr))


def _released_nms(kp, scores, areas, thr):
    """The released loop: keep the best, drop the rest above thr by oks_iou, repeat."""
    order, keep = np.argsort(-scores, kind="stable"), []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        order = rest[oks_iou(kp[best], kp[rest], areas[best], areas[rest], SIGMAS) <= thr]
    return keep


def test_topdown_results_equal_the_released_per_image_loop():
    rng = np.random.default_rng(7)
    n = 300
    kp, areas = _instances(rng, n)
    image_ids = rng.integers(0, 12, n) * 5 + 3
    box_scores = rng.uniform(0.1, 1, n)
    scores = kp[..., 2]
    scales = np.stack([np.sqrt(areas), np.sqrt(areas)], 1)
    for thr in (0.9, 0.5, None):
        got = topdown_results(kp[..., :2], scores, np.zeros((n, 2)), scales, box_scores, image_ids, SIGMAS,
                              nms_threshold=thr)
        inst_scores = np.array([np.mean(s[s > 0.2]) if (s > 0.2).any() else 0.0 for s in scores]) * box_scores
        by_image = defaultdict(list)
        for i, image_id in enumerate(image_ids.tolist()):
            by_image[image_id].append(i)
        want = []
        for image_id in sorted(by_image):
            m = np.array(by_image[image_id])
            kept = (np.argsort(-inst_scores[m], kind="stable") if thr is None
                    else _released_nms(kp[m], inst_scores[m], areas[m], thr))
            want += [(image_id, int(m[j])) for j in kept]
        assert [r["image_id"] for r in got] == [image_id for image_id, _ in want]
        assert [r["score"] for r in got] == pytest.approx([inst_scores[i] for _, i in want], rel=1e-12)
        assert [r["keypoints"] for r in got] == [kp[i].reshape(-1).tolist() for _, i in want]
        if thr == 0.9:
            assert len(got) < n                                  # something was suppressed
    assert oks_nms_arrays(kp[:1], scores[:1, 0], areas[:1]).tolist() == [0]
    assert topdown_results(np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros((0, 2)), np.zeros((0, 2)),
                           np.zeros(0), np.zeros(0), SIGMAS) == []


# ------------------------------------------------------------------------------- training samples
def _encode_whole_map(keypoints, visibility, input_size, heatmap_size, sigma):
    """udp_encode as it was: the Gaussian evaluated on the whole map, then masked."""
    (in_h, in_w), (hm_h, hm_w) = input_size, heatmap_size
    mu = np.asarray(keypoints, np.float64) / np.array([(in_w - 1) / (hm_w - 1), (in_h - 1) / (hm_h - 1)])
    radius, centre = 3.0 * sigma, np.trunc(mu + 0.5)
    outside = np.any(centre + radius < 0, axis=1) | (centre[:, 0] - radius > hm_w - 1) | (
        centre[:, 1] - radius > hm_h - 1)
    valid = (visibility >= 0.5) & ~outside & np.all(np.isfinite(mu), axis=1)
    u, v = np.arange(hm_w, dtype=np.float64)[None, None, :], np.arange(hm_h, dtype=np.float64)[None, :, None]
    window = (np.abs(u - centre[:, 0, None, None]) <= radius) & (np.abs(v - centre[:, 1, None, None]) <= radius)
    with np.errstate(invalid="ignore"):
        gauss = np.exp(-((u - mu[:, 0, None, None]) ** 2 + (v - mu[:, 1, None, None]) ** 2) / (2.0 * sigma**2))
    return np.where(window & valid[:, None, None], gauss, 0.0).astype(np.float32)


@pytest.mark.parametrize("sigma,sizes", [(2.0, ((256, 192), (64, 48))), (3.0, ((384, 288), (96, 72))),
                                         (1.5, ((64, 48), (16, 12)))])
def test_windowed_targets_equal_whole_map_targets(sigma, sizes):
    rng = np.random.default_rng(8)
    for _ in range(60):
        kp = rng.uniform(-90, sizes[0][1] + 90, size=(17, 2))
        kp[rng.integers(17)] = np.nan
        vis = rng.choice([0, 1, 2, 0.4], size=17).astype(np.float64)
        target, _ = udp_encode(kp, vis, *sizes, sigma=sigma)
        np.testing.assert_array_equal(target, _encode_whole_map(kp, vis, *sizes, sigma))


def test_truncated_normal_is_scipys_draw_for_draw():
    for seed in range(500):
        a, b = np.random.default_rng([seed, 3, 1]), np.random.default_rng([seed, 3, 1])
        np.testing.assert_array_equal(truncated_normal(a, 4), truncnorm.rvs(-1.0, 1.0, size=4, random_state=b))
        assert a.random() == b.random()                          # the generator advanced alike
    u = np.random.default_rng(0).uniform(size=200_000)
    from vitpose.data.transforms import _truncnorm_ppf
    np.testing.assert_array_equal(_truncnorm_ppf(u), truncnorm._ppf(u, -1.0, 1.0))


def test_normalize_and_flip_equal_the_plain_formulas():
    rng = np.random.default_rng(9)
    crop = rng.integers(0, 256, size=(64, 48, 3), dtype=np.uint8)
    plain = ((crop.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
    np.testing.assert_array_equal(normalize_image(crop).numpy(), plain)
    as_float = crop.astype(np.float32)                           # the other dtypes: direct formula
    np.testing.assert_array_equal(normalize_image(as_float).numpy(), plain)
    for image in (crop, crop[..., :1]):
        flipped, *_ = flip_horizontal(image, np.zeros((17, 2)), np.ones(17), np.zeros(2), COCO.flip_indices)
        np.testing.assert_array_equal(flipped, image[:, ::-1])


def _plain_sample():
    spec = importlib.util.spec_from_file_location("bench_reference", REPO / "benchmarks" / "_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.plain_sample


def test_training_samples_equal_the_plain_pipeline_bit_for_bit(tmp_path):
    generate_synthetic_coco(tmp_path, seed=3, num_train=6, num_val=1, image_size=(160, 200), progress=False)
    ds = TopDownCocoDataset(tmp_path / "annotations/person_keypoints_train2017.json", tmp_path / "train2017",
                            COCO, (128, 96), (32, 24), train=True)
    plain_sample = _plain_sample()
    flipped = 0
    for epoch in range(3):
        for i in range(len(ds)):
            new, old = ds.sample(i, epoch, seed=5), plain_sample(ds, i, epoch, 5)
            for key in ("img", "target", "target_weight"):
                np.testing.assert_array_equal(new[key].numpy(), old[key], err_msg=f"{key} of sample {i}")
            flipped += int(new["flipped"])
    assert flipped > 0                                           # the flip path was taken


# ------------------------------------------------------------------------------------ models
def test_decoder_convolutions_compute_in_fp32_only_where_bf16_has_no_kernel(monkeypatch):
    torch.manual_seed(0)
    deconv = cpu_bf16.ConvTranspose2d(8, 4, kernel_size=4, stride=2, padding=1, bias=False)
    conv = cpu_bf16.Conv2d(4, 3, kernel_size=3, padding=1)
    plain_deconv, plain_conv = torch.nn.ConvTranspose2d(8, 4, 4, 2, 1, bias=False), torch.nn.Conv2d(4, 3, 3, padding=1)
    plain_deconv.load_state_dict(deconv.state_dict())            # same parameters, same keys
    plain_conv.load_state_dict(conv.state_dict())
    x = torch.randn(2, 8, 6, 5)
    assert torch.equal(deconv(x), plain_deconv(x)) and torch.equal(conv(deconv(x)), plain_conv(plain_deconv(x)))
    monkeypatch.setattr(cpu_bf16, "_NATIVE", {torch.bfloat16: False})
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = deconv(x)
        z = conv(y)
    assert y.dtype == z.dtype == torch.bfloat16
    assert torch.equal(y, F.conv_transpose2d(x, deconv.weight, stride=2, padding=1).to(torch.bfloat16))
    assert torch.equal(z, F.conv2d(y.float(), conv.weight, conv.bias, padding=1).to(torch.bfloat16))
    xb = x.to(torch.bfloat16)                                    # a model cast with .to(bfloat16)
    assert torch.equal(deconv.to(torch.bfloat16)(xb),
                       F.conv_transpose2d(xb.float(), deconv.weight.float(), stride=2, padding=1).to(torch.bfloat16))


def test_activation_checkpointing_gives_the_same_forward_and_gradients():
    cfg = ModelConfig(arch="vitpose-b", decoder="classic", input_size=(64, 48), depth=2, embed_dim=64, num_heads=2,
                      drop_path_rate=0.3)
    torch.manual_seed(0)
    plain = build_model(cfg).train()
    ckpt = build_model(cfg).train()
    ckpt.load_state_dict(plain.state_dict())
    ckpt.backbone.set_grad_checkpointing(True)
    x = torch.randn(2, 3, 64, 48)
    grads = []
    for model in (plain, ckpt):
        torch.manual_seed(1)                                     # same drop-path draws
        out = model(x)
        out.square().mean().backward()
        grads.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=0, atol=0)
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-8)


def test_training_config_switch_and_unsupported_backbones():
    from vitpose.config import TrainConfig
    from vitpose.engine.objective import apply_activation_checkpointing

    assert TrainConfig().activation_checkpointing is False
    assert TrainConfig.from_dict({"activation_checkpointing": True}).activation_checkpointing is True
    model = build_model(ModelConfig(arch="vitpose-b", input_size=(64, 48), depth=1, embed_dim=32, num_heads=2))
    cfg = SimpleNamespace(train=SimpleNamespace(activation_checkpointing=True), model=SimpleNamespace(arch="x"))
    assert apply_activation_checkpointing(model, cfg).backbone.grad_checkpointing
    with pytest.raises(ConfigError, match="activation_checkpointing"):
        apply_activation_checkpointing(torch.nn.Sequential(), cfg)


def test_adamw_is_fused_on_one_device_and_matches_the_loop():
    """Fused on the CPU (torch >= 2.4) and on CUDA; its steps match the per-tensor loop's closely."""
    from vitpose.engine.optim import build_optimizer

    model = build_model(ModelConfig(arch="vitpose-b", input_size=(64, 48), depth=1, embed_dim=32, num_heads=2))
    twin = copy.deepcopy(model)
    fused = build_optimizer(model, 1e-3, 0.1, layer_decay=0.75)
    assert fused.defaults["fused"]
    twin_params = dict(twin.named_parameters())
    loop = torch.optim.AdamW([dict(g, params=[twin_params[n] for n in names])
                              for g, names in zip(fused.param_groups, _group_names(model, fused))],
                             lr=1e-3, weight_decay=0.1, foreach=False)
    torch.manual_seed(0)
    for _ in range(3):
        grads = [torch.randn_like(p) for p in model.parameters()]
        for m in (model, twin):
            for p, g in zip(m.parameters(), grads):
                p.grad = g.clone()
        fused.step()
        loop.step()
    for (name, a), b in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    if torch.cuda.is_available():
        assert build_optimizer(model.cuda(), 1e-3, 0.1, layer_decay=0.75).defaults["fused"]


def _group_names(model, optimizer):
    names = {id(p): n for n, p in model.named_parameters()}
    return [[names[id(p)] for p in g["params"]] for g in optimizer.param_groups]


def test_resnet_models_train_in_channels_last_with_the_same_numbers(tmp_path):
    """ResNet backbones train in channels_last (faster CPU/cuDNN convolutions), ViTs as they are; the
    forward and the gradients match the contiguous layout's, and saved weights are plain contiguous."""
    from vitpose.models.build import training_memory_format
    from vitpose.models.checkpoint import save_vitpose_checkpoint

    vit = build_model(ModelConfig(arch="vitpose-b", input_size=(64, 48), depth=1, embed_dim=32, num_heads=2))
    assert training_memory_format(vit) == torch.contiguous_format
    torch.manual_seed(0)
    plain = build_model(ModelConfig(arch="resnet18-tiny", input_size=(64, 64), decoder_channels=8))
    assert training_memory_format(plain) == torch.channels_last
    fast = copy.deepcopy(plain).to(memory_format=training_memory_format(plain))
    assert next(p for p in fast.parameters() if p.dim() == 4).is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 64, 64)
    outs = [m(x) for m in (plain, fast)]
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-5)
    for m, y in zip((plain, fast), outs):
        y.square().mean().backward()
    for (name, a), b in zip(plain.named_parameters(), fast.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-3, atol=1e-6, msg=name)
    save_vitpose_checkpoint(fast, tmp_path / "w.pth")
    state = torch.load(tmp_path / "w.pth", weights_only=True)["state_dict"]
    assert all(v.is_contiguous() for v in state.values())
