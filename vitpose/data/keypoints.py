"""Keypoint metadata of the four datasets ViTPose trains on: COCO-17, AIC-14, MPII-16, CrowdPose-14.

One frozen record per dataset holds everything other modules need to know about its keypoints: names in
index order, the index each keypoint takes under a horizontal flip, the OKS sigmas, the upper / lower body
ids used by half-body augmentation, and the skeleton (0-based index pairs, for drawing). Facts from
REFERENCE §3, §4, §6 and the released dataset configs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vitpose.utils.errors import ConfigError


@dataclass(frozen=True)
class KeypointMeta:
    """Keypoint layout of one dataset.

    Attributes:
        name: dataset key (``"coco"``, ``"aic"``, ``"mpii"``, ``"crowdpose"``).
        keypoint_names: (K,) names in annotation order.
        flip_indices: (K,) ``flip_indices[k]`` is the keypoint that ``k`` becomes after a horizontal
            flip (its left/right counterpart, or itself).
        sigmas: (K,) float64 OKS per-keypoint sigmas (read-only).
        upper_body_ids / lower_body_ids: keypoint ids of each half, for half-body augmentation.
        skeleton: 0-based ``(i, j)`` index pairs of the limbs.
    """

    name: str
    keypoint_names: tuple[str, ...]
    flip_indices: tuple[int, ...]
    # Arrays make the generated __eq__/__hash__ ambiguous; identity of the other fields is enough.
    sigmas: np.ndarray = field(compare=False)
    upper_body_ids: tuple[int, ...]
    lower_body_ids: tuple[int, ...]
    skeleton: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        k = len(self.keypoint_names)
        sigmas = np.array(self.sigmas, dtype=np.float64)
        sigmas.setflags(write=False)  # shared module-level constants must not be edited in place
        object.__setattr__(self, "sigmas", sigmas)
        if sigmas.shape != (k,):
            raise ValueError(f"{self.name}: {sigmas.shape[0]} sigmas for {k} keypoints")
        if sorted(self.flip_indices) != list(range(k)):
            raise ValueError(f"{self.name}: flip_indices must be a permutation of 0..{k - 1}")
        if any(self.flip_indices[j] != i for i, j in enumerate(self.flip_indices)):
            raise ValueError(f"{self.name}: flip_indices must pair keypoints (an involution)")
        ids = sorted(self.upper_body_ids + self.lower_body_ids)
        if ids != list(range(k)):
            raise ValueError(f"{self.name}: upper and lower body ids must partition 0..{k - 1}")

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    @property
    def flip_pairs(self) -> tuple[tuple[int, int], ...]:
        """Left/right pairs ``(i, j)`` with ``i < j`` (keypoints on the midline are omitted)."""
        return tuple((i, j) for i, j in enumerate(self.flip_indices) if i < j)

    def index(self, keypoint_name: str) -> int:
        return self.keypoint_names.index(keypoint_name)


def _meta(name: str, names: list[str], sigmas: list[float], upper: list[str],
          skeleton: list[tuple[str, str]]) -> KeypointMeta:
    """Build a record from names: flip partners swap the ``left_`` / ``right_`` prefix."""
    def partner(n: str) -> str:
        if n.startswith("left_"):
            return "right_" + n[len("left_"):]
        if n.startswith("right_"):
            return "left_" + n[len("right_"):]
        return n

    idx = {n: i for i, n in enumerate(names)}
    return KeypointMeta(
        name=name,
        keypoint_names=tuple(names),
        flip_indices=tuple(idx[partner(n)] for n in names),
        sigmas=np.array(sigmas),
        upper_body_ids=tuple(idx[n] for n in names if n in upper),
        lower_body_ids=tuple(idx[n] for n in names if n not in upper),
        skeleton=tuple((idx[a], idx[b]) for a, b in skeleton),
    )


_ARMS = ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist"]

COCO = _meta(
    "coco",
    ["nose", "left_eye", "right_eye", "left_ear", "right_ear",
     "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
     "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"],
    [.026, .025, .025, .035, .035, .079, .079, .072, .072, .062, .062,
     .107, .107, .087, .087, .089, .089],
    ["nose", "left_eye", "right_eye", "left_ear", "right_ear"] + _ARMS,
    [("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("right_ankle", "right_knee"),
     ("right_knee", "right_hip"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
     ("right_shoulder", "right_hip"), ("left_shoulder", "right_shoulder"),
     ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"),
     ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"), ("left_eye", "right_eye"),
     ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"),
     ("right_eye", "right_ear"), ("left_ear", "left_shoulder"), ("right_ear", "right_shoulder")],
)

AIC = _meta(
    "aic",
    ["right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
     "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
     "head_top", "neck"],
    [0.01388152, 0.01515228, 0.01057665, 0.01417709, 0.01497891, 0.01402144, 0.03909642,
     0.03686941, 0.01981803, 0.03843971, 0.03412318, 0.02415081, 0.01291456, 0.01236173],
    _ARMS + ["head_top", "neck"],
    [("right_wrist", "right_elbow"), ("right_elbow", "right_shoulder"), ("right_shoulder", "neck"),
     ("neck", "left_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
     ("right_ankle", "right_knee"), ("right_knee", "right_hip"), ("right_hip", "left_hip"),
     ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("head_top", "neck"),
     ("right_shoulder", "right_hip"), ("left_shoulder", "left_hip")],
)

MPII = _meta(
    "mpii",
    ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
     "pelvis", "thorax", "upper_neck", "head_top",
     "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist"],
    # MPII has no OKS protocol; these COCO-derived values are the released config's (for OKS-NMS).
    [0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026, 0.026, 0.026,
     0.062, 0.072, 0.179, 0.179, 0.072, 0.062],
    _ARMS + ["thorax", "upper_neck", "head_top"],
    [("right_ankle", "right_knee"), ("right_knee", "right_hip"), ("right_hip", "pelvis"),
     ("pelvis", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
     ("pelvis", "thorax"), ("thorax", "upper_neck"), ("upper_neck", "head_top"),
     ("upper_neck", "right_shoulder"), ("right_shoulder", "right_elbow"),
     ("right_elbow", "right_wrist"), ("upper_neck", "left_shoulder"),
     ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist")],
)

CROWDPOSE = _meta(
    "crowdpose",
    ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
     "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
     "top_head", "neck"],
    [.079, .079, .072, .072, .062, .062, .107, .107, .087, .087, .089, .089, .079, .079],
    _ARMS + ["top_head", "neck"],
    [("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("right_ankle", "right_knee"),
     ("right_knee", "right_hip"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
     ("right_shoulder", "right_hip"), ("left_shoulder", "right_shoulder"),
     ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"),
     ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"), ("top_head", "neck"),
     ("right_shoulder", "neck"), ("left_shoulder", "neck")],
)

_REGISTRY: dict[str, KeypointMeta] = {m.name: m for m in (COCO, AIC, MPII, CROWDPOSE)}


def get_meta(name: str) -> KeypointMeta:
    """Metadata by dataset key (case-insensitive): ``coco``, ``aic``, ``mpii``, ``crowdpose``."""
    meta = _REGISTRY.get(str(name).lower())
    if meta is None:
        raise ConfigError(
            f"unknown keypoint dataset {name!r}; expected one of {', '.join(sorted(_REGISTRY))}")
    return meta
