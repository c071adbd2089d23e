"""`train_log.jsonl`: one JSON object per logged iteration (iter, epoch, loss, lr, time, ...).

Validation records (`Trainer.validate`) share the file: iter, epoch, `val_<metric>`, val_time_s.
`write_curve` turns the log into the run's training curve (CSV), a declared output of the training job.

Appended by rank 0 one whole line at a time (a single write, then fsync: `append_line`), so the only
damage a kill can do is a torn LAST line — half a record without its newline. Reading tolerates
exactly that (the torn line is dropped; resume rewrites the file without it); a bad line anywhere
else means the file was edited or damaged otherwise, and is a CheckpointError naming file and line.
"""
from __future__ import annotations

import json
from pathlib import Path

from vitpose.engine.checkpoint import RESUME_HINT
from vitpose.engine.curve import curve_csv
from vitpose.utils.errors import CheckpointError
from vitpose.utils.io import append_line, atomic_write_text, ensure_dir


def _parse(line: str) -> dict | None:
    """The record of one line, or None if it is not a JSON object with an integer `iter`."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("iter"), int):
        return None
    return record


def read_train_log(path: str | Path) -> list[dict]:
    """The records of a train log, a torn final line left out; [] if the file does not exist."""
    return [record for _, record in _read_lines(Path(path))]


def _read_lines(path: Path) -> list[tuple[str, dict]]:
    """(line as written, record) of every complete record; CheckpointError for a bad inner line."""
    try:
        text = path.read_text(errors="replace")  # a line torn inside a UTF-8 sequence still reads
    except FileNotFoundError:
        return []
    lines = text.split("\n")  # the last item is "" after a complete final line
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _parse(line)
        if record is not None:
            records.append((line, record))
        elif any(rest.strip() for rest in lines[number:]):
            raise CheckpointError(
                f"{path}: line {number} is not a training-log record ({line[:60]!r}); only a torn last "
                f"line is expected after a kill — fix or delete that line, or "
                f"{RESUME_HINT.format(work_dir=path.parent)}")
        # else: the torn last line of an append cut short by a kill; drop it
    return records


class TrainLog:
    """`train_log.jsonl`, appended by rank 0; on resume, entries past the restored iteration go."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def truncate_after(self, iteration: int) -> None:
        """Keep the records up to `iteration` (those the restored state has seen), drop a torn line."""
        if not self.enabled or not self.path.exists():
            return
        kept = [line for line, record in _read_lines(self.path) if record["iter"] <= iteration]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def reset(self) -> None:
        if self.enabled and self.path.exists():
            self.path.unlink()

    def write(self, record: dict) -> None:
        if self.enabled:
            ensure_dir(self.path.parent)  # created at the first record, not before the data is read
            append_line(self.path, json.dumps(record))


def write_curve(log_path: str | Path, out: str | Path) -> int:
    """Write the training curve of `log_path` to `out` (atomically); returns the number of rows."""
    records = read_train_log(log_path)
    atomic_write_text(out, curve_csv(records))
    return len(records)

