"""Data: keypoint metadata, the synthetic COCO-format dataset, the top-down dataset and its loader.

``vitpose.data.codec`` (UDP heatmaps) and ``vitpose.data.affine`` (UDP warp) are imported directly.
"""
from typing import Any

from vitpose.data.dataset import SampleKey, TopDownCocoDataset
from vitpose.data.keypoints import AIC, COCO, CROWDPOSE, MPII, KeypointMeta, get_meta
from vitpose.data.loader import build_dataloader
from vitpose.data.transforms import AugmentConfig

__all__ = [
    "AIC", "COCO", "CROWDPOSE", "MPII", "AugmentConfig", "KeypointMeta", "SampleKey",
    "TopDownCocoDataset", "build_dataloader", "generate_synthetic_coco", "get_meta",
]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `python -m vitpose.data.synthetic` does not import itself twice.
    if name == "generate_synthetic_coco":
        from vitpose.data.synthetic import generate_synthetic_coco
        return generate_synthetic_coco
    raise AttributeError(f"module 'vitpose.data' has no attribute {name!r}")
