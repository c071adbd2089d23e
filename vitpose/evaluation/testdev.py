"""COCO test-dev (paper Table 10): the image list, the file the evaluation server takes, its scores.

Test-dev's annotations are not public; the COCO evaluation server scores an uploaded results file.

- Image list: `image_info_test-dev2017.json` (COCO layout: `images` with id, file_name, width and
  height; `categories`; no `annotations`); the images are in `test2017/`.
- `TopDownTestDevDataset`: person crops of those images from a detection file in the released format
  (any detector's; the paper used BigDet's boxes, 68.5 person AP).
- Submission: COCO keypoint results (`image_id`, `category_id` 1, `keypoints` 17 x (x, y, score),
  `score`) in `person_keypoints_test-dev2017_<name>_results.json`, the upload page's
  `[type]_[testset]_[alg]_results.json`, zipped alone at the archive's root. `<name>` is letters,
  digits and hyphens (underscores separate the file name's fields). Coordinates and scores are
  rounded to 3 decimals (a thousandth of a pixel), which about halves the file.
  `check_submission` validates a .json or .zip against the image list: every result names an image
  of the list, category 1, 51 finite keypoint values and a finite score; every required image (by
  default every image of the list) has at least one result.
- Scores: `read_server_scores` reads what the server returned, in one of three forms (the date it
  was scored comes from the file's "date" or the caller):
    1. a JSON object of metrics, `{"AP": 0.809, "AP50": ..., "date": "YYYY-MM-DD"}`: keys among
       AP, AP50, AP75, APM, APL, AR, AR50, AR75, ARM, ARL (case and `_` ignored: `APm`, `AP_M`);
    2. pycocotools' stats, `{"stats": [10 numbers], "date": ...}`, in COCOeval's keypoint order;
    3. the text COCOeval.summarize() prints (the server's scoring log): its 10 "Average Precision" /
       "Average Recall" lines, in order.
  Values are fractions in [0, 1] as pycocotools gives them; a JSON file of percentages says
  `"unit": "percent"`. pycocotools' -1 (no ground truth in a bucket) becomes null. AP is required.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pycocotools.coco import COCO

from vitpose.data.dataset import TopDownDataset, _det_instances, _index_annotations, _load_json
from vitpose.data.formats import PERSON_CATEGORY_ID
from vitpose.data.keypoints import COCO as COCO_META
from vitpose.data.keypoints import KeypointMeta
from vitpose.evaluation.coco_eval import STAT_NAMES, check_results
from vitpose.utils.errors import DataError, UserError
from vitpose.utils.io import atomic_path, atomic_write_text

TESTSET = "test-dev2017"
DEFAULT_NAME = "vitpose"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_MEMBER = re.compile(rf"person_keypoints_{TESTSET}_({_NAME.pattern})_results\.json")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same results give the same archive bytes


def submission_file_name(name: str = DEFAULT_NAME) -> str:
    """`person_keypoints_test-dev2017_<name>_results.json`; UserError for a name the server's naming
    cannot carry."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UserError(f"submission name {name!r}: expected letters, digits and hyphens (the file name's "
                        f"fields are separated by underscores), e.g. {DEFAULT_NAME!r}")
    return f"person_keypoints_{TESTSET}_{name}_results.json"


def submission_zip_name(name: str = DEFAULT_NAME) -> str:
    """The archive uploaded to the server: the results file's name with `.zip`."""
    return submission_file_name(name)[: -len(".json")] + ".zip"


# ---------------------------------------------------------------------------------------- image list
def load_image_list(path: str | os.PathLike) -> COCO:
    """The test-dev image list indexed by pycocotools; DataError naming the file when malformed."""
    data = _load_json(str(path), "test-dev image list")
    if isinstance(data, dict) and data.get("annotations"):
        raise DataError(f"{path}: holds annotations; expected the test-dev image list "
                        f"(image_info_test-dev2017.json: images and categories only)")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not data["images"]:
        raise DataError(f"{path}: expected a COCO image list with a non-empty 'images' list")
    return _index_annotations(str(path), {**data, "annotations": []}, COCO_META.num_keypoints, COCO_META.name)


class TopDownTestDevDataset(TopDownDataset):
    """Crops of the detected persons (category 1, every score) on the images of a test-dev image list.

    `coco` indexes the image list; `detected_image_ids` are the images with at least one box (each
    gets at least one result after OKS-NMS).
    """

    def __init__(self, image_info: str | os.PathLike, img_dir: str | os.PathLike, det_file: str | os.PathLike,
                 input_size: tuple[int, int], heatmap_size: tuple[int, int],
                 meta: KeypointMeta = COCO_META) -> None:
        self.coco = load_image_list(image_info)
        instances = _det_instances(str(det_file), self.coco, 0.0)
        if not instances:
            raise DataError(f"{det_file}: no person (category {PERSON_CATEGORY_ID}) detection on the images of "
                            f"{image_info}")
        self.detected_image_ids = sorted({inst.image_id for inst in instances})
        super().__init__(instances, img_dir, meta, input_size, heatmap_size, train=False, ann_file=image_info)


# ---------------------------------------------------------------------------------------- submission
def validate_submission(results: Sequence[dict], image_list: COCO, image_info: str | os.PathLike,
                        source: str, required_ids: Sequence[int] | None = None) -> list[dict]:
    """Clean copies of `results` (image_id, category_id, keypoints, score) after the server's checks.

    DataError naming `source` for: a missing key, an image id not in the list, a category other than
    the person, keypoints that are not 51 finite numbers, a non-finite score, or an image of
    `required_ids` (default: every image of the list) without any result.
    """
    clean = check_results(results, image_list, COCO_META.num_keypoints, image_info, source)
    for i, res in enumerate(clean):
        if res["category_id"] != PERSON_CATEGORY_ID:
            raise DataError(f"result {i} for {source} (image_id {res['image_id']}) has category_id "
                            f"{res['category_id']}; expected {PERSON_CATEGORY_ID} (person)")
    required = set(image_list.getImgIds() if required_ids is None else required_ids)
    missing = sorted(required - {res["image_id"] for res in clean})
    if missing:
        shown = ", ".join(str(i) for i in missing[:10])
        raise DataError(f"{source}: no result for {len(missing)} image(s) of {image_info} (ids {shown}"
                        f"{' ...' if len(missing) > 10 else ''}); expected at least one per image")
    return clean


def _rounded(res: dict) -> dict:
    return {"image_id": res["image_id"], "category_id": res["category_id"],
            "keypoints": [round(v, 3) for v in res["keypoints"]], "score": round(res["score"], 3)}


def write_submission(results: Sequence[dict], image_list: COCO, image_info: str | os.PathLike,
                     out_dir: str | os.PathLike, name: str = DEFAULT_NAME,
                     required_ids: Sequence[int] | None = None) -> tuple[Path, Path]:
    """Validate, then write the results file and its zip into `out_dir` (atomically); returns both paths."""
    json_name = submission_file_name(name)
    out_dir = Path(out_dir)
    clean = validate_submission(results, image_list, image_info, str(out_dir / json_name), required_ids)
    text = json.dumps([_rounded(r) for r in clean], separators=(",", ":"))
    json_path, zip_path = out_dir / json_name, out_dir / submission_zip_name(name)
    atomic_write_text(json_path, text)
    with atomic_path(zip_path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(json_name, date_time=_ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, text)
    return json_path, zip_path


def _read_submission(path: Path) -> Any:
    if path.suffix != ".zip":
        return _load_json(str(path), "submission")
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/")]
            if len(members) != 1 or not _MEMBER.fullmatch(members[0]):
                raise DataError(f"{path}: expected one file named person_keypoints_{TESTSET}_<name>_results.json "
                                f"at the archive's root, found {members}")
            text = archive.read(members[0])
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable zip archive ({exc})") from None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: {members[0]} is not valid JSON ({exc})") from None


def check_submission(path: str | os.PathLike, image_info: str | os.PathLike,
                     required_ids: Sequence[int] | None = None) -> list[dict]:
    """Validate a submission (.json, or the .zip holding it) against the test-dev image list."""
    path = Path(path)
    if path.suffix == ".json" and not _MEMBER.fullmatch(path.name):
        raise DataError(f"{path}: expected the name person_keypoints_{TESTSET}_<name>_results.json")
    results = _read_submission(path)
    if not isinstance(results, list):
        raise DataError(f"{path}: expected a JSON list of keypoint results, got {type(results).__name__}")
    return validate_submission(results, load_image_list(image_info), image_info, str(path), required_ids)


# ---------------------------------------------------------------------------------------- server scores
@dataclass(frozen=True)
class ServerScores:
    """What the evaluation server returned: fractions (None = undefined), the scoring date, the form."""

    metrics: dict[str, float | None]
    date: str
    form: str  # "metrics" | "stats" | "summary"


_SUMMARY_LINE = re.compile(r"^\s*Average (Precision|Recall)\s.*=\s*(-?\d+(?:\.\d+)?)\s*$")
_KEYS = {name.upper(): name for name in STAT_NAMES}


def _parse_date(value: Any, path: Path) -> str:
    try:
        return datetime.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise DataError(f"{path}: date {value!r}: expected YYYY-MM-DD, the day the server scored it") from None


def _scores_from_json(data: Any, path: Path) -> tuple[dict[str, Any], str]:
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object (metrics, or pycocotools' 'stats'), got "
                        f"{type(data).__name__}")
    fields = {k: v for k, v in data.items() if k not in ("date", "unit")}
    if "stats" in fields:
        stats = fields.pop("stats")
        if fields or not isinstance(stats, list) or len(stats) != len(STAT_NAMES):
            raise DataError(f"{path}: stats: expected a list of {len(STAT_NAMES)} numbers in COCOeval's "
                            f"keypoint order ({', '.join(STAT_NAMES)}) and no other metric keys")
        return dict(zip(STAT_NAMES, stats)), "stats"
    metrics = {}
    for key, value in fields.items():
        name = _KEYS.get(key.upper().replace("_", "").replace(" ", ""))
        if name is None:
            raise DataError(f"{path}: key {key!r}: expected one of {', '.join(STAT_NAMES)}, 'stats', 'date' "
                            f"or 'unit'")
        metrics[name] = value
    return metrics, "metrics"


def _scores_from_summary(text: str, path: Path) -> dict[str, Any]:
    values = [float(m.group(2)) for line in text.splitlines() if (m := _SUMMARY_LINE.match(line))]
    if len(values) != len(STAT_NAMES):
        raise DataError(f"{path}: expected a JSON object or COCOeval.summarize()'s text with "
                        f"{len(STAT_NAMES)} 'Average Precision' / 'Average Recall' lines, found {len(values)}")
    return dict(zip(STAT_NAMES, values))


def _fractions(metrics: dict[str, Any], percent: bool, path: Path) -> dict[str, float | None]:
    top = 100.0 if percent else 1.0
    out: dict[str, float | None] = {}
    for name in STAT_NAMES:
        value = metrics.get(name)
        if value is None or (isinstance(value, (int, float)) and value == -1):
            out[name] = None  # absent, or pycocotools' "no ground truth in this bucket"
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0.0 <= value <= top:
            expected = "a percentage in [0, 100]" if percent else "a fraction in [0, 1]"
            hint = "" if percent else '; for percentages add "unit": "percent" to the file'
            raise DataError(f"{path}: {name}: expected {expected}, got {value!r}{hint}")
        out[name] = float(value) / top
    if out["AP"] is None:
        raise DataError(f"{path}: AP: missing; the server's scores must include AP")
    return out


def read_server_scores(path: str | os.PathLike, date: str | None = None) -> ServerScores:
    """The evaluation server's scores (forms: module docstring); `date` overrides the file's."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (the COCO server's scores, placed by hand)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the server's scores ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if data is None:
        metrics, form, unit, file_date = _scores_from_summary(text, path), "summary", None, None
    else:
        metrics, form = _scores_from_json(data, path)
        unit, file_date = data.get("unit"), data.get("date")
    if unit not in (None, "fraction", "percent"):
        raise DataError(f"{path}: unit {unit!r}: expected 'fraction' (the default) or 'percent'")
    if date is None and file_date is None:
        raise DataError(f"{path}: no scoring date; add \"date\": \"YYYY-MM-DD\" (the day the COCO server scored "
                        f"the submission) to the file, or give it on the command line")
    return ServerScores(_fractions(metrics, unit == "percent", path),
                        _parse_date(date if date is not None else file_date, path), form)


def scored_label(date: str) -> str:
    """The label Table 10's test-dev cells carry: the scores are the server's, not this code's."""
    return f"scored by the COCO server on {date}"
