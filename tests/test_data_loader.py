"""build_dataloader: batches, deterministic order and augmentation from (seed, epoch), worker
independence, resumption, and the distributed split."""
import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import vitpose.data.loader as loader_mod
from vitpose.data.dataset import SampleKey, TopDownCocoDataset
from vitpose.data.keypoints import COCO
from vitpose.data.loader import build_dataloader
from vitpose.data.synthetic import generate_synthetic_coco
from vitpose.utils.errors import ConfigError


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    generate_synthetic_coco(root, seed=2, num_train=6, num_val=2, progress=False)
    return TopDownCocoDataset(root / "annotations/person_keypoints_train2017.json", root / "train2017",
                              COCO, (64, 48), (16, 12), train=True)


def _epoch(loader, epoch):
    loader.sampler.set_epoch(epoch)
    return list(loader)


def _same(a, b):
    return len(a) == len(b) and all(torch.equal(x[k], y[k]) for x, y in zip(a, b) for k in x)


def test_batches_are_collated(ds):
    loader = build_dataloader(ds, batch_size=4, shuffle=True, num_workers=0, seed=0, drop_last=True)
    batches = list(loader)
    assert len(batches) == len(ds) // 4 and len(loader) == len(ds) // 4
    b = batches[0]
    assert tuple(b["img"].shape) == (4, 3, 64, 48) and tuple(b["target"].shape) == (4, 17, 16, 12)
    assert tuple(b["image_id"].shape) == (4,) and b["flipped"].dtype == torch.bool


def test_order_and_augmentation_follow_seed_and_epoch(ds):
    make = lambda seed: build_dataloader(ds, 5, shuffle=True, num_workers=0, seed=seed, drop_last=False)
    a0, b0 = _epoch(make(0), 0), _epoch(make(0), 0)
    assert _same(a0, b0)
    assert not _same(a0, _epoch(make(0), 1))
    assert not _same(a0, _epoch(make(1), 0))
    # the sampler hands each index its (seed, epoch)
    keys = list(make(7).sampler)
    assert all(isinstance(k, SampleKey) and k.seed == 7 and k.epoch == 0 for k in keys)
    assert sorted(k.index for k in keys) == list(range(len(ds)))


def test_no_shuffle_is_sequential(ds):
    loader = build_dataloader(ds, 4, shuffle=False, num_workers=0, seed=0, drop_last=False)
    assert [k.index for k in loader.sampler] == list(range(len(ds)))
    ids = torch.cat([b["image_id"] for b in _epoch(loader, 3)]).tolist()
    assert ids == [inst.image_id for inst in ds.instances]


def test_workers_and_resumption_reproduce_the_same_batches(ds):
    """Persistent workers give the batches of the single-process loader, epoch after epoch, and a
    loader built fresh at epoch 2 (a resumed run) sees what the long-running one saw."""
    ref = build_dataloader(ds, 4, shuffle=True, num_workers=0, seed=3, drop_last=False)
    par = build_dataloader(ds, 4, shuffle=True, num_workers=2, seed=3, drop_last=False)
    assert par.persistent_workers and not ref.persistent_workers
    for epoch in range(3):
        assert _same(_epoch(ref, epoch), _epoch(par, epoch)), epoch
    resumed = build_dataloader(ds, 4, shuffle=True, num_workers=0, seed=3, drop_last=False, epoch=2)
    assert _same(list(resumed), _epoch(ref, 2))


def test_plain_datasets_get_plain_indices():
    data = TensorDataset(torch.arange(10.0))
    loader = build_dataloader(data, 3, shuffle=True, num_workers=0, seed=0, drop_last=False)
    assert sorted(torch.cat([b[0] for b in loader]).tolist()) == list(map(float, range(10)))


def test_distributed_ranks_split_the_epoch(ds, monkeypatch):
    with pytest.raises(ConfigError, match="not initialised"):
        build_dataloader(ds, 2, shuffle=True, num_workers=0, seed=0, drop_last=False, distributed=True)
    seen = []
    for rank in (0, 1):
        monkeypatch.setattr(loader_mod.dist, "is_initialized", lambda: True)
        monkeypatch.setattr(loader_mod.dist, "get_world_size", lambda: 2)
        monkeypatch.setattr(loader_mod.dist, "get_rank", lambda r=rank: r)
        loader = build_dataloader(ds, 2, shuffle=True, num_workers=0, seed=0, drop_last=False,
                                  distributed=True)
        seen.append([k.index for k in loader.sampler])
    assert len(seen[0]) == len(seen[1]) == int(np.ceil(len(ds) / 2))
    assert set(seen[0]) | set(seen[1]) == set(range(len(ds)))


def test_bad_arguments(ds):
    with pytest.raises(ConfigError, match="batch_size"):
        build_dataloader(ds, 0, shuffle=True, num_workers=0, seed=0, drop_last=False)
    with pytest.raises(ConfigError, match="num_workers"):
        build_dataloader(ds, 1, shuffle=True, num_workers=-1, seed=0, drop_last=False)
