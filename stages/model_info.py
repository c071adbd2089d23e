"""Parameters and GFLOPs of a model (paper Tables 5, 6, 9).

    python -m stages.model_info --model vitpose-b --decoder classic --input 256x192 --json
"""
from __future__ import annotations

import argparse
import json
import sys

from stages._cli import run_main
from vitpose.models.cli import add_model_args, config_from_args
from vitpose.models.info import model_info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.model_info", description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    info = model_info(config_from_args(args))
    if args.json:
        print(json.dumps(info))
    else:
        for key, value in info.items():
            if key != "config":
                print(f"{key:20s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
