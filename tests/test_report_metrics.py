"""The vitpose-metrics/1 validator: good files load, bad ones fail naming the file and the key."""
from __future__ import annotations

import copy
import json
import re

import pytest

from vitpose.report.metrics import MetricsError, collect_metrics, load_metrics, validate_metrics
from vitpose.utils.errors import UserError


def example(run: str = "ft-vitpose-b-classic-256x192", scale: str = "smoke") -> dict:
    """The example of docs/DEVELOPING.md."""
    return {
        "schema": "vitpose-metrics/1", "run": run, "scale": scale, "synthetic": True,
        "serves": [{"table": 2, "row": "vitpose-b/classic"}, {"table": 4, "row": "256x192"}],
        "config": {"model": {"arch": "vitpose-b"}}, "config_hash": "0" * 64, "git_commit": None,
        "dataset": "coco", "split": "val", "boxes": "detected",
        "metrics": {"AP": 0.758, "AP50": 0.907, "AP75": 0.832, "APM": 0.0, "APL": 0.0,
                    "AR": 0.811, "AR50": 0.946, "AR75": 0.877, "ARM": 0.0, "ARL": None},
        "params_M": 86.0, "backbone_params_M": 85.8, "gflops": 17.1, "trainable_gflops": 17.1,
        "train_memory_MB": 14090.0,
        "throughput": {"images_per_s": 944.0, "device": "NVIDIA A100", "batch": 64, "precision": "fp32"},
        "wall_time_s": 123.4,
    }


def write(path, doc) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))


def test_the_documented_example_is_valid(tmp_path):
    p = tmp_path / "metrics.json"
    write(p, example())
    assert load_metrics(p) == example()


def test_optional_keys_may_be_absent_or_null():
    doc = {k: v for k, v in example().items()
           if k in ("schema", "run", "scale", "synthetic", "serves", "metrics")}
    doc["metrics"] = {"PCKh": 0.9}
    assert validate_metrics(doc) is doc
    doc.update(gflops=None, throughput=None, git_commit=None, config=None)
    validate_metrics(doc)


def _set(doc: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    target = doc
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return doc


@pytest.mark.parametrize("dotted,value,key,expected", [
    ("run", KeyError, "run", "to be present"),
    ("schema", "vitpose-metrics/0", "schema", "'vitpose-metrics/1'"),
    ("synthetic", "yes", "synthetic", "true or false"),
    ("metrics.AP", 75.8, "metrics.AP", "a fraction in [0, 1]"),      # forgot that the report does x100
    ("metrics.APM", -1, "metrics.APM", "use null"),                   # pycocotools' "undefined"
    ("metrics.AR", "0.8", "metrics.AR", "a fraction"),
    ("metrics", [0.7], "metrics", "an object"),
    ("serves", {"table": 2}, "serves", "a list"),
    ("serves.0.table", 11, "serves[0].table", "from 2 to 10"),
    ("serves.0.table", True, "serves[0].table", "from 2 to 10"),
    ("serves.0.row", "", "serves[0].row", "a row key"),
    ("param_M", 86.0, "param_M", "one of the schema's keys"),        # a typo is not silently ignored
    ("gflops", -1.0, "gflops", "non-negative number"),
    ("params_M", "86", "params_M", "non-negative number"),
    ("throughput.images_per_s", "fast", "throughput.images_per_s", "a positive number"),
    ("throughput.batch", 6.4, "throughput.batch", "a positive integer"),
    ("throughput.fps", 3.0, "throughput.fps", "one of images_per_s"),
    ("git_commit", 123, "git_commit", "a string or null"),
])
def test_schema_violations_name_the_file_and_the_key(tmp_path, dotted, value, key, expected):
    p = tmp_path / "results" / "smoke" / "r" / "metrics.json"
    write(p, _set(example(), dotted, value))
    with pytest.raises(MetricsError) as err:
        load_metrics(p)
    message = str(err.value)
    assert message.startswith(f"{p}: key {key!r}: expected"), message
    assert expected in message
    assert isinstance(err.value, UserError)


@pytest.mark.parametrize("text,expected", [
    ('{"schema": "vitpose-metrics/1", ', "not valid JSON"),
    ("", "not valid JSON"),
    ('[1, 2]', "expected a JSON object"),
    (json.dumps(example()).replace("944.0", "NaN"), "NaN is not a JSON number"),
])
def test_corrupt_files_name_the_file(tmp_path, text, expected):
    p = tmp_path / "metrics.json"
    write(p, text)
    with pytest.raises(MetricsError, match=re.escape(str(p)) + ".*" + re.escape(expected)):
        load_metrics(p)


def test_unreadable_file_names_the_file(tmp_path):
    with pytest.raises(MetricsError, match=re.escape(str(tmp_path / "nope.json"))):
        load_metrics(tmp_path / "nope.json")
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(MetricsError, match=re.escape(str(binary))):
        load_metrics(binary)


def test_collect_reads_every_run_of_the_scale_only(tmp_path):
    write(tmp_path / "smoke" / "b" / "metrics.json", example("b"))
    write(tmp_path / "smoke" / "a" / "metrics.json", example("a"))
    write(tmp_path / "smoke" / "group" / "c" / "metrics.json", example("c"))  # nested: results/<scale>/**
    write(tmp_path / "paper" / "d" / "metrics.json", example("d", scale="paper"))
    (tmp_path / "smoke" / "e").mkdir()  # a run directory without metrics yet
    docs = collect_metrics(tmp_path, "smoke")
    assert [d["run"] for d in docs] == ["a", "b", "c"]
    assert docs[0]["_path"] == str(tmp_path / "smoke" / "a" / "metrics.json")
    assert collect_metrics(tmp_path, "tiny") == []
    assert [d["run"] for d in collect_metrics(tmp_path, "paper")] == ["d"]


def test_collect_rejects_a_file_of_another_scale_or_run(tmp_path):
    p = tmp_path / "smoke" / "a" / "metrics.json"
    write(p, example("a", scale="paper"))
    with pytest.raises(MetricsError, match=re.escape(f"{p}: key 'scale': expected 'smoke'")):
        collect_metrics(tmp_path, "smoke")
    write(p, example("b"))
    with pytest.raises(MetricsError, match=re.escape(f"{p}: key 'run': expected 'a'")):
        collect_metrics(tmp_path, "smoke")


def test_collect_rejects_duplicate_run_ids(tmp_path):
    write(tmp_path / "smoke" / "x" / "a" / "metrics.json", example("a"))
    write(tmp_path / "smoke" / "y" / "a" / "metrics.json", example("a"))
    with pytest.raises(MetricsError, match="must be unique"):
        collect_metrics(tmp_path, "smoke")


def test_validation_does_not_modify_the_document():
    doc = example()
    before = copy.deepcopy(doc)
    validate_metrics(doc)
    assert doc == before
