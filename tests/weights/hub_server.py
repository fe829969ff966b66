"""A loopback server on 127.0.0.1 speaking the part of the Hugging Face Hub HTTP API that
`huggingface_hub` uses to list a repository and fetch files: repo info, tree listing, resolve (HEAD/GET
with Range). Knobs: cut the first transfer of a file half-way; serve corrupt bytes for a file."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def blob_sha1(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


class FakeHub:
    """Serve ``files`` (path -> bytes) as model repository ``repo_id`` at commit COMMIT (branch main)."""

    def __init__(self, repo_id: str, files: dict[str, bytes], lfs_suffix: str = ".ckpt"):
        self.repo_id, self.files, self.lfs_suffix = repo_id, files, lfs_suffix
        self.cut_once: set[str] = set()  # paths whose next GET is cut half-way
        self.corrupt: set[str] = set()  # paths served with a flipped byte
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def entry(self, path: str) -> dict:
        data = self.files[path]
        out = {"type": "file", "oid": blob_sha1(data), "size": len(data), "path": path}
        if path.endswith(self.lfs_suffix):
            out["lfs"] = {
                "oid": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "pointerSize": 130,
            }
        return out

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _json(self, data) -> None:
                body = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _not_found(self) -> None:
                body = b'{"error": "not found"}'
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._serve(head=False)

            def do_HEAD(self) -> None:
                self._serve(head=True)

            def _serve(self, head: bool) -> None:
                path = unquote(urlparse(self.path).path)
                hub.requests.append((self.command, path, self.headers.get("Range")))
                repo = re.escape(hub.repo_id)
                if re.fullmatch(rf"/api/models/{repo}/revision/[^/]+", path):
                    return self._json(
                        {
                            "id": hub.repo_id,
                            "sha": COMMIT,
                            "siblings": [{"rfilename": p} for p in hub.files],
                        }
                    )
                m = re.fullmatch(rf"/api/models/{repo}/tree/[^/]+(/.*)?", path)
                if m:
                    prefix = (m.group(1) or "").strip("/")
                    return self._json(
                        [hub.entry(p) for p in sorted(hub.files) if p.startswith(prefix)]
                    )
                m = re.fullmatch(rf"/{repo}/resolve/[^/]+/(.+)", path)
                if not m or m.group(1) not in hub.files:
                    return self._not_found()
                self._file(m.group(1), head)

            def _file(self, name: str, head: bool) -> None:
                data = hub.files[name]
                if name in hub.corrupt:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                entry = hub.entry(name)
                etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
                start = 0
                rng = self.headers.get("Range")
                if rng and not head:
                    start = int(re.fullmatch(r"bytes=(\d+)-\d*", rng).group(1))
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(data) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if head:
                    return
                if name in hub.cut_once and not start:
                    hub.cut_once.discard(name)
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data[start:])

        return Handler
