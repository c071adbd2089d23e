"""train_log.jsonl: a kill during an append leaves half a last line; resume drops it (and only it)."""
from __future__ import annotations

import errno
import json
import os

import pytest

from engine_support import assert_same_weights, log_rows, make_synthetic, tiny_config, weights
from vitpose.config import RunConfig
from vitpose.engine.trainer import LOG_FILE, train
from vitpose.engine.trainlog import TrainLog, read_train_log
from vitpose.utils.errors import CheckpointError, OutputError
from vitpose.utils.io import append_line


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("syn") / "coco", num_train=8, num_val=2)


def _record(i: int) -> str:
    return json.dumps({"iter": i, "epoch": 0, "loss": 0.5 / i, "lr": 1e-3, "time": 0.01})


def test_resume_drops_a_torn_last_line(tiny_data, tmp_path):
    cfg = RunConfig.from_dict(tiny_config(tiny_data))
    train(cfg, tmp_path / "ref", tmp_path / "ref.pth", progress=False)
    part = train(cfg, tmp_path / "run", tmp_path / "run.pth", stop_after_iters=3, progress=False)
    assert part["interrupted"]
    # A kill inside the append of iteration 4's record: half a line, no newline.
    with open(tmp_path / "run" / LOG_FILE, "a") as f:
        f.write(_record(4)[:17])
    done = train(cfg, tmp_path / "run", tmp_path / "run.pth", progress=False)  # old code: JSONDecodeError
    assert done["resumed_from"] == 3 and not done["interrupted"]
    assert log_rows(tmp_path / "run") == log_rows(tmp_path / "ref")
    assert_same_weights(weights(tmp_path / "ref.pth"), weights(tmp_path / "run.pth"))


def test_reader_tolerates_only_a_torn_last_line(tmp_path):
    path = tmp_path / LOG_FILE
    path.write_text(_record(1) + "\n" + _record(2) + "\n" + _record(3)[:9])
    assert [r["iter"] for r in read_train_log(path)] == [1, 2]
    path.write_text(_record(1) + "\n" + _record(2) + "\n\n")  # trailing blank lines are harmless
    assert [r["iter"] for r in read_train_log(path)] == [1, 2]
    assert read_train_log(tmp_path / "missing.jsonl") == []

    # A bad line that is not the last one: damage a kill cannot do; say where it is.
    path.write_text(_record(1) + "\n" + _record(2)[:9] + "\n" + _record(3) + "\n")
    with pytest.raises(CheckpointError, match=rf"{LOG_FILE}: line 2 is not a training-log record") as info:
        read_train_log(path)
    assert "--no-resume" in str(info.value)
    with pytest.raises(CheckpointError, match="line 2"):
        TrainLog(path, enabled=True).truncate_after(5)


def test_truncate_after_keeps_whole_lines_verbatim(tmp_path):
    path = tmp_path / LOG_FILE
    lines = [_record(i) for i in (1, 2, 3)]
    path.write_text("\n".join(lines) + "\n" + _record(4)[:5])
    TrainLog(path, enabled=True).truncate_after(2)
    assert path.read_text() == lines[0] + "\n" + lines[1] + "\n"


def test_appends_are_single_whole_line_writes_flushed_to_disk(tmp_path, monkeypatch):
    path = tmp_path / LOG_FILE
    writes, syncs = [], []
    real_write, real_fsync = os.write, os.fsync

    def is_log(fd: int) -> bool:
        return os.path.realpath(f"/proc/self/fd/{fd}") == str(path.resolve())

    def rec_write(fd, data):
        if is_log(fd):
            writes.append(bytes(data))
        return real_write(fd, data)

    def rec_fsync(fd):
        if is_log(fd):
            syncs.append(fd)
        return real_fsync(fd)

    monkeypatch.setattr(os, "write", rec_write)
    monkeypatch.setattr(os, "fsync", rec_fsync)
    log = TrainLog(path, enabled=True)
    log.write({"iter": 1, "loss": 0.25})
    log.write({"iter": 2, "loss": 0.125})
    assert writes == [b'{"iter": 1, "loss": 0.25}\n', b'{"iter": 2, "loss": 0.125}\n']
    assert len(syncs) == 2
    assert [r["iter"] for r in read_train_log(path)] == [1, 2]


def test_append_refused_half_way_leaves_whole_lines_and_names_the_file(tmp_path, monkeypatch):
    """A disk filling up mid-append (simulated: tests run as root, so a real full or read-only disk
    cannot be arranged portably) is cut back to the last whole line and reported by file name."""
    path = tmp_path / LOG_FILE
    append_line(path, _record(1))
    real_write = os.write

    def half_then_enospc(fd, data):
        if len(data) > 8:
            return real_write(fd, bytes(data)[: len(data) // 2])  # a short write...
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # ...then the disk is full

    monkeypatch.setattr(os, "write", half_then_enospc)
    with pytest.raises(OutputError, match=rf"{LOG_FILE}: cannot write: no space left on device"):
        append_line(path, _record(2))
    monkeypatch.undo()
    assert path.read_text() == _record(1) + "\n"
