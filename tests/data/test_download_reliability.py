"""Downloads that never accept an unverifiable file, name the bad part, re-verify on rerun, back off
between retries and reject short or corrupt archives (loopback server only)."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from sfc.data import download as dl
from sfc.data.download import DatasetSpec, RemoteFile, download_file, fetch_spec
from sfc.errors import UserError

from .conftest import SR
from .test_download import Server, dnr_tar_parts, md5


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(dl, "_sleep", waits.append)
    return waits


def _serve_parts(server: Server, parts: list[bytes], with_metadata: bool = True) -> DatasetSpec:
    files, entries = [], []
    for i, data in enumerate(parts):
        name = f"dnr_v2.tar.gz.{i:02d}"
        server.files[name] = data
        files.append(RemoteFile(name, server.url(name), None, None))  # unknown, as for DnR v2
        entries.append({"key": name, "size": len(data), "checksum": f"md5:{md5(data)}"})
    if with_metadata:
        server.files["api/records/6949108"] = json.dumps({"files": entries}).encode()
    return DatasetSpec(
        "dnr_v2",
        "cass",
        tuple(files),
        "tar.gz",
        {"tr": 1, "cv": 1, "tt": 1},
        metadata_url=server.url("api/records/6949108"),
    )


def test_real_dnr_spec_takes_sizes_and_md5_from_the_zenodo_record():
    spec = dl.DATASETS["dnr_v2"]
    assert spec.metadata_url == "https://zenodo.org/api/records/6949108"
    assert dl.DATASETS["musdb18hq"].files[0].md5 == "12d4f2ecd55245a4688754dd76363103"


def test_metadata_fills_unknown_sizes_and_md5(server, tmp_path):
    parts = dnr_tar_parts(3)
    spec = _serve_parts(server, parts)
    resolved = dl.resolve_checksums(spec, timeout=5)
    assert [(f.size, f.md5) for f in resolved.files] == [(len(p), md5(p)) for p in parts]
    out = fetch_spec(spec, tmp_path / "dnr", progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["cv", "tr", "tt"]


def test_file_with_unknown_size_and_md5_is_never_accepted(server, tmp_path):
    parts = dnr_tar_parts(3)
    spec = _serve_parts(server, parts, with_metadata=False)  # the metadata document is missing
    with pytest.raises(UserError, match="size and checksum"):
        fetch_spec(spec, tmp_path / "dnr", progress=False)
    assert not (tmp_path / "downloads" / "dnr_v2.tar.gz.00").exists()
    remote = RemoteFile("x.bin", server.url("x.bin"), None, None)
    server.files["x.bin"] = b"abc"
    with pytest.raises(UserError, match="size and checksum"):
        download_file(remote, tmp_path, progress=False)


def test_transfer_cut_without_content_length_is_not_accepted(server, tmp_path, monkeypatch):
    data = bytes(range(256)) * 64
    server.files["f.bin"] = data
    remote = RemoteFile("f.bin", server.url("f.bin"), len(data), md5(data))
    real_transfer = dl._transfer
    calls = []

    def short_once(remote_, part, timeout, progress):
        calls.append(1)
        if len(calls) == 1:  # the connection ended early and no Content-Length told us
            part.write_bytes(data[:1000])
            return
        real_transfer(remote_, part, timeout, progress)

    monkeypatch.setattr(dl, "_transfer", short_once)
    path, digest = download_file(remote, tmp_path, progress=False)
    assert path.read_bytes() == data and digest == md5(data) and len(calls) == 2


def test_bad_part_is_named_reverified_on_rerun_and_only_it_redownloaded(server, tmp_path):
    parts = dnr_tar_parts(4)
    spec = _serve_parts(server, parts)
    downloads = tmp_path / "downloads"
    fetch_spec(spec, tmp_path / "first", progress=False)
    # part 02 gets corrupted on disk after it was verified (bit rot, a partial copy)
    bad = downloads / "dnr_v2.tar.gz.02"
    bad.write_bytes(b"\0" * len(parts[2]))
    server.ranges.clear()
    out = fetch_spec(spec, tmp_path / "second", progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["cv", "tr", "tt"]
    assert bad.read_bytes() == parts[2]
    assert len(server.ranges) == 2  # the metadata document and part 02 only


def test_extraction_error_names_the_bad_part(server, tmp_path, monkeypatch):
    archive = _tar_gz(12)
    step = -(-len(archive) // 4)
    parts = [archive[i : i + step] for i in range(0, len(archive), step)]
    corrupt = bytearray(parts[2])
    corrupt[10:] = b"\xff" * (len(corrupt) - 10)
    parts[2] = bytes(corrupt)
    spec = _serve_parts(server, parts)  # the published md5 matches the bad bytes: extraction fails
    with pytest.raises(UserError, match=r"dnr_v2\.tar\.gz\.02"):
        fetch_spec(spec, tmp_path / "dnr", progress=False)
    assert not (tmp_path / "dnr").exists()


def _noise_wav(seed: int) -> bytes:
    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, (SR // 10, 1)).astype(np.float32)
    sf.write(buf, noise, SR, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def _tar_gz(members: int, cut_header_of: int | None = None, truncate: bool = False) -> bytes:
    """A DnR-layout tar.gz of incompressible wavs (so every part of a split holds whole blocks)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for folder in ("tr", "cv", "tt"):
            for stem in ("mix", "speech", "music", "sfx"):
                wav = _noise_wav(len(tf.getmembers()))  # distinct, so gzip cannot fold them
                info = tarfile.TarInfo(f"dnr_v2/{folder}/1/{stem}.wav")
                info.size = len(wav)
                tf.addfile(info, io.BytesIO(wav))
    data = bytearray(raw.getvalue())
    if cut_header_of is not None:  # break the checksum of one member header after the first
        block = 512 + (-(-len(_noise_wav(0)) // 512)) * 512
        data[cut_header_of * block + 148 : cut_header_of * block + 156] = b"99999999"
    import gzip

    out = gzip.compress(bytes(data))
    return out[: len(out) * 2 // 3] if truncate else out


@pytest.mark.parametrize("kind", ["corrupt header", "truncated"])
def test_short_or_corrupt_tar_is_an_error(server, tmp_path, kind):
    archive = _tar_gz(12, cut_header_of=5 if kind == "corrupt header" else None,
                      truncate=kind == "truncated")  # fmt: skip
    spec = _serve_parts(server, [archive])
    with pytest.raises(UserError, match=r"corrupt|truncated|short"):
        fetch_spec(spec, tmp_path / "dnr", progress=False)
    assert not (tmp_path / "dnr").exists()


def test_fewer_tracks_than_expected_is_an_error_for_dnr(server, tmp_path):
    spec = _serve_parts(server, dnr_tar_parts(2))
    spec = DatasetSpec(spec.name, spec.task, spec.files, spec.archive, {"tr": 2, "cv": 1, "tt": 1},
                       metadata_url=spec.metadata_url)  # fmt: skip
    with pytest.raises(UserError, match=r"tr: 1 tracks, expected 2"):
        fetch_spec(spec, tmp_path / "dnr", progress=False)


def test_retries_back_off_exponentially_and_say_so(server, tmp_path, no_sleep, capsys):
    data = bytes(range(256)) * 64
    server.files["f.bin"] = data
    server.cut_next = 4
    remote = RemoteFile("f.bin", server.url("f.bin"), len(data), md5(data))
    download_file(remote, tmp_path, retries=6, progress=False)
    assert no_sleep == [1.0, 2.0, 4.0, 8.0]
    assert "retry 1/5 in 1 s" in capsys.readouterr().err
    assert dl.backoff_seconds(20) == dl.MAX_BACKOFF_SECONDS


def test_bad_md5_message_matches_what_a_rerun_does(server, tmp_path):
    data = bytes(range(256)) * 64
    server.files["f.bin"] = b"x" * len(data)  # the server sends wrong bytes first
    remote = RemoteFile("f.bin", server.url("f.bin"), len(data), md5(data))
    with pytest.raises(UserError, match="a rerun downloads it again") as info:
        download_file(remote, tmp_path, progress=False)
    assert "delete it" not in str(info.value)
    assert (tmp_path / "f.bin.bad-md5").exists()
    server.files["f.bin"] = data
    path, _ = download_file(remote, tmp_path, progress=False)
    assert path.read_bytes() == data
    assert not (tmp_path / "f.bin.bad-md5").exists()  # the kept bad copy goes once a good one is in
