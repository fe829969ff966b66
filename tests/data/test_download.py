"""Download, verify, extract and link datasets against a local HTTP server (never the internet)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sfc.data.download import (
    DATASETS,
    DatasetSpec,
    RemoteFile,
    download_file,
    fetch_spec,
    link_existing,
    validate_layout,
)
from sfc.errors import UserError

from .conftest import SR


class Server:
    """http.server on 127.0.0.1 serving in-memory files, with Range support and cut transfers."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_next = 0  # number of upcoming responses to cut after half their body
        self.ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                name = self.path.lstrip("/").split("?")[0]
                server.ranges.append(self.headers.get("Range"))
                if name not in server.files:
                    self.send_error(404)
                    return
                body, start = server.files[name], 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match:
                    start = int(match.group(1))
                    if start >= len(body):
                        self.send_error(416)
                        return
                self.send_response(206 if match else 200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                part = body[start:]
                if server.cut_next > 0:
                    server.cut_next -= 1
                    part = part[: len(part) // 2]
                    self.close_connection = True
                self.wfile.write(part)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}?download=1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def no_backoff_wait(monkeypatch):
    from sfc.data import download

    monkeypatch.setattr(download, "_sleep", lambda seconds: None)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def _wav_bytes(channels: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros((SR // 10, channels), np.float32), SR, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def musdb_zip(prefix: str = "") -> bytes:
    """A MUSDB-layout zip: train/ with 2 tracks, test/ with 1, 0.1-s stereo wavs."""
    wav, buf = _wav_bytes(2), io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for folder, name in [("train", "A - One"), ("train", "B - Two"), ("test", "C - Three")]:
            for stem in ("mixture", "drums", "bass", "other", "vocals"):
                zf.writestr(f"{prefix}{folder}/{name}/{stem}.wav", wav)
    return buf.getvalue()


def dnr_tar_parts(num_parts: int = 3) -> list[bytes]:
    """A DnR-layout tar.gz (top folder dnr_v2/) split into parts, like dnr_v2.tar.gz.00.."""
    wav, buf = _wav_bytes(1), io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for folder in ("tr", "cv", "tt"):
            for stem in ("mix", "speech", "music", "sfx"):
                info = tarfile.TarInfo(f"dnr_v2/{folder}/1/{stem}.wav")
                info.size = len(wav)
                tf.addfile(info, io.BytesIO(wav))
    data = buf.getvalue()
    step = -(-len(data) // num_parts)
    return [data[i : i + step] for i in range(0, len(data), step)]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def zip_spec(
    server: Server, data: bytes, size: int | None = -1, digest: str | None = "auto"
) -> DatasetSpec:
    server.files["musdb18hq.zip"] = data
    remote = RemoteFile(
        "musdb18hq.zip",
        server.url("musdb18hq.zip"),
        len(data) if size == -1 else size,
        md5(data) if digest == "auto" else digest,
    )
    return DatasetSpec("musdb18hq", "mss", (remote,), "zip", {"train": 2, "test": 1})


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_pinned_values_of_the_real_datasets():
    musdb = DATASETS["musdb18hq"].files[0]
    assert musdb.url == "https://zenodo.org/records/3338373/files/musdb18hq.zip?download=1"
    assert (musdb.size, musdb.md5) == (22_656_664_047, "12d4f2ecd55245a4688754dd76363103")
    dnr = DATASETS["dnr_v2"].files
    assert [f.name for f in dnr] == [f"dnr_v2.tar.gz.{i:02d}" for i in range(11)]
    assert all("records/6949108/" in f.url for f in dnr)


def test_zip_download_verify_extract(server, tmp_path):
    spec = zip_spec(server, musdb_zip())
    out = fetch_spec(spec, tmp_path / "musdb", progress=False)
    assert sorted(p.name for p in (out / "train").iterdir()) == ["A - One", "B - Two"]
    assert (tmp_path / "downloads" / "musdb18hq.zip").read_bytes() == server.files["musdb18hq.zip"]
    assert (
        md5(server.files["musdb18hq.zip"])
        in (tmp_path / "downloads" / "musdb18hq.checksums.json").read_text()
    )
    assert _leftovers(tmp_path) == []
    with pytest.raises(UserError, match="already exists"):
        fetch_spec(spec, out, progress=False)
    assert sorted(p.name for p in (out / "train").iterdir()) == ["A - One", "B - Two"]


def test_cut_transfer_is_resumed_with_range(server, tmp_path):
    spec = zip_spec(server, musdb_zip())
    server.cut_next = 1
    path, digest = download_file(spec.files[0], tmp_path, progress=False)
    assert (
        digest == md5(server.files["musdb18hq.zip"])
        and path.read_bytes() == server.files["musdb18hq.zip"]
    )
    half = len(server.files["musdb18hq.zip"]) // 2
    assert server.ranges == [None, f"bytes={half}-"]


def test_incomplete_transfer_keeps_the_part_and_a_rerun_resumes(server, tmp_path):
    spec = zip_spec(server, musdb_zip())
    server.cut_next = 2
    with pytest.raises(UserError, match=r"incomplete after 2 attempt\(s\).*rerun to resume"):
        fetch_spec(spec, tmp_path / "musdb", retries=2, progress=False)
    part = tmp_path / "downloads" / "musdb18hq.zip.part"
    data = server.files["musdb18hq.zip"]
    assert 0 < part.stat().st_size < len(data) and data.startswith(part.read_bytes())
    assert not (tmp_path / "musdb").exists()
    have = part.stat().st_size
    fetch_spec(spec, tmp_path / "musdb", progress=False)
    assert server.ranges[-1] == f"bytes={have}-"
    assert (tmp_path / "musdb" / "test" / "C - Three" / "vocals.wav").is_file()


def test_checksum_mismatch(server, tmp_path):
    spec = zip_spec(server, musdb_zip(), digest="0" * 32)
    with pytest.raises(
        UserError, match=r"checksum mismatch for musdb18hq\.zip: md5 [0-9a-f]{32}, expected 0{32}"
    ):
        fetch_spec(spec, tmp_path / "musdb", progress=False)
    assert (tmp_path / "downloads" / "musdb18hq.zip.bad-md5").read_bytes() == server.files[
        "musdb18hq.zip"
    ]
    assert (
        not (tmp_path / "musdb").exists()
        and not (tmp_path / "downloads" / "musdb18hq.zip").exists()
    )
    assert _leftovers(tmp_path) == []


def test_wrong_size(server, tmp_path):
    data = musdb_zip()
    spec = zip_spec(server, data, size=len(data) + 10)
    with pytest.raises(UserError, match=rf"ended at {len(data)} of {len(data) + 10} bytes"):
        fetch_spec(spec, tmp_path / "musdb", progress=False)
    assert (tmp_path / "downloads" / "musdb18hq.zip.part").stat().st_size == len(data)


def test_corrupt_archive_leaves_nothing_half_extracted(server, tmp_path):
    data = musdb_zip()
    corrupt = data[: len(data) // 2] + bytes(len(data) - len(data) // 2)
    spec = zip_spec(server, corrupt, digest=None)  # unknown md5: the corruption shows at extraction
    with pytest.raises(UserError, match=r"corrupt archive musdb18hq\.zip"):
        fetch_spec(spec, tmp_path / "musdb", progress=False)
    assert not (tmp_path / "musdb").exists()
    assert _leftovers(tmp_path) == []  # the temporary extraction folder is gone
    assert (tmp_path / "downloads" / "musdb18hq.zip").read_bytes() == corrupt  # the archive is kept


def test_archive_with_the_wrong_layout(server, tmp_path):
    spec = zip_spec(server, musdb_zip())
    spec = DatasetSpec(spec.name, spec.task, spec.files, "zip", {"train": 100, "test": 50})
    with pytest.raises(UserError, match=r"train: 2 tracks, expected 100"):
        fetch_spec(spec, tmp_path / "musdb", progress=False)
    assert not (tmp_path / "musdb").exists() and _leftovers(tmp_path) == []


def test_unsafe_zip_member(server, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.txt", b"x")
    spec = zip_spec(server, buf.getvalue())
    with pytest.raises(UserError, match="unsafe member path"):
        fetch_spec(spec, tmp_path / "sub" / "musdb", progress=False)
    assert not (tmp_path / "sub" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_http_error(server, tmp_path):
    remote = RemoteFile("nothing.zip", server.url("nothing.zip"), 10, None)
    with pytest.raises(UserError, match="HTTP 404"):
        download_file(remote, tmp_path, progress=False)


def test_multipart_tar_concatenated_and_extracted(server, tmp_path, capsys):
    parts = dnr_tar_parts(3)
    files = []
    for i, data in enumerate(parts):
        name = f"dnr_v2.tar.gz.{i:02d}"
        server.files[name] = data
        files.append(RemoteFile(name, server.url(name), len(data), md5(data)))
    spec = DatasetSpec("dnr_v2", "cass", tuple(files), "tar.gz", {"tr": 1, "cv": 1, "tt": 1})
    out = fetch_spec(spec, tmp_path / "dnr", progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["cv", "tr", "tt"]  # dnr_v2/ became the root
    assert sf.info(out / "cv" / "1" / "speech.wav").channels == 1
    sums = json.loads((tmp_path / "downloads" / "dnr_v2.checksums.json").read_text())
    assert sums == {f"dnr_v2.tar.gz.{i:02d}": md5(d) for i, d in enumerate(parts)}


def test_link_existing_validates_and_never_touches_the_copy(mss_root, tmp_path, monkeypatch):
    monkeypatch.setitem(
        DATASETS, "demo", DatasetSpec("demo", "mss", (), "zip", {"train": 4, "test": 1})
    )
    before = sorted((p.name, p.stat().st_size) for p in mss_root.rglob("*"))
    out = link_existing("demo", mss_root, tmp_path / "data" / "musdb")
    assert out.is_symlink() and out.resolve() == mss_root.resolve()
    assert link_existing("demo", mss_root, out) == out  # idempotent
    (tmp_path / "taken").mkdir()
    with pytest.raises(UserError, match="already exists"):
        link_existing("demo", mss_root, tmp_path / "taken")
    with pytest.raises(UserError, match="missing folder test/"):
        link_existing("demo", mss_root / "train", tmp_path / "other")
    assert sorted((p.name, p.stat().st_size) for p in mss_root.rglob("*")) == before


def test_validate_layout_counts_and_formats(mss_root, cass_root, mss_copy):
    assert validate_layout(mss_root, "mss") == {"train": 4, "test": 1}
    assert validate_layout(cass_root, "cass") == {"cv": 1, "tr": 2, "tt": 1}
    with pytest.raises(UserError, match="expected 100"):
        validate_layout(mss_root, "mss", {"train": 100})
    with pytest.warns(UserWarning, match="expected 3406"):
        validate_layout(cass_root, "cass", {"tr": 3406}, strict=False)
    with pytest.raises(UserError, match="missing folder cv/"):
        validate_layout(mss_root, "cass")
    track = next((mss_copy / "train").iterdir())
    sf.write(track / "drums.wav", np.zeros(10, np.float32), SR)
    with pytest.raises(UserError, match=r"drums\.wav: 1 channel\(s\), expected 2"):
        validate_layout(mss_copy, "mss")
    sf.write(track / "drums.wav", np.zeros((10, 2), np.float32), SR)
    sf.write(track / "bass.wav", np.zeros((10, 2), np.float32), 22_050)
    with pytest.raises(UserError, match=r"bass\.wav: sample rate 22050"):
        validate_layout(mss_copy, "mss")
