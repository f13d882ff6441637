"""Stream a remote file to a local path or any ObjectStoragePath, atomically and verified.

The body goes in chunks to a temporary sibling name; it is renamed into place only after its
size (Content-Length / Content-Range) and, when known, checksum verify. An interrupted body is
resumed with a Range request; an expired signed URL (403/410) is refreshed once.
No credentials are ever sent to a download host.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin

import requests

from airflow_provider_avatar.exceptions import AvatarDownloadError
from airflow_provider_avatar.status import redact_url
from airflow_provider_avatar.urlsafety import check_download_url

log = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class DownloadResult:
    path: str
    bytes: int
    sha256: str
    content_type: str | None
    source_url: str | None  # redacted

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Target:
    """A destination: write to a temporary sibling, then publish (rename) or discard it."""

    def __init__(self, destination: str) -> None:
        self.uri = destination
        if "://" in destination:
            from airflow.providers.common.compat.sdk import ObjectStoragePath

            self.path: Any = ObjectStoragePath(destination)
            self.local = False
        else:
            self.path = Path(destination).expanduser().resolve()
            self.local = True
        self.tmp = self.path.parent / f".{self.path.name}.{uuid.uuid4().hex}.part"

    def exists(self) -> bool:
        return bool(self.path.exists())

    def open(self) -> IO[bytes]:
        # Object stores have no folders (and mkdir may mean "create a bucket"): local ones only.
        if self.local or getattr(self.path, "protocol", None) in ("file", "local"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        return self.tmp.open("wb")  # type: ignore[no-any-return]

    def publish(self, overwrite: bool) -> None:
        if self.local:
            if overwrite:
                os.replace(self.tmp, self.path)
            else:
                os.link(self.tmp, self.path)  # atomic no-clobber: fails if the file appeared meanwhile
                os.unlink(self.tmp)
            return
        if not overwrite and self.path.exists():
            raise FileExistsError(str(self.path))
        self.tmp.rename(self.path)

    def discard(self) -> None:
        try:
            if self.tmp.exists():
                self.tmp.unlink()
        except OSError:
            log.warning("Could not remove temporary file %s", self.tmp)


def download_file(
    url: str,
    destination: str,
    *,
    allow_private_hosts: bool = False,
    overwrite: bool = False,
    refresh_url: Callable[[], str] | None = None,
    expected_sha256: str | None = None,
    max_attempts: int = 3,
    timeout: tuple[float, float] = (10.0, 300.0),
    chunk_size: int = CHUNK_SIZE,
    service: str = "download",
    session: requests.Session | None = None,
) -> DownloadResult:
    """Download ``url`` to ``destination`` (local path or object-storage URI); see module doc."""

    def fail(message: str, http_status: int | None = None) -> AvatarDownloadError:
        return AvatarDownloadError(message, service=service, action="download", http_status=http_status)

    target = _Target(destination)
    if not overwrite and target.exists():
        raise fail(f"destination {destination} exists; pass overwrite=True to replace it")
    check_download_url(url, allow_private_hosts=allow_private_hosts, service=service)
    http = session or requests.Session()
    sha = hashlib.sha256()
    written = 0
    total: int | None = None
    content_type: str | None = None
    refreshed = False
    attempts = 0
    try:
        with target.open() as out:
            while True:
                attempts += 1
                headers = {"Accept-Encoding": "identity"}
                if written:
                    headers["Range"] = f"bytes={written}-"
                try:
                    resp = _get_following_redirects(http, url, headers, timeout, allow_private_hosts, service)
                except requests.RequestException as exc:
                    if attempts >= max_attempts:
                        raise fail(f"cannot reach {redact_url(url)} ({type(exc).__name__})") from None
                    continue
                with resp:
                    if resp.status_code in (403, 410) and refresh_url is not None and not refreshed:
                        refreshed = True
                        log.info("Download URL refused (HTTP %s); asking the service for a fresh one", resp.status_code)
                        url = refresh_url()
                        check_download_url(url, allow_private_hosts=allow_private_hosts, service=service)
                        attempts -= 1
                        continue
                    if resp.status_code >= 500 and attempts < max_attempts:
                        continue
                    if resp.status_code not in (200, 206):
                        raise fail(f"download of {redact_url(url)} answered HTTP {resp.status_code}", resp.status_code)
                    if resp.status_code == 200 or not _range_matches(resp, written):
                        if written:
                            log.warning("Server ignored the Range request; restarting from byte 0")
                        out.seek(0)
                        out.truncate()
                        sha, written = hashlib.sha256(), 0
                        total = _int_or_none(resp.headers.get("Content-Length"))
                    elif total is None:
                        total = _range_total(resp)
                    content_type = resp.headers.get("Content-Type", content_type)
                    try:
                        for chunk in resp.iter_content(chunk_size):
                            out.write(chunk)
                            sha.update(chunk)
                            written += len(chunk)
                    except (
                        requests.ConnectionError,
                        requests.Timeout,
                        requests.exceptions.ChunkedEncodingError,
                    ) as exc:
                        log.warning("Download interrupted at %d bytes (%s)", written, type(exc).__name__)
                if total is not None and written > total:
                    raise fail(f"received {written} bytes, more than the announced {total}")
                if total is not None and written < total:
                    if attempts >= max_attempts:
                        raise fail(f"download truncated: {written} of {total} bytes after {attempts} attempts")
                    continue
                break
            out.flush()
            if target.local:
                os.fsync(out.fileno())
        if total is None:
            log.warning("The server sent no length; the size could not be verified (%d bytes)", written)
        digest = sha.hexdigest()
        if expected_sha256 and digest != expected_sha256.lower():
            raise fail(f"sha256 mismatch: expected {expected_sha256}, got {digest}")
        try:
            target.publish(overwrite)
        except FileExistsError:
            raise fail(f"destination {destination} appeared during the download; not overwritten") from None
    except BaseException:
        target.discard()
        raise
    finally:
        if session is None:
            http.close()
    return DownloadResult(str(target.path), written, digest, content_type, redact_url(url))


def _get_following_redirects(
    http: requests.Session,
    url: str,
    headers: dict[str, str],
    timeout: tuple[float, float],
    allow_private_hosts: bool,
    service: str,
) -> requests.Response:
    """GET with redirects followed by hand, so every hop passes the URL safety check."""
    for _ in range(MAX_REDIRECTS + 1):
        resp = http.get(url, headers=headers, stream=True, timeout=timeout, allow_redirects=False)
        if resp.status_code not in (301, 302, 303, 307, 308):
            return resp
        resp.close()
        url = urljoin(url, resp.headers.get("Location", ""))
        check_download_url(url, allow_private_hosts=allow_private_hosts, service=service)
    raise AvatarDownloadError("too many redirects", service=service, action="download")


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _range_total(resp: requests.Response) -> int | None:
    content_range = resp.headers.get("Content-Range", "")
    return _int_or_none(content_range.rpartition("/")[2]) if "/" in content_range else None


def _range_matches(resp: requests.Response, offset: int) -> bool:
    """A 206 continues our file only if it starts exactly where we stopped."""
    content_range = resp.headers.get("Content-Range", "")
    if not content_range.startswith("bytes "):
        return False
    start = content_range[6:].partition("-")[0]
    return _int_or_none(start) == offset
