"""A refused write (full disk, read-only or foreign-owned directory) is an OutputError that names the
FINAL file and the cause, for every writer: the atomic text/JSON writers, `last.pth`, `model.pth`,
the train log. No temporary file is left behind and an existing file stays intact.

The tests run as root, where a read-only directory (chmod) does not stop writes and a full disk
cannot be arranged portably; so the file system's refusals are simulated by monkeypatching the
system calls (`os.write`, `tempfile.mkstemp`, `os.replace`, `Path.write_text`) to raise the OSError
(ENOSPC, EACCES, EROFS) the kernel would. A real read-only directory is also tried when not root.
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
import torch

from engine_support import make_synthetic, temp_files, tiny_config
from vitpose.config import RunConfig
from vitpose.engine.checkpoint import save_state
from vitpose.engine.trainer import STATE_FILE, train
from vitpose.models import ModelConfig, build_model
from vitpose.models.checkpoint import save_vitpose_checkpoint
from vitpose.utils.errors import OutputError, UserError
from vitpose.utils.io import atomic_path, atomic_torch_save, atomic_write_json, atomic_write_text, ensure_dir

TINY = dict(arch="vit", embed_dim=32, depth=2, num_heads=2, input_size=(64, 48), decoder_channels=8)


def disk_full_under(monkeypatch, directory: Path, after_bytes: int = 1024) -> None:
    """os.write into files under `directory` fails with ENOSPC once `after_bytes` are written."""
    real_write, written = os.write, [0]
    directory = str(directory.resolve())

    def write(fd, data):
        target = os.path.realpath(f"/proc/self/fd/{fd}")
        if target.startswith(directory + os.sep):
            if written[0] + len(data) > after_bytes:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written[0] += len(data)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)


def refuse_temp_files(monkeypatch, err: int = errno.EACCES) -> None:
    """mkstemp fails as in a read-only / foreign directory; its error names the temporary path."""
    def mkstemp(prefix="", suffix="", dir=None, **_):
        raise OSError(err, os.strerror(err), os.path.join(dir, f"{prefix}abc123{suffix}"))

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def _tiny_model():
    torch.manual_seed(0)
    return build_model(ModelConfig(**TINY))


def _check(exc: pytest.ExceptionInfo, final: Path, cause: str) -> None:
    message = str(exc.value)
    assert isinstance(exc.value, UserError)
    assert message.startswith(f"{final}: cannot write: {cause}"), message
    assert "inline_container" not in message and ".tmp" not in message, message


# ---------------------------------------------------------------------------------------- torch files
def test_full_disk_while_saving_model_pth(tmp_path, monkeypatch):
    out = tmp_path / "results" / "model.pth"
    save_vitpose_checkpoint(_tiny_model(), out, meta={"v": 1})  # an earlier, complete export
    before = out.read_bytes()
    disk_full_under(monkeypatch, tmp_path)
    with pytest.raises(OutputError) as exc:
        save_vitpose_checkpoint(_tiny_model(), out, meta={"v": 2})
    _check(exc, out, "no space left on device")
    monkeypatch.undo()
    assert out.read_bytes() == before and temp_files(out.parent) == []


def test_full_disk_while_saving_last_pth(tmp_path, monkeypatch):
    model = _tiny_model()
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    disk_full_under(monkeypatch, tmp_path)
    with pytest.raises(OutputError) as exc:
        save_state(tmp_path / STATE_FILE, model=model, optimizer=optimizer, scheduler=scheduler,
                   epoch=0, iteration=3)
    _check(exc, tmp_path / STATE_FILE, "no space left on device")
    assert list(tmp_path.iterdir()) == []


def test_read_only_directory_names_the_final_file(tmp_path, monkeypatch):
    refuse_temp_files(monkeypatch, errno.EACCES)
    with pytest.raises(OutputError) as exc:
        atomic_torch_save(tmp_path / "model.pth", {"w": torch.zeros(3)})
    _check(exc, tmp_path / "model.pth", "permission denied")
    with pytest.raises(OutputError) as exc:
        atomic_write_json(tmp_path / "metrics.json", {"AP": 0.5})
    _check(exc, tmp_path / "metrics.json", "permission denied")


def test_rename_refused_leaves_no_temporary(tmp_path, monkeypatch):
    def replace(src, dst):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), src)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OutputError) as exc:
        atomic_torch_save(tmp_path / "model.pth", {"w": torch.zeros(3)})
    _check(exc, tmp_path / "model.pth", "read-only file system")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_real_read_only_directory(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o555)
    try:
        with pytest.raises(OutputError) as exc:
            atomic_torch_save(results / "model.pth", {"w": torch.zeros(3)})
        _check(exc, results / "model.pth", "permission denied")
    finally:
        results.chmod(0o755)


# ---------------------------------------------------------------------------------------- text files
def test_full_disk_in_text_writers(tmp_path, monkeypatch):
    def write_text(self, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(OutputError) as exc:
        atomic_write_text(tmp_path / "table.tex", "x")
    _check(exc, tmp_path / "table.tex", "no space left on device")
    assert list(tmp_path.iterdir()) == []


def test_errors_about_inputs_are_not_reported_as_write_errors(tmp_path):
    """An OSError of another file inside the block (a missing input) keeps its own type."""
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "out.bin") as tmp:
            tmp.write_bytes((tmp_path / "missing-input.bin").read_bytes())
    assert list(tmp_path.iterdir()) == []


def test_directory_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(OutputError, match=rf"^{blocker}/x/metrics.json: cannot write: cannot create the "
                                          rf"directory {blocker}/x \(not a directory\)"):
        atomic_write_text(blocker / "x" / "metrics.json", "{}")
    with pytest.raises(OutputError, match=rf"^{blocker}/work: cannot create the directory: not a directory"):
        ensure_dir(blocker / "work")


# ---------------------------------------------------------------------------------------- training
def test_training_export_to_a_full_disk(tmp_path, monkeypatch):
    data = make_synthetic(tmp_path / "coco", num_train=8, num_val=2)
    cfg = RunConfig.from_dict(tiny_config(data, train={"epochs": 1}))
    out = tmp_path / "results" / "model.pth"
    out.parent.mkdir()
    disk_full_under(monkeypatch, out.parent, after_bytes=0)  # only results/ is full
    with pytest.raises(OutputError) as exc:
        train(cfg, tmp_path / "work", out, progress=False)
    _check(exc, out, "no space left on device")
    assert temp_files(out.parent) == [] and not out.exists()
    assert (tmp_path / "work" / STATE_FILE).is_file()  # the state is safe: a rerun just exports
