"""The Table 10 job of a run: a model or an ensemble on COCO val (scored here) and on test-dev (the
submission for the COCO server), from the same flip-tested, averaged heatmaps.

Every input is checked (test-dev image list and detections, members' weights) before any inference.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from vitpose.config import RUN_FILES, RunConfig
from vitpose.engine.ensemble import load_ensemble
from vitpose.engine.inference import evaluate, inference_device, predict
from vitpose.evaluation.testdev import DEFAULT_NAME, TopDownTestDevDataset, write_submission
from vitpose.utils.errors import ConfigError

VAL_RESULTS_FILE = RUN_FILES["val_keypoints"]


def submit_testdev(
    cfg: RunConfig,
    checkpoints: Sequence[str | os.PathLike],
    image_info: str | os.PathLike,
    det_file: str | os.PathLike,
    images: str | os.PathLike,
    out_dir: str | os.PathLike,
    name: str = DEFAULT_NAME,
    progress: bool = True,
) -> dict:
    """Evaluate the ensemble of `checkpoints` on the run's val split and write its test-dev submission.

    Writes into `out_dir`: VAL_RESULTS_FILE (val COCO results) and the submission's .json and .zip
    (evaluation/testdev.py). Returns {"val": COCO metrics, "members": [model configs], "testdev":
    {"images", "images_with_results", "detections", "results", "json", "zip"}}.
    """
    ensemble = load_ensemble(checkpoints)
    if ensemble.cfg.input_size != cfg.model.input_size:
        raise ConfigError(f"run {cfg.run}: model.input_size is {cfg.model.input_size}, but the models' (the "
                          f"largest member's) is {ensemble.cfg.input_size} ({', '.join(map(str, checkpoints))})")
    testdev = TopDownTestDevDataset(image_info, images, det_file, ensemble.cfg.input_size,
                                    ensemble.cfg.heatmap_size)
    # Table 10 is COCO's: datasets a member was also trained on (AIC) play no part in its evaluation.
    cfg = dataclasses.replace(cfg, extra_data=[])
    val = evaluate(cfg, None, out_dir, progress=progress, model=ensemble, results_file=VAL_RESULTS_FILE)
    ev = cfg.eval
    results = predict(ensemble, testdev, ev.batch_size, ev.flip_test, inference_device(),
                      nms_threshold=ev.nms_threshold, rescore_threshold=ev.rescore_threshold,
                      num_workers=cfg.data.num_workers, progress=progress)
    json_path, zip_path = write_submission(results, testdev.coco, image_info, out_dir, name,
                                           required_ids=testdev.detected_image_ids)
    return {
        "val": val,
        "members": [m.cfg.to_dict() for m in ensemble.members],
        "testdev": {"images": len(testdev.coco.getImgIds()),
                    "images_with_results": len(testdev.detected_image_ids),
                    "detections": len(testdev), "results": len(results),
                    "json": Path(json_path).name, "zip": Path(zip_path).name},
    }
