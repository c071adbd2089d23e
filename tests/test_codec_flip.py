"""Flip test and heatmap flip: mirrored input gives mirrored heatmaps and keypoints, for any model."""
import numpy as np
import pytest
import torch
from torch import nn

from vitpose.data.codec import flip_heatmaps, udp_decode
from vitpose.data.keypoints import COCO
from vitpose.evaluation.flip_test import flip_test

FLIP = list(COCO.flip_indices)
K = len(FLIP)


def _mirror_keypoints(coords: np.ndarray, width: int) -> np.ndarray:
    """Keypoints (N, K, 2) of a heatmap as seen in its mirror image: re-index, x -> w - 1 - x."""
    out = coords[:, FLIP].copy()
    out[..., 0] = width - 1 - out[..., 0]
    return out


def _random_conv_net(seed: int) -> nn.Module:
    """An arbitrary, deliberately non-symmetric model (B, 3, 64, 48) -> (B, K, 16, 12)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1), nn.GELU(), nn.AvgPool2d(2),
        nn.Conv2d(16, K, 3, padding=1),
    ).eval()


class _PeakedModel(nn.Module):
    """(B, 3, 256, 192) -> (B, K, 64, 48): Gaussian peaks at input-dependent positions plus a little
    conv noise, like a trained model."""

    def __init__(self, size=(64, 48)):
        super().__init__()
        torch.manual_seed(3)
        self.size = size
        self.locator = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                     nn.Flatten(), nn.Linear(8, 2 * K))
        self.noise = nn.Sequential(nn.Conv2d(3, K, 3, padding=1), nn.AvgPool2d(4))

    def forward(self, x):
        h, w = self.size
        mu = torch.sigmoid(self.locator(x)).view(-1, K, 2) * torch.tensor([w - 17.0, h - 17.0]) + 8
        v, u = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        d2 = (u - mu[..., 0, None, None]) ** 2 + (v - mu[..., 1, None, None]) ** 2
        return torch.exp(-d2 / 8) + 0.01 * self.noise(x)


def test_flip_heatmaps_mirrors_width_and_swaps_joints():
    heatmaps = torch.zeros(1, K, 4, 5)
    heatmaps[0, 1, 2, 0] = 1.0          # left eye at x = 0
    flipped = flip_heatmaps(heatmaps, FLIP)
    assert flipped[0, 2, 2, 4] == 1.0   # becomes the right eye at x = w - 1 (no one-pixel shift)
    assert flipped.sum() == 1.0
    torch.testing.assert_close(flip_heatmaps(flipped, FLIP), heatmaps)
    with pytest.raises(ValueError, match="flip indices"):
        flip_heatmaps(heatmaps[:, :5], FLIP)


@pytest.mark.parametrize("seed", [0, 1])
def test_flip_test_of_mirrored_input_gives_mirrored_output_for_any_model(seed):
    model = _random_conv_net(seed)
    x = torch.randn(3, 3, 64, 48)
    with torch.no_grad():
        heat = flip_test(model, x, FLIP)
        heat_mirror = flip_test(model, torch.flip(x, dims=(-1,)), FLIP)
        plain = model(x)
    assert heat.shape == (3, K, 16, 12)
    torch.testing.assert_close(heat_mirror, flip_heatmaps(heat, FLIP), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(plain, heat)          # the model is not symmetric by itself

    width = heat.shape[-1]
    # With DARK's symmetric mixed derivative the whole decode is mirror-equivariant.
    coords, scores = udp_decode(heat.numpy(), dxy="dark")
    coords_m, scores_m = udp_decode(heat_mirror.numpy(), dxy="dark")
    np.testing.assert_allclose(scores_m, scores[:, FLIP], rtol=1e-6, atol=1e-7)
    found = scores[:, FLIP] > 0                     # undecodable maps are (-1, -1) in both
    np.testing.assert_allclose(coords_m[found], _mirror_keypoints(coords, width)[found], atol=1e-4)
    assert np.all(coords_m[~found] == -1)

    # The released decode: same integer maxima and scores, mirrored; refinement differs (see below).
    coords_u, _ = udp_decode(heat.numpy())
    coords_um, scores_um = udp_decode(heat_mirror.numpy())
    np.testing.assert_allclose(scores_um, scores[:, FLIP], rtol=1e-6, atol=1e-7)
    argmax = heat.flatten(2).argmax(-1).numpy()
    argmax_m = heat_mirror.flatten(2).argmax(-1).numpy()
    np.testing.assert_array_equal(argmax_m % width, width - 1 - (argmax % width)[:, FLIP])
    np.testing.assert_array_equal(argmax_m // width, (argmax // width)[:, FLIP])


def test_flip_test_released_decode_mirrors_peaked_heatmaps():
    model = _PeakedModel()
    x = torch.randn(4, 3, 256, 192)
    with torch.no_grad():
        heat = flip_test(model, x, FLIP)
        heat_mirror = flip_test(model, torch.flip(x, dims=(-1,)), FLIP)
    coords, _ = udp_decode(heat.numpy())
    coords_m, _ = udp_decode(heat_mirror.numpy())
    # Peaked (trained-like) maps: the 7-point formula's asymmetry stays around 0.01 heatmap px
    # (measured 0.013 here, where f(x) and the flipped-back f(flip x) peak at different places);
    # 0.05 px is the accuracy the codec promises anyway (test_codec_udp).
    err = np.abs(coords_m - _mirror_keypoints(coords, heat.shape[-1])).max()
    assert err < 0.05
    coords_d, _ = udp_decode(heat.numpy(), dxy="dark")
    coords_dm, _ = udp_decode(heat_mirror.numpy(), dxy="dark")
    np.testing.assert_allclose(coords_dm, _mirror_keypoints(coords_d, heat.shape[-1]), atol=1e-4)


def test_released_mixed_derivative_is_not_mirror_symmetric():
    """Documents why the default decode is only approximately mirror-equivariant.

    The released 7-point d²/dxdy uses the (+1,+1)/(-1,-1) neighbours only; on a map with different
    curvature along the two diagonals a mirrored map gets a different Newton step.
    """
    v, u = np.mgrid[:16, :16].astype(np.float64)
    # Skewed peak at (7, 7): sharper along one diagonal than along the other.
    a, b = u - 7.2, v - 6.9
    heat = np.exp(-(a**2 + b**2) / 6 - 0.15 * (a + b) ** 2 * (a > 0) - 0.02 * (a - b) ** 2)[None, None]
    mirror = heat[..., ::-1].copy()
    for dxy, equal in (("dark", True), ("udp", False)):
        c, _ = udp_decode(heat, dxy=dxy)
        cm, _ = udp_decode(mirror, dxy=dxy)
        mirrored = np.array([15 - c[0, 0, 0], c[0, 0, 1]])
        assert np.allclose(cm[0, 0], mirrored, atol=1e-5) == equal, dxy
    with pytest.raises(ValueError, match="dxy"):
        udp_decode(heat, dxy="other")
