"""`python -m stages.download` end to end: local server, markers, skips, manual items, smoke scale."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import types
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml

from stages.download import main
from vitpose.download import ENV_VAR, load_manifest, parse_url_overrides
from vitpose.download.localserver import LocalFileServer
from vitpose.utils.errors import UserError

REPO = Path(__file__).resolve().parents[1]
DEAD = "http://127.0.0.1:9"  # nothing listens there: only --url-override makes these items downloadable
FAST = ["--retries", "1", "--retry-wait", "0", "--no-progress"]


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def coco_json(n_images: int) -> bytes:
    images = [{"id": i + 1, "file_name": f"{i + 1:012d}.jpg", "width": 64, "height": 64} for i in range(n_images)]
    anns = [{"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [2, 2, 20, 30], "iscrowd": 0,
             "num_keypoints": 1, "keypoints": [5, 5, 2] + [0, 0, 0] * 16} for i in range(n_images)]
    return json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1}]}).encode()


VAL_ZIP = zip_bytes({f"val2017/{i:012d}.jpg": os.urandom(40_000) for i in (1, 2)})
ANN_ZIP = zip_bytes({"annotations/person_keypoints_val2017.json": coco_json(2),
                     "annotations/instances_val2017.json": b"{}"})
FILES = {"/zips/val2017.zip": VAL_ZIP, "/annotations/annotations.zip": ANN_ZIP}


def write_manifest(path: Path, val_sha: str | None = None, dets_sha: str | None = None,
                   val_zip: bytes = VAL_ZIP) -> Path:
    manifest = {
        "schema": "vitpose-download-manifest/1",
        "groups": {"all": ["minicoco", "dets"]},
        "items": {
            "minicoco": {
                "description": "two-image COCO", "dest": "coco", "licence": "test data",
                "sources": [
                    {"name": "val2017.zip", "urls": [f"{DEAD}/zips/val2017.zip"], "size": len(val_zip),
                     "sha256": val_sha or hashlib.sha256(val_zip).hexdigest(), "extract": {"mode": "tree"}},
                    {"name": "annotations.zip", "urls": [f"{DEAD}/annotations/annotations.zip"],
                     "extract": {"mode": "pick", "files": {
                         "person_keypoints_val2017.json": "annotations/person_keypoints_val2017.json"}}},
                ],
                "validate": {"kind": "coco_keypoints",
                             "options": {"splits": {"val": {"annotations": "annotations/person_keypoints_val2017.json",
                                                            "images": "val2017"}}},
                             "expected": {"val_images": 2, "val_instances": 2}},
            },
            "dets": {
                "description": "two person boxes", "dest": "coco/person_detection_results", "licence": "test data",
                "sources": [{"name": "dets.json", "manual": True, "place": "dets.json", "sha256": dets_sha,
                             "where": "the test's own fixture folder"}],
                "validate": {"kind": "coco_detections",
                             "options": {"file": "dets.json",
                                         "image_ids_from": "../annotations/person_keypoints_val2017.json"},
                             "expected": {"detection_boxes": 2}},
            },
        },
    }
    path.write_text(yaml.safe_dump(manifest))
    return path


def overrides(srv: LocalFileServer) -> list[str]:
    return ["--url-override", f"val2017.zip={srv.url('/zips/val2017.zip')}",
            "--url-override", f"annotations.zip={srv.url('/annotations/annotations.zip')}"]


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path / "manifest.yaml")


def no_network(*args, **kwargs):
    raise AssertionError("network access during a run that should be offline")


def test_paper_item_downloads_unpacks_validates_and_marks(tmp_path: Path, manifest: Path) -> None:
    root = tmp_path / "data"
    with LocalFileServer(FILES) as srv:
        rc = main(["minicoco", "--data-root", str(root), "--manifest", str(manifest), *FAST, *overrides(srv)])
    assert rc == 0
    assert sorted(p.name for p in (root / "coco" / "val2017").iterdir()) == ["000000000001.jpg", "000000000002.jpg"]
    assert (root / "coco" / "annotations" / "person_keypoints_val2017.json").exists()
    assert not (root / "coco" / "annotations" / "instances_val2017.json").exists()  # pick mode
    marker = json.loads((root / "coco" / ".complete.json").read_text())
    assert marker["scale"] == "paper" and marker["synthetic"] is False
    assert marker["counts"]["val_images"] == 2 and marker["counts"]["val_instances"] == 2
    assert marker["sources"]["val2017.zip"]["sha256"] == hashlib.sha256(VAL_ZIP).hexdigest()
    # the unpinned archive's digest was recorded on first download
    lock = json.loads((root / "checksums.lock").read_text())["files"]
    assert lock["annotations.zip"]["sha256"] == hashlib.sha256(ANN_ZIP).hexdigest()
    assert "val2017.zip" not in lock  # pinned in the manifest: nothing to record
    assert not list((root / "downloads" / "minicoco").glob("*.zip"))  # archives removed after unpacking


def test_complete_item_is_skipped_without_network(tmp_path: Path, manifest: Path, monkeypatch, capsys) -> None:
    root = tmp_path / "data"
    args = ["minicoco", "--data-root", str(root), "--manifest", str(manifest), *FAST]
    with LocalFileServer(FILES) as srv:
        assert main([*args, *overrides(srv)]) == 0
        n_requests = len(srv.requests)
    marker = root / "coco" / ".complete.json"
    before = marker.read_text()
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    capsys.readouterr()
    assert main(args) == 0  # the manifest's URLs are dead and urlopen is gone: only the marker is read
    assert "already complete" in capsys.readouterr().err
    assert marker.read_text() == before and len(srv.requests) == n_requests
    # DVC/Snakemake delete declared outputs before re-running: the unpacked archives are recognised, offline
    marker.unlink()
    assert main(args) == 0
    assert json.loads(marker.read_text())["counts"]["val_images"] == 2


def test_interrupted_download_resumes_on_the_next_run(tmp_path: Path, manifest: Path) -> None:
    root = tmp_path / "data"
    args = ["minicoco", "--data-root", str(root), "--manifest", str(manifest), "--no-progress", "--retries", "0"]
    with LocalFileServer(FILES, drop_after=30_000, drops=1) as srv:
        assert main([*args, *overrides(srv)]) == 2
        part = root / "downloads" / "minicoco" / "val2017.zip.part"
        assert part.stat().st_size == 30_000 and not (root / "coco" / ".complete.json").exists()
        assert main([*args, *overrides(srv)]) == 0
    val_requests = [r for r in srv.requests if r.path == "/zips/val2017.zip"]
    assert [(r.headers.get("Range"), r.status) for r in val_requests] == [(None, 200), ("bytes=30000-", 206)]
    assert (root / "coco" / ".complete.json").exists()


def test_corrupted_download_exits_nonzero_and_is_kept_aside(tmp_path: Path) -> None:
    """Through the real command line, with the mirror given by the environment variable."""
    manifest = write_manifest(tmp_path / "manifest.yaml", val_sha="ab" * 32)
    root = tmp_path / "data"
    with LocalFileServer(FILES) as srv:
        env = {**os.environ, ENV_VAR: f"val2017.zip={srv.url('/zips/val2017.zip')} "
                                      f"annotations.zip={srv.url('/annotations/annotations.zip')}"}
        proc = subprocess.run([sys.executable, "-m", "stages.download", "minicoco", "--data-root", str(root),
                               "--manifest", str(manifest), *FAST], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("error: ") == 1 and "expected abab" in proc.stderr and ".corrupt" in proc.stderr
    downloads = root / "downloads" / "minicoco"
    assert (downloads / "val2017.zip.corrupt").read_bytes() == VAL_ZIP
    assert not (downloads / "val2017.zip").exists()
    assert not (root / "coco" / "val2017").exists()  # not used: nothing unpacked
    assert not (root / "coco" / ".complete.json").exists()


def test_path_traversal_archive_is_refused_by_the_stage(tmp_path: Path, capsys) -> None:
    evil = zip_bytes({"val2017/000000000001.jpg": b"ok", "../../escaped.txt": b"pwned"})
    manifest = write_manifest(tmp_path / "manifest.yaml", val_zip=evil)
    root = tmp_path / "data"
    with LocalFileServer({**FILES, "/zips/val2017.zip": evil}) as srv:
        assert main(["minicoco", "--data-root", str(root), "--manifest", str(manifest), *FAST,
                     *overrides(srv)]) == 2
    assert "'../../escaped.txt': '..' component" in capsys.readouterr().err
    assert not (root / "coco" / "val2017").exists() and not (tmp_path / "escaped.txt").exists()
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not (root / "coco" / ".complete.json").exists()


def test_missing_manual_item_fails_with_instructions(tmp_path: Path, manifest: Path, capsys) -> None:
    root = tmp_path / "data"
    assert main(["dets", "--data-root", str(root), "--manifest", str(manifest), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: item 'dets' needs 1 file(s) that cannot be downloaded automatically")
    target = (root / "coco" / "person_detection_results" / "dets.json").resolve()
    assert "get it:  the test's own fixture folder" in err               # where to get it
    assert f"put it:  {target}" in err                                   # where to put it
    assert f"recorded in {(root / 'checksums.lock').resolve()}" in err    # what it must hash to
    assert "detection_boxes = 2" in err
    assert "Then run again: python -m stages.download dets" in err
    assert not (root / "coco").exists()


def test_real_manual_checkpoint_item_explains_itself(tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    assert main(["vitpose-b", "--data-root", str(root), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "https://github.com/ViTAE-Transformer/ViTPose" in err
    assert f"put it:  {(root / 'weights' / 'vitpose' / 'vitpose-b.pth').resolve()}" in err
    assert "SHA-256: none is published" in err and "licence: Apache-2.0" in err


def test_real_coco_detections_instructions(tmp_path: Path) -> None:
    """The COCO item's manual detections: the drive links, the exact path, the box count (no download here)."""
    from vitpose.download import ChecksumLock
    from vitpose.download.manual import instructions
    item = load_manifest().items["coco"]
    (source,) = [s for s in item.sources if s.manual]
    text = instructions(tmp_path, item, source, ChecksumLock(tmp_path / "checksums.lock"))
    assert "https://1drv.ms/" in text and "drive.google.com" in text and "HRNet-Human-Pose-Estimation" in text
    assert f"put it:  {(tmp_path / 'coco/person_detection_results/COCO_val2017_detections_AP_H_56_person.json')}" \
        in text
    assert "detection_boxes = 104,125" in text and "SHA-256: none is published" in text


def test_manual_instructions_show_known_hash(tmp_path: Path, capsys) -> None:
    manifest = write_manifest(tmp_path / "manifest.yaml", dets_sha="cd" * 32)
    assert main(["dets", "--data-root", str(tmp_path / "d"), "--manifest", str(manifest)]) == 2
    assert f"SHA-256: {'cd' * 32} (from the manifest)" in capsys.readouterr().err


def test_placed_manual_file_is_verified_recorded_and_enforced(tmp_path: Path, manifest: Path, capsys) -> None:
    root = tmp_path / "data"
    dets = [{"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.9},
            {"image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.8}]
    placed = root / "coco" / "person_detection_results" / "dets.json"
    placed.parent.mkdir(parents=True)
    placed.write_text(json.dumps(dets))
    args = ["dets", "--data-root", str(root), "--manifest", str(manifest), "--no-progress"]
    assert main(args) == 0
    sha = hashlib.sha256(placed.read_bytes()).hexdigest()
    assert json.loads((root / "checksums.lock").read_text())["files"]["dets.json"]["sha256"] == sha
    placed.write_text(json.dumps(dets[:1] * 2))  # a different file placed later
    capsys.readouterr()
    assert main([*args, "--force"]) == 2
    assert f"expected {sha}" in capsys.readouterr().err
    assert not placed.exists() and placed.with_name("dets.json.corrupt").exists()


def test_url_overrides_from_environment_and_command_line(manifest: Path) -> None:
    m = load_manifest(manifest)
    env = {ENV_VAR: "val2017.zip=http://a/v.zip  val2017.zip=http://b/v.zip annotations.zip=http://a/ann.zip"}
    got = parse_url_overrides(["annotations.zip=http://c/ann.zip"], m, env)
    assert got == {"val2017.zip": ["http://a/v.zip", "http://b/v.zip"], "annotations.zip": ["http://c/ann.zip"]}
    assert parse_url_overrides(["dets=http://m/d.json"], m, {}) == {"dets.json": ["http://m/d.json"]}
    with pytest.raises(UserError, match="names no source"):
        parse_url_overrides(["nope.zip=http://x/y"], m, {})
    with pytest.raises(UserError, match="expected KEY=URL"):
        parse_url_overrides(["val2017.zip"], m, {})


def test_manual_file_can_come_from_a_mirror(tmp_path: Path, manifest: Path) -> None:
    dets = json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.9}] * 2).encode()
    with LocalFileServer({"/dets.json": dets}) as srv:
        rc = main(["dets", "--data-root", str(tmp_path), "--manifest", str(manifest), *FAST,
                   "--url-override", f"dets={srv.url('/dets.json')}"])
    assert rc == 0 and (tmp_path / "coco" / "person_detection_results" / "dets.json").read_bytes() == dets


# ----------------------------------------------------------------------------------------------- smoke scale
@pytest.fixture
def fake_synthetic(monkeypatch) -> list[dict]:
    """A stand-in for vitpose.data.synthetic that records its calls and writes a tiny COCO tree."""
    calls: list[dict] = []

    def generate_synthetic_coco(root, seed=0, num_train=4, num_val=2, **extra):
        calls.append({"root": Path(root), "seed": seed, "num_train": num_train, "num_val": num_val, **extra})
        root = Path(root)
        for split, n in (("train", num_train), ("val", num_val)):
            (root / f"{split}2017").mkdir(parents=True)
            for i in range(n):
                (root / f"{split}2017" / f"{i + 1:012d}.jpg").write_bytes(b"%d" % seed)
            (root / "annotations").mkdir(exist_ok=True)
            (root / "annotations" / f"person_keypoints_{split}2017.json").write_bytes(coco_json(n))
        (root / "person_detection_results").mkdir()
        (root / "person_detection_results" / "COCO_val2017_detections_AP_H_56_person.json").write_text(json.dumps(
            [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 9, 9], "score": 1.0}]))
        return {"root": str(root), "seed": seed}

    module = types.ModuleType("vitpose.data.synthetic")
    module.generate_synthetic_coco = generate_synthetic_coco
    monkeypatch.setitem(sys.modules, "vitpose.data.synthetic", module)
    return calls


def test_smoke_scale_generates_with_passed_parameters(tmp_path: Path, fake_synthetic: list[dict]) -> None:
    root = tmp_path / "smoke"
    args = ["coco", "--scale", "smoke", "--data-root", str(root), "--seed", "7", "--num-train", "3",
            "--num-val", "2", "--synthetic-arg", "max_people=2"]
    assert main(args) == 0
    assert len(fake_synthetic) == 1
    call = fake_synthetic[0]
    assert (call["seed"], call["num_train"], call["num_val"], call["max_people"]) == (7, 3, 2, 2)
    marker = json.loads((root / "coco" / ".complete.json").read_text())
    assert marker["synthetic"] is True and marker["scale"] == "smoke"
    assert marker["params"] == {"seed": 7, "num_train": 3, "num_val": 2, "max_people": 2}
    assert marker["counts"]["train_images"] == 3 and marker["counts"]["val_images"] == 2
    ann = root / "coco" / "annotations" / "person_keypoints_val2017.json"
    assert marker["files"]["annotations/person_keypoints_val2017.json"] == hashlib.sha256(ann.read_bytes()).hexdigest()
    assert marker["generator_summary"]["root"] == str(root / "coco")
    assert marker["counts"]["detection_boxes"] == 1 and marker["counts"]["detection_image_ids_checked"] == 1
    # same parameters: skipped; new seed: regenerated in place, nothing stale left behind
    assert main(args) == 0 and len(fake_synthetic) == 1
    assert main([*args[:5], "--seed", "8", "--num-train", "1"]) == 0 and len(fake_synthetic) == 2
    assert len(list((root / "coco" / "train2017").iterdir())) == 1
    assert sorted(p.name for p in root.iterdir()) == ["coco"]  # no staging directories left


def test_smoke_never_overwrites_real_data(tmp_path: Path, fake_synthetic: list[dict], capsys) -> None:
    (tmp_path / "coco" / "train2017").mkdir(parents=True)
    (tmp_path / "coco" / "train2017" / "real.jpg").write_bytes(b"real")
    assert main(["coco", "--scale", "smoke", "--data-root", str(tmp_path)]) == 2
    assert "refusing to replace it" in capsys.readouterr().err
    assert (tmp_path / "coco" / "train2017" / "real.jpg").exists() and not fake_synthetic


def test_paper_refuses_a_root_holding_synthetic_data(tmp_path: Path, fake_synthetic, manifest: Path, capsys) -> None:
    assert main(["coco", "--scale", "smoke", "--data-root", str(tmp_path)]) == 0
    assert main(["coco", "--data-root", str(tmp_path), "--no-progress"]) == 2
    assert "smoke-scale data" in capsys.readouterr().err


def test_item_without_smoke_form(tmp_path: Path, capsys) -> None:
    assert main(["mae-vit-b", "--scale", "smoke", "--data-root", str(tmp_path)]) == 2
    assert "has no smoke-scale form" in capsys.readouterr().err


def test_smoke_parameters_rejected_at_paper_scale(tmp_path: Path, capsys) -> None:
    assert main(["coco", "--data-root", str(tmp_path), "--seed", "1"]) == 2
    assert "only apply with --scale smoke" in capsys.readouterr().err


def test_smoke_with_the_real_generator(tmp_path: Path) -> None:
    pytest.importorskip("vitpose.data.synthetic")
    root = tmp_path / "smoke"
    base = ["--scale", "smoke", "--data-root", str(root), "--no-progress"]
    assert main(["coco", *base, "--num-train", "2", "--num-val", "2", "--synthetic-arg", "progress=false"]) == 0
    marker = json.loads((root / "coco" / ".complete.json").read_text())
    assert marker["counts"]["train_images"] == 2 and marker["counts"]["val_images"] == 2


# ----------------------------------------------------------------------------------------- the real manifest
def test_project_manifest_states_only_reference_checksums() -> None:
    m = load_manifest()
    pinned = {s.name: (s.size, s.sha256) for it in m.items.values() for s in it.sources if s.sha256 or s.size}
    assert pinned == {  # ../shared/design/REFERENCE.md §7; nothing else is pinned
        "train2017.zip": (19336861798, "69a8bb58ea5f8f99d24875f21416de2e9ded3178e903f1f7603e283b9e06d929"),
        "val2017.zip": (815585330, "4f7e2ccb2866ec5041993c9cf2a952bbed69647b115d0f74da7ce8f4bef82f05"),
        "annotations_trainval2017.zip": (252907541,
                                         "113a836d90195ee1f884e704da6304dfaaecff1f023f49b6ca93c4aaae470268"),
    }
    md5 = {s.name: s.md5_prefix for it in m.items.values() for s in it.sources if s.md5_prefix}
    assert md5 == {"mae_pretrain_vit_base.pth": "8cad7c", "mae_pretrain_vit_large.pth": "b8b06e",
                   "mae_pretrain_vit_huge.pth": "9bdbb0"}
    for it in m.items.values():
        for s in it.sources:
            assert all(u.startswith("https://") for u in s.urls), s.name  # TLS everywhere
    coco = {s.name: s.urls for s in m.items["coco"].sources if not s.manual}
    assert all(urls[0].startswith("https://s3.amazonaws.com/images.cocodataset.org/") for urls in coco.values())
    assert {it.name for it in m.resolve(["datasets"])} == {"coco", "aic", "mpii", "crowdpose"}
    assert [it.name for it in m.resolve(["mae", "mae-vit-b"])] == ["mae-vit-b", "mae-vit-l", "mae-vit-h"]
    # the workflow names weights by file stem
    assert [it.name for it in m.resolve(["mae_pretrain_vit_base", "mae_pretrain_vit_huge.pth"])] == \
        ["mae-vit-b", "mae-vit-h"]
    with pytest.raises(UserError, match="unknown item 'cocoo'"):
        m.resolve(["cocoo"])


def test_every_item_is_documented() -> None:
    text = (REPO / "docs" / "DATA.md").read_text()
    for name, item in load_manifest().items.items():
        assert f"`{name}`" in text, name
        for src in item.sources:
            if src.sha256:
                assert src.sha256 in text, src.name


def test_list_shows_status_without_network(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    assert main(["--list", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"coco                     missing   mixed  {tmp_path}/coco/.complete.json" in out
    assert f"mae-vit-b                missing   auto   {tmp_path}/weights/.mae-vit-b.complete.json" in out
    assert "mae                      group" in out


def tar_bytes(members: dict[str, bytes]) -> bytes:
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_crowdpose_annotations_downloaded_images_placed_as_archive(tmp_path: Path, capsys) -> None:
    """The real `crowdpose` item: a downloaded tar (pick mode) plus a manual directory given as its archive."""
    root = tmp_path / "data"
    ann = json.loads(coco_json(2))
    for image in ann["images"]:  # CrowdPose's format: 14 keypoints and a crowd index per image
        image["crowdIndex"] = 0.1
    for a in ann["annotations"]:
        a["keypoints"] = a["keypoints"][:14 * 3]
    annotations = tar_bytes({f"annotations/{n}": json.dumps(ann).encode() for n in
                             ("mmpose_crowdpose_trainval.json", "mmpose_crowdpose_test.json")}
                            | {"annotations/det_for_crowd_test_0.1_0.5.json": b"[]"})
    args = ["crowdpose", "--data-root", str(root), *FAST]
    with LocalFileServer({"/crowdpose_annotations.tar": annotations}) as srv:
        args += ["--url-override", f"crowdpose_annotations.tar={srv.url('/crowdpose_annotations.tar')}"]
        assert main(args) == 2
        err = capsys.readouterr().err
        archive = root / "downloads" / "crowdpose" / "images.zip"
        assert f"put it:  unpack it so that {(root / 'crowdpose' / 'images').resolve()}/" in err
        assert f"save the archive images.zip as {archive.resolve()}" in err
        assert "1VprytECcLtU4tKP32SYi_7oDRbw7yUTL" in err  # the drive file id: where to get it
        assert (root / "crowdpose" / "annotations" / "mmpose_crowdpose_test.json").exists()  # downloaded meanwhile
        archive.write_bytes(zip_bytes({"images/000000000001.jpg": b"1", "images/000000000002.jpg": b"2"}))
        n = len(srv.requests)
        assert main(args) == 0
        assert len(srv.requests) == n  # the unpacked annotations were not downloaded again
    marker = json.loads((root / "crowdpose" / ".complete.json").read_text())
    assert marker["counts"]["test_images"] == 2
    assert marker["sources"]["crowdpose-images"]["archive_sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert "crowdpose/images.zip" in json.loads((root / "checksums.lock").read_text())["files"]
