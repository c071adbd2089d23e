"""Model ensembles (engine/ensemble.py): the members' heatmaps averaged, composed with the flip test."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine_support import make_synthetic
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


def test_members_of_other_sizes_are_refused():
    with pytest.raises(ConfigError, match=r"member 2 has input_size \(128, 96\), but member 1 has \(64, 48\)"):
        EnsemblePoseModel([tiny(0), tiny(1, input_size=(128, 96))])
    with pytest.raises(ConfigError, match="member 2 has num_keypoints 14"):
        EnsemblePoseModel([tiny(0), tiny(1, num_keypoints=14)])
    with pytest.raises(ConfigError, match="at least one member"):
        EnsemblePoseModel([])


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
