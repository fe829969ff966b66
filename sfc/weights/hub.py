"""Download released model folders from the Hugging Face Hub with `huggingface_hub`.

The client gives revision pinning, resumable transfers (a cut transfer continues with an HTTP Range
request), the shared cache under `HF_HOME` and offline mode (`HF_HUB_OFFLINE=1`); `HF_ENDPOINT` points it
at another server (the tests use a loopback one). The repository's file list is not known in advance: it
is listed at run time, and one model folder is fetched at a time (`allow_patterns`). Every fetched file is
checked against the checksum the Hub lists for it (sha256 for LFS files, the git blob sha1 otherwise); a
mismatch deletes the cached copy and refuses.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sfc.errors import UserError
from sfc.provenance import sha256

REPO_ID = (
    "kohei0209/spectral_feature_compression"  # PAPER: the authors' README "Pre-trained models"
)
DEFAULT_REVISION = "main"


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None  # LFS files
    blob_id: str  # git blob sha1


def _api(endpoint: str | None = None):
    try:
        from huggingface_hub import HfApi
    except ImportError as err:  # a dependency of sfc; missing only in a broken environment
        raise UserError("huggingface_hub is not installed: run `bash envs/setup.sh`") from err
    return HfApi(endpoint=endpoint)


def resolve_revision(repo_id: str, revision: str, endpoint: str | None = None) -> str:
    """The commit a branch/tag points to now (pin it to reproduce a download)."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        sha = _api(endpoint).repo_info(repo_id, revision=revision).sha
    except HfHubHTTPError as err:
        raise UserError(f"cannot resolve {repo_id}@{revision}: {err}") from err
    if not sha:
        raise UserError(f"the Hub gave no commit for {repo_id}@{revision}")
    return sha


def list_files(repo_id: str, revision: str, endpoint: str | None = None) -> list[RemoteFile]:
    """Every file of the repository at ``revision``, with its checksums."""
    from huggingface_hub import RepoFile
    from huggingface_hub.errors import HfHubHTTPError

    try:
        entries = _api(endpoint).list_repo_tree(repo_id, revision=revision, recursive=True)
        files = [
            RemoteFile(e.path, e.size, e.lfs.sha256 if e.lfs else None, e.blob_id)
            for e in entries
            if isinstance(e, RepoFile)
        ]
    except HfHubHTTPError as err:
        raise UserError(f"cannot list {repo_id}@{revision}: {err}") from err
    return files


def model_folders(files: list[RemoteFile]) -> list[str]:
    """The released model folders: every folder holding a `merged_config.yaml`."""
    return sorted(
        str(Path(f.path).parent) for f in files if Path(f.path).name == "merged_config.yaml"
    )


def git_blob_sha1(path: Path) -> str:
    """The git object id of a file's content (what the Hub lists for non-LFS files)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(local: Path, remote: list[RemoteFile]) -> dict[str, str]:
    """Check each downloaded file against the Hub's checksum; delete and refuse a mismatch.

    Returns:
        relative path -> sha256 of every verified file.
    """
    checksums = {}
    for f in remote:
        path = local / f.path
        if not path.is_file():
            raise UserError(f"{f.path}: listed by the Hub but not downloaded to {local}")
        if f.sha256 is not None:
            ok, found = (digest := sha256(path)) == f.sha256, digest
        else:
            found = git_blob_sha1(path)
            ok, digest = found == f.blob_id, sha256(path)
        if not ok:
            blob = path.resolve()
            path.unlink(missing_ok=True)
            blob.unlink(missing_ok=True)  # the cache's blob behind the snapshot link
            raise UserError(
                f"{f.path}: checksum mismatch (Hub lists {f.sha256 or f.blob_id}, got {found}); "
                "the corrupt copy was deleted, run the download again"
            )
        checksums[f.path] = digest
    return checksums


def download_folder(
    folder: str,
    repo_id: str = REPO_ID,
    revision: str = DEFAULT_REVISION,
    cache_dir: str | Path | None = None,
    endpoint: str | None = None,
) -> dict:
    """Fetch one released model folder into the Hub cache and verify it.

    Args:
        folder: the folder inside the repository, e.g. `musdb18hq/locoformer-small.enc-...-query`.
        revision: branch, tag or commit; resolved to a commit first, so all files come from one commit.
        cache_dir: default: the Hub cache (`HF_HOME`, `HF_HUB_CACHE`).

    Returns:
        A manifest: repo_id, revision (commit), folder, local path, sha256 of every file.
    """
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    folder = folder.strip("/")
    if constants.HF_HUB_OFFLINE:
        return _from_cache(folder, repo_id, revision, cache_dir)
    commit = resolve_revision(repo_id, revision, endpoint)
    remote = [f for f in list_files(repo_id, commit, endpoint) if f.path.startswith(folder + "/")]
    if not any(Path(f.path).name == "merged_config.yaml" for f in remote):
        known = model_folders(list_files(repo_id, commit, endpoint))
        raise UserError(
            f"{repo_id}@{commit[:12]} has no model folder {folder!r}; released folders: {known}"
        )
    try:
        # The requested name, not the commit: the cache then records the branch/tag -> commit link that
        # offline mode needs. The snapshot folder is named by the commit it resolved to, checked below.
        root = snapshot_download(
            repo_id,
            revision=revision,
            allow_patterns=[f"{folder}/*", f"{folder}/**"],
            cache_dir=cache_dir,
            endpoint=endpoint,
        )
    except HfHubHTTPError as err:
        raise UserError(f"download of {repo_id}/{folder}@{commit[:12]} failed: {err}") from err
    if Path(root).name != commit:
        raise UserError(
            f"{repo_id}@{revision} moved from {commit[:12]} to {Path(root).name[:12]} during the "
            "download; run it again (or pin --revision to a commit)"
        )
    checksums = verify(Path(root), remote)
    return {
        "repo_id": repo_id,
        "revision": commit,
        "requested_revision": revision,
        "folder": folder,
        "local_path": str(Path(root) / folder),
        "sha256": checksums,
    }


def _from_cache(folder: str, repo_id: str, revision: str, cache_dir: str | Path | None) -> dict:
    """Offline mode (HF_HUB_OFFLINE=1): the folder from the Hub cache, as an earlier download left it.

    Nothing can be compared with the Hub here; the files were verified when they were downloaded.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        root = Path(
            snapshot_download(
                repo_id,
                revision=revision,
                allow_patterns=[f"{folder}/*", f"{folder}/**"],
                cache_dir=cache_dir,
                local_files_only=True,
            )
        )
    except LocalEntryNotFoundError as err:
        raise UserError(
            f"offline (HF_HUB_OFFLINE=1) and {repo_id}@{revision} is not in the Hub cache: {err}"
        ) from err
    files = sorted(p for p in (root / folder).rglob("*") if p.is_file())
    if not (root / folder / "merged_config.yaml").is_file():
        raise UserError(f"offline: {folder} is not in the cached snapshot {root}")
    return {
        "repo_id": repo_id,
        "revision": root.name,  # the snapshot folder is named by its commit
        "requested_revision": revision,
        "folder": folder,
        "local_path": str(root / folder),
        "sha256": {p.relative_to(root).as_posix(): sha256(p) for p in files},
        "offline": True,
    }
