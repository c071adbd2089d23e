"""Knowledge-token training (Table 8, paper Eq. 5): `python -m stages.token --config results/S/token-RUN/config.json`.

The run (a token run of the registry, `token-<teacher run>`) holds the teacher's architecture (`model`),
its weights (`distill.teacher_checkpoint`: the teacher run's model.pth), the keypoint data and the token's
short schedule (`train`, from params.yaml `distillation.token`). The teacher is frozen; one token in
front of its patch tokens is trained against the ground-truth heatmaps. Same loop as finetuning
(vitpose/engine/trainer.py with vitpose/engine/distill.py's objective): launcher job, resume, requeue.

Output (atomically, when training has finished): `results/<scale>/<run>/knowledge_token.pth`, a dict with
`token` (1, 1, C_teacher) and `meta`, read by the students that distil this teacher with a token.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from stages import finetune
from stages._cli import run_main


def main(argv: Sequence[str] | None = None) -> int:
    parser = finetune.build_parser("python -m stages.token", __doc__.splitlines()[0], "knowledge_token.pth")
    return finetune.main(argv, stage="token", parser=parser)


if __name__ == "__main__":
    sys.exit(run_main(main))
