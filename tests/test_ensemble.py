"""Model ensembles (engine/ensemble.py): the members' heatmaps averaged, composed with the flip test."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine_support import make_synthetic
from vitpose.data.codec import udp_decode
from vitpose.data.dataset import TopDownCocoDataset
from vitpose.data.keypoints import COCO
from vitpose.data.synthetic import DET_FILE
from vitpose.engine.ensemble import EnsemblePoseModel, load_ensemble
from vitpose.engine.inference import predict
from vitpose.evaluation.flip_test import flip_test
from vitpose.models import ModelConfig, build_model
from vitpose.models.checkpoint import save_vitpose_checkpoint
from vitpose.utils.errors import ConfigError

TINY = dict(arch="vit", embed_dim=32, depth=2, num_heads=2, input_size=(64, 48), decoder_channels=8)


def tiny(seed: int, **overrides):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(**{**TINY, **overrides})).eval()
    for m in model.modules():  # heatmaps of a visible size (the head's init is N(0, 0.001))
        if isinstance(m, torch.nn.Conv2d):
            m.weight.data.normal_(0, 0.05)
    return model


IMAGES = torch.randn(3, 3, 64, 48)


def test_ensemble_of_one_model_is_that_model():
    model = tiny(0)
    with torch.no_grad():
        assert torch.equal(EnsemblePoseModel([model])(IMAGES), model(IMAGES))


def test_ensemble_of_two_is_their_average():
    a, b = tiny(0), tiny(1)
    with torch.no_grad():
        expected = (a(IMAGES) + b(IMAGES)) / 2
        assert torch.equal(EnsemblePoseModel([a, b])(IMAGES), expected)
        assert not torch.allclose(expected, a(IMAGES))


def test_flip_test_of_the_ensemble_averages_the_members_flip_tests():
    a, b = tiny(0), tiny(1, arch="vitae")  # members may differ in architecture
    with torch.no_grad():
        ensemble = flip_test(EnsemblePoseModel([a, b]), IMAGES, COCO.flip_indices)
        members = (flip_test(a, IMAGES, COCO.flip_indices) + flip_test(b, IMAGES, COCO.flip_indices)) / 2
    assert torch.allclose(ensemble, members, atol=1e-6, rtol=1e-5)


def test_members_of_other_keypoints_are_refused():
    with pytest.raises(ConfigError, match="member 2 has num_keypoints 14"):
        EnsemblePoseModel([tiny(0), tiny(1, num_keypoints=14)])
    with pytest.raises(ConfigError, match="at least one member"):
        EnsemblePoseModel([])


# -- members of different input sizes --------------------------------------------------------------
class BlobFinder(torch.nn.Module):
    """A "pose model" equivariant to its input size by construction: it finds the bright blob of its
    crop (intensity-weighted centroid, crop pixels), maps it to its heatmap grid with UDP's scaling
    ((W_hm - 1) / (w_in - 1)) and draws a Gaussian there. The same model at two input sizes is the same
    function of the image, which is what the ensemble's resampling must preserve."""

    def __init__(self, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.cfg = SimpleNamespace(input_size=input_size, num_keypoints=1,
                                   heatmap_size=(input_size[0] // 4, input_size[1] // 4))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        (h, w), (hh, hw) = images.shape[-2:], self.cfg.heatmap_size
        img = images[:, 0]
        weights = torch.relu(img - 0.5 * img.amax(dim=(1, 2), keepdim=True))
        ys, xs = torch.meshgrid(torch.arange(h, dtype=img.dtype), torch.arange(w, dtype=img.dtype), indexing="ij")
        cx = (weights * xs).sum((1, 2)) / weights.sum((1, 2)) * (hw - 1) / (w - 1)
        cy = (weights * ys).sum((1, 2)) / weights.sum((1, 2)) * (hh - 1) / (h - 1)
        gy, gx = torch.meshgrid(torch.arange(hh, dtype=img.dtype), torch.arange(hw, dtype=img.dtype), indexing="ij")
        return torch.exp(-((gx - cx[:, None, None]) ** 2 + (gy - cy[:, None, None]) ** 2) / 8)[:, None]


def blob_crop(x0: float, y0: float, size=(256, 192), sigma: float = 4.0) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(size[0], dtype=torch.float32), torch.arange(size[1], dtype=torch.float32),
                            indexing="ij")
    return torch.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * sigma ** 2))[None, None].repeat(1, 3, 1, 1)


def decoded(heatmaps: torch.Tensor, input_size=(256, 192)) -> np.ndarray:
    """The decoded keypoint in crop pixels (UDP: heatmap cell u is crop pixel u (w_in - 1) / (W_hm - 1))."""
    xy, _ = udp_decode(heatmaps.numpy())
    (hh, hw), (h, w) = heatmaps.shape[-2:], input_size
    return xy[0, 0] * np.array([(w - 1) / (hw - 1), (h - 1) / (hh - 1)])


# Off-centre points: at the centre of the crop every resampling convention agrees.
POINTS = [(130.3, 77.6), (60.7, 180.2), (150.4, 40.9), (33.3, 66.6)]


@pytest.mark.parametrize("x0, y0", POINTS)
def test_a_model_and_itself_at_another_input_size_decode_the_same_keypoint(x0, y0):
    big, small = BlobFinder((256, 192)), BlobFinder((128, 96))
    crop = blob_crop(x0, y0)
    with torch.no_grad():
        alone = decoded(big(crop))
        for members in ([big, small], [small, big]):  # the larger input is the reference, in any order
            ensemble = EnsemblePoseModel(members)
            assert ensemble.input_size == (256, 192) and ensemble.heatmap_size == (64, 48)
            assert np.abs(decoded(ensemble(crop)) - alone).max() < 0.1  # crop pixels
        # The test tells conventions apart: half-pixel (align_corners=False) resampling misplaces it.
        half = F.interpolate(small(F.interpolate(crop, size=(128, 96), mode="bilinear")), size=(64, 48),
                             mode="bilinear")
        assert np.abs(decoded((big(crop) + half) / 2) - alone).max() > 0.15
    assert alone == pytest.approx([x0, y0], abs=0.05)


def test_flip_test_of_a_mixed_size_ensemble_averages_the_members_resampled_flip_tests():
    a, b = tiny(0, input_size=(128, 96)), tiny(1, arch="vitae")  # 128x96 is the reference
    images = torch.randn(2, 3, 128, 96)

    def at(x, size):
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)

    with torch.no_grad():
        ensemble = flip_test(EnsemblePoseModel([a, b]), images, COCO.flip_indices)
        members = (flip_test(a, images, COCO.flip_indices)
                   + at(flip_test(b, at(images, (64, 48)), COCO.flip_indices), (32, 24))) / 2
    assert ensemble.shape == (2, 17, 32, 24)
    assert torch.allclose(ensemble, members, atol=1e-6, rtol=1e-5)


def test_load_ensemble_builds_each_member_from_its_checkpoint(tmp_path):
    a, b = tiny(0), tiny(1, arch="vitae")
    save_vitpose_checkpoint(a, tmp_path / "a.pth")
    save_vitpose_checkpoint(b, tmp_path / "b.pth")
    ensemble = load_ensemble([tmp_path / "a.pth", tmp_path / "b.pth"])
    assert [m.cfg.arch for m in ensemble.members] == ["vit", "vitae"]
    with torch.no_grad():
        assert torch.equal(ensemble(IMAGES), (a(IMAGES) + b(IMAGES)) / 2)


def test_ensemble_of_one_predicts_what_the_model_predicts(tmp_path):
    root = make_synthetic(tmp_path / "coco", num_train=0, num_val=2)
    dataset = TopDownCocoDataset(root / "annotations/person_keypoints_val2017.json", root / "val2017", COCO,
                                 (64, 48), (16, 12), train=False,
                                 det_file=root / "person_detection_results" / DET_FILE)
    model = tiny(0)
    ours = predict(EnsemblePoseModel([model]), dataset, 4, True, "cpu", progress=False)
    theirs = predict(model, dataset, 4, True, "cpu", progress=False)
    assert len(ours) == len(theirs) > 0
    for x, y in zip(ours, theirs):
        assert x["image_id"] == y["image_id"] and x["score"] == y["score"]
        assert np.array_equal(x["keypoints"], y["keypoints"])
