"""Names of the COCO-format results files an evaluation writes into a run's result directory.

Kept apart from engine/inference.py (which needs torch) so that the evaluate stage's launching process
can name its outputs without importing it.
"""
from __future__ import annotations

RESULTS_FILE = "results_keypoints.json"
# A multi-dataset run's other datasets (decoders 1..): their results beside RESULTS_FILE.
DATASET_RESULTS_FILE = "results_keypoints_{name}.json"


def dataset_results_file(cfg, d: int) -> str:
    """File name of dataset d's results (``cfg``: a RunConfig): RESULTS_FILE for the primary (d = 0),
    else `results_keypoints_<name>.json`."""
    return RESULTS_FILE if d == 0 else DATASET_RESULTS_FILE.format(name=cfg.datasets[d].dataset)
