"""MPII PCKh: a joint is correct when its error is within a fraction of the head size (REFERENCE §6).

:func:`pckh_per_joint` / :func:`pckh` are the arithmetic; :func:`evaluate_mpii` is mmpose's MPII
protocol against the released ``mpii_gt_val.mat``: predictions of ``mpii_val.json``'s people in file
order, moved to MATLAB's 1-based pixels (+ 1), compared with ``pos_gt_src`` where ``jnt_missing`` is 0;
head size ``0.6 ×`` the head-box diagonal; ``PCKh`` (threshold 0.5) and ``PCKh@0.1`` pooled over the
joints without pelvis and thorax (each joint weighted by its annotated count), plus mmpose's per-part
rates (left/right averaged).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vitpose.data.formats import MPII_MAT_JOINTS, MPII_MAT_VARIABLES
from vitpose.data.keypoints import MPII
from vitpose.utils.errors import DataError
from vitpose.utils.io import atomic_write_json

GT_MAT_FILE = "mpii_gt_val.mat"
# mmpose's per-part summary: the rate of each joint, left and right averaged.
PARTS = {"Head": ("head",), "Shoulder": ("lsho", "rsho"), "Elbow": ("lelb", "relb"),
         "Wrist": ("lwri", "rwri"), "Hip": ("lhip", "rhip"), "Knee": ("lkne", "rkne"),
         "Ankle": ("lank", "rank")}
METRIC_NAMES = ("PCKh", "PCKh@0.1", *PARTS)

# Head size = 0.6 × head-box diagonal, the MPII protocol's normaliser.
HEAD_SIZE_FACTOR = 0.6


def pckh_per_joint(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    head_boxes: np.ndarray,
    threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint hit counts of PCKh@``threshold``.

    Args:
        pred: (N, K, 2) predicted ``(x, y)``; gt: (N, K, 2) ground truth, same image frame.
        visible: (N, K) 1 where the joint is annotated (only those are scored).
        head_boxes: (N, 4) head boxes ``x1, y1, x2, y2``.
        threshold: fraction of the head size.

    Returns:
        hits: (K,) number of visible joints with ``|pred - gt| / head_size ≤ threshold``.
        counts: (K,) number of visible joints.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    visible = np.asarray(visible) > 0
    head_boxes = np.asarray(head_boxes, dtype=np.float64).reshape(-1, 4)
    if pred.shape != gt.shape or pred.shape[:2] != visible.shape or len(head_boxes) != len(pred):
        raise ValueError(
            f"pckh: shapes disagree: pred {pred.shape}, gt {gt.shape}, visible {visible.shape}, "
            f"head_boxes {head_boxes.shape}"
        )
    head_size = HEAD_SIZE_FACTOR * np.linalg.norm(head_boxes[:, 2:] - head_boxes[:, :2], axis=1)
    bad = np.flatnonzero(~(head_size > 0))
    if bad.size:
        raise DataError(f"pckh: instance(s) {bad[:10].tolist()} have an empty head box")
    error = np.linalg.norm(pred - gt, axis=-1) / head_size[:, None]                # (N, K)
    hits = ((error <= threshold) & visible).sum(axis=0)
    return hits, visible.sum(axis=0)


def pckh(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    head_boxes: np.ndarray,
    threshold: float = 0.5,
    exclude: Sequence[int] = (MPII.index("pelvis"), MPII.index("thorax")),
) -> float:
    """Mean PCKh over joints weighted by their visible counts, without pelvis and thorax (MPII).

    Equal to (hits / visible) pooled over the kept joints; a fraction in [0, 1].
    """
    hits, counts = pckh_per_joint(pred, gt, visible, head_boxes, threshold)
    keep = np.ones(len(counts), dtype=bool)
    keep[list(exclude)] = False
    total = counts[keep].sum()
    if total == 0:
        raise DataError("pckh: no visible joints to score")
    return float(hits[keep].sum() / total)


@dataclass(frozen=True)
class MpiiGroundTruth:
    """The content of ``mpii_gt_val.mat`` as arrays per person.

    joints (N, K, 2) MATLAB (1-based) pixels, visible (N, K) bool, head_boxes (N, 4) ``x1, y1, x2, y2``,
    joint_names the K ``dataset_joints``, path the file.
    """

    joints: np.ndarray
    visible: np.ndarray
    head_boxes: np.ndarray
    joint_names: tuple[str, ...]
    path: str

    def __len__(self) -> int:
        return len(self.joints)


def _cell_strings(value: Any) -> list[str]:
    """The strings of a MATLAB cell / char array as scipy.io.loadmat returns it."""
    out = []
    for el in np.asarray(value, dtype=object).ravel():
        arr = np.asarray(el).ravel()
        out.append(str(arr[0]) if arr.size else "")
    return out


def load_mpii_gt(gt_mat: str | Path) -> MpiiGroundTruth:
    """Read ``mpii_gt_val.mat``; DataError naming the file and the variable on any defect."""
    from scipy.io import loadmat

    gt_mat = Path(gt_mat)
    if not gt_mat.is_file():
        raise DataError(f"{gt_mat}: MPII ground-truth file not found; PCKh needs the {GT_MAT_FILE} "
                        f"of OpenMMLab's mpii_annotations.tar next to mpii_val.json (docs/DATA.md)")
    try:
        mat = loadmat(str(gt_mat))
    except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError... for non-.mat bytes
        raise DataError(f"{gt_mat}: not a readable MATLAB file ({type(exc).__name__}: {exc})") from None
    missing = [k for k in MPII_MAT_VARIABLES if k not in mat]
    if missing:
        raise DataError(f"{gt_mat}: lacks variable(s) {', '.join(missing)}; expected "
                        + "; ".join(f"{k} {v}" for k, v in MPII_MAT_VARIABLES.items()))
    names = tuple(_cell_strings(mat["dataset_joints"]))
    if names != MPII_MAT_JOINTS:
        raise DataError(f"{gt_mat}: dataset_joints is {list(names)}; expected the MPII order "
                        f"{list(MPII_MAT_JOINTS)}")
    k = len(names)
    pos = np.asarray(mat["pos_gt_src"], dtype=np.float64)
    missing_j = np.asarray(mat["jnt_missing"], dtype=np.float64)
    heads = np.asarray(mat["headboxes_src"], dtype=np.float64)
    if pos.ndim == 2 and pos.shape == (k, 2):          # MATLAB drops a trailing singleton (N = 1)
        pos, missing_j, heads = pos[..., None], missing_j.reshape(k, 1), heads.reshape(2, 2, 1)
    if pos.ndim != 3 or pos.shape[:2] != (k, 2):
        raise DataError(f"{gt_mat}: pos_gt_src has shape {pos.shape}; expected ({k}, 2, N)")
    n = pos.shape[2]
    if missing_j.shape != (k, n):
        raise DataError(f"{gt_mat}: jnt_missing has shape {missing_j.shape}; expected ({k}, {n})")
    if heads.shape != (2, 2, n):
        raise DataError(f"{gt_mat}: headboxes_src has shape {heads.shape}; expected (2, 2, {n})")
    return MpiiGroundTruth(
        joints=pos.transpose(2, 0, 1),                            # (N, K, 2)
        visible=(missing_j.T == 0),                               # (N, K)
        head_boxes=heads.transpose(2, 0, 1).reshape(n, 4),        # (N, [x1, y1, x2, y2])
        joint_names=names,
        path=str(gt_mat),
    )


def _prediction_array(predictions: Any, n: int, k: int, where: str) -> np.ndarray:
    """(N, K, 3) predictions from an (N, K, 2|3) array or a list of ``{instance_index, keypoints}``."""
    if isinstance(predictions, (list, tuple)) and predictions and isinstance(predictions[0], dict):
        by_index: dict[int, Any] = {}
        for i, res in enumerate(predictions):
            if not isinstance(res, dict) or "instance_index" not in res or "keypoints" not in res:
                raise DataError(f"{where}: prediction {i} lacks instance_index or keypoints")
            by_index.setdefault(int(res["instance_index"]), res["keypoints"])   # first wins, as mmpose
        if sorted(by_index) != list(range(len(by_index))):
            absent = sorted(set(range(n)) - set(by_index))[:10]
            raise DataError(f"{where}: predictions must cover instance_index 0..N-1 once each; missing "
                            f"{absent}, got {len(by_index)} distinct indices")
        rows = []
        for i in range(len(by_index)):
            row = np.asarray(by_index[i], dtype=np.float64).reshape(-1)
            if row.size not in (2 * k, 3 * k):
                raise DataError(f"{where}: prediction for instance_index {i} has {row.size} values; "
                                f"expected {3 * k} (x, y, score per joint) or {2 * k}")
            rows.append(row.reshape(k, -1)[:, :3] if row.size == 3 * k else
                        np.concatenate([row.reshape(k, 2), np.ones((k, 1))], axis=1))
        arr = np.stack(rows)
    else:
        arr = np.asarray(predictions, dtype=np.float64)
        if arr.ndim != 3 or arr.shape[1] != k or arr.shape[2] not in (2, 3):
            raise DataError(f"{where}: predictions have shape {arr.shape}; expected (N, {k}, 2 or 3) "
                            f"image-pixel keypoints of mpii_val.json's people in file order")
        if arr.shape[2] == 2:
            arr = np.concatenate([arr, np.ones(arr.shape[:2] + (1,))], axis=2)
    if len(arr) != n:
        raise DataError(f"{where}: {len(arr)} predicted people, but the ground truth has {n} (one per "
                        f"entry of mpii_val.json, in file order, no NMS)")
    if not np.all(np.isfinite(arr[..., :2])):
        raise DataError(f"{where}: predictions hold non-finite coordinates")
    return arr


def evaluate_mpii(
    predictions: Any,
    gt_mat: str | Path,
    results_file: str | Path | None = None,
    ann_file: str | Path | None = None,
) -> dict[str, float]:
    """MPII PCKh of ``predictions`` against ``gt_mat`` (mmpose's protocol, module docstring).

    Args:
        predictions: (N, 16, 2|3) keypoints in 0-based image pixels of the N people of
            ``mpii_val.json`` in file order (the order of ``build_topdown_dataset("mpii", ...,
            train=False)``, without NMS or rescoring), or a list of ``{"instance_index", "keypoints"}``
            (flat ``[x, y, score] × 16``) in any order.
        gt_mat: ``mpii_gt_val.mat``.
        results_file: where the predictions are written (JSON list of ``{instance_index, keypoints}``,
            atomically, after the evaluation succeeded); None writes nothing.
        ann_file: ``mpii_val.json``; when given, its number of entries must match ``gt_mat``'s.

    Returns:
        ``PCKh`` (@0.5) and ``PCKh@0.1`` (fractions) and the per-part rates ``Head``, ``Shoulder``,
        ``Elbow``, ``Wrist``, ``Hip``, ``Knee``, ``Ankle`` (-1 for a part without annotated joints).
    """
    gt = load_mpii_gt(gt_mat)
    if ann_file is not None:
        from vitpose.data.mpii import load_mpii_annotations

        entries = load_mpii_annotations(ann_file, MPII.num_keypoints, require_joints=False)
        if len(entries) != len(gt):
            raise DataError(f"{ann_file}: {len(entries)} people, but {gt.path} has {len(gt)}; "
                            f"{GT_MAT_FILE} belongs to mpii_val.json (2,958 people)")
    k = len(gt.joint_names)
    pred = _prediction_array(predictions, len(gt), k, f"MPII predictions for {gt.path}")
    visible = gt.visible.copy()
    keep = np.ones(k, dtype=bool)
    keep[[gt.joint_names.index("pelv"), gt.joint_names.index("thor")]] = False
    if not visible[:, keep].any():
        raise DataError(f"{gt.path}: no annotated joint (other than pelvis and thorax) to score")
    head_size = HEAD_SIZE_FACTOR * np.linalg.norm(gt.head_boxes[:, 2:] - gt.head_boxes[:, :2], axis=1)
    bad = np.flatnonzero(~(head_size > 0) & visible.any(axis=1))
    if bad.size:
        raise DataError(f"{gt.path}: person(s) {bad[:10].tolist()} have an empty head box in headboxes_src")
    # People without annotated joints do not count; give them a unit head so the division is defined.
    boxes = np.where((head_size > 0)[:, None], gt.head_boxes, np.array([0.0, 0.0, 1.0, 1.0]))
    joints = np.where(visible[..., None], gt.joints, 0.0)          # NaN / placeholder of missing joints
    pred_1based = pred[..., :2] + 1.0                                # 0-based → MATLAB pixels
    metrics: dict[str, float] = {}
    rates = {}
    for name, threshold in (("PCKh", 0.5), ("PCKh@0.1", 0.1)):
        hits, counts = pckh_per_joint(pred_1based, joints, visible, boxes, threshold)
        metrics[name] = float(hits[keep].sum() / counts[keep].sum())
        if threshold == 0.5:
            rates = {j: (hits[i] / counts[i] if counts[i] else math.nan)
                     for i, j in enumerate(gt.joint_names)}
    for part, members in PARTS.items():
        values = [rates[m] for m in members]
        metrics[part] = -1.0 if any(math.isnan(v) for v in values) else float(np.mean(values))
    if results_file is not None:
        atomic_write_json(results_file, [{"instance_index": i, "keypoints": [float(v) for v in row.reshape(-1)]}
                                         for i, row in enumerate(pred)], indent=None)
    return metrics
