"""Download through `huggingface_hub` from a loopback server speaking the Hub's HTTP API (never the real Hub)."""

from __future__ import annotations

import hashlib

import pytest

from sfc.errors import UserError
from sfc.weights.hub import download_folder, list_files, model_folders
from tests.weights.hub_server import COMMIT, FakeHub

REPO = "someone/released"
FOLDER = (
    "musdb18hq/locoformer-small.enc-crossattn64dim.dec-crossattn64dim.musical64.learnable-query"
)


def _files() -> dict[str, bytes]:
    big = bytes(range(256)) * 4096  # 1 MiB, several transfer chunks
    return {
        f"{FOLDER}/merged_config.yaml": b"model: {}\n",
        f"{FOLDER}/checkpoints/epoch=0001.ckpt": big,
        f"{FOLDER}/checkpoints/last.ckpt": big[::-1],
        "dnr/other/merged_config.yaml": b"x: 1\n",
        "dnr/other/checkpoints/epoch=0002.ckpt": b"not wanted" * 1000,
        "README.md": b"# weights\n",
    }


@pytest.fixture
def hub():
    with FakeHub(REPO, _files()) as server:
        yield server


def test_listing_finds_the_model_folders(hub):
    files = list_files(REPO, "main", endpoint=hub.endpoint)
    assert model_folders(files) == ["dnr/other", FOLDER]
    lfs = {f.path: f.sha256 for f in files if f.sha256}
    assert (
        lfs[f"{FOLDER}/checkpoints/last.ckpt"]
        == hashlib.sha256(_files()[f"{FOLDER}/checkpoints/last.ckpt"]).hexdigest()
    )


def test_download_one_folder_pinned_and_verified(hub, tmp_path):
    manifest = download_folder(
        FOLDER, REPO, "main", cache_dir=tmp_path / "cache", endpoint=hub.endpoint
    )
    assert manifest["revision"] == COMMIT
    local = tmp_path / "cache"
    got = {p.relative_to(manifest["local_path"]).as_posix() for p in _walk(manifest["local_path"])}
    assert got == {"merged_config.yaml", "checkpoints/epoch=0001.ckpt", "checkpoints/last.ckpt"}
    assert set(manifest["sha256"]) == {f"{FOLDER}/{name}" for name in got}
    assert str(local) in manifest["local_path"]
    fetched = [p for m, p, _ in hub.requests if m == "GET" and "/resolve/" in p]
    assert fetched and all(FOLDER in p for p in fetched)  # one model folder only


def test_a_cut_transfer_is_resumed_with_a_range_request(hub, tmp_path, monkeypatch):
    from huggingface_hub import constants

    # The client keeps whole chunks only (10 MB by default); small chunks let a 1 MiB file resume.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    name = f"{FOLDER}/checkpoints/epoch=0001.ckpt"
    hub.cut_once.add(name)
    manifest = download_folder(
        FOLDER, REPO, "main", cache_dir=tmp_path / "cache", endpoint=hub.endpoint
    )
    ranges = [r for m, p, r in hub.requests if m == "GET" and p.endswith("epoch=0001.ckpt")]
    assert ranges[0] is None and ranges[1] == f"bytes={len(_files()[name]) // 2}-"
    assert manifest["sha256"][name] == hashlib.sha256(_files()[name]).hexdigest()


def test_a_wrong_checksum_is_refused_and_the_copy_deleted(hub, tmp_path):
    name = f"{FOLDER}/checkpoints/last.ckpt"
    hub.corrupt.add(name)
    with pytest.raises(UserError, match="checksum mismatch"):
        download_folder(FOLDER, REPO, "main", cache_dir=tmp_path / "cache", endpoint=hub.endpoint)
    assert not [p for p in _walk(tmp_path / "cache") if p.name == "last.ckpt"]
    hub.corrupt.clear()
    manifest = download_folder(
        FOLDER, REPO, "main", cache_dir=tmp_path / "cache", endpoint=hub.endpoint
    )
    assert manifest["sha256"][name] == hashlib.sha256(_files()[name]).hexdigest()


def test_an_unknown_folder_names_the_released_ones(hub, tmp_path):
    with pytest.raises(UserError, match="released folders"):
        download_folder("musdb18hq/nope", REPO, "main", cache_dir=tmp_path, endpoint=hub.endpoint)


def test_offline_mode_uses_the_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    with FakeHub(REPO, _files()) as hub:
        first = download_folder(FOLDER, REPO, "main", cache_dir=tmp_path, endpoint=hub.endpoint)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # the server is gone too
    again = download_folder(FOLDER, REPO, "main", cache_dir=tmp_path)
    assert again["revision"] == COMMIT and again["sha256"] == first["sha256"]
    with pytest.raises(UserError, match="not in the Hub cache"):
        download_folder(FOLDER, "someone/else", "main", cache_dir=tmp_path)


def _walk(root):
    from pathlib import Path

    return [p for p in Path(root).rglob("*") if p.is_file()]
